//! Streaming: one batch of changes at a time, from poll to acknowledgement.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tracing::{debug, info};

use super::SyncEngine;
use super::metrics;
use super::plan::ChangePlan;
use super::write::{WriteSummary, retrying};
use crate::change::{Ack, ChangeRecord, DeadLetter};
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::{IndexName, IndexOp};
use crate::source::Snapshot;

/// What one streaming step did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Changes taken from the source and acknowledged.
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

impl SyncEngine {
    /// Processes one batch of pending changes against the live index, waiting up to the configured
    /// poll wait for one to arrive. The caller must hold the writer lease.
    pub async fn step(&self) -> Result<StepReport, SyncError> {
        let live = self.ensure_live_index().await?;
        self.step_into(&live, self.config.poll_wait).await
    }

    /// Processes batches until none is pending; returns how many changes were acknowledged. The caller
    /// must hold the writer lease.
    pub async fn drain(&self) -> Result<usize, SyncError> {
        let mut live = self.ensure_live_index().await?;
        let mut total = 0;
        loop {
            let report = self.step_into(&live, Duration::ZERO).await?;
            if report.changes == 0 {
                return Ok(total);
            }
            total += report.changes;
            if let Some(index) = report.reindexed {
                live = index;
            }
        }
    }

    pub(super) async fn step_into(
        &self,
        live: &IndexName,
        wait: Duration,
    ) -> Result<StepReport, SyncError> {
        let records = retrying("poll changes", &self.config.retry, &self.shutdown, || {
            self.changes.poll(self.config.batch_size.get(), wait)
        })
        .await?;
        if records.is_empty() {
            return Ok(StepReport::default());
        }
        let started = Instant::now();
        metrics::changes_read(records.len());
        let plan = ChangePlan::of(&records);
        let mut report = StepReport {
            changes: records.len(),
            ..StepReport::default()
        };
        let summary = if plan.truncate {
            info!(
                changes = records.len(),
                "a table was truncated, rebuilding the whole index"
            );
            let backfill = self.backfill().await?;
            report.projects = backfill.documents as usize;
            report.reindexed = Some(backfill.index);
            report.dead_letters = backfill.dead_letters;
            WriteSummary {
                applied: backfill.documents,
                ..WriteSummary::default()
            }
        } else {
            let projects = self.resolve(&plan).await?;
            report.projects = projects.len();
            let ids: Vec<ProjectId> = projects.into_iter().collect();
            self.rebuild(live, &ids).await?
        };
        report.applied = summary.applied;
        report.superseded = summary.superseded;
        report.dead_letters += summary.dead_letters.len();
        self.acknowledge(&records, summary.dead_letters).await?;
        metrics::acknowledged(&records, started.elapsed());
        debug!(
            changes = report.changes,
            projects = report.projects,
            applied = report.applied,
            superseded = report.superseded,
            "batch acknowledged"
        );
        Ok(report)
    }

    /// The projects a plan touches: those it names, plus those of its users and hashtags now.
    async fn resolve(&self, plan: &ChangePlan) -> Result<BTreeSet<ProjectId>, SyncError> {
        let mut projects = plan.projects.clone();
        if plan.needs_resolution() {
            let users: Vec<_> = plan.users.iter().copied().collect();
            let hashtags: Vec<_> = plan.hashtags.iter().copied().collect();
            let touched = retrying(
                "resolve changes",
                &self.config.retry,
                &self.shutdown,
                || self.documents.projects_touched(&users, &hashtags),
            )
            .await?;
            projects.extend(touched);
        }
        Ok(projects)
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
    async fn acknowledge(
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
