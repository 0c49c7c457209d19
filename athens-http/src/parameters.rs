//! The API's parameters in words for the client: what each must be, the reason given when
//! poem-openapi cannot parse a parameter or one of its validators refuses it.

use athens_core::{
    MAX_CURSOR_BYTES, MAX_HASHTAG_CHARS, MAX_HASHTAGS, MAX_PAGE_SIZE, MAX_SUGGESTIONS,
    MAX_TEXT_CHARS,
};

/// What a parameter must be, in words for the client: the reason given when poem-openapi cannot
/// parse a parameter or one of its validators refuses it (its own messages name Rust types).
pub(crate) fn parameter_rule(name: &str) -> Option<String> {
    let rule = match name {
        "user_id" => "must be a positive integer".into(),
        "size" => format!("must be an integer from 1 to {MAX_PAGE_SIZE}"),
        "mode" => "must be `any` or `all`".into(),
        "hashtags" => format!(
            "must be at most {MAX_HASHTAGS} hashtags, comma-separated or repeated, none empty, each \
             at most {MAX_HASHTAG_CHARS} characters"
        ),
        "q" | "user_name" => format!("must be 1 to {MAX_TEXT_CHARS} characters"),
        "sort" => "must be `relevance`, `newest` or `oldest`".into(),
        "facets" => "must be `hashtags`, `creators` or both, comma-separated".into(),
        "created_after" | "created_before" => {
            "must be an RFC 3339 date-time such as 2024-01-31T00:00:00Z".into()
        }
        "limit" => format!("must be an integer from 1 to {MAX_SUGGESTIONS}"),
        "cursor" => {
            format!("must be a cursor returned by this API (at most {MAX_CURSOR_BYTES} bytes)")
        }
        _ => return None,
    };
    Some(rule)
}
