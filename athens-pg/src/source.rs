//! [`PgSource`]: the connection pool every port implementation of this crate shares.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;

use athens_core::partition::Partition;

use sea_orm::sqlx::PgPool;
use sea_orm::{DatabaseConnection, SqlxPostgresConnector};
use tracing::info;

use crate::changes::Listener;
use crate::config::{CaptureConfig, PgConfig};
use crate::error::PgError;
use crate::lease::{Fence, PgLease};

/// Athens' PostgreSQL source: implements [`ChangeSource`](athens_core::ChangeSource) (the outbox)
/// and [`DocumentSource`](athens_core::DocumentSource) (set-based document reads) over one pool.
///
/// Cheap to clone: clones share the pool and the change listener. The listener (one pooled
/// connection running `LISTEN`) starts on the first poll that waits and stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct PgSource {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: PgConfig,
    pub(crate) pool: PgPool,
    pub(crate) db: DatabaseConnection,
    /// The outbox consumer's state: the change listener, when changes were last seen.
    pub(crate) changes: Listener,
    /// The writer lease taken through this source, which acknowledgements check.
    pub(crate) fence: Arc<Fence>,
    /// Which outbox rows this source consumes, under which leases.
    pub(crate) scope: Scope,
    /// The logical capture whose relay fills the outbox, if it is not the triggers: its health is
    /// that capture's.
    pub(crate) relayed: Option<Arc<CaptureConfig>>,
}

/// Which outbox rows a [`PgSource`] polls and acknowledges, and which writer leases it takes (and
/// its acknowledgements check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Every row, under the one writer lease (`database.lease_key`): one partition.
    Whole,
    /// The rows of one partition, under that partition's lease.
    Partition(Partition),
    /// Every row, under the leases of every partition at once (a rebuild, a reindex).
    Every(NonZeroU32),
}

impl Scope {
    /// The advisory lock keys of this scope's lease, in the order they are taken.
    pub(crate) fn lease_keys(&self, lease_key: i64) -> Vec<i64> {
        match self {
            Scope::Whole => vec![lease_key],
            Scope::Partition(partition) => vec![partition_lease_key(lease_key, partition.index())],
            Scope::Every(count) => (0..count.get())
                .map(|index| partition_lease_key(lease_key, index))
                .collect(),
        }
    }

    /// Which lease this scope takes, in words for an operator.
    pub(crate) fn lease_name(&self, lease_key: i64) -> String {
        match self {
            Scope::Whole => format!("the writer lease (advisory lock {lease_key})"),
            Scope::Partition(partition) => format!(
                "the writer lease of partition {partition} (advisory lock {})",
                partition_lease_key(lease_key, partition.index())
            ),
            Scope::Every(count) => format!(
                "the writer leases of all {count} partitions (advisory locks of key {lease_key})"
            ),
        }
    }
}

/// The advisory lock key of partition `index`'s lease: `lease_key` with `index + 1` xor'ed into
/// bits 48 and up, so that no partition shares a key with the one-partition lease or another
/// partition (the default key and any key below 2^48 leave those bits free).
pub(crate) fn partition_lease_key(lease_key: i64, index: u32) -> i64 {
    lease_key ^ ((i64::from(index) + 1) << 48)
}

impl fmt::Debug for PgSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgSource")
            .field("url", &self.inner.config.url)
            .field("pool_size", &self.inner.pool.size())
            .finish_non_exhaustive()
    }
}

impl PgSource {
    /// Opens the pool and checks that one connection can be made. Does not check the schema or the
    /// capture objects: see [`check_schema`](PgSource::check_schema) and
    /// [`check_capture`](PgSource::check_capture).
    pub async fn connect(config: &PgConfig) -> Result<PgSource, PgError> {
        let options = config.connect_options()?;
        crate::connect::probe(config, &options).await?;
        let pool = config.pool_options().connect_with(options).await?;
        info!(url = %config.url, max_connections = config.max_connections, "connected to postgresql");
        Ok(PgSource::from_pool(config.clone(), pool))
    }

