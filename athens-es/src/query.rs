//! Search requests: the query built from a [`SearchRequest`], and the opaque paging cursor.
//!
//! User input only ever becomes the `query` of `match`/`match_phrase` or the `value` of `term`/`terms`
//! queries: the engine analyses it as text, never parses it as query syntax. Free text is first cut
//! into at most [`MAX_QUERY_WORDS`] words of letters and digits, which bounds the clauses the fuzzy
//! expansions make (under OpenSearch's and Elasticsearch 8's limit of 1024 clauses per query).
//!
//! Free text: every word must match `text_all` (name, slug and description together) either fuzzily
//! (`AUTO` edits, transpositions count as one, first letter exact, at most 50 expansions) or as the
//! start of a word (edge n-grams, `elasti` → `elasticsearch`); with more than two words, 75% of them
//! suffice. Word order does not matter. Or the words written together match a whole slug or name
//! with at most one typo, or start one (`python3requests`, `python3 reqeusts` and `python3-req` find
//! `python3-requests`). Exact slug words, phrases and whole names rank higher. What each clause
//! bought, measured on the Debian corpus, is in `docs/relevance.md`.

use athens_core::{HashtagMode, SearchError, SearchRequest, normalize_hashtag};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::EsConfig;
use crate::{facets, fields, refine};

/// The most words of a free-text query or user name that are searched; the rest are ignored.
pub(crate) const MAX_QUERY_WORDS: usize = 10;

/// Expansions of one fuzzy word.
const MAX_EXPANSIONS: u32 = 50;

/// Edits allowed between the words written together and a whole slug or name: none under three
/// characters, one from there on. One typo is what this clause is for (each word is matched with
/// `AUTO` edits anyway); two edits over a long name cost more than they find (measured on the
/// Debian corpus: fewer right first hits, slower).
const JOINED_FUZZINESS: &str = "AUTO:3,1000";

/// Weight of the words written together being a whole slug or name: it outweighs the same words
/// found in a longer name (`libfoo` before `libfoo-dev`).
const WHOLE_NAME_BOOST: f64 = 10.0;

/// Version of the cursor format.
const CURSOR_VERSION: u8 = 1;

/// A search ready to send.
#[derive(Debug)]
pub(crate) struct SearchPlan {
    /// The body of `POST /<alias>/_search`.
    pub body: Value,
    /// Hits the caller asked for (the body asks one more, to know whether a next page exists).
    pub size: usize,
    /// Identifies the search, so that a cursor is only accepted by the search that made it; also
    /// the search's `preference`, so that all its pages read the same shard copies.
    pub fingerprint: String,
    /// Whether hits are ranked by relevance (free text) or by creation time.
    pub by_relevance: bool,
    /// The words of the free-text query, for a correction when it matches nothing.
    pub text_words: Vec<String>,
}

/// The body Athens posts to `<alias>/_search` for `request` under `config`: to send the very same
/// search straight to the engine, for example to compare the two.
pub fn search_body(request: &SearchRequest, config: &EsConfig) -> Result<Value, SearchError> {
    request.validate()?;
    Ok(plan(request, config.search_timeout_ms)?.body)
}

