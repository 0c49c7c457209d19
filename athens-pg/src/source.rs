//! [`PgSource`]: the connection pool every port implementation of this crate shares.

use std::fmt;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use sea_orm::sqlx::PgPool;
use sea_orm::{DatabaseConnection, SqlxPostgresConnector};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::info;

use crate::changes::LINGER;
use crate::config::PgConfig;
use crate::error::PgError;
use crate::lease::PgLease;

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
    /// Bumped whenever the outbox may have new rows (a notification, a reconnect).
    pub(crate) wake: Arc<watch::Sender<u64>>,
    pub(crate) listener: Mutex<Option<JoinHandle<()>>>,
    /// Changes acknowledged since the outbox was last vacuumed.
    pub(crate) acked: AtomicU64,
    /// When a poll last returned changes.
    pub(crate) last_seen: Mutex<Option<Instant>>,
}

impl Inner {
    pub(crate) fn listener(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.listener.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that a poll returned changes at `now`.
    pub(crate) fn seen_changes(&self, now: Instant) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    /// Whether a poll returned changes within the last [`LINGER`].
    pub(crate) fn changes_flowing(&self, now: Instant) -> bool {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|seen| now.duration_since(seen) < LINGER)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(listener) = self.listener().take() {
            listener.abort();
        }
    }
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
                wake: Arc::new(watch::Sender::new(0)),
                listener: Mutex::new(None),
                acked: AtomicU64::new(0),
                last_seen: Mutex::new(None),
            }),
        }
    }

    /// A writer lease on this database, on its own connection outside the pool (opened now, so a
    /// database that refuses it fails here rather than at the first acquire).
    pub async fn lease(&self) -> Result<PgLease, PgError> {
        PgLease::connect(&self.inner.config).await
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
        if let Some(listener) = self.inner.listener().take() {
            listener.abort();
        }
        self.inner.pool.close().await;
    }
}
