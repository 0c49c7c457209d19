//! The names of the project document's fields in the index, defined once: the mapping declares
//! them, the stored document ([`IndexedProject`](crate::wire::IndexedProject)) writes them, and the
//! queries, highlights, facets, suggestions and corrections read them.
//!
//! The stored document's field names come from its serde derive; the tests check that it writes
//! exactly the fields the mapping declares, and that every path below resolves in the mapping, so
//! a field renamed or added on one side only fails them.

/// Declares each name as a constant and lists them all in [`PATHS`].
macro_rules! names {
    ($($(#[doc = $doc:literal])+ $name:ident = $path:literal;)+) => {
        $($(#[doc = $doc])+ pub(crate) const $name: &str = $path;)+

        /// Every name above, for the check that the mapping declares each.
        #[cfg(test)]
        pub(crate) const PATHS: &[&str] = &[$($name),+];
    };
}

names! {
    /// The project's id, also the tie-break of every sort.
    ID = "id";
    /// The project's name (also a name of its hashtags and creators).
    NAME = "name";
    /// The project's URL slug.
    SLUG = "slug";
    /// The project's free-text description.
    DESCRIPTION = "description";
    /// When the project (or a hashtag, or a creator) was created.
    CREATED_AT = "created_at";
    /// When the project's row last changed.
    UPDATED_AT = "updated_at";
    /// The project's hashtags: `id`, `name`, `created_at`.
    HASHTAGS = "hashtags";
    /// The users who created the project: `id`, `name`, `created_at`.
    CREATORS = "creators";
    /// The completion inputs, written by the adapter and never read back.
    SUGGEST = "suggest";
    /// Index-only: name, slug and description copied together, the field free text matches.
    TEXT_ALL = "text_all";
    /// Index-only: each whole slug and name as one term, without separators.
    JOINED = "joined";
    /// A hashtag's name, a keyword under the hashtag normalizer.
    HASHTAG_NAME = "hashtags.name";
    /// A creator's id.
    CREATOR_ID = "creators.id";
    /// A creator's name, analysed.
    CREATOR_NAME = "creators.name";
    /// Partial words of the slug.
    SLUG_PREFIX = "slug.prefix";
    /// Partial words of the description.
    DESCRIPTION_PREFIX = "description.prefix";
    /// Partial words of name, slug and description.
    TEXT_ALL_PREFIX = "text_all.prefix";
    /// Starts of a whole slug or name.
    JOINED_PREFIX = "joined.prefix";
}

/// The exact-value sub-field of an analysed text field.
pub(crate) const KEYWORD: &str = "keyword";

/// The partial-word (edge n-gram) sub-field of an analysed text field.
pub(crate) const PREFIX: &str = "prefix";

/// The kinds of completions under [`SUGGEST`]: `project`, `hashtag`, `user`.
pub(crate) const SUGGEST_KINDS: [&str; 3] = ["project", "hashtag", "user"];

/// The path of a completion kind's field: `suggest.project` for `project`.
pub(crate) fn suggest_path(kind: &str) -> String {
    format!("{SUGGEST}.{kind}")
}

/// The path of `field`'s partial-word sub-field: `slug.prefix` for `slug`.
pub(crate) fn prefix_of(field: &str) -> String {
    format!("{field}.{PREFIX}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_built_from_their_parts() {
        assert_eq!(HASHTAG_NAME, format!("{HASHTAGS}.{NAME}"));
        assert_eq!(CREATOR_ID, format!("{CREATORS}.{ID}"));
        assert_eq!(CREATOR_NAME, format!("{CREATORS}.{NAME}"));
        for (path, field) in [
            (SLUG_PREFIX, SLUG),
            (DESCRIPTION_PREFIX, DESCRIPTION),
            (TEXT_ALL_PREFIX, TEXT_ALL),
            (JOINED_PREFIX, JOINED),
        ] {
            assert_eq!(path, prefix_of(field));
        }
        assert_eq!(suggest_path("user"), "suggest.user");
    }
}
