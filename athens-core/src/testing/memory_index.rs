//! An in-memory search index with the engine's external-versioning semantics, an alias, and fault
//! injection. It honours the same contract as the real adapters (see [`super::contract`]).

use crate::KeysetPage;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::memory_source::Fault;
use crate::checkpoint::BackfillCheckpoint;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::IndexError;
use crate::index::{IndexName, IndexOp, SearchIndex, WriteOutcome, WriterId};
use crate::source::Version;

/// Failures a [`MemoryIndex`] can be told to inject.
#[derive(Debug, Default)]
pub struct IndexFaults {
    /// Fails whole `write` calls with `Unavailable`.
    pub write: Fault,
    /// Answers every operation of a `write` call with `Retryable`.
    pub retry_items: Fault,
    /// Projects whose documents are refused for good.
    pub reject: Mutex<BTreeSet<ProjectId>>,
}

#[derive(Debug, Clone)]
struct Stored {
    version: Version,
    document: Option<ProjectDocument>,
}

#[derive(Debug, Default)]
struct State {
    indexes: BTreeMap<String, BTreeMap<ProjectId, Stored>>,
    alias: Option<String>,
    created: u64,
    /// The writer whose publications are allowed.
    claim: Option<WriterId>,
    /// Indexes marked as built with another mapping.
    outdated: BTreeSet<String>,
    /// Backfill checkpoints, by physical index.
    checkpoints: BTreeMap<String, BackfillCheckpoint>,
}

/// An in-memory index.
#[derive(Debug, Default)]
pub struct MemoryIndex {
    state: Mutex<State>,
    /// Failures to inject.
    pub faults: IndexFaults,
}

