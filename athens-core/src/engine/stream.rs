//! Streaming: the entry points of the pipelined stream (one batch, until drained, until
//! shutdown), what they report, and the writes shared with verify's repairs.

use tracing::debug;

use super::SyncEngine;
use super::metrics;
use super::pipeline::{Pipeline, Until};
use super::write::{WriteSummary, retrying};
use crate::change::{Ack, ChangeRecord, DeadLetter};
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::{IndexName, IndexOp};
use crate::source::Snapshot;

/// What a run of the stream acknowledged.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Changes acknowledged.
    pub changes: usize,
    /// Distinct projects whose documents were rebuilt or deleted.
    pub projects: usize,
    /// Documents the index stored.
    pub applied: u64,
    /// Documents the index already held a newer version of.
    pub superseded: u64,
    /// Documents dead-lettered.
    pub dead_letters: usize,
    /// The new live index when a truncate forced a full rebuild.
    pub reindexed: Option<IndexName>,
}

impl StepReport {
    /// Adds what `other` acknowledged.
    pub(super) fn merge(&mut self, other: StepReport) {
        self.changes += other.changes;
        self.projects += other.projects;
        self.applied += other.applied;
        self.superseded += other.superseded;
        self.dead_letters += other.dead_letters;
        if other.reindexed.is_some() {
            self.reindexed = other.reindexed;
        }
    }
}

impl SyncEngine {
    /// Processes one batch of pending changes against the live index, waiting up to the configured
    /// poll wait for one to arrive, until it (and the fan-out of its users and hashtags) is
    /// acknowledged. The caller must hold the writer lease.
    pub async fn step(&self) -> Result<StepReport, SyncError> {
        let live = self.ensure_live_index().await?;
        let mut pipeline = Pipeline::new(self, live, Until::FirstBatch);
        pipeline.run().await?;
        Ok(pipeline.report)
    }

    /// Processes changes until none is pending; returns how many were acknowledged. The caller
    /// must hold the writer lease.
    pub async fn drain(&self) -> Result<usize, SyncError> {
        let live = self.ensure_live_index().await?;
        let mut pipeline = Pipeline::new(self, live, Until::Drained);
        pipeline.run().await?;
        Ok(pipeline.report.changes)
    }

    /// Streams changes into `live` until shutdown (see [`super::pipeline`]). The caller must hold
    /// the writer lease.
    pub(super) async fn stream(&self, live: IndexName) -> Result<(), SyncError> {
        let mut pipeline = Pipeline::new(self, live, Until::Shutdown);
        let result = pipeline.run().await;
        if pipeline.report.changes > 0 {
            debug!(
                changes = pipeline.report.changes,
                projects = pipeline.report.projects,
                applied = pipeline.report.applied,
                superseded = pipeline.report.superseded,
                "stream stopped"
            );
        }
        match result {
            Err(SyncError::Cancelled) => Ok(()),
            other => other,
        }
    }

    /// Rebuilds the documents of `ids` from the current state and writes them to `target`, chunk by
    /// chunk: existing projects are upserted, vanished ones deleted, both with the snapshot's version.
    pub(super) async fn rebuild(
        &self,
        target: &IndexName,
        ids: &[ProjectId],
    ) -> Result<WriteSummary, SyncError> {
        let mut summary = WriteSummary::default();
        for chunk in ids.chunks(self.config.chunk_size.get()) {
            let snapshot = retrying("load documents", &self.config.retry, &self.shutdown, || {
                self.documents.load(chunk)
            })
            .await?;
            let ops = operations(snapshot);
            summary.merge(self.write_settled(target, ops).await?);
        }
        Ok(summary)
    }

    /// Acknowledges `records` and records dead letters, once the lease is confirmed still ours.
    pub(super) async fn acknowledge(
        &self,
        records: &[ChangeRecord],
        dead_letters: Vec<DeadLetter>,
    ) -> Result<(), SyncError> {
        self.check_lease().await?;
        metrics::dead_letters(dead_letters.len());
        let ack = Ack {
            changes: records.iter().map(|record| record.id).collect(),
            dead_letters,
        };
        retrying(
            "acknowledge changes",
            &self.config.retry,
            &self.shutdown,
            || self.changes.ack(&ack),
        )
        .await
    }
}

/// The index operations that bring documents to a snapshot's state.
pub(super) fn operations(snapshot: Snapshot) -> Vec<IndexOp> {
    let version = snapshot.version;
    let deletes = snapshot
        .missing
        .into_iter()
        .map(|id| IndexOp::Delete { id, version });
    snapshot
        .documents
        .into_iter()
        .map(|document| IndexOp::Upsert { document, version })
        .chain(deletes)
        .collect()
}
