//! The document as stored in the index. It is the adapter's own type, so renaming a field of
//! [`ProjectDocument`] cannot silently change the index: the conversion below must be edited, and
//! with it the mapping.

use std::borrow::Cow;

use athens_core::{Creator, Hashtag, HashtagId, ProjectDocument, ProjectId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::suggest::SuggestInputs;

/// A project document as indexed. Strings borrow from the [`ProjectDocument`] when writing and are
/// owned when reading. Timestamps are RFC 3339 with as many fractional digits as needed, so
/// microseconds survive the round trip (the engine indexes milliseconds, `_source` keeps the text).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct IndexedProject<'a> {
    id: i64,
    name: Cow<'a, str>,
    slug: Cow<'a, str>,
    description: Cow<'a, str>,
    created_at: DateTime<Utc>,
    /// Absent from documents written under mapping version 3 or older: they read it as
    /// `created_at`, so a search served from such an index during a rebuild still answers.
    #[serde(default)]
    updated_at: Option<DateTime<Utc>>,
    hashtags: Vec<IndexedEntity<'a>>,
    creators: Vec<IndexedEntity<'a>>,
    /// Completion inputs, derived from the fields above when writing; never read back.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    suggest: Option<SuggestInputs>,
}

/// A hashtag or a creator as the index holds it: both are nested as an id, a name and a creation
/// time.
#[derive(Debug, Serialize, Deserialize)]
struct IndexedEntity<'a> {
    id: i64,
    name: Cow<'a, str>,
    created_at: DateTime<Utc>,
}

impl<'a> IndexedEntity<'a> {
    fn of(id: i64, name: &'a str, created_at: DateTime<Utc>) -> Self {
        IndexedEntity {
            id,
            name: Cow::Borrowed(name),
            created_at,
        }
    }

    fn into_hashtag(self) -> Hashtag {
        Hashtag {
            id: HashtagId(self.id),
            name: self.name.into_owned(),
            created_at: self.created_at,
        }
    }

    fn into_creator(self) -> Creator {
        Creator {
            id: UserId(self.id),
            name: self.name.into_owned(),
            created_at: self.created_at,
        }
    }
}

impl<'a> From<&'a ProjectDocument> for IndexedProject<'a> {
    fn from(document: &'a ProjectDocument) -> Self {
        IndexedProject {
            id: document.id.0,
            name: Cow::Borrowed(&document.name),
            slug: Cow::Borrowed(&document.slug),
            description: Cow::Borrowed(&document.description),
            created_at: document.created_at,
            updated_at: Some(document.updated_at),
            hashtags: document
                .hashtags
                .iter()
                .map(|hashtag| IndexedEntity::of(hashtag.id.0, &hashtag.name, hashtag.created_at))
                .collect(),
            creators: document
                .creators
                .iter()
                .map(|creator| IndexedEntity::of(creator.id.0, &creator.name, creator.created_at))
                .collect(),
            suggest: Some(SuggestInputs::of(document)),
        }
    }
}

impl From<IndexedProject<'_>> for ProjectDocument {
    fn from(indexed: IndexedProject<'_>) -> Self {
        ProjectDocument {
            id: ProjectId(indexed.id),
            name: indexed.name.into_owned(),
            slug: indexed.slug.into_owned(),
            description: indexed.description.into_owned(),
            created_at: indexed.created_at,
            updated_at: indexed.updated_at.unwrap_or(indexed.created_at),
            hashtags: indexed
                .hashtags
                .into_iter()
                .map(IndexedEntity::into_hashtag)
                .collect(),
            creators: indexed
                .creators
                .into_iter()
                .map(IndexedEntity::into_creator)
                .collect(),
        }
    }
}

