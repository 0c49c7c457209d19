//! As-you-type suggestions: the completion inputs each project document carries, and the
//! completion suggesters that read them.
//!
//! Each document holds three `completion` fields under `suggest`: `project` (its name and slug),
//! `hashtag` (its normalized hashtags) and `user` (its creators' names). A name of several words is
//! also entered once per word it can be typed from, its words rotated (`John Smith` → `Smith
//! John`), so that `smi` finds it; the engine drops repeated inputs across documents
//! (`skip_duplicates`), so a hashtag used by ten thousand projects is suggested once.
//!
//! Weights order the completions. Project names: shorter first (`python` before
//! `python3-requests`). Hashtags and user names repeat across documents, and the engine skips
//! duplicates one by one in weight order: with one weight for all, finding five distinct hashtags
//! under `r` meant stepping over every project tagged `role::program` first (tens of milliseconds on
//! the Debian corpus). Each document therefore weighs its hashtags and users by a hash of its id
//! and the name, spread over 1 to [`SPREAD`]: the copies of a name are spread over the weights, the
//! search meets distinct names early, and a name used by many projects most likely has a copy near
//! the top, so popular ones come first. Completion structures are held in memory by the engine.

use std::collections::BTreeSet;

use athens_core::{
    ProjectDocument, ProjectId, ProjectSuggestion, SearchError, SuggestRequest, Suggestions,
    UserId, UserSuggestion, normalize_hashtag,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::fields::{self, SUGGEST_KINDS};

/// Word starts a name is entered from, at most (the first word's included).
const MAX_ROTATIONS: usize = 4;

/// The range of the weights of hashtags and user names.
const SPREAD: u64 = 10_000;

/// The completion inputs of one document.
#[derive(Debug, Default, Serialize)]
pub(crate) struct SuggestInputs {
    project: Vec<Input>,
    hashtag: Vec<Input>,
    user: Vec<Input>,
}

/// One completion input.
#[derive(Debug, PartialEq, Eq, Serialize)]
struct Input {
    input: String,
    weight: u32,
}

impl SuggestInputs {
    /// The inputs of `document`.
    pub(crate) fn of(document: &ProjectDocument) -> SuggestInputs {
        SuggestInputs {
            project: inputs(
                [document.name.as_str(), document.slug.as_str()],
                |input, _| length_weight(input),
            ),
            hashtag: inputs(
                document
                    .hashtags
                    .iter()
                    .map(|hashtag| normalize_hashtag(&hashtag.name))
                    .collect::<Vec<_>>()
                    .iter()
                    .map(String::as_str),
                |_, name| spread_weight(document.id.0, name),
            ),
            user: inputs(
                document
                    .creators
                    .iter()
                    .map(|creator| creator.name.as_str()),
                |_, name| spread_weight(document.id.0, name),
            ),
        }
    }
}

/// The inputs of `names`, without repeats: each name's [`rotations`], weighed by
/// `weight(input, name)`, a rotation half as much as the name itself.
fn inputs<'a>(
    names: impl IntoIterator<Item = &'a str>,
    weight: impl Fn(&str, &str) -> u32,
) -> Vec<Input> {
    let mut seen = BTreeSet::new();
    let mut inputs = Vec::new();
    for name in names {
        for (position, input) in rotations(name).into_iter().enumerate() {
            if seen.insert(input.clone()) {
                let weight = weight(&input, name) / if position == 0 { 1 } else { 2 };
                inputs.push(Input {
                    input,
                    weight: weight.max(1),
                });
            }
        }
    }
    inputs
}

/// Shorter names first: 1 to 100.
fn length_weight(input: &str) -> u32 {
    let chars = u32::try_from(input.chars().count()).unwrap_or(u32::MAX);
    100u32.saturating_sub(chars).max(1)
}

/// 1 to [`SPREAD`], from a stable hash (64-bit FNV-1a) of the project id and the name.
fn spread_weight(project: i64, name: &str) -> u32 {
    let hash = project
        .to_le_bytes()
        .iter()
        .chain(name.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
        });
    u32::try_from(hash % SPREAD + 1).unwrap_or(1)
}