/// Builds the search for `request` (already validated), resuming after its cursor if it has one.
pub(crate) fn plan(request: &SearchRequest, timeout_ms: u64) -> Result<SearchPlan, SearchError> {
    let text_words = request.text.as_deref().map(words).unwrap_or_default();
    let by_relevance = request.ranks_by_relevance();
    let hashtags = hashtags(&request.hashtags);
    let user_words = request.user_name.as_deref().map(words);
    let fingerprint = fingerprint(request, &text_words, &hashtags, user_words.as_deref());

    let mut filter = Vec::new();
    match request.hashtag_mode {
        _ if hashtags.is_empty() => {}
        HashtagMode::Any => filter.push(json!({ "terms": { fields::HASHTAG_NAME: hashtags } })),
        HashtagMode::All => filter.extend(
            hashtags
                .iter()
                .map(|hashtag| json!({ "term": { fields::HASHTAG_NAME: hashtag } })),
        ),
    }
    if let Some(user) = request.user_id {
        filter.push(json!({ "term": { fields::CREATOR_ID: user.0 } }));
    }
    filter.extend(refine::created_range(request));
    if let Some(user_words) = &user_words {
        filter.push(json!({ "match": { fields::CREATOR_NAME: {
            "query": user_words.join(" "),
            "operator": "and",
            "fuzziness": "AUTO",
            "prefix_length": 1,
            "max_expansions": MAX_EXPANSIONS,
            "fuzzy_transpositions": true,
        } } }));
    }

    let mut query = json!({ "bool": { "filter": filter } });
    if request.text.is_some() {
        query["bool"]["must"] = json!([text_query(&text_words)]);
        query["bool"]["should"] = ranking(&text_words);
    }
    let sort = refine::sort(request.sort, by_relevance);

    let mut body = json!({
        "size": request.size + 1,
        "track_total_hits": true,
        "timeout": format!("{timeout_ms}ms"),
        "query": query,
        "sort": sort,
    });
    if request.text.is_some() {
        body["highlight"] = highlight(&text_words);
    }
    if let Some(aggs) = facets::aggregations(&request.facets) {
        body["aggs"] = aggs;
    }
    if let Some(cursor) = &request.cursor {
        body["search_after"] = decode_cursor(cursor, &fingerprint, by_relevance)?;
    }
    Ok(SearchPlan {
        body,
        size: request.size,
        fingerprint,
        by_relevance,
        text_words: text_words.iter().map(|word| (*word).to_owned()).collect(),
    })
}

/// The words of a text: runs of letters, digits and combining marks, at most [`MAX_QUERY_WORDS`].
/// Everything else (spaces, punctuation, query syntax such as `*?~"():\`) only separates words.
pub(crate) fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || is_combining_mark(c)))
        .filter(|word| !word.is_empty())
        .take(MAX_QUERY_WORDS)
        .collect()
}

fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}' | '\u{1AB0}'..='\u{1AFF}' | '\u{1DC0}'..='\u{1DFF}' | '\u{20D0}'..='\u{20FF}' | '\u{FE20}'..='\u{FE2F}')
}

/// Normalised, deduplicated hashtags, sorted.
fn hashtags(raw: &[String]) -> Vec<String> {
    let mut hashtags: Vec<String> = raw
        .iter()
        .map(|hashtag| normalize_hashtag(hashtag))
        .filter(|hashtag| !hashtag.is_empty())
        .collect();
    hashtags.sort();
    hashtags.dedup();
    hashtags
}

/// Each word must match fuzzily or as a word start; beyond two words, 75% of them must. Or the words
/// written together match a whole slug or name with at most one typo (`python3requests` and
/// `pyhton3 requests` find `python3-requests`), or start one (`libnetfilter-c` finds
/// `libnetfilter-conntrack3`). A text without a single word (only punctuation) matches nothing.
fn text_query(words: &[&str]) -> Value {
    if words.is_empty() {
        return json!({ "match_none": {} });
    }
    let joined = words.concat();
    json!({ "bool": { "should": [
        per_word(words),
        { "match": { fields::JOINED: {
            "query": joined,
            "fuzziness": JOINED_FUZZINESS,
            "prefix_length": 1,
            "max_expansions": MAX_EXPANSIONS,
            "fuzzy_transpositions": true,
        } } },
        { "match": { fields::JOINED_PREFIX: { "query": joined } } },
    ] } })
}

/// Each word fuzzily or as a word start in `text_all`, 75% of them beyond two words.
fn per_word(words: &[&str]) -> Value {
    let per_word: Vec<Value> = words
        .iter()
        .map(|word| {
            json!({ "bool": { "should": [
                { "match": { fields::TEXT_ALL: fuzzy(word) } },
                { "match": { fields::TEXT_ALL_PREFIX: { "query": word, "operator": "and" } } },
            ] } })
        })
        .collect();
    json!({ "bool": { "should": per_word, "minimum_should_match": "2<75%" } })
}

/// A fuzzy `match` of one word: `AUTO` edits, transpositions count as one, first letter exact, at
/// most [`MAX_EXPANSIONS`] expansions.
fn fuzzy(word: &str) -> Value {
    json!({
        "query": word,
        "operator": "and",
        "fuzziness": "AUTO",
        "prefix_length": 1,
        "max_expansions": MAX_EXPANSIONS,
        "fuzzy_transpositions": true,
    })
}