/// A stored `_source` as the engine returns it.
pub(crate) type StoredProject = IndexedProject<'static>;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use athens_core::testing::sample_document;
    use serde_json::Value;

    use super::*;
    use crate::config::EsConfig;
    use crate::fields;
    use crate::mapping::index_body;

    fn round_trip(document: &ProjectDocument) -> ProjectDocument {
        let json = serde_json::to_string(&IndexedProject::from(document)).unwrap();
        let stored: StoredProject = serde_json::from_str(&json).unwrap();
        stored.into()
    }

    #[test]
    fn round_trips_exactly_with_microseconds_and_unicode() {
        let mut document = sample_document(42, "elasticsearch-sync");
        document.description = "Ünïcödé \"quoted\" \\ back\nslash 🚀 日本語".into();
        assert_eq!(round_trip(&document), document);
        let json = serde_json::to_value(IndexedProject::from(&document)).unwrap();
        assert_eq!(json["created_at"], "2023-11-14T22:13:20.123498Z");
        assert_eq!(json["updated_at"], "2023-11-14T22:15:00.654363Z");
        assert_eq!(json["hashtags"][0]["name"], "Rust");
        assert_eq!(json["creators"][0]["id"], 7);
        assert_eq!(json["suggest"]["hashtag"][0]["input"], "rust");
    }

    #[test]
    fn round_trips_empty_lists_and_nanoseconds() {
        let mut document = sample_document(1, "x");
        document.hashtags.clear();
        document.creators.clear();
        document.description.clear();
        document.created_at = DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap();
        assert_eq!(round_trip(&document), document);
    }

    /// The dotted paths of the fields `written` holds, nested objects (or lists of objects) followed
    /// where the mapping declares `properties`, everything else a leaf.
    fn written_paths(
        properties: &Value,
        written: &Value,
        prefix: &str,
        paths: &mut BTreeSet<String>,
    ) {
        for (name, value) in written.as_object().unwrap() {
            let path = format!("{prefix}{name}");
            match properties[name].get("properties") {
                Some(nested) => {
                    let objects = value
                        .as_array()
                        .map_or(vec![value], |list| list.iter().collect());
                    assert!(
                        !objects.is_empty(),
                        "{path}: give the sample a value to check"
                    );
                    for object in objects {
                        written_paths(nested, object, &format!("{path}."), paths);
                    }
                }
                None => {
                    paths.insert(path);
                }
            }
        }
    }

    /// The dotted paths of the fields the mapping declares, but for those only filled by
    /// `copy_to` (index-only: never in `_source`).
    fn mapped_paths(
        properties: &Value,
        copied: &BTreeSet<String>,
        prefix: &str,
        paths: &mut BTreeSet<String>,
    ) {
        for (name, declaration) in properties.as_object().unwrap() {
            let path = format!("{prefix}{name}");
            match declaration.get("properties") {
                Some(nested) => mapped_paths(nested, copied, &format!("{path}."), paths),
                None if copied.contains(&path) => {}
                None => {
                    paths.insert(path);
                }
            }
        }
    }

    #[test]
    fn writes_exactly_the_fields_the_mapping_declares() {
        let mapping = index_body(&EsConfig::default())["mappings"].take();
        let properties = &mapping["properties"];
        let copied: BTreeSet<String> = properties
            .as_object()
            .unwrap()
            .values()
            .filter_map(|declaration| declaration.get("copy_to"))
            .flat_map(|targets| targets.as_array().unwrap())
            .map(|target| target.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            copied,
            BTreeSet::from([fields::TEXT_ALL.to_owned(), fields::JOINED.to_owned()])
        );
        let mut mapped = BTreeSet::new();
        mapped_paths(properties, &copied, "", &mut mapped);

        let written =
            serde_json::to_value(IndexedProject::from(&sample_document(42, "x"))).unwrap();
        let mut stored = BTreeSet::new();
        written_paths(properties, &written, "", &mut stored);
        assert_eq!(stored, mapped);
        assert!(mapped.contains(fields::HASHTAG_NAME) && mapped.contains(fields::CREATOR_ID));
        for kind in fields::SUGGEST_KINDS {
            assert!(mapped.contains(&fields::suggest_path(kind)), "{kind}");
        }
    }

    #[test]
    fn reads_escaped_strings() {
        let stored: StoredProject = serde_json::from_str(
            r#"{"id":3,"name":"a\u00e9","slug":"s","description":"","created_at":"2020-01-01T00:00:00Z","hashtags":[],"creators":[]}"#,
        )
        .unwrap();
        let document = ProjectDocument::from(stored);
        assert_eq!(document.name, "aé");
        assert_eq!(
            document.updated_at, document.created_at,
            "a document stored before `updated_at` existed"
        );
    }
}