    fn from_pool(config: PgConfig, pool: PgPool) -> PgSource {
        let db = SqlxPostgresConnector::from_sqlx_postgres_pool(pool.clone());
        PgSource {
            inner: Arc::new(Inner {
                config,
                pool,
                db,
                changes: Listener::default(),
                fence: Arc::default(),
                scope: Scope::Whole,
                relayed: None,
            }),
        }
    }

    /// This source seen by the writer of `partition` (see `athens_core::partition`): its polls,
    /// backlog and acknowledgements cover the partition's outbox rows only, its
    /// [`lease`](Self::lease) is the partition's, and a poll fails (`Misconfigured`) once the
    /// capture writes another number of partitions. Shares the pool and the change listener; has
    /// a poll floor and a fence of its own.
    pub fn partition(&self, partition: Partition) -> PgSource {
        self.scoped(Scope::Partition(partition))
    }

    /// This source seen by a writer of every one of `count` partitions at once (a rebuild of the
    /// whole index, a reindex): it polls and acknowledges every row, like a source of one
    /// partition, and its [`lease`](Self::lease) holds every partition's lease (taken in ascending
    /// order on one session, all or none).
    pub fn every_partition(&self, count: NonZeroU32) -> PgSource {
        self.scoped(Scope::Every(count))
    }

    /// This source as the consumer of an outbox that the relay of the logical `capture` fills
    /// (`capture.partitions` > 1, see [`Relay`](crate::Relay)) instead of the triggers: its
    /// [`capture_health`](athens_core::ChangeSource::capture_health) checks the logical capture.
    /// Its [`partition`](Self::partition) and [`every_partition`](Self::every_partition) views
    /// keep that.
    pub fn relayed(&self, capture: &CaptureConfig) -> PgSource {
        self.with(self.inner.scope, Some(Arc::new(capture.clone())))
    }

    fn scoped(&self, scope: Scope) -> PgSource {
        self.with(scope, self.inner.relayed.clone())
    }

    fn with(&self, scope: Scope, relayed: Option<Arc<CaptureConfig>>) -> PgSource {
        let inner = &self.inner;
        PgSource {
            inner: Arc::new(Inner {
                config: inner.config.clone(),
                pool: inner.pool.clone(),
                db: SqlxPostgresConnector::from_sqlx_postgres_pool(inner.pool.clone()),
                changes: Listener::sharing(&inner.changes),
                fence: Arc::default(),
                scope,
                relayed,
            }),
        }
    }

    /// The advisory lock keys of this source's writer lease.
    pub(crate) fn lease_keys(&self) -> Vec<i64> {
        self.inner.scope.lease_keys(self.inner.config.lease_key)
    }

    /// Which writer lease this source takes, in words for an operator.
    pub(crate) fn lease_name(&self) -> String {
        self.inner.scope.lease_name(self.inner.config.lease_key)
    }

    /// A writer lease on this database, on its own connection outside the pool (opened now, so a
    /// database that refuses it fails here rather than at the first acquire). Once it was taken,
    /// this source's acknowledgements check, in their own transaction, that it is still held.
    pub async fn lease(&self) -> Result<PgLease, PgError> {
        PgLease::fenced(
            &self.inner.config,
            self.inner.fence.clone(),
            self.lease_keys(),
            self.lease_name(),
        )
        .await
    }

    /// The configuration this source was opened with.
    pub fn config(&self) -> &PgConfig {
        &self.inner.config
    }

    /// The sqlx pool, for callers that need plain SQL (tools, tests).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The sea-orm connection over the same pool, for entity queries.
    pub fn db(&self) -> &DatabaseConnection {
        &self.inner.db
    }

    /// Stops the listener and closes every pooled connection, waiting for those in use.
    pub async fn close(&self) {
        self.inner.changes.stop();
        self.inner.pool.close().await;
    }
}
