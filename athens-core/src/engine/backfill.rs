//! Backfill: every project, in keyset-paged batches, into a fresh physical index that then replaces
//! the live one behind the alias in one atomic step (zero-downtime reindex).
//!
//! Changes committed while a backfill runs stay pending in the source and are streamed into the new
//! index after the swap; their versions are newer than the pages read before them, so nothing is lost
//! and nothing older wins.

use std::time::{Duration, Instant};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{info, warn};

use super::SyncEngine;
use super::metrics;
use super::stream::operations;
use super::write::{WriteSummary, retrying};
use crate::change::Ack;
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::IndexName;
use crate::source::Snapshot;

/// What a backfill did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackfillReport {
    /// The new live index.
    pub index: IndexName,
    /// The index the alias pointed to before, if any (deleted unless configured to keep it).
    pub previous: Option<IndexName>,
    /// Documents written.
    pub documents: u64,
    /// Documents the index refused, recorded as dead letters.
    pub dead_letters: usize,
    /// Wall time of the whole backfill.
    pub elapsed: Duration,
}

impl SyncEngine {
    /// Builds a fresh index from every project in the source and publishes it behind the alias. The
    /// caller must hold the writer lease. On failure the half-built index is dropped and the live one
    /// keeps serving.
    ///
    /// The publish is fenced: it lands only if no other writer claimed the index since this one
    /// did (a standby that took over a lost lease claims first), and the lease is checked again
    /// once it landed, before the previous index is dropped.
    pub async fn backfill(&self) -> Result<BackfillReport, SyncError> {
        self.check_lease().await?;
        self.claim().await?;
        let started = Instant::now();
        let target = retrying("create index", &self.config.retry, &self.shutdown, || {
            self.index.create_index()
        })
        .await?;
        info!(index = %target, "backfilling");
        self.progress.send_replace(0);
        let summary = match self.fill(&target).await {
            Ok(summary) => summary,
            Err(error) => {
                if let Err(drop_error) = self.index.drop_index(&target).await {
                    warn!(index = %target, error = %drop_error, "could not drop the unfinished index");
                }
                return Err(error);
            }
        };
        let published = self.publish(&target).await;
        let previous = match published {
            Ok(previous) => previous,
            Err(error) => {
                if let Err(drop_error) = self.index.drop_index(&target).await {
                    warn!(index = %target, error = %drop_error, "could not drop the unpublished index");
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
            warn!(index = %old, error = %error, "could not drop the previous index");
        }
        let dead_letters = summary.dead_letters.len();
        if dead_letters > 0 {
            metrics::dead_letters(dead_letters);
            let ack = Ack {
                changes: Vec::new(),
                dead_letters: summary.dead_letters,
            };
            retrying(
                "record dead letters",
                &self.config.retry,
                &self.shutdown,
                || self.changes.ack(&ack),
            )
            .await?;
        }
        let report = BackfillReport {
            index: target,
            previous,
            documents: summary.applied + summary.superseded,
            dead_letters,
            elapsed: started.elapsed(),
        };
        info!(
            index = %report.index,
            documents = report.documents,
            dead_letters = report.dead_letters,
            seconds = report.elapsed.as_secs_f64(),
            "backfill published"
        );
        Ok(report)
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

    /// Streams every page of the source into `target`: pages are read one after the other (keyset
    /// paging needs the previous page's last id), and each read overlaps the writes of up to
    /// `write_concurrency` earlier pages, so the source and the index work at the same time. Memory
    /// stays bounded by `chunk_size × (write_concurrency + 1)` documents whatever the table size.
    async fn fill(&self, target: &IndexName) -> Result<WriteSummary, SyncError> {
        let page_size = self.config.chunk_size.get();
        let concurrency = self.config.write_concurrency.get();
        let mut writes = FuturesUnordered::new();
        let mut total = WriteSummary::default();
        // The read in progress, the page it returned while every write slot was busy, and whether
        // a short page said there is nothing after it.
        let mut reading = Some(self.load(None, page_size).boxed());
        let mut ready: Option<Snapshot> = None;
        let mut done = false;
        loop {
            if writes.len() < concurrency
                && let Some(snapshot) = ready.take()
            {
                let after = snapshot.documents.last().map(|document| document.id);
                writes.push(self.write_settled(target, operations(snapshot)).boxed());
                if !done {
                    reading = Some(self.load(after, page_size).boxed());
                }
            }
            // Past this point a read is running or a write is in flight (a waiting page means every
            // write slot is taken), so a branch of the select is always enabled.
            if reading.is_none() && ready.is_none() && writes.is_empty() {
                return Ok(total);
            }
            tokio::select! {
                loaded = async {
                    match reading.as_mut() {
                        Some(read) => read.await,
                        None => std::future::pending().await,
                    }
                }, if reading.is_some() => {
                    reading = None;
                    let snapshot = loaded?;
                    done = snapshot.documents.len() < page_size;
                    if !snapshot.documents.is_empty() {
                        ready = Some(snapshot);
                    }
                }
                Some(written) = writes.next(), if !writes.is_empty() => {
                    let summary = written?;
                    let count = summary.applied + summary.superseded;
                    metrics::backfilled(count);
                    self.progress.send_modify(|done| *done += count);
                    total.merge(summary);
                }
            }
        }
    }

    /// One page of documents after `after`, retried like every source read.
    async fn load(
        &self,
        after: Option<ProjectId>,
        page_size: usize,
    ) -> Result<Snapshot, SyncError> {
        retrying("load page", &self.config.retry, &self.shutdown, || {
            self.documents.load_page(after, page_size)
        })
        .await
    }
}
