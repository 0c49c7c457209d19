//! `sync` with `capture.partitions` > 1 (docs/architecture.md, "Partitioned writers"): one engine
//! per partition, each the writer of its partition while it holds that partition's lease (at most
//! `capture.partitions_per_process` of them at once, the others waiting as standbys), and a
//! rebuild of the whole index, holding every partition's lease, whenever one is needed.
//!
//! A partition's engine never rebuilds the index ([`PartitionIndex`] refuses it and says so), and a
//! truncate is an outbox row of no single partition: the process looks for one every poll wait.
//! Either way every partition's engine of this process stops and releases its lease, the process
//! takes the lease of every partition (all or none, as a standby until it gets them or another
//! process has rebuilt), rebuilds the index or streams the truncate as one writer of every
//! partition, gives the leases back and starts its partitions' engines again. Every other process
//! does the same when it sees the truncate, so the leases free up.
//!
//! In the logical mode the partitions' queue is the same outbox, filled by the relay (see
//! [`super::relay`]), which runs beside the partitions in whichever process holds its lease.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use athens_core::partition::{LeaseBudget, Partition, PartitionDocuments, PartitionIndex};
use athens_core::{ErrorChain, SearchIndex, SyncEngine, WriterLease};
use athens_es::EsIndex;
use athens_pg::{CaptureMode, PgSource};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Settings;

/// Why the partitions' engines stopped.
enum Stopped {
    /// Shutdown.
    Shutdown,
    /// The index must be rebuilt by a writer of every partition.
    Rebuild,
}

/// The partitions of one `athens sync` process.
pub struct Partitioned<'a> {
    settings: &'a Settings,
    source: Arc<PgSource>,
    index: Arc<EsIndex>,
    shutdown: CancellationToken,
    /// The writer of every partition, for rebuilds.
    whole: SyncEngine,
    /// Its lease: every partition's.
    whole_lease: Arc<dyn WriterLease>,
    /// Each partition's source and lease (counted against this process's budget), opened once:
    /// the lease fences the acknowledgements of the source it came from.
    partitions: Vec<(Partition, Arc<PgSource>, Arc<dyn WriterLease>)>,
}

impl<'a> Partitioned<'a> {
    /// Wires the writer of every partition and opens each partition's source and lease; the
    /// partitions' engines are wired each time they start.
    pub async fn new(
        settings: &'a Settings,
        source: Arc<PgSource>,
        index: Arc<EsIndex>,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Partitioned<'a>> {
        source.check_schema().await?;
        let (changes, lessor) = crate::wiring::changes(&source, &settings.capture).await?;
        let whole_lease: Arc<dyn WriterLease> = Arc::new(
            lessor
                .lease()
                .await
                .context("cannot open the writer lease connection")?,
        );
        let whole = SyncEngine::new(
            changes,
            source.clone(),
            index.clone(),
            whole_lease.clone(),
            Arc::new(lessor),
            settings.sync.clone(),
            shutdown.clone(),
        );
        let capture = &settings.capture;
        let held = capture
            .partitions_per_process
            .unwrap_or(capture.partitions)
            .get() as usize;
        let budget = Arc::new(Semaphore::new(held));
        // In the logical mode the relay fills the outbox: the partitions consume it alike.
        let queue = match capture.mode {
            CaptureMode::Outbox => PgSource::clone(&source),
            CaptureMode::Logical => source.relayed(capture),
        };
        let mut partitions = Vec::new();
        for partition in Partition::all(capture.partitions) {
            let changes = queue.partition(partition);
            let lease = changes
                .lease()
                .await
                .context("cannot open a partition's writer lease connection")?;
            let lease: Arc<dyn WriterLease> =
                Arc::new(LeaseBudget::new(Arc::new(lease), budget.clone()));
            partitions.push((partition, Arc::new(changes), lease));
        }
        Ok(Partitioned {
            settings,
            source,
            index,
            shutdown,
            whole,
            whole_lease,
            partitions,
        })
    }

    /// Streams this process's partitions until shutdown, rebuilding whenever needed; in the
    /// logical mode, relays the slot meanwhile whenever it holds the relay lease (rebuilds
    /// included: the slot keeps moving while the partitions' leases change hands).
    pub async fn run(&self) -> anyhow::Result<()> {
        let stop_relay = self.shutdown.child_token();
        let relay = super::relay::start(self.settings, &self.source, stop_relay.clone()).await?;
        let result = self.run_partitions().await;
        stop_relay.cancel();
        if let Some(relay) = relay
            && let Err(failed) = relay.await
        {
            warn!(error = %failed, "the relay task failed");
        }
        result
    }

