//! [`WriterLease`] as a PostgreSQL session advisory lock held on a dedicated connection.
//!
//! The lock lives as long as the session: if the holder crashes or its connection drops, PostgreSQL
//! releases it and a standby's `pg_try_advisory_lock` succeeds. The connection is outside the pool,
//! so pool recycling can never release the lock behind the holder's back, and a holder that cannot
//! reach its connection any more reports the lease lost. Server-side TCP keepalives (set by
//! [`PgConfig`]) bound how long a vanished holder keeps the lock.
//!
//! A holder that hangs with its connection up (a stopped process, a stuck event loop) answers TCP
//! keepalives from its kernel, so those do not free the lock: the session also runs with
//! `idle_session_timeout = lease_timeout`, which the server enforces by itself. The engine asks
//! [`is_held`](WriterLease::is_held) at every step (idle or not), which keeps a working holder's
//! session busy; one that stops asking for `lease_timeout` loses its session and the lock, and a
//! standby takes over. When the hung holder wakes up, its acknowledgements are refused: an
//! acknowledgement through the same [`PgSource`](crate::PgSource) checks, in its own
//! transaction, that this session still holds the lock ([`Fence`]).

use std::fmt;
use std::sync::{Arc, Mutex as SyncMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use athens_core::{ErrorChain, SourceError, WriterLease};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{self, Connection, PgConnection};
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::config::PgConfig;
use crate::error::PgError;

/// One process's handle on the writer lease of a database. Two handles with the same key, in any
/// processes, exclude each other. A handle on several keys (every partition's, see
/// [`PgSource::every_partition`](crate::PgSource::every_partition)) holds all of them on its one
/// session or none: it takes them in ascending order and gives back those it got when one is
/// taken, so two such handles never wait on each other.
pub struct PgLease {
    options: PgConnectOptions,
    keys: Vec<i64>,
    /// Which lease, in words for an operator.
    name: String,
    timeout: Duration,
    /// `idle_session_timeout` of the lease session; zero leaves the server's setting.
    lease_timeout: Duration,
    /// The dedicated session, once opened; `None` after a failure or a release.
    session: Mutex<Option<PgConnection>>,
    /// What acknowledgements through the source this lease came from check.
    fence: Arc<Fence>,
    /// The session holding the lock, while this handle holds it.
    mine: SyncMutex<Option<Session>>,
    /// Why this handle last found the lease lost, until [`lost`](WriterLease::lost) tells.
    loss: SyncMutex<Option<PgError>>,
}

impl fmt::Debug for PgLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgLease")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

/// A server session, told apart from a later one that reuses its process id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Session {
    /// The server process id of the session.
    pub(crate) pid: i32,
    started: DateTime<Utc>,
}

/// Which session holds the writer lease taken through a source, for that source's
/// acknowledgements. A source through which no lease was ever taken (tools, tests) is not fenced.
#[derive(Debug, Default)]
pub(crate) struct Fence {
    /// `None`: no lease taken through this source yet; `Some(None)`: taken, now lost or released.
    holder: SyncMutex<Option<Option<Session>>>,
}

impl Fence {
    fn set(&self, holder: Option<Session>) {
        *self.holder.lock().unwrap_or_else(PoisonError::into_inner) = Some(holder);
    }

    /// Records that `session` no longer holds the lease (another handle's holder stays).
    fn release(&self, session: Session) {
        let mut holder = self.holder.lock().unwrap_or_else(PoisonError::into_inner);
        if *holder == Some(Some(session)) {
            *holder = Some(None);
        }
    }

    /// The session an acknowledgement must find holding the lock: `Ok(None)` when unfenced,
    /// an error naming the lease (`lease`) when it is known lost.
    pub(crate) fn required(
        &self,
        lease: impl FnOnce() -> String,
    ) -> Result<Option<Session>, PgError> {
        match *self.holder.lock().unwrap_or_else(PoisonError::into_inner) {
            None => Ok(None),
            Some(Some(session)) => Ok(Some(session)),
            Some(None) => Err(PgError::lease_lost(
                lease(),
                "this process found it lost, or gave it up, before",
            )),
        }
    }

    /// Forgets `session` after an acknowledgement found it no longer holding the lock.
    pub(crate) fn lost(&self, session: Session) {
        self.release(session);
    }
}

