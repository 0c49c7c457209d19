//! [`EsIndex`]: the [`SearchIndex`] port over Elasticsearch or OpenSearch. Physical indexes behind an
//! alias, versioned bulk writes with per-operation outcomes, atomic alias swaps, reads for verify.

use athens_core::KeysetPage;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use athens_core::{
    BackfillCheckpoint, IndexError, IndexName, IndexOp, ProjectDocument, ProjectId, SearchIndex,
    WriteOutcome, WriterId,
};
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderValue};
use elasticsearch::indices::{
    IndicesCreateParts, IndicesDeleteParts, IndicesPutSettingsParts, IndicesRefreshParts,
};
use elasticsearch::{BulkParts, CountParts, MgetParts, SearchParts};
use futures::{StreamExt, stream};
use serde::Deserialize;
use serde_json::{Value, json};
use tracing::{debug, info, warn};

use crate::bulk::{self, BulkResponse};
use crate::checkpoint;
use crate::claim;
use crate::client::{
    Client, EngineInfo, alias_holders, checked, indexes_matching, read, update_aliases,
};
use crate::config::EsConfig;
use crate::error::{EsError, Failure};
use crate::fence;
use crate::search::EsSearch;
use crate::wire::StoredProject;
use crate::{fields, mapping};

/// The largest page one search may return (`index.max_result_window`'s default).
const MAX_WINDOW: usize = 10_000;

/// The parts of a bulk answer that are read: each item's action, status and error. The rest
/// (`_index`, `_version`, `_shards`, `_seq_no`...) would triple the answer's size.
const BULK_FILTER: &[&str] = &["took", "errors", "items.*.status", "items.*.error"];

/// Bytes reserved per operation when a bulk body is built, to avoid most reallocations.
const BYTES_PER_OP: usize = 768;

/// The search engine as the sync engine writes to it: implements [`SearchIndex`]. Cheap to clone.
#[derive(Clone)]
pub struct EsIndex {
    client: Client,
    /// The indexes this process created and has neither published nor dropped: its own builds,
    /// which its claims leave alone (see the `stray` module).
    building: Arc<Mutex<BTreeSet<String>>>,
}

impl fmt::Debug for EsIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.client.debug_as("EsIndex", f)
    }
}

impl EsIndex {
    /// Connects to the engine `config` names, checks that it answers and that Athens supports it
    /// (Elasticsearch 7.10 or later, OpenSearch), and logs its distribution and version.
    pub async fn connect(config: &EsConfig) -> Result<EsIndex, EsError> {
        Ok(EsIndex {
            client: Client::connect(config).await?,
            building: Arc::default(),
        })
    }

    /// The engine that answered when connecting.
    pub fn engine(&self) -> &EngineInfo {
        self.client.engine()
    }

