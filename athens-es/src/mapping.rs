//! The index: analysis, mapping and settings, and how physical indexes are named.
//!
//! - `slug`, `description` and the project `name` are analysed text: split on whitespace, punctuation,
//!   `-`, `_`, `.` and `/` (so `elasticsearch-sync` gives `elasticsearch`, `sync`), lowercased and
//!   ASCII-folded. `slug.keyword` keeps the exact value for exact matches and sorting.
//! - `name`, `slug` and `description` are copied into `text_all`, the field free-text queries match,
//!   so the words of a query may be spread over them. Each text field has a `prefix` sub-field
//!   indexed with edge n-grams of 2 to 20 characters, which a partial word such as `elasti` matches.
//! - `slug` and `name` are also copied into `joined`, which holds each whole value as one term with
//!   everything but letters and digits removed (`python3-requests` → `python3requests`), lowercased
//!   and ASCII-folded: a name typed with spaces for hyphens, without its hyphens or with a typo still
//!   matches as a whole (the term is cut at 256 characters, so a huge name can never make an immense
//!   term). Its `prefix` sub-field holds the starts of that term (2 to 32 characters), which the
//!   words typed so far match (`libnetfilter-c` → `libnetfilter-conntrack3`).
//! - Hashtag names are keywords under a normalizer that trims, strips leading `#` and lowercases, like
//!   [`athens_core::normalize_hashtag`] does to the query's hashtags.
//! - Creators carry a numeric `id` and a `name` that is both analysed (fuzzy search) and a keyword.
//! - `dynamic: strict`: a document with a field the mapping does not know is refused, never guessed.
//! - `description` keeps offsets in its postings, so highlighting never re-analyses long texts.
//! - `suggest.project`, `suggest.hashtag` and `suggest.user` are completion fields for as-you-type
//!   suggestions (see the `suggest` module for their inputs), analysed like the text fields.
//!
//! Changing any of this means a new [`MAPPING_VERSION`]: a backfill then builds an index with the
//! new mapping and swaps the alias to it.

use std::sync::atomic::{AtomicU32, Ordering};

use chrono::Utc;
use serde_json::{Value, json};

use crate::config::EsConfig;
use crate::fields;

/// Version of the mapping below, part of every physical index name.
pub const MAPPING_VERSION: u32 = 4;

/// The longest start of a whole slug or name indexed for as-you-type matching; longer input is cut
/// to it.
const JOINED_PREFIX_CHARS: u32 = 32;

/// How long the engine remembers the version of a deleted document, so that a replayed older write
/// cannot bring it back. Replays of the sync engine happen within seconds to minutes.
const GC_DELETES: &str = "1h";

/// A fresh physical index name for `alias`: `<alias>-v<MAPPING_VERSION>-<UTC time to the
/// microsecond>-<process and sequence>`, so two indexes created by one or several processes differ.
pub(crate) fn new_index_name(alias: &str) -> String {
    static SEQUENCE: AtomicU32 = AtomicU32::new(0);
    let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    let stamp = Utc::now().format("%Y%m%d-%H%M%S-%6f");
    format!(
        "{alias}-v{MAPPING_VERSION}-{stamp}-{:x}{sequence:x}",
        std::process::id()
    )
}

/// The pattern matching every physical index of `alias`, whatever its mapping version.
pub(crate) fn index_pattern(alias: &str) -> String {
    format!("{alias}-v*")
}

