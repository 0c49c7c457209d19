//! The read-side port: searching project documents, with the request rules every adapter and API share.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::document::{ProjectDocument, UserId};
use crate::error::SearchError;
use crate::suggest::{SuggestRequest, Suggestions};

/// Results per page when the client does not say.
pub const DEFAULT_PAGE_SIZE: usize = 20;
/// The largest page a client may ask for.
pub const MAX_PAGE_SIZE: usize = 100;
/// The longest free-text query or user name accepted, in characters.
pub const MAX_TEXT_CHARS: usize = 200;
/// The most hashtags one request may filter on.
pub const MAX_HASHTAGS: usize = 20;
/// The longest hashtag accepted, in characters.
pub const MAX_HASHTAG_CHARS: usize = 100;
/// The longest cursor accepted, in bytes.
pub const MAX_CURSOR_BYTES: usize = 512;
/// How many values a facet counts: its most frequent ones.
pub const FACET_SIZE: usize = 10;

/// How several hashtags combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashtagMode {
    /// A project matches when it uses at least one of the hashtags.
    #[default]
    Any,
    /// A project matches when it uses every one of the hashtags.
    All,
}

/// The order of the hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SortOrder {
    /// Best match first when there is a text query; newest first without one.
    #[default]
    Relevance,
    /// Most recently created first.
    Newest,
    /// Least recently created first.
    Oldest,
}

/// A facet: a field whose most frequent values are counted over every matching project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Facet {
    /// The hashtags the matching projects use.
    Hashtags,
    /// The users who created the matching projects.
    Creators,
}

/// A search over project documents. Every filter that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchRequest {
    /// Fuzzy full-text query over slug and description (typos, partial words, any word order).
    pub text: Option<String>,
    /// Hashtags the projects must use, compared case- and `#`-insensitively.
    pub hashtags: Vec<String>,
    /// Whether any or all of `hashtags` must be used.
    pub hashtag_mode: HashtagMode,
    /// Only projects created by this user.
    pub user_id: Option<UserId>,
    /// Only projects created by a user whose name matches this, fuzzily.
    pub user_name: Option<String>,
    /// Only projects created at or after this instant.
    pub created_after: Option<DateTime<Utc>>,
    /// Only projects created strictly before this instant.
    pub created_before: Option<DateTime<Utc>>,
    /// The order of the hits.
    pub sort: SortOrder,
    /// Facets to count over every matching project (not only this page), each once.
    pub facets: Vec<Facet>,
    /// Results per page, 1 to [`MAX_PAGE_SIZE`].
    pub size: usize,
    /// Opaque cursor from a previous page's [`SearchPage::next_cursor`].
    pub cursor: Option<String>,
}

impl SearchRequest {
    /// Checks the request against the limits above; the error names the offending parameter.
    pub fn validate(&self) -> Result<(), SearchError> {
        if let Some(text) = &self.text {
            check_text("q", text)?;
        }
        if let Some(name) = &self.user_name {
            check_text("user_name", name)?;
        }
        if self.hashtags.len() > MAX_HASHTAGS {
            return Err(invalid(
                "hashtags",
                format!("at most {MAX_HASHTAGS} hashtags per request"),
            ));
        }
        for hashtag in &self.hashtags {
            let normalized = normalize_hashtag(hashtag);
            if normalized.is_empty() {
                return Err(invalid("hashtags", "a hashtag must not be empty".into()));
            }
            if normalized.chars().count() > MAX_HASHTAG_CHARS {
                return Err(invalid(
                    "hashtags",
                    format!("a hashtag must be at most {MAX_HASHTAG_CHARS} characters"),
                ));
            }
        }
        if self.size == 0 || self.size > MAX_PAGE_SIZE {
            return Err(invalid(
                "size",
                format!("must be between 1 and {MAX_PAGE_SIZE}"),
            ));
        }
        if let Some(user) = self.user_id
            && user.0 <= 0
        {
            return Err(invalid("user_id", "must be a positive integer".into()));
        }
        if let (Some(after), Some(before)) = (self.created_after, self.created_before)
            && after >= before
        {
            return Err(invalid(
                "created_before",
                "must be later than created_after".into(),
            ));
        }
        if let Some(cursor) = &self.cursor
            && (cursor.is_empty() || cursor.len() > MAX_CURSOR_BYTES)
        {
            return Err(invalid(
                "cursor",
                "is not a cursor returned by this API".into(),
            ));
        }
        Ok(())
    }

    /// Whether the hits are ranked by relevance: a text query, sorted by relevance.
    pub fn ranks_by_relevance(&self) -> bool {
        self.text.is_some() && self.sort == SortOrder::Relevance
    }
}

/// A hashtag as the index compares it: trimmed, without leading `#`, lowercase.
pub fn normalize_hashtag(hashtag: &str) -> String {
    hashtag.trim().trim_start_matches('#').trim().to_lowercase()
}

fn check_text(field: &'static str, text: &str) -> Result<(), SearchError> {
    if text.trim().is_empty() {
        return Err(invalid(field, "must not be empty".into()));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(invalid(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "must not contain control characters".into()));
    }
    Ok(())
}

