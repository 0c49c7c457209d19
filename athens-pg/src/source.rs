//! [`PgSource`]: the connection pool every port implementation of this crate shares.

use std::fmt;
use std::sync::Arc;

use sea_orm::sqlx::PgPool;
use sea_orm::{DatabaseConnection, SqlxPostgresConnector};
use tracing::info;

use crate::changes::Listener;
use crate::config::PgConfig;
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
            }),
        }
    }

    /// A writer lease on this database, on its own connection outside the pool (opened now, so a
    /// database that refuses it fails here rather than at the first acquire). Once it was taken,
    /// this source's acknowledgements check, in their own transaction, that it is still held.
    pub async fn lease(&self) -> Result<PgLease, PgError> {
        PgLease::fenced(&self.inner.config, self.inner.fence.clone()).await
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