/// Optional clauses that only rank: exact slug words, slug word starts, the words as a phrase, and
/// the words written together being a whole slug or name exactly.
fn ranking(words: &[&str]) -> Value {
    let text = words.join(" ");
    json!([
        { "match": { fields::SLUG: { "query": text, "boost": 2.0 } } },
        { "match": { fields::SLUG_PREFIX: { "query": text } } },
        { "match_phrase": { fields::TEXT_ALL: { "query": text, "slop": 2, "boost": 2.0 } } },
        { "match": { fields::JOINED: { "query": words.concat(), "boost": WHOLE_NAME_BOOST } } },
    ])
}

/// Matched words in `<em>`. The words match `text_all`, so `require_field_match` is off to mark the
/// words in `slug` and `description`; the `prefix` sub-fields mark partial words (whole words are
/// marked, since the n-grams keep their word's offsets). Each field is given only the words' clauses
/// that can mark it: the fuzzy words for the whole-word fields, the word starts for the `prefix`
/// sub-fields (a fuzzy word's expansions are computed again for every field it is given: giving
/// them to all four fields doubled the time of a search on the Debian corpus). The whole-name
/// clauses mark nothing in these fields and are left out.
fn highlight(words: &[&str]) -> Value {
    let fuzzy: Vec<Value> = words
        .iter()
        .map(|word| json!({ "match": { fields::TEXT_ALL: fuzzy(word) } }))
        .collect();
    let starts: Vec<Value> = words
        .iter()
        .map(|word| json!({ "match": { fields::TEXT_ALL_PREFIX: { "query": word } } }))
        .collect();
    let fuzzy = json!({ "bool": { "should": fuzzy } });
    let starts = json!({ "bool": { "should": starts } });
    json!({
        "pre_tags": ["<em>"],
        "post_tags": ["</em>"],
        "require_field_match": false,
        "encoder": "default",
        "fields": {
            fields::SLUG: { "number_of_fragments": 0, "highlight_query": fuzzy },
            fields::SLUG_PREFIX: { "number_of_fragments": 0, "highlight_query": starts },
            fields::DESCRIPTION: {
                "fragment_size": 160,
                "number_of_fragments": 3,
                "highlight_query": fuzzy,
            },
            fields::DESCRIPTION_PREFIX: {
                "fragment_size": 160,
                "number_of_fragments": 3,
                "highlight_query": starts,
            },
        }
    })
}

/// A 64-bit FNV-1a hash of what selects and orders the hits (not the page size), in hex.
fn fingerprint(
    request: &SearchRequest,
    text_words: &[&str],
    hashtags: &[String],
    user_words: Option<&[&str]>,
) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |part: &str| {
        for byte in part.bytes().chain([0xff]) {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    };
    feed(if request.ranks_by_relevance() {
        "text"
    } else {
        "chrono"
    });
    for part in refine::fingerprint_parts(request) {
        feed(&part);
    }
    for word in text_words {
        feed(&word.to_lowercase());
    }
    feed(match request.hashtag_mode {
        HashtagMode::Any => "any",
        HashtagMode::All => "all",
    });
    for hashtag in hashtags {
        feed(hashtag);
    }
    feed(
        &request
            .user_id
            .map(|user| user.0.to_string())
            .unwrap_or_default(),
    );
    for word in user_words.unwrap_or_default() {
        feed(&word.to_lowercase());
    }
    format!("{hash:016x}")
}

/// The cursor's content: the format version, the search it belongs to, and the sort values of the
/// last hit returned.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    v: u8,
    s: String,
    a: Vec<Value>,
}

/// The opaque cursor that resumes `fingerprint`'s search after a hit with these sort values.
pub(crate) fn encode_cursor(fingerprint: &str, sort: &[Value]) -> Option<String> {
    let cursor = Cursor {
        v: CURSOR_VERSION,
        s: fingerprint.to_owned(),
        a: sort.to_vec(),
    };
    let json = serde_json::to_vec(&cursor).ok()?;
    Some(URL_SAFE_NO_PAD.encode(json))
}

