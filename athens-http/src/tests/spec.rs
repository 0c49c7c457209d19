//! The committed `docs/openapi.json` must equal what the code generates.
//!
//! Regenerate it with `ATHENS_UPDATE_SPEC=1 cargo test -p athens-http --lib spec`.

use std::path::PathBuf;

use athens_core::{DEFAULT_PAGE_SIZE, MAX_CURSOR_BYTES, MAX_PAGE_SIZE, MAX_TEXT_CHARS};

use crate::spec_json;

/// Set to `1` to rewrite `docs/openapi.json` from the code instead of comparing.
const UPDATE_VAR: &str = "ATHENS_UPDATE_SPEC";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

#[test]
fn committed_spec_matches_the_code() {
    let generated = spec_json();
    let path = committed_path();
    if std::env::var(UPDATE_VAR).as_deref() == Ok("1") {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; regenerate it with {UPDATE_VAR}=1",
            path.display()
        )
    });
    let generated: serde_json::Value = serde_json::from_str(&generated).unwrap();
    let committed: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert!(
        generated == committed,
        "docs/openapi.json is out of date: regenerate it with \
         `{UPDATE_VAR}=1 cargo test -p athens-http --lib spec` and commit it"
    );
}

/// The limits the spec advertises (poem-openapi validators need literals) are the core's.
#[test]
fn spec_limits_are_the_core_limits() {
    let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    let params = spec["paths"]["/v1/projects/search"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .clone();
    let schema = |name: &str| {
        params
            .iter()
            .find(|param| param["name"] == name)
            .map(|param| param["schema"].clone())
            .unwrap()
    };
    assert_eq!(
        schema("size")["maximum"].as_f64(),
        Some(MAX_PAGE_SIZE as f64)
    );
    assert_eq!(schema("size")["default"], DEFAULT_PAGE_SIZE as u64);
    assert_eq!(schema("q")["maxLength"], MAX_TEXT_CHARS as u64);
    assert_eq!(schema("user_name")["maxLength"], MAX_TEXT_CHARS as u64);
    assert_eq!(schema("cursor")["maxLength"], MAX_CURSOR_BYTES as u64);
}

/// Every parameter has an example or a default (the cursor is opaque: it has neither), and every
/// schema an example.
#[test]
fn parameters_and_schemas_have_examples() {
    let spec: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for param in operation["parameters"].as_array().into_iter().flatten() {
                let schema = &param["schema"];
                let documented = schema.get("example").is_some() || schema.get("default").is_some();
                assert!(
                    documented || param["name"] == "cursor",
                    "{method} {path}: parameter {} has no example",
                    param["name"]
                );
            }
        }
    }
    for (name, schema) in spec["components"]["schemas"].as_object().unwrap() {
        if schema["type"] == "object" {
            assert!(
                schema.get("example").is_some(),
                "schema {name} has no example"
            );
        }
    }
}
