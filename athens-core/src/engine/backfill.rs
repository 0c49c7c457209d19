//! Backfill: every project, read by several readers in disjoint id ranges (see the `ranges`
//! module), into a fresh physical index that then replaces the live one behind the alias in one
//! atomic step (zero-downtime reindex).
//!
//! Changes committed while a backfill runs stay pending in the source and are streamed into the new
//! index after the swap; their versions are newer than the pages read before them, so nothing is lost
//! and nothing older wins.
//!
//! A backfill that fails or whose process dies leaves its index and the checkpoint saved with it;
//! the next backfill resumes it. That is sound only while no change was acknowledged since its
//! pages were read (a change acknowledged meanwhile went to another index, and the pages read
//! before it would publish an older state). So the engine discards unfinished backfills before it
//! streams (`ensure_live_index`), and a rebuild after a truncate, which acknowledges the changes
//! of its batch, starts fresh ([`SyncEngine::backfill`]): only a backfill that runs before any
//! streaming resumes ([`SyncEngine::resume_backfill`]: the first one, a rebuild for a new mapping,
//! `athens reindex`).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::SyncEngine;
use super::ranges::Ledger;
use super::write::retrying;
use crate::checkpoint::BackfillCheckpoint;
use crate::error::{ErrorChain, SyncError};
use crate::index::IndexName;

/// Ranges per reader: more ranges than readers keeps every reader busy when ids are skewed.
const RANGES_PER_READER: usize = 4;

/// What a backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// The new live index.
    pub index: IndexName,
    /// The index the alias pointed to before, if any (deleted unless configured to keep it).
    pub previous: Option<IndexName>,
    /// Documents written by this run (a resumed backfill writes only what was left).
    pub documents: u64,
    /// Documents the index refused, recorded as dead letters.
    pub dead_letters: usize,
    /// Whether this run resumed an unfinished backfill from its checkpoint.
    pub resumed: bool,
    /// Wall time of the whole backfill.
    pub elapsed: Duration,
}

impl SyncEngine {
    /// Builds a fresh index from every project in the source and publishes it behind the alias;
    /// unfinished backfills are dropped first. The caller must hold the writer lease. On failure
    /// the live index keeps serving, and the half-built one is kept with its checkpoint for
    /// [`resume_backfill`](Self::resume_backfill) (dropped if its adapter keeps no checkpoints).
    ///
    /// The publish is fenced: it lands only if no other writer claimed the index since this one
    /// did (a standby that took over a lost lease claims first), and the lease is checked again
    /// once it landed, before the previous index is dropped.
    pub async fn backfill(&self) -> Result<BackfillReport, SyncError> {
        self.backfill_from(false).await
    }

    /// [`backfill`](Self::backfill), resuming the newest unfinished backfill from its checkpoint
    /// when there is one. Sound only when this writer acknowledged no change since that backfill
    /// read its pages, which the engine ensures by discarding unfinished backfills before it
    /// streams (see the module's documentation).
    pub async fn resume_backfill(&self) -> Result<BackfillReport, SyncError> {
        self.backfill_from(true).await
    }