impl MemoryIndex {
    /// An index with no alias yet.
    pub fn new() -> MemoryIndex {
        MemoryIndex::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What `read` makes of the entries of `index` (tombstones included), or `NotFound`.
    fn read<T>(
        &self,
        index: &IndexName,
        read: impl FnOnce(&BTreeMap<ProjectId, Stored>) -> T,
    ) -> Result<T, IndexError> {
        let state = self.state();
        let stored = state
            .indexes
            .get(&index.0)
            .ok_or_else(|| not_found(index))?;
        Ok(read(stored))
    }

    /// The live documents, sorted by id (empty when there is no alias).
    pub fn live_documents(&self) -> Vec<ProjectDocument> {
        let state = self.state();
        state
            .alias
            .as_ref()
            .and_then(|alias| state.indexes.get(alias))
            .map(|documents| {
                documents
                    .values()
                    .filter_map(|stored| stored.document.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Overwrites a live document behind the engine's back (drift injection for verify tests).
    pub fn tamper(&self, document: ProjectDocument) {
        let mut state = self.state();
        if let Some(alias) = state.alias.clone()
            && let Some(documents) = state.indexes.get_mut(&alias)
        {
            let version = documents
                .get(&document.id)
                .map_or(Version(0), |stored| stored.version);
            documents.insert(
                document.id,
                Stored {
                    version,
                    document: Some(document),
                },
            );
        }
    }

    /// Overwrites a live document at a version far ahead of any the source will issue, as after a
    /// point-in-time restore of the source (its version sequence restarts below the index's).
    pub fn tamper_ahead(&self, document: ProjectDocument) {
        let mut state = self.state();
        if let Some(alias) = state.alias.clone()
            && let Some(documents) = state.indexes.get_mut(&alias)
        {
            documents.insert(
                document.id,
                Stored {
                    version: Version(u64::MAX / 2),
                    document: Some(document),
                },
            );
        }
    }

    /// Removes a live document without a trace, as an out-of-band delete by an operator would.
    pub fn remove(&self, id: ProjectId) {
        let mut state = self.state();
        if let Some(alias) = state.alias.clone()
            && let Some(documents) = state.indexes.get_mut(&alias)
        {
            documents.remove(&id);
        }
    }

    /// Forgets the versions of deleted documents, as the engine does after `index.gc_deletes`: a
    /// later write of any version then applies.
    pub fn forget_deletions(&self) {
        for documents in self.state().indexes.values_mut() {
            documents.retain(|_, stored| stored.document.is_some());
        }
    }

    /// Marks the live index as built with another mapping, as after an upgrade that changed it.
    pub fn outdate_live(&self) {
        let mut state = self.state();
        if let Some(alias) = state.alias.clone() {
            state.outdated.insert(alias);
        }
    }

    /// The physical index behind the alias, if any.
    pub fn live_name(&self) -> Option<IndexName> {
        self.state().alias.clone().map(IndexName)
    }

    /// The number of physical indexes that exist.
    pub fn physical_indexes(&self) -> usize {
        self.state().indexes.len()
    }

    fn apply(stored: &mut BTreeMap<ProjectId, Stored>, op: &IndexOp) -> WriteOutcome {
        let (id, version, document) = match op {
            IndexOp::Upsert { document, version } => (document.id, *version, Some(document)),
            IndexOp::Delete { id, version } => (*id, *version, None),
        };
        if stored.get(&id).is_some_and(|held| held.version >= version) {
            return WriteOutcome::Superseded;
        }
        stored.insert(
            id,
            Stored {
                version,
                document: document.cloned(),
            },
        );
        WriteOutcome::Applied
    }
}

fn not_found(index: &IndexName) -> IndexError {
    IndexError::not_found(index.0.clone())
}

#[async_trait]
impl SearchIndex for MemoryIndex {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        Ok(self.state().alias.clone().map(IndexName))
    }

    async fn create_index(&self) -> Result<IndexName, IndexError> {
        let mut state = self.state();
        state.created += 1;
        let name = format!("projects-{}", state.created);
        state.indexes.insert(name.clone(), BTreeMap::new());
        Ok(IndexName(name))
    }

    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        if self.state().indexes.contains_key(&index.0) {
            Ok(())
        } else {
            Err(not_found(index))
        }
    }

    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        let mut state = self.state();
        if !state.indexes.contains_key(&index.0) {
            return Err(not_found(index));
        }
        Ok(state.alias.replace(index.0.clone()).map(IndexName))
    }

    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        let mut state = self.state();
        state.claim = Some(writer.clone());
        Ok(state.alias.clone().map(IndexName))
    }

    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        let mut state = self.state();
        if state.claim.as_ref() != Some(writer) {
            return Err(IndexError::fenced(format!(
                "writer {writer} no longer holds the claim"
            )));
        }
        if !state.indexes.contains_key(&index.0) {
            return Err(not_found(index));
        }
        Ok(state.alias.replace(index.0.clone()).map(IndexName))
    }

    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        let state = self.state();
        if !state.indexes.contains_key(&index.0) {
            return Err(not_found(index));
        }
        Ok(!state.outdated.contains(&index.0))
    }

    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        let mut state = self.state();
        state.indexes.remove(&index.0);
        state.checkpoints.remove(&index.0);
        Ok(())
    }

    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        if self.faults.write.fire() {
            return Err(
                IndexError::unavailable("injected failure").with_source(super::injected_cause())
            );
        }
        if self.faults.retry_items.fire() {
            return Ok(ops
                .iter()
                .map(|_| WriteOutcome::Retryable("injected 429".into()))
                .collect());
        }
        let rejected = self
            .faults
            .reject
            .lock()
            .map(|set| set.clone())
            .unwrap_or_default();
        let mut state = self.state();
        let stored = state
            .indexes
            .get_mut(&index.0)
            .ok_or_else(|| not_found(index))?;
        Ok(ops
            .iter()
            .map(|op| {
                if matches!(op, IndexOp::Upsert { .. }) && rejected.contains(&op.project()) {
                    WriteOutcome::Rejected("injected mapping error".into())
                } else {
                    MemoryIndex::apply(stored, op)
                }
            })
            .collect())
    }

    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        if self.state().indexes.contains_key(&index.0) {
            Ok(())
        } else {
            Err(not_found(index))
        }
    }

    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        let wanted: BTreeSet<&ProjectId> = ids.iter().collect();
        self.read(index, |stored| {
            wanted
                .into_iter()
                .filter_map(|id| stored.get(id).and_then(|held| held.document.clone()))
                .collect()
        })
    }

    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        self.read(index, |stored| {
            stored
                .iter()
                .filter(|(id, held)| held.document.is_some() && page.holds(**id))
                .map(|(id, _)| *id)
                .take(page.limit)
                .collect()
        })
    }

    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        self.read(index, |stored| {
            stored
                .values()
                .filter(|held| held.document.is_some())
                .count() as u64
        })
    }

    async fn save_checkpoint(
        &self,
        index: &IndexName,
        checkpoint: &BackfillCheckpoint,
    ) -> Result<(), IndexError> {
        let mut state = self.state();
        if !state.indexes.contains_key(&index.0) {
            return Err(not_found(index));
        }
        state
            .checkpoints
            .insert(index.0.clone(), checkpoint.clone());
        Ok(())
    }

    async fn unfinished_backfills(
        &self,
    ) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
        let state = self.state();
        Ok(state
            .checkpoints
            .iter()
            .filter(|(name, checkpoint)| {
                state.alias.as_ref() != Some(*name)
                    && !state.outdated.contains(*name)
                    && !checkpoint.is_finished()
            })
            .map(|(name, checkpoint)| (IndexName(name.clone()), checkpoint.clone()))
            .collect())
    }
}
