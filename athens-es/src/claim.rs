//! Writer claims: how the engine fences a writer that lost its lease out of the alias.
//!
//! A claim is a tiny empty index, `<alias>-claim-<writer>`. Claiming deletes every other writer's
//! claim index and creates this writer's, in one atomic `_aliases` request (`remove_index`); a
//! publish names the writer's claim index in the same atomic request that moves the alias, so it
//! fails with `index_not_found` once the claim was revoked. An index is the token because an
//! `_aliases` action on a missing index fails on every supported engine, while removing a missing
//! alias succeeds silently on Elasticsearch 7.10 (`must_exist` came in 7.11).

use athens_core::{ErrorChain, IndexError, IndexName, WriterId};
use elasticsearch::indices::{IndicesCreateParts, IndicesExistsParts};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::client::{Client, alias_holders, checked, indexes_matching, update_aliases};
use crate::error::Failure;

/// How often a claim is attempted when another claim vanishes under it.
const CLAIM_ATTEMPTS: usize = 3;

/// The claim index of `writer` for `alias`.
pub(crate) fn claim_index(alias: &str, writer: &WriterId) -> String {
    format!("{alias}-claim-{writer}")
}

/// The alias every claim index carries: the action a publish uses to require its claim.
fn claims_alias(alias: &str) -> String {
    format!("{alias}-claims")
}

/// Every claim index of `alias`, sorted.
pub(crate) async fn claim_indexes(client: &Client) -> Result<Vec<String>, Failure> {
    indexes_matching(client, &format!("{}-claim-*", client.alias())).await
}

/// Creates the claim index of `writer` unless it exists.
async fn create_claim(client: &Client, name: &str) -> Result<(), Failure> {
    let sent = client
        .es
        .indices()
        .create(IndicesCreateParts::Index(name))
        .body(json!({
            "settings": { "index": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "auto_expand_replicas": "0-1",
            } }
        }))
        .send()
        .await;
    match checked(sent).await {
        Ok(_) => Ok(()),
        Err(Failure::Status {
            kind: Some(kind), ..
        }) if kind == "resource_already_exists_exception" => Ok(()),
        Err(failure) => Err(failure),
    }
}

/// Whether the index `name` exists.
async fn exists(client: &Client, name: &str) -> Result<bool, Failure> {
    let sent = client
        .es
        .indices()
        .exists(IndicesExistsParts::Index(&[name]))
        .send()
        .await;
    match checked(sent).await {
        Ok(_) => Ok(true),
        Err(failure) if failure.status() == Some(404) => Ok(false),
        Err(failure) => Err(failure),
    }
}

/// Revokes every other writer's claim and claims for `writer`; returns the live index read after.
pub(crate) async fn claim(
    client: &Client,
    writer: &WriterId,
) -> Result<Option<IndexName>, IndexError> {
    let alias = client.alias();
    let mine = claim_index(alias, writer);
    let mut attempt = 0;
    loop {
        attempt += 1;
        create_claim(client, &mine).await?;
        let others: Vec<String> = claim_indexes(client)
            .await?
            .into_iter()
            .filter(|name| *name != mine)
            .collect();
        let mut actions: Vec<Value> = others
            .iter()
            .map(|other| json!({ "remove_index": { "index": other } }))
            .collect();
        actions.push(json!({ "add": { "index": mine, "alias": claims_alias(alias) } }));
        match update_aliases(client, &actions).await {
            Ok(_) => {
                if !others.is_empty() {
                    info!(alias, writer = %writer, revoked = ?others, "index claimed, earlier writers fenced");
                }
                break;
            }
            // Another claim index vanished between the listing and the request (or ours did).
            Err(failure) if failure.status() == Some(404) && attempt < CLAIM_ATTEMPTS => {
                warn!(alias, error = %ErrorChain(&failure), "claim raced with another, claiming again");
            }
            Err(failure) => return Err(failure.into()),
        }
    }
    let mut holders = alias_holders(client).await?;
    Ok(holders.pop().map(IndexName))
}

/// Points the alias at `index` in one atomic request that also requires `writer`'s claim.
pub(crate) async fn publish_as(
    client: &Client,
    index: &IndexName,
    writer: &WriterId,
) -> Result<Option<IndexName>, IndexError> {
    let alias = client.alias();
    let mine = claim_index(alias, writer);
    let holders = alias_holders(client).await?;
    let mut actions = vec![json!({ "add": { "index": mine, "alias": claims_alias(alias) } })];
    actions.extend(
        holders
            .iter()
            .filter(|holder| **holder != index.0)
            .map(|holder| json!({ "remove": { "index": holder, "alias": alias } })),
    );
    actions.push(json!({ "add": { "index": index.0, "alias": alias } }));
    match update_aliases(client, &actions).await {
        Ok(_) => {}
        Err(failure) if failure.status() == Some(404) && !exists(client, &mine).await? => {
            warn!(alias, writer = %writer, index = %index, "publish refused: another writer claimed the index");
            return Err(IndexError::fenced(format!(
                "claim {mine} was revoked by another writer"
            )));
        }
        Err(failure) => return Err(failure.into()),
    }
    let mut previous: Vec<String> = holders
        .into_iter()
        .filter(|holder| *holder != index.0)
        .collect();
    let previous = previous.pop().map(IndexName);
    info!(alias, index = %index, writer = %writer, previous = ?previous.as_ref().map(|p| &p.0), "alias published");
    Ok(previous)
}