/// The `search_after` values of a cursor, if it is one this search made.
fn decode_cursor(
    cursor: &str,
    fingerprint: &str,
    by_relevance: bool,
) -> Result<Value, SearchError> {
    let refuse = |reason: &str| SearchError::InvalidRequest {
        field: "cursor",
        reason: reason.to_owned(),
    };
    let not_ours = || refuse("is not a cursor returned by this API");
    let json = URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| not_ours())?;
    let cursor: Cursor = serde_json::from_slice(&json).map_err(|_| not_ours())?;
    if cursor.v != CURSOR_VERSION {
        return Err(refuse("has expired: search again without a cursor"));
    }
    if cursor.s != fingerprint {
        return Err(refuse("belongs to a different search"));
    }
    let valid = match cursor.a.as_slice() {
        [first, Value::Number(id)] if id.is_i64() => match first {
            // Scores are 32-bit floats in the engine.
            Value::Number(score) if by_relevance => score
                .as_f64()
                .is_some_and(|score| score.is_finite() && score.abs() <= f64::from(f32::MAX)),
            Value::Number(created_at) => !by_relevance && created_at.is_i64(),
            _ => false,
        },
        _ => false,
    };
    if !valid {
        return Err(not_ours());
    }
    Ok(Value::Array(cursor.a))
}

#[cfg(test)]
mod tests {
    use athens_core::UserId;

    use super::*;

    fn request() -> SearchRequest {
        SearchRequest {
            size: 20,
            ..SearchRequest::default()
        }
    }

