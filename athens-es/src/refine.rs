//! What narrows and orders a search without scoring it: the creation-date range and the sort order.
//!
//! Dates are compared to the millisecond, the precision the engine indexes `created_at` with, and
//! sent as RFC 3339 text: Elasticsearch 7.10 fails to parse some negative `epoch_millis` values
//! (instants before 1970 that are not whole seconds), which the text form avoids.

use athens_core::{SearchRequest, SortOrder};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};

use crate::fields;

/// The `range` filter of the request's creation dates, if it has any: `created_after` inclusive,
/// `created_before` exclusive.
pub(crate) fn created_range(request: &SearchRequest) -> Option<Value> {
    let text = |instant: DateTime<Utc>| json!(instant.to_rfc3339_opts(SecondsFormat::Millis, true));
    let mut bounds = Map::new();
    if let Some(after) = request.created_after {
        bounds.insert("gte".into(), text(after));
    }
    if let Some(before) = request.created_before {
        bounds.insert("lt".into(), text(before));
    }
    if bounds.is_empty() {
        return None;
    }
    bounds.insert("format".into(), json!("strict_date_optional_time"));
    Some(json!({ "range": { fields::CREATED_AT: bounds } }))
}

/// The engine's `sort`: by score when ranking by relevance, else by creation time; the project id
/// breaks ties, so every hit has a distinct position to resume paging after.
pub(crate) fn sort(order: SortOrder, by_relevance: bool) -> Value {
    if by_relevance {
        return json!([{ "_score": "desc" }, { fields::ID: "asc" }]);
    }
    match order {
        SortOrder::Oldest => json!([{ fields::CREATED_AT: "asc" }, { fields::ID: "asc" }]),
        SortOrder::Relevance | SortOrder::Newest => {
            json!([{ fields::CREATED_AT: "desc" }, { fields::ID: "desc" }])
        }
    }
}

/// What of the sort order and the range a cursor must match, as text for the search's
/// fingerprint.
pub(crate) fn fingerprint_parts(request: &SearchRequest) -> [String; 3] {
    let millis = |instant: Option<DateTime<Utc>>| {
        instant
            .map(|instant| instant.timestamp_millis().to_string())
            .unwrap_or_default()
    };
    let order = match request.sort {
        SortOrder::Relevance => "relevance",
        SortOrder::Newest => "newest",
        SortOrder::Oldest => "oldest",
    };
    [
        order.to_owned(),
        millis(request.created_after),
        millis(request.created_before),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_has_the_bounds_given() {
        let mut request = SearchRequest::default();
        assert_eq!(created_range(&request), None);
        request.created_after = DateTime::from_timestamp_micros(1_234_567);
        assert_eq!(
            created_range(&request).unwrap(),
            json!({ "range": { "created_at": {
                "gte": "1970-01-01T00:00:01.234Z",
                "format": "strict_date_optional_time",
            } } })
        );
        request.created_before = DateTime::from_timestamp_millis(-11_066_091_031_278);
        let range = created_range(&request).unwrap();
        assert_eq!(
            range["range"]["created_at"]["lt"],
            "1619-05-01T05:49:28.722Z"
        );
        assert_eq!(
            range["range"]["created_at"]["gte"],
            "1970-01-01T00:00:01.234Z"
        );
    }

    #[test]
    fn sorts_by_score_only_when_ranking() {
        assert_eq!(sort(SortOrder::Relevance, true)[0]["_score"], "desc");
        assert_eq!(sort(SortOrder::Relevance, false)[0]["created_at"], "desc");
        assert_eq!(sort(SortOrder::Newest, false)[1]["id"], "desc");
        assert_eq!(sort(SortOrder::Oldest, false)[0]["created_at"], "asc");
        assert_eq!(sort(SortOrder::Oldest, false)[1]["id"], "asc");
    }
}
