//! The sync engine: holds the writer lease, backfills a fresh index when needed, then streams changes
//! from the source into the index, acknowledging them only once the index accepted their work.

mod backfill;
mod config;
pub mod metrics;
mod pipeline;
mod plan;
mod ranges;
mod stream;
mod verify;
mod write;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use backfill::BackfillReport;
pub use config::{EngineConfig, MappingChange};
pub use stream::StepReport;
pub use verify::VerifyReport;
pub use write::RetryPolicy;
use write::retrying;

use crate::error::{ErrorChain, SourceError, SyncError};
use crate::index::{IndexName, SearchIndex, WriterId};
use crate::rebuild_queue::RebuildQueue;
use crate::source::{ChangeSource, DocumentSource, WriterLease};

/// How often the streaming loop publishes the backlog gauges.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

/// Keeps a [`SearchIndex`] equal to what a [`DocumentSource`] says, driven by a [`ChangeSource`].
///
/// Delivery is at least once with idempotent, versioned writes: a change is acknowledged only after the
/// index accepted every document it touched, and a replay rewrites current state with a newer version,
/// so crashes anywhere lose nothing and duplicate nothing visible.
pub struct SyncEngine {
    changes: Arc<dyn ChangeSource>,
    documents: Arc<dyn DocumentSource>,
    index: Arc<dyn SearchIndex>,
    lease: Arc<dyn WriterLease>,
    queue: Arc<dyn RebuildQueue>,
    config: EngineConfig,
    shutdown: CancellationToken,
    progress: watch::Sender<u64>,
    /// This engine's identity towards the index, which fences writers by it.
    writer: WriterId,
}

impl SyncEngine {
    /// Wires an engine from its ports. `queue` holds the projects of fan-outs: it must be
    /// durable, and scoped like `lease` (the writer of one partition gets that partition's view).
    /// Cancelling `shutdown` stops it between or inside batches, without acknowledging unfinished
    /// work.
    pub fn new(
        changes: Arc<dyn ChangeSource>,
        documents: Arc<dyn DocumentSource>,
        index: Arc<dyn SearchIndex>,
        lease: Arc<dyn WriterLease>,
        queue: Arc<dyn RebuildQueue>,
        config: EngineConfig,
        shutdown: CancellationToken,
    ) -> SyncEngine {
        SyncEngine {
            changes,
            documents,
            index,
            lease,
            queue,
            config,
            shutdown,
            progress: watch::Sender::new(0),
            writer: WriterId::random(),
        }
    }

    /// Documents written so far by the running (or last) backfill, for progress displays.
    pub fn backfill_progress(&self) -> watch::Receiver<u64> {
        self.progress.subscribe()
    }