/// What `name` can be typed as: the name itself (without control characters, which the engine
/// reserves), then its words from the second, third ... on, followed by the words before.
fn rotations(name: &str) -> Vec<String> {
    let clean: String = name.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim();
    if clean.is_empty() {
        return Vec::new();
    }
    let words: Vec<&str> = clean
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .collect();
    let mut rotations = vec![clean.to_owned()];
    for start in 1..words.len().min(MAX_ROTATIONS) {
        let rotated: Vec<&str> = words[start..]
            .iter()
            .chain(&words[..start])
            .copied()
            .collect();
        rotations.push(rotated.join(" "));
    }
    rotations
}

/// The body of a `_search` that only runs the three completion suggesters for `request`.
pub(crate) fn body(request: &SuggestRequest, timeout_ms: u64) -> Value {
    // Rotations and a name's several forms may complete to one entity: ask for some more.
    let size = request.size * 2;
    let mut suggest = serde_json::Map::new();
    for kind in SUGGEST_KINDS {
        suggest.insert(
            kind.into(),
            json!({
                "prefix": request.prefix.trim(),
                "completion": {
                    "field": fields::suggest_path(kind),
                    "size": size,
                    "skip_duplicates": true,
                    "fuzzy": { "fuzziness": "AUTO:4,8", "prefix_length": 1 },
                },
            }),
        );
    }
    json!({
        "size": 0,
        "timeout": format!("{timeout_ms}ms"),
        "_source": [
            fields::ID,
            fields::NAME,
            fields::SLUG,
            fields::HASHTAG_NAME,
            fields::CREATOR_ID,
            fields::CREATOR_NAME,
        ],
        "suggest": suggest,
    })
}

#[derive(Debug, Deserialize)]
struct Entry {
    options: Vec<Completion>,
}

#[derive(Debug, Deserialize)]
struct Completion {
    text: String,
    #[serde(rename = "_source")]
    source: Source,
}

#[derive(Debug, Deserialize)]
struct Source {
    id: i64,
    name: String,
    slug: String,
    #[serde(default)]
    hashtags: Vec<Named>,
    #[serde(default)]
    creators: Vec<Creator>,
}

#[derive(Debug, Deserialize)]
struct Named {
    name: String,
}

#[derive(Debug, Deserialize)]
struct Creator {
    id: i64,
    name: String,
}

/// The suggestions in the `suggest` section of the engine's answer to [`body`]: each completion
/// traced back to the project, hashtag or user it was entered for, best first, `request.size` of
/// each kind at most.
pub(crate) fn read(
    request: &SuggestRequest,
    suggest: Option<Value>,
) -> Result<Suggestions, SearchError> {
    let mut suggest = suggest.unwrap_or_default();
    let mut options = |kind: &str| -> Result<Vec<Completion>, SearchError> {
        let entries: Vec<Entry> = match suggest.get_mut(kind).map(Value::take) {
            Some(entries) => serde_json::from_value(entries).map_err(|error| {
                SearchError::internal(format!("unreadable {kind} suggestions: {error}"))
                    .with_source(error)
            })?,
            None => Vec::new(),
        };
        Ok(entries
            .into_iter()
            .flat_map(|entry| entry.options)
            .collect())
    };
    let mut suggestions = Suggestions::default();
    let [project, hashtag, user] = SUGGEST_KINDS;

    let mut projects = BTreeSet::new();
    for option in options(project)? {
        if projects.insert(option.source.id) {
            suggestions.projects.push(ProjectSuggestion {
                id: ProjectId(option.source.id),
                name: option.source.name,
                slug: option.source.slug,
            });
        }
    }
    for option in options(hashtag)? {
        let hashtag = option
            .source
            .hashtags
            .iter()
            .map(|hashtag| normalize_hashtag(&hashtag.name))
            .find(|name| rotations(name).contains(&option.text));
        if let Some(hashtag) = hashtag
            && !suggestions.hashtags.contains(&hashtag)
        {
            suggestions.hashtags.push(hashtag);
        }
    }
    let mut users = BTreeSet::new();
    for option in options(user)? {
        let creator = option
            .source
            .creators
            .into_iter()
            .find(|creator| rotations(&creator.name).contains(&option.text));
        if let Some(creator) = creator
            && users.insert(creator.id)
        {
            suggestions.users.push(UserSuggestion {
                id: UserId(creator.id),
                name: creator.name,
            });
        }
    }
    suggestions.projects.truncate(request.size);
    suggestions.hashtags.truncate(request.size);
    suggestions.users.truncate(request.size);
    Ok(suggestions)
}