fn invalid(field: &'static str, reason: String) -> SearchError {
    SearchError::InvalidRequest { field, reason }
}

/// One matching project.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The project's document.
    pub document: ProjectDocument,
    /// Relevance score, when the search ranks by relevance.
    pub score: Option<f64>,
    /// Fragments of matched fields (`slug`, `description`, ...), with matches wrapped in `<em>`.
    pub highlights: BTreeMap<String, Vec<String>>,
}

/// One page of results.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SearchPage {
    /// How many projects match in all.
    pub total: u64,
    /// This page's hits, best first.
    pub hits: Vec<SearchHit>,
    /// Cursor for the next page, `None` on the last page.
    pub next_cursor: Option<String>,
    /// The counts of the facets the request asked for, over every matching project.
    pub facets: FacetCounts,
    /// When a text query matched nothing: a corrected query that does match something.
    pub did_you_mean: Option<String>,
}

/// Facet counts: each facet asked for holds its [`FACET_SIZE`] most frequent values, most
/// frequent first (ties in value order); a facet not asked for is `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FacetCounts {
    /// Hashtags, by their normalized name (see [`normalize_hashtag`]).
    pub hashtags: Option<Vec<HashtagCount>>,
    /// Creators, by id.
    pub creators: Option<Vec<CreatorCount>>,
}

/// How many matching projects use a hashtag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashtagCount {
    /// The hashtag, normalized: what a `hashtags` filter takes.
    pub name: String,
    /// Matching projects that use it.
    pub count: u64,
}

/// How many matching projects a user created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorCount {
    /// The user's id: what a `user_id` filter takes.
    pub id: UserId,
    /// The user's name.
    pub name: String,
    /// Matching projects the user created.
    pub count: u64,
}

/// Searches project documents.
///
/// # Contract
/// - The request has passed [`SearchRequest::validate`]; an adapter may still refuse a cursor it
///   cannot read, with [`SearchError::InvalidRequest`] naming `cursor`.
/// - Paging with `next_cursor` returns every hit exactly once while the index does not change.
/// - User input is never handed to a query-string parser; fuzziness and expansions are bounded.
/// - Facet counts and `did_you_mean` describe the whole matching set, whatever the page.
/// - `did_you_mean` is only set when a text query matched nothing, and then only to a query that
///   matches something with the same filters.
#[async_trait]
pub trait ProjectSearch: Send + Sync {
    /// Runs one search.
    async fn search(&self, request: &SearchRequest) -> Result<SearchPage, SearchError>;

    /// Completes what a person has typed so far into project names, hashtags and user names.
    /// The request has passed [`SuggestRequest::validate`].
    async fn suggest(&self, request: &SuggestRequest) -> Result<Suggestions, SearchError>;

    /// Checks that the engine answers and the alias exists.
    async fn ready(&self) -> Result<(), SearchError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> SearchRequest {
        SearchRequest {
            size: DEFAULT_PAGE_SIZE,
            ..SearchRequest::default()
        }
    }

    fn field_of(result: Result<(), SearchError>) -> &'static str {
        match result {
            Err(SearchError::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid request, got {other:?}"),
        }
    }

    #[test]
    fn accepts_a_plain_request() {
        let mut ok = request();
        ok.text = Some("elasticsearch sync".into());
        ok.hashtags = vec!["#Rust".into()];
        assert!(ok.validate().is_ok());
    }

    #[test]
    fn names_the_offending_field() {
        let mut r = request();
        r.text = Some("   ".into());
        assert_eq!(field_of(r.validate()), "q");

        let mut r = request();
        r.user_name = Some("x".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(field_of(r.validate()), "user_name");

        let mut r = request();
        r.size = MAX_PAGE_SIZE + 1;
        assert_eq!(field_of(r.validate()), "size");

        let mut r = request();
        r.size = 0;
        assert_eq!(field_of(r.validate()), "size");

        let mut r = request();
        r.hashtags = vec!["#".into()];
        assert_eq!(field_of(r.validate()), "hashtags");

        let mut r = request();
        r.hashtags = vec!["a".into(); MAX_HASHTAGS + 1];
        assert_eq!(field_of(r.validate()), "hashtags");

        let mut r = request();
        r.user_id = Some(UserId(0));
        assert_eq!(field_of(r.validate()), "user_id");

        let mut r = request();
        r.cursor = Some(String::new());
        assert_eq!(field_of(r.validate()), "cursor");

        let mut r = request();
        let instant = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        r.created_after = Some(instant);
        r.created_before = Some(instant);
        assert_eq!(field_of(r.validate()), "created_before");
        r.created_before = Some(instant + chrono::Duration::seconds(1));
        assert!(r.validate().is_ok());
    }

    #[test]
    fn relevance_ranks_only_a_text_query() {
        let mut r = request();
        assert!(!r.ranks_by_relevance());
        r.text = Some("sync".into());
        assert!(r.ranks_by_relevance());
        r.sort = SortOrder::Newest;
        assert!(!r.ranks_by_relevance());
    }

    #[test]
    fn hashtags_normalize_case_and_hash() {
        assert_eq!(normalize_hashtag("  #Rust "), "rust");
        assert_eq!(normalize_hashtag("##ML"), "ml");
    }
}