/// Whether this session holds every advisory lock of the keys `$1` (a bigint key is split into
/// classid and objid, objsubid 1).
const HOLDS_LOCK: &str = "SELECT count(DISTINCT (classid::bigint << 32) | objid::bigint) \
       = cardinality($1::bigint[]) FROM pg_locks \
     WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND granted AND objsubid = 1 \
       AND ((classid::bigint << 32) | objid::bigint) = ANY($1)";

/// The process id of a session holding an advisory lock of the keys `$1`, if one does.
const HOLDER_NOW: &str = "SELECT pid FROM pg_locks \
     WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
       AND ((classid::bigint << 32) | objid::bigint) = ANY($1) LIMIT 1";

/// Takes the advisory locks of the keys `$1`, in order; true when it got every one. One it did not
/// get does not stop it from trying the next: [`PgLease::acquire`] gives back what it got then.
const TRY_LOCKS: &str =
    "SELECT bool_and(pg_try_advisory_lock(key)) FROM unnest($1::bigint[]) AS key";

/// Gives back every advisory lock of this session.
const UNLOCK_ALL: &str = "SELECT true FROM (SELECT pg_advisory_unlock_all()) AS unlocked";

/// Whether session (`$2`, started at `$3`) holds every advisory lock of the keys `$1`: asked by an
/// acknowledgement, in its own transaction, on another connection.
pub(crate) const SESSION_HOLDS_LOCK: &str = "SELECT count(DISTINCT \
       (l.classid::bigint << 32) | l.objid::bigint) = cardinality($1::bigint[]) FROM pg_locks l \
     JOIN pg_stat_activity a ON a.pid = l.pid \
     WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
       AND ((l.classid::bigint << 32) | l.objid::bigint) = ANY($1) \
       AND l.pid = $2 AND a.backend_start = $3";

impl PgLease {
    /// A handle with its session open (not holding the lease yet). Should the session drop later,
    /// the next acquire opens a new one. Acknowledgements are not fenced by it: take the lease with
    /// [`PgSource::lease`](crate::PgSource::lease) for that.
    pub async fn connect(config: &PgConfig) -> Result<PgLease, PgError> {
        let name = crate::source::Scope::Whole.lease_name(config.lease_key);
        PgLease::fenced(config, Arc::default(), vec![config.lease_key], name).await
    }

    /// A handle on the locks of `keys` (the lease `name`), reporting the holder to `fence`.
    pub(crate) async fn fenced(
        config: &PgConfig,
        fence: Arc<Fence>,
        keys: Vec<i64>,
        name: String,
    ) -> Result<PgLease, PgError> {
        let mut lease = PgLease {
            options: config.connect_options()?,
            keys,
            name,
            timeout: config.connect_timeout,
            lease_timeout: config.lease_timeout,
            session: Mutex::new(None),
            fence,
            mine: SyncMutex::new(None),
            loss: SyncMutex::new(None),
        };
        let conn = tokio::time::timeout(config.connect_timeout, lease.open())
            .await
            .map_err(|_| timed_out())??;
        lease.session = Mutex::new(Some(conn));
        Ok(lease)
    }