#[cfg(test)]
mod tests {
    use athens_core::testing::sample_document;

    use super::*;

    #[test]
    fn names_are_entered_from_each_word() {
        assert_eq!(rotations("John Smith"), ["John Smith", "Smith John"]);
        assert_eq!(
            rotations("python3-requests"),
            ["python3-requests", "requests python3"]
        );
        assert_eq!(rotations(" rust "), ["rust"]);
        assert_eq!(rotations("a\u{1f}b c"), ["ab c", "c ab"]);
        assert!(rotations(" \u{0} ").is_empty());
        assert_eq!(rotations("a b c d e f").len(), MAX_ROTATIONS);
    }

    #[test]
    fn a_document_enters_its_names_hashtags_and_creators() {
        let document = sample_document(42, "elasticsearch-sync");
        let inputs = SuggestInputs::of(&document);
        let project: Vec<&str> = inputs.project.iter().map(|i| i.input.as_str()).collect();
        assert!(project.contains(&"elasticsearch-sync"));
        assert!(project.contains(&"sync elasticsearch"));
        assert!(inputs.hashtag.iter().any(|i| i.input == "rust"));
        assert!(!inputs.user.is_empty());
        let first = &inputs.project[0];
        let rotation = inputs
            .project
            .iter()
            .find(|i| i.input == "sync elasticsearch")
            .unwrap();
        assert!(first.weight > rotation.weight);
    }

    #[test]
    fn shorter_project_names_weigh_more() {
        assert!(length_weight("python") > length_weight("python3-requests"));
        assert_eq!(length_weight(&"x".repeat(500)), 1);
    }

    #[test]
    fn copies_of_a_hashtag_spread_over_the_weights() {
        let weights: BTreeSet<u32> = (1..=200).map(|id| spread_weight(id, "rust")).collect();
        assert!(weights.len() > 190, "{}", weights.len());
        assert!(weights.iter().all(|w| (1..=10_000).contains(w)));
        assert_eq!(spread_weight(7, "rust"), spread_weight(7, "rust"));
        assert_ne!(spread_weight(7, "rust"), spread_weight(7, "search"));
    }

    #[test]
    fn the_body_runs_three_completions() {
        let request = SuggestRequest {
            prefix: " pyth ".into(),
            size: 5,
        };
        let body = body(&request, 500);
        assert_eq!(body["size"], 0);
        for kind in SUGGEST_KINDS {
            let suggester = &body["suggest"][kind];
            assert_eq!(suggester["prefix"], "pyth");
            assert_eq!(suggester["completion"]["field"], format!("suggest.{kind}"));
            assert_eq!(suggester["completion"]["skip_duplicates"], true);
            assert_eq!(suggester["completion"]["size"], 10);
        }
    }

    #[test]
    fn completions_trace_back_to_their_entity() {
        let source = json!({
            "id": 4, "name": "Athens", "slug": "athens-sync",
            "hashtags": [{ "name": "#Rust" }, { "name": "machine-learning" }],
            "creators": [{ "id": 7, "name": "John Smith" }, { "id": 8, "name": "Jane Doe" }],
        });
        let answer = json!({
            "project": [{ "options": [
                { "text": "Athens", "_source": source },
                { "text": "sync athens", "_source": source },
            ] }],
            "hashtag": [{ "options": [
                { "text": "learning machine", "_source": source },
                { "text": "rust", "_source": source },
            ] }],
            "user": [{ "options": [{ "text": "Doe Jane", "_source": source }] }],
        });
        let request = SuggestRequest {
            prefix: "x".into(),
            size: 5,
        };
        let suggestions = read(&request, Some(answer)).unwrap();
        assert_eq!(suggestions.projects.len(), 1);
        assert_eq!(suggestions.projects[0].slug, "athens-sync");
        assert_eq!(suggestions.hashtags, ["machine-learning", "rust"]);
        assert_eq!(suggestions.users.len(), 1);
        assert_eq!(suggestions.users[0].id, UserId(8));
        assert_eq!(read(&request, None).unwrap(), Suggestions::default());
    }
}
