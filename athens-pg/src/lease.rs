//! [`WriterLease`] as a PostgreSQL session advisory lock held on a dedicated connection.
//!
//! The lock lives as long as the session: if the holder crashes or its connection drops, PostgreSQL
//! releases it and a standby's `pg_try_advisory_lock` succeeds. The connection is outside the pool,
//! so pool recycling can never release the lock behind the holder's back, and a holder that cannot
//! reach its connection any more reports the lease lost. Server-side TCP keepalives (set by
//! [`PgConfig`]) bound how long a vanished holder keeps the lock.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use athens_core::{SourceError, WriterLease};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{self, Connection, PgConnection};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::config::PgConfig;
use crate::error::PgError;

/// One process's handle on the writer lease of a database. Two handles with the same key, in any
/// processes, exclude each other.
pub struct PgLease {
    options: PgConnectOptions,
    key: i64,
    timeout: Duration,
    /// The dedicated session, once opened; `None` after a failure or a release.
    session: Mutex<Option<PgConnection>>,
}

impl fmt::Debug for PgLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLease")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Whether this session holds the advisory lock `$1` (a bigint key is split into classid and objid,
/// objsubid 1).
const HOLDS_LOCK: &str = "SELECT EXISTS (SELECT 1 FROM pg_locks \
     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
       AND ((classid::bigint << 32) | objid::bigint) = $1)";

impl PgLease {
    /// A handle with its session open (not holding the lease yet). Should the session drop later,
    /// the next acquire opens a new one.
    pub async fn connect(config: &PgConfig) -> Result<PgLease, PgError> {
        let options = config.connect_options()?;
        let conn =
            tokio::time::timeout(config.connect_timeout, PgConnection::connect_with(&options))
                .await
                .map_err(|_| timed_out())??;
        Ok(PgLease {
            options,
            key: config.lease_key,
            timeout: config.connect_timeout,
            session: Mutex::new(Some(conn)),
        })
    }

    /// Runs `query` on the session, opening it if needed, within the timeout. Any failure closes the
    /// session: whatever lock it held is gone or about to be.
    async fn on_session(
        &self,
        session: &mut Option<PgConnection>,
        query: &'static str,
    ) -> Result<bool, PgError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, async {
            if session.is_none() {
                *session = Some(PgConnection::connect_with(&self.options).await?);
            }
            match session.as_mut() {
                Some(conn) => {
                    sqlx::query_scalar::<_, bool>(query)
                        .bind(self.key)
                        .fetch_one(conn)
                        .await
                }
                None => Ok(false),
            }
        })
        .await
        .unwrap_or_else(|_| Err(timed_out()));
        if result.is_err()
            && let Some(conn) = session.take()
        {
            drop(tokio::time::timeout(timeout, conn.close()).await);
        }
        Ok(result?)
    }

    async fn acquire(&self) -> Result<bool, PgError> {
        let mut session = self.session.lock().await;
        if session.is_some()
            && self
                .on_session(&mut session, HOLDS_LOCK)
                .await
                .unwrap_or(false)
        {
            return Ok(true);
        }
        let acquired = self
            .on_session(&mut session, "SELECT pg_try_advisory_lock($1)")
            .await?;
        if acquired {
            info!(key = self.key, "writer lease acquired");
        }
        Ok(acquired)
    }

    async fn held(&self) -> Result<bool, PgError> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            return Ok(false);
        }
        match self.on_session(&mut session, HOLDS_LOCK).await {
            Ok(held) => Ok(held),
            Err(error) => {
                warn!(error = %error, key = self.key, "writer lease connection lost");
                Ok(false)
            }
        }
    }

    async fn give_up(&self) -> Result<(), PgError> {
        let mut session = self.session.lock().await;
        if let Some(mut conn) = session.take() {
            let unlocked = tokio::time::timeout(self.timeout, async {
                sqlx::query("SELECT pg_advisory_unlock_all()")
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
            .await;
            match unlocked {
                Ok(Ok(())) => info!(key = self.key, "writer lease released"),
                // Dropping the connection ends the session, which releases the lock anyway.
                Ok(Err(error)) => warn!(error = %error, "writer lease released by disconnecting"),
                Err(_) => warn!("writer lease released by disconnecting after a timeout"),
            }
        }
        Ok(())
    }
}

fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the writer lease connection timed out",
    ))
}

#[async_trait]
impl WriterLease for PgLease {
    async fn try_acquire(&self) -> Result<bool, SourceError> {
        Ok(self.acquire().await?)
    }

    async fn is_held(&self) -> Result<bool, SourceError> {
        Ok(self.held().await?)
    }

    async fn release(&self) -> Result<(), SourceError> {
        Ok(self.give_up().await?)
    }
}