    async fn run_partitions(&self) -> anyhow::Result<()> {
        let mut attempt = 0u32;
        loop {
            if let Stopped::Shutdown = self.stream().await? {
                return Ok(());
            }
            match self.rebuild().await {
                Ok(()) => attempt = 0,
                Err(error) if error.is_retryable() => {
                    attempt += 1;
                    warn!(attempt, error = %ErrorChain(&error), "rebuild interrupted, resuming");
                    let retry = &self.settings.sync.retry;
                    let pause = retry
                        .initial
                        .saturating_mul(2u32.saturating_pow(attempt.min(16)))
                        .min(retry.max);
                    tokio::select! {
                        () = self.shutdown.cancelled() => return Ok(()),
                        () = tokio::time::sleep(pause) => {}
                    }
                }
                Err(athens_core::SyncError::Cancelled) => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Runs an engine per partition until shutdown, an error, or a rebuild is needed.
    async fn stream(&self) -> anyhow::Result<Stopped> {
        let capture = &self.settings.capture;
        let count = capture.partitions;
        let held = capture.partitions_per_process.unwrap_or(count).get();
        let rebuild = CancellationToken::new();
        let stop = self.shutdown.child_token();
        let mut engines = JoinSet::new();
        for (partition, changes, lease) in &self.partitions {
            let partition = *partition;
            let engine = SyncEngine::new(
                changes.clone(),
                Arc::new(PartitionDocuments::new(self.source.clone(), partition)),
                Arc::new(PartitionIndex::new(
                    self.index.clone(),
                    partition,
                    rebuild.clone(),
                )),
                lease.clone(),
                changes.clone(),
                self.settings.sync.clone(),
                stop.clone(),
            );
            engines.spawn(async move { (partition, engine.run().await) });
        }
        info!(
            partitions = count.get(),
            at_most = held,
            "streaming partitions"
        );
        let mut truncates =
            tokio::time::interval(self.settings.sync.poll_wait.max(Duration::from_millis(50)));
        let stopped = loop {
            tokio::select! {
                () = rebuild.cancelled() => break Ok(Stopped::Rebuild),
                _ = truncates.tick() => match self.source.pending_truncates().await {
                    Ok(0) => {}
                    Ok(pending) => {
                        info!(pending, "a table was truncated: rebuilding the whole index, which needs every partition");
                        break Ok(Stopped::Rebuild);
                    }
                    Err(error) => warn!(error = %ErrorChain(&error), "could not look for truncates"),
                },
                joined = engines.join_next() => match joined {
                    None => break Ok(Stopped::Shutdown),
                    Some(Ok((_, Ok(())))) => {
                        if self.shutdown.is_cancelled() {
                            break Ok(Stopped::Shutdown);
                        }
                    }
                    Some(Ok((partition, Err(error)))) => {
                        if rebuild.is_cancelled() {
                            break Ok(Stopped::Rebuild);
                        }
                        break Err(anyhow::Error::new(error)
                            .context(format!("the writer of partition {partition} stopped")));
                    }
                    Some(Err(panicked)) => {
                        break Err(anyhow::anyhow!("a partition's writer failed: {panicked}"));
                    }
                },
            }
        };
        stop.cancel();
        while let Some(joined) = engines.join_next().await {
            if let Ok((partition, Err(error))) = joined
                && !rebuild.is_cancelled()
            {
                warn!(partition = %partition, error = %ErrorChain(&error), "a partition's writer stopped with an error");
            }
        }
        stopped
    }

    /// Whether the index needs a rebuild by a writer of every partition: a truncate is pending,
    /// the alias does not exist, or the live index has another mapping.
    async fn rebuild_needed(&self) -> Result<bool, athens_core::SyncError> {
        if self
            .source
            .pending_truncates()
            .await
            .map_err(athens_core::SourceError::from)?
            > 0
        {
            return Ok(true);
        }
        Ok(match self.index.live_index().await? {
            None => true,
            Some(live) => !self.index.mapping_is_current(&live).await?,
        })
    }

    /// Takes every partition's lease (or returns once another process rebuilt), then backfills
    /// or rebuilds the index as needed and streams every pending truncate, as one writer.
    async fn rebuild(&self) -> Result<(), athens_core::SyncError> {
        let mut waiting = false;
        while !self.whole_lease.try_acquire().await? {
            if !self.rebuild_needed().await? {
                info!("another process rebuilt the index");
                return Ok(());
            }
            if !waiting {
                info!("waiting for every partition's lease to rebuild the whole index");
                waiting = true;
            }
            tokio::select! {
                () = self.shutdown.cancelled() => return Err(athens_core::SyncError::Cancelled),
                () = tokio::time::sleep(self.whole.config().standby_interval) => {}
            }
        }
        info!("holding every partition's lease");
        let rebuilt: Result<(), athens_core::SyncError> = async {
            self.whole.ensure_live_index().await?;
            while self
                .source
                .pending_truncates()
                .await
                .map_err(athens_core::SourceError::from)?
                > 0
            {
                self.whole.step().await?;
            }
            Ok(())
        }
        .await;
        let released = self.whole_lease.release().await;
        rebuilt?;
        released?;
        info!("every partition's lease given back");
        Ok(())
    }
}