/// Whether `name` could be a physical index of `alias` (and nothing else: no wildcard, no list), so
/// that deleting it can never reach another application's index.
pub(crate) fn owns_index(alias: &str, name: &str) -> bool {
    name.strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix("-v"))
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(version, stamp)| {
            !version.is_empty()
                && version.bytes().all(|b| b.is_ascii_digit())
                && !stamp.is_empty()
                && stamp
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// The mapping version in `name` when it is a physical index of `alias`: `7` for
/// `<alias>-v7-<stamp>`.
pub(crate) fn mapping_version(alias: &str, name: &str) -> Option<u32> {
    if !owns_index(alias, name) {
        return None;
    }
    let (version, _) = name
        .strip_prefix(alias)?
        .strip_prefix("-v")?
        .split_once('-')?;
    version.parse().ok()
}

/// Sorts physical index names of `alias` oldest first: by mapping version as a number (`v10`
/// after `v9`, which a plain string sort gets wrong), then by creation stamp. Names that are not
/// Athens' come first.
pub(crate) fn sort_oldest_first(alias: &str, names: &mut [String]) {
    names.sort_by_cached_key(|name| (mapping_version(alias, name), name.clone()));
}

/// The body Athens creates a physical index with under `config`: settings for a bulk load (no
/// refresh, no replicas), the analysis chain and the mapping of [`MAPPING_VERSION`]. To read the
/// mapping, or to create the same index without Athens.
pub fn index_body(config: &EsConfig) -> Value {
    json!({
        "settings": {
            "index": {
                "number_of_shards": config.shards,
                "number_of_replicas": 0,
                "auto_expand_replicas": "false",
                "refresh_interval": "-1",
                "gc_deletes": GC_DELETES,
                "analysis": analysis(),
            }
        },
        "mappings": mapping(),
    })
}

/// Settings of an index that serves searches: refresh on, replicas back.
pub(crate) fn serving_settings(config: &EsConfig) -> Value {
    let replicas = match config.replicas {
        Some(replicas) => json!({
            "auto_expand_replicas": "false",
            "number_of_replicas": replicas,
        }),
        None => json!({ "auto_expand_replicas": "0-1" }),
    };
    let mut settings = replicas;
    settings["refresh_interval"] = json!(config.refresh_interval);
    json!({ "index": settings })
}

fn analysis() -> Value {
    json!({
        "char_filter": {
            "athens_word_breaks": {
                "type": "pattern_replace",
                "pattern": "[-_./]+",
                "replacement": " "
            },
            "athens_hashtag_trim": {
                "type": "pattern_replace",
                "pattern": "^\\s*#*\\s*|\\s+$",
                "replacement": ""
            },
            "athens_joined_strip": {
                "type": "pattern_replace",
                "pattern": "[^\\p{L}\\p{N}]+",
                "replacement": ""
            }
        },
        "filter": {
            "athens_edge": { "type": "edge_ngram", "min_gram": 2, "max_gram": 20 },
            "athens_joined_cap": { "type": "truncate", "length": 256 },
            "athens_joined_edge": { "type": "edge_ngram", "min_gram": 2, "max_gram": JOINED_PREFIX_CHARS },
            "athens_joined_start": { "type": "truncate", "length": JOINED_PREFIX_CHARS }
        },
        "normalizer": {
            "athens_hashtag": {
                "type": "custom",
                "char_filter": ["athens_hashtag_trim"],
                "filter": ["lowercase"]
            }
        },
        "analyzer": {
            "athens_text": {
                "type": "custom",
                "char_filter": ["athens_word_breaks"],
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding"]
            },
            "athens_prefix": {
                "type": "custom",
                "char_filter": ["athens_word_breaks"],
                "tokenizer": "standard",
                "filter": ["lowercase", "asciifolding", "athens_edge"]
            },
            "athens_joined": {
                "type": "custom",
                "char_filter": ["athens_joined_strip"],
                "tokenizer": "keyword",
                "filter": ["lowercase", "asciifolding", "athens_joined_cap"]
            },
            "athens_joined_prefix": {
                "type": "custom",
                "char_filter": ["athens_joined_strip"],
                "tokenizer": "keyword",
                "filter": ["lowercase", "asciifolding", "athens_joined_edge"]
            },
            "athens_joined_start": {
                "type": "custom",
                "char_filter": ["athens_joined_strip"],
                "tokenizer": "keyword",
                "filter": ["lowercase", "asciifolding", "athens_joined_start"]
            }
        }
    })
}

/// A partial-word sub-field: edge n-grams at index time, whole words at query time.
fn prefix() -> Value {
    json!({
        "type": "text",
        "analyzer": "athens_prefix",
        "search_analyzer": "athens_text",
    })
}

/// A completion field: whole names (up to 50 characters) matched from their start, case- and
/// accent-insensitively, words split as in the text fields.
fn completion() -> Value {
    json!({
        "type": "completion",
        "analyzer": "athens_text",
        "preserve_separators": true,
        "preserve_position_increments": true,
        "max_input_length": 50,
    })
}

fn mapping() -> Value {
    let keyword = json!({ "type": "keyword", "ignore_above": 512 });
    let date = json!({ "type": "date", "format": "strict_date_optional_time||epoch_millis" });
    let suggest: serde_json::Map<String, Value> = fields::SUGGEST_KINDS
        .iter()
        .map(|kind| ((*kind).to_owned(), completion()))
        .collect();
    json!({
        "dynamic": "strict",
        "properties": {
            fields::ID: { "type": "long" },
            fields::NAME: {
                "type": "text",
                "analyzer": "athens_text",
                "copy_to": [fields::TEXT_ALL, fields::JOINED],
                "fields": { fields::KEYWORD: keyword }
            },
            fields::SLUG: {
                "type": "text",
                "analyzer": "athens_text",
                "copy_to": [fields::TEXT_ALL, fields::JOINED],
                "fields": {
                    fields::KEYWORD: keyword,
                    fields::PREFIX: prefix()
                }
            },
            fields::DESCRIPTION: {
                "type": "text",
                "analyzer": "athens_text",
                "index_options": "offsets",
                "copy_to": [fields::TEXT_ALL],
                "fields": {
                    fields::PREFIX: {
                        "type": "text",
                        "analyzer": "athens_prefix",
                        "search_analyzer": "athens_text",
                        "index_options": "offsets"
                    }
                }
            },
            fields::TEXT_ALL: {
                "type": "text",
                "analyzer": "athens_text",
                "fields": { fields::PREFIX: prefix() }
            },
            // One term per whole slug or name: no positions or norms needed.
            fields::JOINED: {
                "type": "text",
                "analyzer": "athens_joined",
                "index_options": "docs",
                "norms": false,
                "fields": {
                    fields::PREFIX: {
                        "type": "text",
                        "analyzer": "athens_joined_prefix",
                        "search_analyzer": "athens_joined_start",
                        "index_options": "docs",
                        "norms": false
                    }
                }
            },
            fields::CREATED_AT: date,
            fields::UPDATED_AT: date,
            fields::HASHTAGS: {
                "properties": {
                    fields::ID: { "type": "long" },
                    fields::NAME: { "type": "keyword", "normalizer": "athens_hashtag" },
                    fields::CREATED_AT: date
                }
            },
            fields::SUGGEST: { "properties": suggest },
            fields::CREATORS: {
                "properties": {
                    fields::ID: { "type": "long" },
                    fields::NAME: {
                        "type": "text",
                        "analyzer": "athens_text",
                        "fields": { fields::KEYWORD: keyword }
                    },
                    fields::CREATED_AT: date
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_names_are_unique_and_owned_by_their_alias() {
        let first = new_index_name("athens-projects");
        let second = new_index_name("athens-projects");
        assert_ne!(first, second);
        assert!(first.starts_with(&format!("athens-projects-v{MAPPING_VERSION}-")));
        assert!(owns_index("athens-projects", &first));
        assert!(!owns_index("athens-projects", "athens-projects"));
        assert!(!owns_index("athens-projects", "athens-projects-v*"));
        assert!(!owns_index("athens-projects", "athens-projects-v1,other"));
        assert!(!owns_index("athens-projects", "other-v1-x"));
        assert!(!owns_index("athens", "athens-vfoo-v1-x"));
        assert_eq!(index_pattern("a"), "a-v*");
    }

    #[test]
    fn mapping_versions_order_as_numbers() {
        let alias = "athens-projects";
        assert_eq!(
            mapping_version(alias, "athens-projects-v10-20260101-000000-000000-1a"),
            Some(10)
        );
        assert_eq!(mapping_version(alias, "athens-projects-claim-ab"), None);
        let mut names = vec![
            "athens-projects-v10-20250101-000000-000000-1".to_owned(),
            "athens-projects-v9-20260101-000000-000000-1".to_owned(),
            "athens-projects-v10-20260101-000000-000000-1".to_owned(),
            "athens-projects-v2-20270101-000000-000000-1".to_owned(),
        ];
        sort_oldest_first(alias, &mut names);
        assert_eq!(
            names,
            [
                "athens-projects-v2-20270101-000000-000000-1",
                "athens-projects-v9-20260101-000000-000000-1",
                "athens-projects-v10-20250101-000000-000000-1",
                "athens-projects-v10-20260101-000000-000000-1",
            ]
        );
    }

    #[test]
    fn serving_settings_follow_the_configuration() {
        let auto = serving_settings(&EsConfig::default());
        assert_eq!(auto["index"]["auto_expand_replicas"], "0-1");
        assert_eq!(auto["index"]["refresh_interval"], "1s");
        let fixed = serving_settings(&EsConfig {
            replicas: Some(2),
            ..EsConfig::default()
        });
        assert_eq!(fixed["index"]["number_of_replicas"], 2);
        assert_eq!(fixed["index"]["auto_expand_replicas"], "false");
    }

    /// The mapping declaration at `path` (`hashtags.name`, `slug.prefix`): each step a property or
    /// a sub-field of the one before.
    fn declared<'a>(mapping: &'a Value, path: &str) -> Option<&'a Value> {
        path.split('.').try_fold(mapping, |at, name| {
            at.get("properties")
                .and_then(|properties| properties.get(name))
                .or_else(|| at.get("fields").and_then(|sub| sub.get(name)))
        })
    }

    #[test]
    fn the_mapping_declares_every_field_name() {
        let mapping = mapping();
        for path in fields::PATHS {
            assert!(declared(&mapping, path).is_some(), "{path} is not mapped");
        }
        for kind in fields::SUGGEST_KINDS {
            let path = fields::suggest_path(kind);
            assert_eq!(declared(&mapping, &path).unwrap()["type"], "completion");
        }
        assert!(declared(&mapping, "hashtags.slug").is_none());
        assert!(declared(&mapping, "name.prefix").is_none());
    }

    /// The analysis and mapping of every mapping version, as the binary that introduced it created
    /// them. A change to either fails this test until it comes with a new [`MAPPING_VERSION`] and a
    /// new file beside the old ones (never edit an old one).
    #[test]
    fn the_mapping_is_the_one_recorded_for_its_version() {
        let path = format!(
            "{}/tests/mappings/v{MAPPING_VERSION}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let recorded: Value = serde_json::from_str(
            &std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{path}: {error}")),
        )
        .unwrap();
        let body = index_body(&EsConfig::default());
        let current = json!({
            "analysis": body["settings"]["index"]["analysis"],
            "mappings": body["mappings"],
        });
        assert_eq!(
            current, recorded,
            "the analysis or mapping changed: bump MAPPING_VERSION and record the new one"
        );
    }

    #[test]
    fn the_mapping_is_strict_and_bulk_load_settings_are_off() {
        let body = index_body(&EsConfig::default());
        assert_eq!(body["mappings"]["dynamic"], "strict");
        assert_eq!(body["settings"]["index"]["refresh_interval"], "-1");
        assert_eq!(body["settings"]["index"]["number_of_replicas"], 0);
        assert_eq!(body["settings"]["index"]["gc_deletes"], GC_DELETES);
    }
}
