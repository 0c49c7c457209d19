//! Backfill checkpoints, stored in the `_meta` of the physical index they describe (`PUT
//! <index>/_mapping`, shared by every supported engine): durable with the index's cluster state,
//! dropped with the index, and never shared by two indexes.

use std::collections::BTreeMap;

use athens_core::{BackfillCheckpoint, IndexError, IndexName};
use elasticsearch::indices::{IndicesGetMappingParts, IndicesPutMappingParts};
use serde::Deserialize;
use serde_json::json;

use crate::client::{Client, alias_holders, checked, read};
use crate::mapping;

/// The key under `_meta` that holds the checkpoint.
const META_KEY: &str = "athens_backfill";

#[derive(Debug, Deserialize)]
struct IndexMapping {
    #[serde(default)]
    mappings: Mappings,
}

#[derive(Debug, Default, Deserialize)]
struct Mappings {
    #[serde(default, rename = "_meta")]
    meta: BTreeMap<String, serde_json::Value>,
}

/// Replaces the checkpoint stored with `index`.
pub(crate) async fn save(
    client: &Client,
    index: &IndexName,
    checkpoint: &BackfillCheckpoint,
) -> Result<(), IndexError> {
    let sent = client
        .es
        .indices()
        .put_mapping(IndicesPutMappingParts::Index(&[&index.0]))
        .body(json!({ "_meta": { META_KEY: checkpoint } }))
        .send()
        .await;
    checked(sent).await?;
    Ok(())
}

/// Every physical index of the client's alias with the current mapping version, not behind the
/// alias, whose checkpoint is not finished, oldest first.
pub(crate) async fn unfinished(
    client: &Client,
) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
    let alias = client.alias();
    let pattern = mapping::index_pattern(alias);
    let sent = client
        .es
        .indices()
        .get_mapping(IndicesGetMappingParts::Index(&[&pattern]))
        .allow_no_indices(true)
        .filter_path(&["*.mappings._meta"])
        .send()
        .await;
    // With nothing to report the filter leaves an empty answer: `{}`.
    let found: BTreeMap<String, IndexMapping> = read(sent).await?;
    let live = alias_holders(client).await?;
    let mut names: Vec<String> = found.keys().cloned().collect();
    mapping::sort_oldest_first(alias, &mut names);
    let mut unfinished = Vec::new();
    for name in names {
        if live.contains(&name)
            || mapping::mapping_version(alias, &name) != Some(mapping::MAPPING_VERSION)
        {
            continue;
        }
        let Some(stored) = found
            .get(&name)
            .and_then(|index| index.mappings.meta.get(META_KEY))
        else {
            continue;
        };
        let checkpoint: BackfillCheckpoint =
            serde_json::from_value(stored.clone()).map_err(|error| {
                IndexError::invalid(format!("unreadable backfill checkpoint in {name}: {error}"))
                    .with_source(error)
            })?;
        if !checkpoint.is_finished() {
            unfinished.push((IndexName(name), checkpoint));
        }
    }
    Ok(unfinished)
}