    /// The alias searches read.
    pub fn alias(&self) -> &str {
        self.client.alias()
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Whether this process created `index` and has neither published nor dropped it.
    pub(crate) fn is_building(&self, index: &IndexName) -> bool {
        self.building
            .lock()
            .is_ok_and(|building| building.contains(&index.0))
    }

    /// Records that `index` is built (`true`) or no longer (`false`) by this process.
    fn set_building(&self, index: &str, building: bool) {
        if let Ok(mut set) = self.building.lock() {
            if building {
                set.insert(index.to_owned());
            } else {
                set.remove(index);
            }
        }
    }

    /// The read side, [`ProjectSearch`](athens_core::ProjectSearch), over the same connection: for
    /// processes that both write and serve.
    pub fn searcher(&self) -> EsSearch {
        EsSearch::from_client(self.client.clone())
    }

    /// Every physical index of this alias (live or not, any mapping version), oldest first: by
    /// mapping version as a number, then by creation stamp.
    pub async fn indexes(&self) -> Result<Vec<IndexName>, IndexError> {
        let pattern = mapping::index_pattern(self.alias());
        let mut names: Vec<String> = indexes_matching(&self.client, &pattern)
            .await?
            .into_iter()
            .filter(|name| mapping::owns_index(self.alias(), name))
            .collect();
        mapping::sort_oldest_first(self.alias(), &mut names);
        Ok(names.into_iter().map(IndexName).collect())
    }

    /// Deletes every writer claim of the alias (see [`SearchIndex::claim`]): for removing Athens
    /// from a cluster, and for tests that clean up after themselves.
    pub async fn drop_claims(&self) -> Result<(), IndexError> {
        for name in claim::claim_indexes(&self.client).await? {
            let sent = self
                .client
                .es
                .indices()
                .delete(IndicesDeleteParts::Index(&[&name]))
                .send()
                .await;
            match checked(sent).await {
                Ok(_) => {}
                Err(failure) if failure.status() == Some(404) => {}
                Err(failure) => return Err(failure.into()),
            }
        }
        Ok(())
    }

    /// Sends one bulk request through the index's write alias (see [`fence`]). A 413 (body above
    /// `http.max_content_length`) splits the batch in halves and sends each; a single operation
    /// still too large is refused for good. An index without its write alias (built by an earlier
    /// release) gets it, once, if it exists.
    async fn write_chunk(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        match self.write_fenced(index, ops).await {
            Err(missing @ IndexError::NotFound { .. }) => {
                match fence::add_write_alias(&self.client, index).await {
                    Ok(()) => self.write_fenced(index, ops).await,
                    Err(failure) if failure.status() == Some(404) => Err(missing),
                    Err(failure) => Err(failure.into()),
                }
            }
            other => other,
        }
    }

    /// [`write_chunk`](Self::write_chunk) without the repair of a missing write alias.
    async fn write_fenced(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        let mut body = Vec::with_capacity(ops.len() * BYTES_PER_OP);
        bulk::encode(ops, &mut body).map_err(|error| {
            IndexError::invalid(format!("cannot encode documents: {error}")).with_source(error)
        })?;
        fence::append(&mut body);
        let bytes = body.len();
        let target = fence::write_alias(self.alias(), &index.0);
        let sent = self
            .client
            .es
            .bulk(BulkParts::Index(&target))
            .require_alias(true)
            .filter_path(BULK_FILTER)
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            )
            .body(vec![body])
            .send()
            .await;
        match read::<BulkResponse>(sent).await {
            Ok(response) => {
                debug!(index = %index, ops = ops.len(), bytes, took_ms = response.took, errors = response.errors, "bulk request answered");
                bulk::outcomes(ops, bulk::without_fence(response)?)
            }
            Err(Failure::Status { status: 413, .. }) if ops.len() > 1 => {
                let (left, right) = ops.split_at(ops.len() / 2);
                warn!(index = %index, ops = ops.len(), bytes, "bulk request too large for the engine, splitting it");
                let mut outcomes = Box::pin(self.write_fenced(index, left)).await?;
                outcomes.extend(Box::pin(self.write_fenced(index, right)).await?);
                Ok(outcomes)
            }
            Err(Failure::Status { status: 413, .. }) => Ok(vec![WriteOutcome::Rejected(format!(
                "document of {bytes} bytes is larger than the engine accepts in one request (413)"
            ))]),
            Err(failure) => Err(failure.into()),
        }
    }

    /// [`write_chunk`](Self::write_chunk), with the number of operations sent.
    async fn write_counted(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> (usize, Result<Vec<WriteOutcome>, IndexError>) {
        (ops.len(), self.write_chunk(index, ops).await)
    }

    /// The ids of one search of `index`, read from the hits' sort value.
    async fn search_ids(&self, index: &IndexName, body: Value) -> Result<Vec<IdHit>, IndexError> {
        let sent = self
            .client
            .es
            .search(SearchParts::Index(&[&index.0]))
            .body(body)
            .send()
            .await;
        let response: IdSearchResponse = read(sent).await?;
        Ok(response.hits.hits)
    }
}

/// Outcomes of bulk requests sent concurrently, in order. A request that failed transiently while
/// others went through turns into `Retryable` outcomes for its operations, so the caller resends only
/// those; if every request failed, or one failed for good, the call fails.
fn merge(
    results: Vec<(usize, Result<Vec<WriteOutcome>, IndexError>)>,
) -> Result<Vec<WriteOutcome>, IndexError> {
    let mut outcomes = Vec::new();
    let mut first_transient = None;
    let mut all_failed = true;
    for (len, result) in results {
        match result {
            Ok(chunk) => {
                all_failed = false;
                outcomes.extend(chunk);
            }
            Err(error @ IndexError::Unavailable { .. }) => {
                outcomes.extend(std::iter::repeat_n(
                    WriteOutcome::Retryable(error.message().to_owned()),
                    len,
                ));
                first_transient.get_or_insert(error);
            }
            Err(error) => return Err(error),
        }
    }
    match first_transient {
        Some(error) if all_failed => Err(error),
        _ => Ok(outcomes),
    }
}

#[derive(Debug, Deserialize)]
struct IdSearchResponse {
    hits: IdHits,
}

#[derive(Debug, Deserialize)]
struct IdHits {
    hits: Vec<IdHit>,
}

#[derive(Debug, Deserialize)]
struct IdHit {
    sort: (i64,),
}

#[derive(Debug, Deserialize)]
struct MgetResponse {
    docs: Vec<MgetDoc>,
}

#[derive(Debug, Deserialize)]
struct MgetDoc {
    #[serde(default)]
    found: bool,
    #[serde(rename = "_source")]
    source: Option<StoredProject>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct CountResponse {
    count: u64,
}

#[async_trait]
impl SearchIndex for EsIndex {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        let mut holders = alias_holders(&self.client).await?;
        if holders.len() > 1 {
            warn!(alias = self.alias(), indexes = ?holders, "alias points to several indexes, using the newest");
        }
        Ok(holders.pop().map(IndexName))
    }