    async fn backfill_from(&self, resume: bool) -> Result<BackfillReport, SyncError> {
        self.check_lease().await?;
        self.claim().await?;
        let started = Instant::now();
        let unfinished = if resume {
            self.take_unfinished().await?
        } else {
            self.discard_unfinished().await?;
            None
        };
        let (target, checkpoint, resumed) = match unfinished {
            Some((index, checkpoint)) => {
                info!(index = %index, ranges = checkpoint.ranges.len(), "resuming an unfinished backfill from its checkpoint");
                (index, checkpoint, true)
            }
            None => {
                let bounds = retrying("read id bounds", &self.config.retry, &self.shutdown, || {
                    self.documents.id_bounds()
                })
                .await?;
                let readers = self.config.backfill_readers.get();
                let ranges = if readers > 1 {
                    readers * RANGES_PER_READER
                } else {
                    1
                };
                let target = retrying("create index", &self.config.retry, &self.shutdown, || {
                    self.index.create_index()
                })
                .await?;
                let checkpoint = BackfillCheckpoint::split(bounds, ranges);
                // Saved before the first page, so that even a backfill that dies at once leaves
                // an index the next backfill finds (to resume or to drop).
                retrying(
                    "save checkpoint",
                    &self.config.retry,
                    &self.shutdown,
                    || self.index.save_checkpoint(&target, &checkpoint),
                )
                .await?;
                (target, checkpoint, false)
            }
        };
        info!(index = %target, readers = self.config.backfill_readers, ranges = checkpoint.ranges.len(), "backfilling");
        self.progress.send_replace(0);
        let ledger = Ledger::new(checkpoint);
        let summary = match self.fill(&target, &ledger).await {
            Ok(summary) => summary,
            Err(error) => {
                self.keep_or_drop(&target).await;
                return Err(error);
            }
        };
        let published = self.publish(&target).await;
        let previous = match published {
            Ok(previous) => previous,
            Err(error) => {
                if let Err(drop_error) = self.index.drop_index(&target).await {
                    warn!(index = %target, error = %ErrorChain(&drop_error), "could not drop the unpublished index");
                }
                return Err(error);
            }
        };
        if let Err(error) = self.check_lease().await {
            warn!(index = %target, previous = ?previous.as_ref().map(|p| &p.0), "lease lost right after publishing: keeping the previous index");
            return Err(error);
        }
        if let Some(old) = previous.as_ref()
            && !self.config.keep_previous_index
            && let Err(error) = self.index.drop_index(old).await
        {
            warn!(index = %old, error = %ErrorChain(&error), "could not drop the previous index");
        }
        let report = BackfillReport {
            index: target,
            previous,
            documents: summary.applied + summary.superseded,
            dead_letters: ledger.dead_letter_total(),
            resumed,
            elapsed: started.elapsed(),
        };
        info!(
            index = %report.index,
            documents = report.documents,
            dead_letters = report.dead_letters,
            resumed = report.resumed,
            seconds = report.elapsed.as_secs_f64(),
            "backfill published"
        );
        Ok(report)
    }

    /// The newest unfinished backfill, the others dropped.
    async fn take_unfinished(&self) -> Result<Option<(IndexName, BackfillCheckpoint)>, SyncError> {
        let mut unfinished = retrying(
            "list unfinished backfills",
            &self.config.retry,
            &self.shutdown,
            || self.index.unfinished_backfills(),
        )
        .await?;
        let newest = unfinished.pop();
        for (index, _) in unfinished {
            self.drop_unfinished(&index).await;
        }
        Ok(newest)
    }

    /// Drops every unfinished backfill: called before this writer acknowledges changes, after
    /// which none of them could be resumed soundly.
    pub(super) async fn discard_unfinished(&self) -> Result<(), SyncError> {
        if let Some((index, _)) = self.take_unfinished().await? {
            self.drop_unfinished(&index).await;
        }
        Ok(())
    }

    async fn drop_unfinished(&self, index: &IndexName) {
        info!(index = %index, "dropping an unfinished backfill that can no longer be resumed");
        if let Err(error) = self.index.drop_index(index).await {
            warn!(index = %index, error = %ErrorChain(&error), "could not drop the unfinished backfill");
        }
    }

    /// After a failed fill: keeps `target` when its checkpoint is stored (the next backfill resumes
    /// it), drops it otherwise.
    async fn keep_or_drop(&self, target: &IndexName) {
        let kept = self
            .index
            .unfinished_backfills()
            .await
            .is_ok_and(|unfinished| unfinished.iter().any(|(index, _)| index == target));
        if kept {
            warn!(index = %target, "backfill interrupted: its index and checkpoint are kept, the next backfill resumes it");
        } else if let Err(error) = self.index.drop_index(target).await {
            warn!(index = %target, error = %ErrorChain(&error), "could not drop the unfinished index");
        }
    }

    /// Makes `target` serving and points the alias at it, fenced by this writer's claim.
    async fn publish(&self, target: &IndexName) -> Result<Option<IndexName>, SyncError> {
        retrying(
            "finish bulk load",
            &self.config.retry,
            &self.shutdown,
            || self.index.finish_bulk_load(target),
        )
        .await?;
        self.check_lease().await?;
        retrying("publish index", &self.config.retry, &self.shutdown, || {
            self.index.publish_as(target, &self.writer)
        })
        .await
    }
}