    fn cursor_field(result: Result<SearchPlan, SearchError>) -> &'static str {
        match result {
            Err(SearchError::InvalidRequest { field, .. }) => field,
            other => panic!("expected an invalid cursor, got {other:?}"),
        }
    }

    #[test]
    fn words_ignore_syntax_and_are_bounded() {
        assert_eq!(
            words(r#"elastic*search? "sync"~2 (a:b) [x] {y} ^z \/"#),
            ["elastic", "search", "sync", "2", "a", "b", "x", "y", "z"]
        );
        assert_eq!(words("naïve café-crème"), ["naïve", "café", "crème"]);
        assert_eq!(words("e\u{301}te"), ["e\u{301}te"]);
        assert_eq!(words(&"word ".repeat(40)).len(), MAX_QUERY_WORDS);
        assert!(words("*?~ \"()").is_empty());
    }

    #[test]
    fn free_text_ranks_by_relevance_and_highlights() {
        let mut r = request();
        r.text = Some("elasticsaerch sync".into());
        let plan = plan(&r, 5000).unwrap();
        assert!(plan.by_relevance);
        let body = &plan.body;
        assert_eq!(body["size"], 21);
        assert_eq!(body["track_total_hits"], true);
        assert_eq!(body["timeout"], "5000ms");
        assert_eq!(body["sort"][0]["_score"], "desc");
        assert_eq!(body["sort"][1]["id"], "asc");
        let matches = &body["query"]["bool"]["must"][0]["bool"]["should"];
        let must = &matches[0]["bool"];
        assert_eq!(must["minimum_should_match"], "2<75%");
        let joined = &matches[1]["match"]["joined"];
        assert_eq!(joined["query"], "elasticsaerchsync");
        assert_eq!(joined["fuzziness"], JOINED_FUZZINESS);
        assert_eq!(
            matches[2]["match"]["joined.prefix"]["query"],
            "elasticsaerchsync"
        );
        let fuzzy = &must["should"][0]["bool"]["should"][0]["match"]["text_all"];
        assert_eq!(fuzzy["query"], "elasticsaerch");
        assert_eq!(fuzzy["fuzziness"], "AUTO");
        assert_eq!(fuzzy["prefix_length"], 1);
        assert_eq!(fuzzy["max_expansions"], 50);
        assert_eq!(fuzzy["fuzzy_transpositions"], true);
        assert!(body["highlight"]["fields"]["slug"].is_object());
    }

    #[test]
    fn a_text_without_words_matches_nothing() {
        let mut r = request();
        r.text = Some("*?~ \"()".into());
        let plan = plan(&r, 5000).unwrap();
        assert_eq!(
            plan.body["query"]["bool"]["must"][0],
            json!({ "match_none": {} })
        );
    }

    #[test]
    fn never_uses_a_query_parser() {
        let mut r = request();
        r.text = Some(r#"a* OR b~ "c" (d) {e} [f] ^g :h \i /j/"#.into());
        r.user_name = Some("jon AND smith*".into());
        r.hashtags = vec!["#Rust*".into()];
        let body = plan(&r, 5000).unwrap().body.to_string();
        assert!(!body.contains("query_string") && !body.contains("simple_query_string"));
        assert!(!body.contains("regexp") && !body.contains("wildcard"));
    }

    #[test]
    fn filters_combine_and_hashtags_are_normalised() {
        let mut r = request();
        r.hashtags = vec!["#RUST".into(), " rust".into(), "#Search".into()];
        r.hashtag_mode = HashtagMode::All;
        r.user_id = Some(UserId(7));
        r.user_name = Some("jon smith".into());
        let plan = plan(&r, 5000).unwrap();
        assert!(!plan.by_relevance);
        let filter = plan.body["query"]["bool"]["filter"]
            .as_array()
            .unwrap()
            .clone();
        assert_eq!(filter.len(), 4);
        assert_eq!(filter[0]["term"]["hashtags.name"], "rust");
        assert_eq!(filter[1]["term"]["hashtags.name"], "search");
        assert_eq!(filter[2]["term"]["creators.id"], 7);
        assert_eq!(filter[3]["match"]["creators.name"]["operator"], "and");
        assert_eq!(plan.body["sort"][0]["created_at"], "desc");

        r.hashtag_mode = HashtagMode::Any;
        let plan = super::plan(&r, 5000).unwrap();
        assert_eq!(
            plan.body["query"]["bool"]["filter"][0]["terms"]["hashtags.name"],
            json!(["rust", "search"])
        );
    }

    #[test]
    fn cursors_resume_only_their_own_search() {
        let mut r = request();
        r.text = Some("sync".into());
        let first = plan(&r, 5000).unwrap();
        let cursor = encode_cursor(&first.fingerprint, &[json!(1.25), json!(42)]).unwrap();
        r.cursor = Some(cursor.clone());
        let next = plan(&r, 5000).unwrap();
        assert_eq!(next.body["search_after"], json!([1.25, 42]));

        r.size = 3;
        assert!(
            plan(&r, 5000).is_ok(),
            "the page size may change between pages"
        );

        let mut other = r.clone();
        other.text = Some("postgres".into());
        assert_eq!(cursor_field(plan(&other, 5000)), "cursor");

        let mut chrono = r.clone();
        chrono.text = None;
        assert_eq!(cursor_field(plan(&chrono, 5000)), "cursor");
    }

    #[test]
    fn relevance_cursors_hold_engine_scores() {
        let mut r = request();
        r.text = Some("sync".into());
        let fingerprint = plan(&r, 5000).unwrap().fingerprint;
        r.cursor = encode_cursor(&fingerprint, &[json!(1e300), json!(1)]);
        assert_eq!(cursor_field(plan(&r, 5000)), "cursor");
        r.cursor = encode_cursor(&fingerprint, &[json!(0.5), json!(1)]);
        assert!(plan(&r, 5000).is_ok());
    }

    #[test]
    fn malformed_cursors_are_invalid_requests() {
        let mut r = request();
        let fingerprint = plan(&r, 5000).unwrap().fingerprint;
        let bad = [
            "!!!".to_owned(),
            "bm90IGpzb24".to_owned(),
            URL_SAFE_NO_PAD.encode(br#"{"v":1,"s":"x","a":[1,2]}"#),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":9,"s":"{fingerprint}","a":[1,2]}}"#)),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"s":"{fingerprint}","a":[1.5,2]}}"#)),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"s":"{fingerprint}","a":["x",2]}}"#)),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"s":"{fingerprint}","a":[1]}}"#)),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"s":"{fingerprint}","a":[1,2,3]}}"#)),
            URL_SAFE_NO_PAD.encode(format!(r#"{{"v":1,"s":"{fingerprint}","a":[1,2],"x":0}}"#)),
        ];
        for cursor in bad {
            r.cursor = Some(cursor.clone());
            assert_eq!(cursor_field(plan(&r, 5000)), "cursor", "{cursor}");
        }
        r.cursor = encode_cursor(&fingerprint, &[json!(1_700_000_000_000_i64), json!(5)]);
        assert_eq!(
            plan(&r, 5000).unwrap().body["search_after"],
            json!([1_700_000_000_000_i64, 5])
        );
    }
}