    async fn create_index(&self) -> Result<IndexName, IndexError> {
        let name = mapping::new_index_name(self.alias());
        let mut body = mapping::index_body(self.client.config());
        body["aliases"] = json!({ fence::write_alias(self.alias(), &name): {} });
        let sent = self
            .client
            .es
            .indices()
            .create(IndicesCreateParts::Index(&name))
            .body(body)
            .send()
            .await;
        checked(sent).await?;
        self.set_building(&name, true);
        info!(index = %name, mapping_version = mapping::MAPPING_VERSION, "index created for a bulk load");
        Ok(IndexName(name))
    }

    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        let sent = self
            .client
            .es
            .indices()
            .put_settings(IndicesPutSettingsParts::Index(&[&index.0]))
            .body(mapping::serving_settings(self.client.config()))
            .send()
            .await;
        checked(sent).await?;
        self.refresh(index).await?;
        info!(index = %index, "index switched to serving settings");
        Ok(())
    }

    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        let alias = self.alias();
        let holders = alias_holders(&self.client).await?;
        let mut actions: Vec<Value> = holders
            .iter()
            .filter(|holder| **holder != index.0)
            .map(|holder| json!({ "remove": { "index": holder, "alias": alias } }))
            .collect();
        actions.push(json!({ "add": { "index": index.0, "alias": alias } }));
        update_aliases(&self.client, &actions).await?;
        self.set_building(&index.0, false);
        let mut previous: Vec<String> = holders
            .into_iter()
            .filter(|holder| *holder != index.0)
            .collect();
        if previous.len() > 1 {
            warn!(alias, indexes = ?previous, "alias pointed to several indexes; only the newest is reported replaced");
        }
        let previous = previous.pop().map(IndexName);
        info!(alias, index = %index, previous = ?previous.as_ref().map(|p| &p.0), "alias published");
        Ok(previous)
    }

    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        let live = claim::claim(&self.client, writer).await?;
        self.drop_abandoned_builds().await;
        Ok(live)
    }

    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        let previous = claim::publish_as(&self.client, index, writer).await?;
        self.set_building(&index.0, false);
        Ok(previous)
    }

    async fn save_checkpoint(
        &self,
        index: &IndexName,
        checkpoint: &BackfillCheckpoint,
    ) -> Result<(), IndexError> {
        checkpoint::save(&self.client, index, checkpoint).await
    }

    async fn unfinished_backfills(
        &self,
    ) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
        checkpoint::unfinished(&self.client).await
    }

    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        Ok(mapping::mapping_version(self.alias(), &index.0) == Some(mapping::MAPPING_VERSION))
    }

    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        if !mapping::owns_index(self.alias(), &index.0) {
            return Err(IndexError::rejected(format!(
                "refusing to delete {index}: not an index of alias {}",
                self.alias()
            )));
        }
        let sent = self
            .client
            .es
            .indices()
            .delete(IndicesDeleteParts::Index(&[&index.0]))
            .send()
            .await;
        let deleted = match checked(sent).await {
            Ok(_) => {
                info!(index = %index, "index deleted");
                Ok(())
            }
            Err(failure) if failure.status() == Some(404) => Ok(()),
            Err(failure) => Err(failure.into()),
        };
        if deleted.is_ok() {
            self.set_building(&index.0, false);
        }
        deleted
    }

    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        let config = self.client.config();
        // Futures built first, then polled: a closure returning an async block here trips the
        // compiler's higher-ranked lifetime check inside `async_trait`.
        let requests: Vec<_> = ops
            .chunks(config.bulk_size.get())
            .map(|chunk| self.write_counted(index, chunk))
            .collect();
        let results: Vec<_> = stream::iter(requests)
            .buffered(config.bulk_concurrency.get())
            .collect()
            .await;
        merge(results)
    }

    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        let sent = self
            .client
            .es
            .indices()
            .refresh(IndicesRefreshParts::Index(&[&index.0]))
            .send()
            .await;
        checked(sent).await?;
        Ok(())
    }

    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
        let sent = self
            .client
            .es
            .mget(MgetParts::Index(&index.0))
            .body(json!({ "ids": ids }))
            .send()
            .await;
        let response: MgetResponse = read(sent).await?;
        let mut documents = Vec::with_capacity(response.docs.len());
        for doc in response.docs {
            if let Some(error) = doc.error {
                let kind = error
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let reason = format!("cannot read a document: {error}");
                return Err(if kind == "index_not_found_exception" {
                    IndexError::not_found(reason)
                } else {
                    IndexError::unavailable(reason)
                });
            }
            if let (true, Some(source)) = (doc.found, doc.source) {
                documents.push(ProjectDocument::from(source));
            }
        }
        documents.sort_by_key(|document| document.id);
        Ok(documents)
    }

    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        let limit = page.limit;
        let query = match page.until {
            Some(until) => json!({ "range": { fields::ID: { "lte": until.0 } } }),
            None => json!({ "match_all": {} }),
        };
        let mut ids = Vec::with_capacity(limit.min(MAX_WINDOW));
        let mut after = page.after;
        while ids.len() < limit {
            let size = (limit - ids.len()).min(MAX_WINDOW);
            let mut body = json!({
                "size": size,
                "_source": false,
                "track_total_hits": false,
                "query": query,
                "sort": [{ fields::ID: "asc" }],
            });
            if let Some(after) = after {
                body["search_after"] = json!([after.0]);
            }
            let hits = self.search_ids(index, body).await?;
            let got = hits.len();
            ids.extend(hits.into_iter().map(|hit| ProjectId(hit.sort.0)));
            after = ids.last().copied();
            if got < size {
                break;
            }
        }
        Ok(ids)
    }

    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        let sent = self
            .client
            .es
            .count(CountParts::Index(&[&index.0]))
            .send()
            .await;
        let response: CountResponse = read(sent).await?;
        Ok(response.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_that_failed_transiently_becomes_retryable_outcomes() {
        let merged = merge(vec![
            (2, Ok(vec![WriteOutcome::Applied, WriteOutcome::Superseded])),
            (3, Err(IndexError::unavailable("timeout"))),
            (1, Ok(vec![WriteOutcome::Applied])),
        ])
        .unwrap();
        assert_eq!(merged.len(), 6);
        assert_eq!(merged[1], WriteOutcome::Superseded);
        assert!(
            merged[2..5]
                .iter()
                .all(|o| *o == WriteOutcome::Retryable("timeout".into()))
        );
        assert_eq!(merged[5], WriteOutcome::Applied);
    }

    #[test]
    fn a_call_fails_when_every_chunk_failed_or_one_failed_for_good() {
        let all_down = merge(vec![
            (2, Err(IndexError::unavailable("refused"))),
            (2, Err(IndexError::unavailable("refused"))),
        ]);
        assert!(matches!(all_down, Err(IndexError::Unavailable { .. })));
        let gone = merge(vec![
            (2, Err(IndexError::unavailable("timeout"))),
            (2, Err(IndexError::not_found("no such index"))),
        ]);
        assert!(matches!(gone, Err(IndexError::NotFound { .. })));
        assert_eq!(merge(Vec::new()).unwrap(), Vec::new());
    }
}
