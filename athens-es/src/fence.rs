//! Writes fenced to indexes that exist: the engine must never create an Athens index by itself.
//!
//! A bulk request to a missing index creates it (automatic index creation), even one of deletes
//! alone, which carry external versions. A writer that still holds the name of an index a reindex
//! dropped would re-create it and acknowledge changes nobody will ever search (issue 12, finding
//! 1). So every physical index carries a write alias, `<alias>-writes-<rest of its name>`, created
//! with it; bulk requests go to that alias with `require_alias=true`, and end with one update of a
//! document that never exists. `require_alias` makes the engine refuse index, create and update
//! actions whose target is not an alias, and refuse to create the target for the whole request,
//! but it does not apply to deletes: the trailing update is what fences a request of deletes alone.
//! Where the alias exists the update fails harmlessly (`document_missing_exception`). Checked on
//! Elasticsearch 7.10.2, OpenSearch 2.19.1 and 3.8.0 (`require_alias` exists since Elasticsearch
//! 7.10 and in every OpenSearch).
//!
//! An index built by a release before the write alias existed gets it on its first write: adding an
//! alias to a missing index fails, so this never creates an index either.

use athens_core::IndexName;
use serde_json::json;
use tracing::info;

use crate::client::{Client, update_aliases};
use crate::error::Failure;

/// The id of the document the trailing update names; project ids are numbers, so it never exists.
const FENCE_ID: &str = "athens-fence";

/// The write alias of the physical index `index` of `alias`: `<alias>-writes-v3-…` for
/// `<alias>-v3-…`. Outside the pattern of physical indexes (`<alias>-v*`).
pub(crate) fn write_alias(alias: &str, index: &str) -> String {
    match index
        .strip_prefix(alias)
        .and_then(|rest| rest.strip_prefix('-'))
    {
        Some(rest) => format!("{alias}-writes-{rest}"),
        None => format!("{index}-writes"),
    }
}

/// Appends the trailing update to a bulk body (see the module documentation).
pub(crate) fn append(out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"update\":{\"_id\":\"");
    out.extend_from_slice(FENCE_ID.as_bytes());
    out.extend_from_slice(b"\"}}\n{\"doc\":{}}\n");
}

/// Gives `index` its write alias; fails with a 404 when the index does not exist.
pub(crate) async fn add_write_alias(client: &Client, index: &IndexName) -> Result<(), Failure> {
    let alias = write_alias(client.alias(), &index.0);
    update_aliases(
        client,
        &[json!({ "add": { "index": index.0, "alias": alias } })],
    )
    .await?;
    info!(index = %index, alias, "write alias added to an index built without one");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_aliases_stay_outside_the_pattern_of_physical_indexes() {
        let alias = write_alias("projects", "projects-v3-20261129-112233-000001-1a0");
        assert_eq!(alias, "projects-writes-v3-20261129-112233-000001-1a0");
        assert!(!alias.starts_with("projects-v"));
        assert_eq!(write_alias("projects", "elsewhere"), "elsewhere-writes");
    }

    #[test]
    fn the_trailing_update_is_one_ndjson_action_and_its_document() {
        let mut out = Vec::new();
        append(&mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        assert_eq!(lines[0]["update"]["_id"], FENCE_ID);
        assert_eq!(lines[1], json!({ "doc": {} }));
        assert!(text.ends_with('\n'));
    }
}
