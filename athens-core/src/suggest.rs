//! As-you-type suggestions: what a person has typed so far, completed into project names and slugs,
//! hashtags and user names.

use crate::document::{ProjectId, UserId};
use crate::error::SearchError;
use crate::search::MAX_TEXT_CHARS;

/// Suggestions of each kind when the client does not say.
pub const DEFAULT_SUGGESTIONS: usize = 5;
/// The most suggestions of each kind a client may ask for.
pub const MAX_SUGGESTIONS: usize = 10;

/// What to complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestRequest {
    /// The text typed so far: the start of a name, or of any of its words (`smi` finds `John
    /// Smith`). Case and accents do not matter; from four characters on, a typo is tolerated.
    pub prefix: String,
    /// Suggestions of each kind, 1 to [`MAX_SUGGESTIONS`].
    pub size: usize,
}

impl SuggestRequest {
    /// Checks the request against the limits above; the error names the offending parameter
    /// (`q` for the prefix, `limit` for the size, as the API calls them).
    pub fn validate(&self) -> Result<(), SearchError> {
        let invalid = |field, reason: String| Err(SearchError::InvalidRequest { field, reason });
        if self.prefix.trim().is_empty() {
            return invalid("q", "must not be empty".into());
        }
        if self.prefix.chars().count() > MAX_TEXT_CHARS {
            return invalid("q", format!("must be at most {MAX_TEXT_CHARS} characters"));
        }
        if self.prefix.chars().any(char::is_control) {
            return invalid("q", "must not contain control characters".into());
        }
        if self.size == 0 || self.size > MAX_SUGGESTIONS {
            return invalid("limit", format!("must be between 1 and {MAX_SUGGESTIONS}"));
        }
        Ok(())
    }
}

/// Completions of a prefix, each kind best first and without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Suggestions {
    /// Projects whose name or slug starts (or has a word that starts) with the prefix.
    pub projects: Vec<ProjectSuggestion>,
    /// Hashtags, normalized (see [`normalize_hashtag`](crate::normalize_hashtag)).
    pub hashtags: Vec<String>,
    /// Users who created at least one project.
    pub users: Vec<UserSuggestion>,
}

/// A suggested project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSuggestion {
    /// The project's id.
    pub id: ProjectId,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
}

/// A suggested user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSuggestion {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(request: SuggestRequest) -> &'static str {
        match request.validate() {
            Err(SearchError::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn names_the_offending_parameter() {
        let ok = SuggestRequest {
            prefix: "ela".into(),
            size: DEFAULT_SUGGESTIONS,
        };
        assert!(ok.validate().is_ok());
        let with = |prefix: &str, size| SuggestRequest {
            prefix: prefix.into(),
            size,
        };
        assert_eq!(field_of(with(" ", 5)), "q");
        assert_eq!(field_of(with(&"a".repeat(MAX_TEXT_CHARS + 1), 5)), "q");
        assert_eq!(field_of(with("a\u{7}", 5)), "q");
        assert_eq!(field_of(with("a", 0)), "limit");
        assert_eq!(field_of(with("a", MAX_SUGGESTIONS + 1)), "limit");
    }
}