    /// Opens a lease session: idle for longer than the lease timeout, the server ends it.
    async fn open(&self) -> Result<PgConnection, sqlx::Error> {
        let mut conn = PgConnection::connect_with(&self.options).await?;
        if !self.lease_timeout.is_zero() {
            let millis = self.lease_timeout.as_millis().to_string();
            let set = sqlx::query("SELECT set_config('idle_session_timeout', $1, false)")
                .bind(millis)
                .execute(&mut conn)
                .await;
            match set {
                Ok(_) => {}
                // Before PostgreSQL 14: only keepalives free the lock of a vanished holder.
                Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some("42704") => {
                    warn!(
                        "this PostgreSQL has no idle_session_timeout: a hung writer keeps the lease until its connection closes"
                    );
                }
                Err(error) => return Err(error),
            }
        }
        Ok(conn)
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
                *session = Some(self.open().await?);
            }
            match session.as_mut() {
                Some(conn) => {
                    sqlx::query_scalar::<_, bool>(query)
                        .bind(&self.keys)
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

    /// Tells the fence which session holds the lock now.
    async fn hold(&self, session: &mut Option<PgConnection>) -> Result<(), PgError> {
        let Some(conn) = session.as_mut() else {
            self.let_go();
            return Ok(());
        };
        let (pid, started): (i32, DateTime<Utc>) = tokio::time::timeout(
            self.timeout,
            sqlx::query_as(
                "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()",
            )
            .fetch_one(conn),
        )
        .await
        .map_err(|_| timed_out())??;
        let holder = Session { pid, started };
        self.fence.set(Some(holder));
        *self.mine.lock().unwrap_or_else(PoisonError::into_inner) = Some(holder);
        Ok(())
    }

    /// Tells the fence this handle's session no longer holds the lock.
    fn let_go(&self) {
        if let Some(session) = self
            .mine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            self.fence.release(session);
        }
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
        let acquired = self.on_session(&mut session, TRY_LOCKS).await?;
        if acquired {
            self.hold(&mut session).await?;
            info!(keys = ?self.keys, "writer lease acquired");
        } else if self.keys.len() > 1 {
            // Some were taken: all or none.
            self.on_session(&mut session, UNLOCK_ALL).await?;
        }
        Ok(acquired)
    }

    async fn held(&self) -> Result<bool, PgError> {
        let mut session = self.session.lock().await;
        if session.is_none() {
            return Ok(false);
        }
        let held = match self.on_session(&mut session, HOLDS_LOCK).await {
            Ok(true) => return Ok(true),
            Ok(false) => {
                let reason = match session.as_mut() {
                    Some(conn) => {
                        taken_over("its session no longer holds it", conn, &self.keys).await
                    }
                    None => "its session no longer holds it".to_owned(),
                };
                PgError::lease_lost(self.name.clone(), reason)
            }
            Err(error) => {
                warn!(error = %ErrorChain(&error), keys = ?self.keys, "writer lease connection lost");
                PgError::LeaseLost {
                    lease: self.name.clone(),
                    reason: "its session failed: it lapsed (the server ends a session idle for \
                             longer than database.lease_timeout) or its connection was lost"
                        .to_owned(),
                    source: Some(Box::new(error)),
                }
            }
        };
        self.let_go();
        *self.loss.lock().unwrap_or_else(PoisonError::into_inner) = Some(held);
        Ok(false)
    }

    async fn give_up(&self) -> Result<(), PgError> {
        let mut session = self.session.lock().await;
        self.let_go();
        if let Some(mut conn) = session.take() {
            let unlocked = tokio::time::timeout(self.timeout, async {
                sqlx::query("SELECT pg_advisory_unlock_all()")
                    .execute(&mut conn)
                    .await?;
                conn.close().await
            })
            .await;
            match unlocked {
                Ok(Ok(())) => info!(keys = ?self.keys, "writer lease released"),
                // Dropping the connection ends the session, which releases the lock anyway.
                Ok(Err(error)) => {
                    warn!(error = %ErrorChain(&error), "writer lease released by disconnecting")
                }
                Err(_) => warn!("writer lease released by disconnecting after a timeout"),
            }
        }
        Ok(())
    }
}

/// `reason`, followed by which session holds a lock of `keys` now, asked on `conn` (left out when
/// that cannot be told).
pub(crate) async fn taken_over(reason: &str, conn: &mut PgConnection, keys: &[i64]) -> String {
    let holder: Result<Option<i32>, sqlx::Error> = sqlx::query_scalar(HOLDER_NOW)
        .bind(keys)
        .fetch_optional(conn)
        .await;
    match holder {
        Ok(Some(pid)) => format!("{reason}; the session of server process {pid} holds it now"),
        Ok(None) => format!("{reason}, and no session holds it now"),
        Err(_) => reason.to_owned(),
    }
}

/// Whether `holder` still holds the lease of every one of `keys`, asked in the caller's
/// transaction.
pub(crate) async fn still_held(
    tx: &mut PgConnection,
    keys: &[i64],
    holder: Session,
) -> Result<bool, PgError> {
    Ok(sqlx::query_scalar(SESSION_HOLDS_LOCK)
        .bind(keys)
        .bind(holder.pid)
        .bind(holder.started)
        .fetch_one(tx)
        .await?)
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

    async fn lost(&self) -> SourceError {
        let loss = self
            .loss
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        loss.unwrap_or_else(|| {
            PgError::lease_lost(
                self.name.clone(),
                "this process released it, or never took it",
            )
        })
        .into()
    }
}
