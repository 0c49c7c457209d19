//! The project document is written out three times: the index mapping (athens-es), the document
//! athens-es stores, and the OpenAPI schema of a search hit. Each side keeps its own type; this test
//! ties them: they name the same fields, but for the differences stated below. A field added to
//! one side only fails it.

use std::collections::BTreeSet;

use athens_core::testing::sample_document;
use athens_core::{IndexOp, Version};
use athens_es::{EsConfig, bulk_body, index_body};
use serde_json::Value;

use crate::spec_json;

/// The subtree the API never serves: the completion inputs athens-es derives from the name, slug,
/// hashtags and creators when writing (`/v1/suggest` serves what they complete to).
const COMPLETIONS: &str = "suggest";

/// Stored fields a search hit leaves out: a project's hashtags are listed by id and name.
const NOT_SERVED: &[&str] = &["hashtags.created_at"];

/// Leaf paths of the mapping's properties, but for those only filled by `copy_to` (they are
/// index-only: never in a stored document).
fn mapped(
    properties: &Value,
    prefix: &str,
    copied: &BTreeSet<String>,
    paths: &mut BTreeSet<String>,
) {
    for (name, declaration) in properties.as_object().unwrap() {
        let path = format!("{prefix}{name}");
        if let Some(nested) = declaration.get("properties") {
            mapped(nested, &format!("{path}."), copied, paths);
        } else if !copied.contains(&path) {
            paths.insert(path);
        }
    }
}

/// Leaf paths of a JSON document; a list of objects counts as the union of its objects.
fn written(value: &Value, prefix: &str, paths: &mut BTreeSet<String>) {
    for (name, value) in value.as_object().unwrap() {
        let path = format!("{prefix}{name}");
        let objects: Vec<&Value> = match value {
            Value::Array(items) => items.iter().filter(|item| item.is_object()).collect(),
            Value::Object(_) => vec![value],
            _ => Vec::new(),
        };
        for object in &objects {
            written(object, &format!("{path}."), paths);
        }
        if objects.is_empty() {
            paths.insert(path);
        }
    }
}

/// Follows `$ref`, an `allOf` holding one, and a list's `items` to the schema they name.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        return resolve(spec, &spec["components"]["schemas"][name]);
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array)
        && let Some(part) = parts.iter().find(|part| part.get("$ref").is_some())
    {
        return resolve(spec, part);
    }
    if let Some(items) = schema.get("items") {
        return resolve(spec, items);
    }
    schema
}

/// Leaf paths of an OpenAPI object schema.
fn served(spec: &Value, schema: &Value, prefix: &str, paths: &mut BTreeSet<String>) {
    let schema = resolve(spec, schema);
    for (name, property) in schema["properties"].as_object().unwrap() {
        let path = format!("{prefix}{name}");
        let target = resolve(spec, property);
        if target.get("properties").is_some() {
            served(spec, target, &format!("{path}."), paths);
        } else {
            paths.insert(path);
        }
    }
}

fn without_completions(paths: &BTreeSet<String>) -> BTreeSet<String> {
    let subtree = format!("{COMPLETIONS}.");
    paths
        .iter()
        .filter(|path| **path != COMPLETIONS && !path.starts_with(&subtree))
        .cloned()
        .collect()
}

#[test]
fn mapping_stored_document_and_search_hit_name_the_same_fields() {
    let mapping = &index_body(&EsConfig::default())["mappings"];
    let copied: BTreeSet<String> = mapping["properties"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|declaration| declaration["copy_to"].as_array())
        .flatten()
        .map(|target| target.as_str().unwrap().to_owned())
        .collect();
    let mut in_mapping = BTreeSet::new();
    mapped(&mapping["properties"], "", &copied, &mut in_mapping);

    let upsert = IndexOp::Upsert {
        document: sample_document(42, "athens-search-sync"),
        version: Version(1),
    };
    let body = String::from_utf8(bulk_body(&[upsert]).unwrap()).unwrap();
    let source: Value = serde_json::from_str(body.lines().nth(1).unwrap()).unwrap();
    let mut in_document = BTreeSet::new();
    written(&source, "", &mut in_document);

    let spec: Value = serde_json::from_str(&spec_json()).unwrap();
    let hit = &spec["components"]["schemas"]["ProjectHit"]["properties"]["project"];
    let mut in_hit = BTreeSet::new();
    served(&spec, hit, "", &mut in_hit);

    assert!(in_mapping.iter().any(|path| path.starts_with(COMPLETIONS)));
    assert_eq!(
        without_completions(&in_document),
        without_completions(&in_mapping),
        "the stored document and the mapping differ"
    );
    let mut expected = without_completions(&in_mapping);
    for field in NOT_SERVED {
        assert!(expected.remove(*field), "{field} is no longer stored");
    }
    assert_eq!(
        in_hit, expected,
        "a search hit and the stored document differ"
    );
}