    /// The engine's configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Runs until shutdown: waits as a standby until it holds the writer lease, backfills if the
    /// alias does not exist yet, then streams changes. Transient failures are retried; losing the
    /// lease sends it back to standby. Returns `Ok` on shutdown.
    pub async fn run(&self) -> Result<(), SyncError> {
        let result = self.run_until_error().await;
        let released = self.lease.release().await;
        match result {
            Err(SyncError::Cancelled) | Ok(()) => {
                released?;
                info!("sync engine stopped");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    async fn run_until_error(&self) -> Result<(), SyncError> {
        let mut attempt = 0u32;
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            match self.lead().await {
                Err(error) if error.is_retryable() => {
                    attempt += 1;
                    warn!(attempt, error = %ErrorChain(&error), "sync interrupted, resuming");
                    self.config.retry.pause(attempt, &self.shutdown).await?;
                }
                other => return other,
            }
        }
    }

    /// Waits for the lease, then backfills if needed and streams until shutdown or an error.
    async fn lead(&self) -> Result<(), SyncError> {
        self.acquire_lease().await?;
        let live = self.ensure_live_index().await?;
        info!(index = %live, "streaming changes");
        self.stream(live).await
    }

    /// Waits as a standby until this process holds the writer lease (or shutdown).
    pub async fn acquire_lease(&self) -> Result<(), SyncError> {
        let mut waiting = false;
        loop {
            if self.lease.try_acquire().await? {
                if waiting {
                    info!("writer lease acquired, leaving standby");
                }
                return Ok(());
            }
            if !waiting {
                info!("another process holds the writer lease, waiting as standby");
                waiting = true;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(SyncError::Cancelled),
                () = tokio::time::sleep(self.config.standby_interval) => {}
            }
        }
    }

    /// Gives the writer lease up, for a process that took it with [`acquire_lease`](Self::acquire_lease)
    /// to do one job and is done.
    pub async fn release_lease(&self) -> Result<(), SyncError> {
        Ok(self.lease.release().await?)
    }

    /// Claims the index for this writer and returns the physical index behind the alias,
    /// backfilling a fresh one first if the alias does not exist. Once claimed, no writer that
    /// claimed before can move the alias away from it.
    ///
    /// A live index built with another mapping than the adapter writes is rebuilt first (or
    /// refused, as configured): writing this release's documents into it would have them refused.
    pub async fn ensure_live_index(&self) -> Result<IndexName, SyncError> {
        if let Some(live) = self.claim().await? {
            let current = retrying("read mapping", &self.config.retry, &self.shutdown, || {
                self.index.mapping_is_current(&live)
            })
            .await?;
            if current {
                // Streaming acknowledges changes from here on: no unfinished backfill may be
                // resumed after that (see the backfill module).
                self.discard_unfinished().await?;
                return Ok(live);
            }
            if self.config.on_mapping_change == MappingChange::Refuse {
                return Err(SyncError::MappingChanged(live));
            }
            info!(index = %live, "the live index has another mapping version, rebuilding it with zero downtime");
            let report = self.resume_backfill().await?;
            return Ok(report.index);
        }
        info!("no index behind the alias yet, backfilling");
        let report = self.resume_backfill().await?;
        Ok(report.index)
    }

    /// Claims the index for this writer (see [`SearchIndex::claim`]); returns the live index.
    async fn claim(&self) -> Result<Option<IndexName>, SyncError> {
        retrying("claim index", &self.config.retry, &self.shutdown, || {
            self.index.claim(&self.writer)
        })
        .await
    }

    /// Checks that the source still captures changes; alarms (error log, gauge at 0) when not.
    /// Streaming goes on: what was captured before must still reach the index.
    async fn check_capture(&self) {
        match self.changes.capture_health().await {
            Ok(()) => metrics::capture_healthy(true),
            Err(error @ SourceError::Unavailable { .. }) => {
                warn!(error = %ErrorChain(&error), "could not check the change capture");
            }
            Err(error) => {
                metrics::capture_healthy(false);
                error!(error = %ErrorChain(&error), "change capture is missing or disabled: changes made now are NOT captured; run `athens setup`");
            }
        }
    }

    async fn publish_backlog(&self) {
        let partition = match self.changes.backlog().await {
            Ok(backlog) => {
                metrics::backlog(&backlog);
                backlog.partition
            }
            Err(error) => {
                warn!(error = %ErrorChain(&error), "could not read the backlog");
                None
            }
        };
        match self.queue.queued().await {
            Ok(queued) => metrics::queued(queued, partition),
            Err(error) => warn!(error = %ErrorChain(&error), "could not count the queued projects"),
        }
    }

    /// Fails with [`SyncError::LeaseLost`] unless this process still holds the writer lease.
    async fn check_lease(&self) -> Result<(), SyncError> {
        if self.lease.is_held().await? {
            Ok(())
        } else {
            Err(self.lease.lost().await.into())
        }
    }
}

#[cfg(test)]
mod interleavings;
#[cfg(test)]
mod partition_sim;
#[cfg(test)]
mod pipelining;
#[cfg(test)]
mod resume_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
