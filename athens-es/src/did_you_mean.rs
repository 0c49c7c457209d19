//! "Did you mean": when a text query matches nothing, a correction of its words from the terms the
//! index holds (the engine's `term` suggester over `text_all`).
//!
//! Only words the index does not hold are corrected (`suggest_mode: missing`), each to its closest
//! indexed term within two edits (the first letter may differ too, unlike in the search itself),
//! the more frequent first among equally close ones. The caller keeps a correction only if it
//! matches something.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::fields;

/// The name of the suggestion in the request and the answer.
const NAME: &str = "did_you_mean";

/// The body of a `_search` that only asks the engine for corrections of `words`.
pub(crate) fn body(words: &[&str], timeout_ms: u64) -> Value {
    json!({
        "size": 0,
        "timeout": format!("{timeout_ms}ms"),
        "suggest": { NAME: {
            "text": words.join(" "),
            "term": {
                "field": fields::TEXT_ALL,
                "suggest_mode": "missing",
                "sort": "score",
                "size": 1,
                "max_edits": 2,
                "prefix_length": 0,
                "min_word_length": 3,
            },
        } },
    })
}

#[derive(Debug, Deserialize)]
struct Entry {
    offset: usize,
    length: usize,
    options: Vec<Candidate>,
}

#[derive(Debug, Deserialize)]
struct Candidate {
    text: String,
}

/// `words` with each word the engine corrected replaced, in the `suggest` section of its answer
/// to [`body`]; `None` when it corrected none.
pub(crate) fn correction(words: &[&str], suggest: Option<&Value>) -> Option<String> {
    let entries: Vec<Entry> = serde_json::from_value(suggest?.get(NAME)?.clone()).ok()?;
    // The engine's offsets count UTF-16 code units of the text it was given.
    let text: Vec<u16> = words.join(" ").encode_utf16().collect();
    let mut corrected = Vec::with_capacity(text.len());
    let mut at = 0;
    let mut changed = false;
    for entry in entries {
        let Some(option) = entry.options.into_iter().next() else {
            continue;
        };
        let end = entry.offset.checked_add(entry.length)?;
        if entry.offset < at || end > text.len() {
            return None;
        }
        corrected.extend_from_slice(&text[at..entry.offset]);
        corrected.extend(option.text.encode_utf16());
        at = end;
        changed = true;
    }
    corrected.extend_from_slice(&text[at..]);
    changed
        .then(|| String::from_utf16(&corrected).ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(entries: Value) -> Value {
        json!({ NAME: entries })
    }

    #[test]
    fn asks_for_missing_words_only() {
        let body = body(&["elastcsaerch", "sync"], 500);
        assert_eq!(body["size"], 0);
        let term = &body["suggest"][NAME]["term"];
        assert_eq!(body["suggest"][NAME]["text"], "elastcsaerch sync");
        assert_eq!(term["field"], "text_all");
        assert_eq!(term["suggest_mode"], "missing");
        assert_eq!(term["prefix_length"], 0);
    }

    #[test]
    fn replaces_the_corrected_words_only() {
        let suggest = answer(json!([
            { "text": "elastcsaerch", "offset": 0, "length": 12,
              "options": [{ "text": "elasticsearch", "score": 0.8, "freq": 3 }] },
            { "text": "sync", "offset": 13, "length": 4, "options": [] },
        ]));
        assert_eq!(
            correction(&["elastcsaerch", "sync"], Some(&suggest)).as_deref(),
            Some("elasticsearch sync")
        );
    }

    #[test]
    fn counts_offsets_in_utf16_units() {
        let suggest = answer(json!([
            { "text": "🚀", "offset": 0, "length": 2, "options": [] },
            { "text": "posgres", "offset": 3, "length": 7,
              "options": [{ "text": "postgres" }] },
        ]));
        assert_eq!(
            correction(&["🚀", "posgres"], Some(&suggest)).as_deref(),
            Some("🚀 postgres")
        );
    }

    #[test]
    fn nothing_corrected_or_unreadable_is_none() {
        let none = answer(json!([{ "text": "sync", "offset": 0, "length": 4, "options": [] }]));
        assert_eq!(correction(&["sync"], Some(&none)), None);
        let outside = answer(json!([{ "offset": 3, "length": 9, "options": [{ "text": "x" }] }]));
        assert_eq!(correction(&["sync"], Some(&outside)), None);
        assert_eq!(correction(&["sync"], None), None);
        assert_eq!(correction(&["sync"], Some(&json!({ NAME: 3 }))), None);
    }
}
