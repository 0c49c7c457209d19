//! [`ChangeSource`] over the outbox: `poll` reads the oldest pending rows (no high-water mark, so a
//! transaction that took its outbox ids early but committed late is never skipped), `ack` deletes
//! exactly the acknowledged ids and records dead letters in the same transaction.
//!
//! Waiting polls wake up on `NOTIFY athens_outbox` through a listener task, and look at the outbox
//! every `poll_interval` anyway, so a lost notification costs at most one interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use athens_core::partition::Partition;
use athens_core::{
    Ack, Backlog, Change, ChangeId, ChangeRecord, ChangeSource, DeadLetter, ErrorChain,
    SourceError, Table,
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::sqlx::postgres::PgRow;
use sea_orm::sqlx::{
    self, AssertSqlSafe, Connection, FromRow, PgConnection, PgPool, Postgres, Row as _,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::capture::CHANNEL;
use crate::consumer;
use crate::cursor::{Cursor, Seen};
use crate::error::PgError;
use crate::source::{PgSource, Scope};
use crate::tables;

/// Above this many pending rows, `backlog` estimates the count from the planner's statistics.
const EXACT_COUNT_LIMIT: i64 = 100_000;
/// How long after the last change seen a waiting poll keeps polling quickly instead of asking
/// writers to notify.
const LINGER: Duration = Duration::from_millis(500);
/// Polling interval while changes flow.
const QUICK_POLL: Duration = Duration::from_millis(50);
/// Acknowledged changes between two vacuums of the outbox.
const VACUUM_EVERY: u64 = 50_000;

type OutboxRow = (
    i64,
    String,
    bool,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    DateTime<Utc>,
);

/// The notification listener of one database's outbox: one pooled connection running `LISTEN`,
/// started by the first poll that waits and stopped when the last source sharing it is dropped.
/// The views of one outbox (the whole of it, each partition's: see [`PgSource::partition`]) share
/// it: the triggers notify one channel, so each view's waiting poll wakes on every notification and
/// looks at its own rows, and a process writing `P` partitions holds one `LISTEN` connection, not
/// `P`.
#[derive(Default)]
pub(crate) struct Notifications {
    /// Bumped whenever the outbox may have new rows (a notification, a reconnect).
    wake: Arc<watch::Sender<u64>>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Notifications {
    fn task(&self) -> MutexGuard<'_, Option<JoinHandle<()>>> {
        self.task.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Stops the listener task, if it runs.
    fn stop(&self) {
        if let Some(task) = self.task().take() {
            task.abort();
        }
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The outbox consumer's state, shared by the clones of a [`PgSource`]: the notifications it
/// waits for (shared with the other views of the outbox too), and the counters and the cursor its
/// polls and acks keep.
#[derive(Default)]
pub(crate) struct Listener {
    notifications: Arc<Notifications>,
    /// Changes acknowledged since the outbox was last vacuumed.
    acked: AtomicU64,
    /// Whether a vacuum of the outbox runs now.
    vacuuming: AtomicBool,
    /// When a poll last returned changes.
    last_seen: Mutex<Option<Instant>>,
    /// Where polls start scanning the outbox.
    cursor: Cursor,
}

impl Listener {
    /// The state of another view of the same outbox: its notifications, and counters and a
    /// cursor of its own.
    pub(crate) fn sharing(other: &Listener) -> Listener {
        Listener {
            notifications: other.notifications.clone(),
            ..Listener::default()
        }
    }

    /// Stops the listener task, if it runs.
    pub(crate) fn stop(&self) {
        self.notifications.stop();
    }

    /// Records that a poll returned changes at `now`.
    fn seen_changes(&self, now: Instant) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(now);
    }

    /// Whether a poll returned changes within the last [`LINGER`].
    fn changes_flowing(&self, now: Instant) -> bool {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|seen| now.duration_since(seen) < LINGER)
    }
}

/// A poll's row: the capture's partition count (in a partition's poll only), the snapshot's xmin
/// and the outbox's oid, then an outbox row (`None` when the outbox has none at or above the floor).
struct PolledRow {
    partitions: Option<i32>,
    xmin: i64,
    table: i64,
    row: Option<OutboxRow>,
}

impl FromRow<'_, PgRow> for PolledRow {
    fn from_row(row: &PgRow) -> Result<Self, sqlx::Error> {
        let partitions = match row.try_get("partitions") {
            Err(sqlx::Error::ColumnNotFound(_)) => None,
            found => Some(found?),
        };
        let id: Option<i64> = row.try_get("id")?;
        let outbox = match id {
            None => None,
            Some(id) => Some((
                id,
                row.try_get("source_table")?,
                row.try_get("truncated")?,
                row.try_get("project_id")?,
                row.try_get("user_id")?,
                row.try_get("hashtag_id")?,
                row.try_get("recorded_at")?,
            )),
        };
        Ok(Self {
            partitions,
            xmin: row.try_get("xmin")?,
            table: row.try_get("outbox")?,
            row: outbox,
        })
    }
}

/// Fails unless the capture writes `expected` partitions (it says `captured`).
pub(crate) fn check_partitions(captured: i32, expected: u32) -> Result<(), PgError> {
    if i64::from(captured) == i64::from(expected) {
        return Ok(());
    }
    Err(PgError::Misconfigured(format!(
        "the change capture writes {captured} partition(s) (athens setup ran with \
         capture.partitions = {captured}), this writer was started with {expected}: run every \
         athens sync with capture.partitions = {captured}, or set it to {expected} and run \
         athens setup (which rebuilds the index if changes are pending)"
    )))
}

/// When a `poll` waiting up to `wait` from now gives up: a day from now when `wait` is too large
/// to add to the clock.
pub(crate) fn poll_deadline(wait: Duration) -> Instant {
    let started = Instant::now();
    started
        .checked_add(wait)
        .unwrap_or_else(|| started + Duration::from_secs(86_400))
}

/// Turns an outbox row into a change, read from the outbox columns of the table's keys (see
/// [`SourceTable::change`](crate::tables::SourceTable::change)); a row that names no known table
/// or lacks its leading key breaks the capture's contract.
///
/// A link row whose project is known but whose other key is NULL (a database Athens attaches to
/// may allow one) becomes a change of the project rather than an error that would stall every
/// later change.
fn decode(row: OutboxRow) -> Result<ChangeRecord, PgError> {
    let (id, source_table, truncated, project, user, hashtag, recorded_at) = row;
    let invalid = || PgError::Invalid(format!("outbox row {id} ({source_table}) lacks its keys"));
    let table = Table::from_name(&source_table).ok_or_else(|| {
        PgError::Invalid(format!(
            "outbox row {id} names unknown table {source_table:?}"
        ))
    })?;
    let change = if truncated {
        Change::Truncate { table }
    } else {
        let source = tables::table(table);
        let keys: Vec<Option<i64>> = source
            .keys
            .iter()
            .map(|key| match key.outbox {
                "project_id" => project,
                "user_id" => user,
                "hashtag_id" => hashtag,
                _ => None,
            })
            .collect();
        source.change(&keys).ok_or_else(invalid)?
    };
    Ok(ChangeRecord {
        id: ChangeId(id),
        change,
        recorded_at,
    })
}

impl PgSource {
    /// The oldest pending changes, at most `max`, read from the cursor's floor on (see
    /// [`crate::cursor`]).
    async fn fetch(&self, max: usize) -> Result<Vec<ChangeRecord>, PgError> {
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        loop {
            let floor = self.inner.changes.cursor.floor();
            // The horizon and the rows in one statement: one snapshot.
            let rows: Vec<PolledRow> = match self.inner.scope {
                Scope::Partition(partition) => {
                    self.fetch_partition(partition, limit, floor.0).await?
                }
                Scope::Whole | Scope::Every(_) => {
                    sqlx::query_as(
                        "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                            'athens.outbox'::regclass::oid::bigint AS outbox, \
                            o.id, o.source_table, o.op = 'T' AS truncated, o.project_id, \
                            o.user_id, o.hashtag_id, o.recorded_at \
                     FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
                         SELECT * FROM athens.outbox WHERE id >= $2 ORDER BY id LIMIT $1) AS o \
                     ON true ORDER BY o.id",
                    )
                    .bind(limit)
                    .bind(floor.0)
                    .fetch_all(self.pool())
                    .await?
                }
            };
            let Some(&PolledRow { xmin, table, .. }) = rows.first() else {
                return Ok(Vec::new());
            };
            let records: Vec<OutboxRow> =
                rows.into_iter().filter_map(|polled| polled.row).collect();
            let seen = Seen {
                table,
                xmin,
                first: records.first().map(|row| row.0),
            };
            if self.inner.changes.cursor.saw(floor, seen) {
                return records.into_iter().map(decode).collect();
            }
        }
    }

    /// [`fetch`](Self::fetch)'s rows of one partition, once the capture is found writing as many
    /// partitions as `partition` says: a writer started for another count would take rows routed
    /// for other projects.
    async fn fetch_partition(
        &self,
        partition: Partition,
        limit: i64,
        floor: i64,
    ) -> Result<Vec<PolledRow>, PgError> {
        let rows: Vec<PolledRow> = sqlx::query_as(
            "SELECT athens.partitions() AS partitions, \
                    pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin, \
                    'athens.outbox'::regclass::oid::bigint AS outbox, \
                    o.id, o.source_table, o.op = 'T' AS truncated, o.project_id, o.user_id, \
                    o.hashtag_id, o.recorded_at \
             FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
                 SELECT * FROM athens.outbox WHERE partition = $3 AND id >= $2 \
                 ORDER BY id LIMIT $1) AS o \
             ON true ORDER BY o.id",
        )
        .bind(limit)
        .bind(floor)
        .bind(i64::from(partition.index()))
        .fetch_all(self.pool())
        .await?;
        if let Some(captured) = rows.first().and_then(|row| row.partitions) {
            check_partitions(captured, partition.count().get())?;
        }
        Ok(rows)
    }

    /// Tells writers that a consumer waits for up to `wait` (plus a second): their triggers notify
    /// until then, or until [`disarm`](Self::disarm).
    async fn arm(&self, wait: Duration) -> Result<(), PgError> {
        let millis = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        sqlx::query(
            "SELECT setval('athens.wakeup', greatest( \
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint + $1, \
                 coalesce(pg_sequence_last_value('athens.wakeup'), 1)))",
        )
        .bind(millis.saturating_add(1000))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Tells writers that no consumer waits any more, so they stop notifying. A failure only costs
    /// notifications until the request expires.
    ///
    /// The register is one for the whole outbox. The writer of one partition leaves it as it is:
    /// the writers of the other partitions may be waiting on it, and clearing it would leave an idle
    /// partition without the notification of its own change for up to `poll_interval`. Their
    /// requests expire by themselves, a second after the longest wait.
    async fn disarm(&self) {
        if matches!(self.inner.scope, Scope::Partition(_)) {
            return;
        }
        let cleared = sqlx::query("SELECT setval('athens.wakeup', 1, false)")
            .execute(self.pool())
            .await;
        if let Err(error) = cleared {
            warn!(error = %ErrorChain(&error), "could not clear the wake-up request");
        }
    }

    /// Starts the notification listener unless it runs already.
    fn ensure_listener(&self) {
        let mut task = self.inner.changes.notifications.task();
        if task.as_ref().is_some_and(|task| !task.is_finished()) {
            return;
        }
        let pool = self.pool().clone();
        let wake = self.inner.changes.notifications.wake.clone();
        let retry = self.config().poll_interval.max(Duration::from_millis(100));
        *task = Some(tokio::spawn(listen(pool, wake, retry)));
    }

    async fn ack_changes(&self, ack: &Ack) -> Result<(), PgError> {
        if ack.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = ack.changes.iter().map(|id| id.0).collect();
        let mut tx = self.fenced_transaction().await?;
        let mut candidate = None;
        if !ids.is_empty() {
            // The sequence's last value before this transaction takes an id, then its id: a
            // candidate floor for polls (see `crate::cursor`).
            let (table, last): (i64, Option<i64>) = sqlx::query_as(
                "SELECT 'athens.outbox'::regclass::oid::bigint, \
                 athens.outbox_last_id()",
            )
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM athens.outbox WHERE id = ANY($1)")
                .bind(&ids)
                .execute(&mut *tx)
                .await?;
            let xid: i64 = sqlx::query_scalar("SELECT pg_current_xact_id()::text::bigint")
                .fetch_one(&mut *tx)
                .await?;
            candidate = Some((table, last, xid));
        }
        let lease_key = self.config().lease_key;
        let previous =
            record_ack(&mut tx, !ids.is_empty(), &ack.dead_letters, Some(lease_key)).await?;
        tx.commit().await?;
        consumer::note(previous, lease_key);
        if let Some((table, last, xid)) = candidate {
            self.inner.changes.cursor.acknowledged(table, last, xid);
        }
        debug!(
            changes = ids.len(),
            dead_letters = ack.dead_letters.len(),
            "changes acknowledged"
        );
        self.vacuum_when_due(ids.len() as u64);
        Ok(())
    }

    /// Vacuums the outbox every [`VACUUM_EVERY`] acknowledged changes, in the background. Polls and
    /// writers' index scans start at the oldest entries; vacuuming often keeps them from walking
    /// over the dead entries acknowledged changes leave behind, whatever autovacuum's schedule.
    /// Needs the role that owns the outbox; otherwise PostgreSQL skips it with a warning.
    ///
    /// The vacuum runs on a session of its own without `statement_timeout`: on a large outbox (a
    /// drained multi-day backlog) it may take longer than any timeout suited to the pool's
    /// statements, and a cancelled vacuum leaves every dead entry behind. One runs at a time.
    fn vacuum_when_due(&self, acknowledged: u64) {
        let total = self
            .inner
            .changes
            .acked
            .fetch_add(acknowledged, Ordering::Relaxed)
            + acknowledged;
        if total < VACUUM_EVERY || self.inner.changes.vacuuming.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.changes.acked.store(0, Ordering::Relaxed);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match vacuum(&inner.config).await {
                Ok(()) => debug!(seconds = started.elapsed().as_secs_f64(), "outbox vacuumed"),
                Err(error) => warn!(error = %ErrorChain(&error), "could not vacuum the outbox"),
            }
            inner.changes.vacuuming.store(false, Ordering::Release);
        });
    }

    async fn read_backlog(&self) -> Result<Backlog, PgError> {
        // The oldest row and a count capped at EXACT_COUNT_LIMIT walk the primary key only. Past the
        // cap, the planner's estimate (kept fresh by vacuum), bounded by the capped count below and
        // the id span above, is close enough: an exact count of a million rows takes ~100 ms.
        type Row = (
            i64,
            Option<f64>,
            i64,
            f64,
            Option<i64>,
            Option<DateTime<Utc>>,
        );
        let floor = self.inner.changes.cursor.floor().0;
        let query = "SELECT \
                   (SELECT count(*) FROM (SELECT 1 FROM athens.outbox WHERE id >= $2 LIMIT $1) \
                      AS capped), \
                   (SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8 \
                      FROM athens.outbox WHERE id >= $2 ORDER BY id LIMIT 1), \
                   (SELECT count(*) FROM athens.dead_letters), \
                   (SELECT reltuples::float8 FROM pg_class \
                      WHERE oid = 'athens.outbox'::regclass), \
                   (SELECT max(id) - min(id) + 1 FROM athens.outbox WHERE id >= $2), \
                   (SELECT last_ack_at FROM athens.consumer)";
        let row: Row = match self.inner.scope {
            Scope::Partition(partition) => {
                sqlx::query_as(AssertSqlSafe(
                    query.replace("WHERE id >= $2", "WHERE partition = $3 AND id >= $2"),
                ))
                .bind(EXACT_COUNT_LIMIT)
                .bind(floor)
                .bind(i64::from(partition.index()))
                .fetch_one(self.pool())
                .await?
            }
            Scope::Whole | Scope::Every(_) => {
                sqlx::query_as(query)
                    .bind(EXACT_COUNT_LIMIT)
                    .bind(floor)
                    .fetch_one(self.pool())
                    .await?
            }
        };
        let (capped, oldest_age, dead_letters, estimate, span, last_ack_at) = row;
        let span = span.unwrap_or(capped);
        let pending = if capped < EXACT_COUNT_LIMIT {
            capped
        } else if estimate < 0.0 {
            // Never vacuumed or analysed yet: the id span is the best bound there is.
            span
        } else {
            (estimate as i64).min(span).max(capped)
        };
        Ok(Backlog {
            pending: u64::try_from(pending).unwrap_or_default(),
            oldest_age: oldest_age
                .and_then(|seconds| Duration::try_from_secs_f64(seconds.max(0.0)).ok()),
            dead_letters: u64::try_from(dead_letters).unwrap_or_default(),
            last_ack_at,
            partition: match self.inner.scope {
                Scope::Partition(partition) => Some(partition),
                Scope::Whole | Scope::Every(_) => None,
            },
        })
    }
}

/// `VACUUM (SKIP_LOCKED) athens.outbox` on a session of its own, without a statement timeout.
async fn vacuum(config: &crate::config::PgConfig) -> Result<(), PgError> {
    let mut conn = PgConnection::connect_with(&config.connect_options()?).await?;
    let vacuumed = async {
        sqlx::query("SET statement_timeout = 0")
            .execute(&mut conn)
            .await?;
        sqlx::query("VACUUM (SKIP_LOCKED) athens.outbox")
            .execute(&mut conn)
            .await
    }
    .await;
    drop(conn.close().await);
    vacuumed?;
    Ok(())
}

/// Records dead letters and, when changes were acknowledged, the time of the acknowledgement and
/// the consumer's `lease_key` (the outbox mode's; see `consumer`), in the caller's transaction.
/// Returns the lease key recorded before.
async fn record_ack(
    tx: &mut sqlx::PgConnection,
    acknowledged: bool,
    dead_letters: &[DeadLetter],
    lease_key: Option<i64>,
) -> Result<Option<i64>, PgError> {
    // One row per project, the last reason winning: a statement may not update a row twice.
    let letters: BTreeMap<i64, &str> = dead_letters
        .iter()
        .map(|letter| (letter.project.0, letter.reason.as_str()))
        .collect();
    let projects: Vec<i64> = letters.keys().copied().collect();
    let reasons: Vec<&str> = letters.values().copied().collect();
    let mut previous = None;
    if acknowledged {
        previous = sqlx::query_scalar(
            "WITH previous AS (SELECT lease_key FROM athens.consumer) \
             INSERT INTO athens.consumer AS c (last_ack_at, lease_key) VALUES (now(), $1) \
             ON CONFLICT (singleton) DO UPDATE SET last_ack_at = excluded.last_ack_at, \
               lease_key = coalesce(excluded.lease_key, c.lease_key) \
             RETURNING (SELECT lease_key FROM previous)",
        )
        .bind(lease_key)
        .fetch_one(&mut *tx)
        .await?;
    }
    if !projects.is_empty() {
        sqlx::query(
            "INSERT INTO athens.dead_letters AS d (project_id, reason) \
             SELECT * FROM unnest($1::bigint[], $2::text[]) \
             ON CONFLICT (project_id) DO UPDATE \
             SET reason = excluded.reason, attempts = d.attempts + 1, recorded_at = now()",
        )
        .bind(&projects)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    Ok(previous)
}

impl PgSource {
    /// A transaction for an acknowledgement, in which the writer lease taken through this source
    /// (if any) was found still held. Fenced so: a writer whose lease lapsed while it hung, and
    /// that a standby may have replaced, acknowledges nothing, however late it wakes up.
    pub(crate) async fn fenced_transaction(
        &self,
    ) -> Result<sqlx::Transaction<'static, Postgres>, PgError> {
        let holder = self.inner.fence.required(|| self.lease_name())?;
        let mut tx = self.pool().begin().await?;
        let keys = self.lease_keys();
        if let Some(holder) = holder
            && !crate::lease::still_held(&mut tx, &keys, holder).await?
        {
            self.inner.fence.lost(holder);
            let reason = format!(
                "the session of server process {} no longer holds it",
                holder.pid
            );
            let reason = crate::lease::taken_over(&reason, &mut tx, &keys).await;
            return Err(PgError::lease_lost(self.lease_name(), reason));
        }
        Ok(tx)
    }

    /// Records dead letters and the acknowledgement time in one transaction (the logical mode's
    /// half of an ack; the slot moves separately), fenced like an outbox acknowledgement.
    pub(crate) async fn record_ack(
        &self,
        acknowledged: bool,
        dead_letters: &[DeadLetter],
    ) -> Result<(), PgError> {
        let mut tx = self.fenced_transaction().await?;
        record_ack(&mut tx, acknowledged, dead_letters, None).await?;
        tx.commit().await?;
        Ok(())
    }
}

/// Keeps a `LISTEN` open and bumps `wake` on every notification and on every (re)connection, since
/// notifications sent while disconnected are lost. Ends when the pool closes.
async fn listen(pool: PgPool, wake: Arc<watch::Sender<u64>>, retry: Duration) {
    let bump = || wake.send_modify(|n| *n = n.wrapping_add(1));
    let mut failures: u32 = 0;
    loop {
        if failures > 0 {
            // Back off up to 32 intervals while the database is away; waiting polls keep polling.
            tokio::time::sleep(retry * 2u32.pow(failures.min(5))).await;
        }
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(sqlx::Error::PoolClosed) => return,
            Err(error) => {
                failures += 1;
                warn!(error = %ErrorChain(&error), failures, "cannot open the change listener, polling meanwhile");
                continue;
            }
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            failures += 1;
            warn!(error = %ErrorChain(&error), failures, "cannot LISTEN for changes, polling meanwhile");
            continue;
        }
        debug!(channel = CHANNEL, "listening for changes");
        failures = 0;
        bump();
        loop {
            match listener.try_recv().await {
                Ok(Some(_)) => bump(),
                // The connection dropped and was re-established: look at the outbox again.
                Ok(None) => bump(),
                Err(sqlx::Error::PoolClosed) => return,
                Err(error) => {
                    failures += 1;
                    warn!(error = %ErrorChain(&error), "change listener failed, reconnecting");
                    break;
                }
            }
        }
    }
}

#[async_trait]
impl ChangeSource for PgSource {
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = poll_deadline(wait);
        let mut woken = self.inner.changes.notifications.wake.subscribe();
        if !wait.is_zero() {
            self.ensure_listener();
        }
        let mut armed = false;
        loop {
            woken.borrow_and_update();
            let batch = self.fetch(max).await?;
            let now = Instant::now();
            if !batch.is_empty() {
                self.inner.changes.seen_changes(now);
            }
            if !batch.is_empty() || now >= deadline {
                if armed {
                    self.disarm().await;
                }
                return Ok(batch);
            }
            // While changes flow, poll quickly instead of asking writers to notify: a NOTIFY in every
            // commit would serialise them. Only an idle consumer asks for notifications.
            let flowing = self.inner.changes.changes_flowing(now);
            if !flowing && !armed {
                // Ask writers to notify, then look once more: a change committed before they could
                // see the request would otherwise wait for the next polling round.
                self.arm(deadline - now).await?;
                armed = true;
                continue;
            }
            let interval = if flowing {
                QUICK_POLL
            } else {
                self.config().poll_interval
            };
            let nap = interval.min(deadline - now);
            tokio::select! {
                changed = woken.changed() => {
                    if changed.is_err() {
                        tokio::time::sleep(nap).await;
                    }
                }
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack(&self, ack: &Ack) -> Result<(), SourceError> {
        Ok(self.ack_changes(ack).await?)
    }

    async fn backlog(&self) -> Result<Backlog, SourceError> {
        Ok(self.read_backlog().await?)
    }

    async fn capture_health(&self) -> Result<(), SourceError> {
        if let Some(capture) = &self.inner.relayed {
            return Ok(self.check_logical_capture(capture).await?);
        }
        Ok(PgSource::check_capture(self).await?)
    }
}

#[cfg(test)]
mod tests {
    use athens_core::{ProjectId, UserId};

    use super::*;

    fn row(
        table: &str,
        project: Option<i64>,
        user: Option<i64>,
        hashtag: Option<i64>,
    ) -> OutboxRow {
        let truncated = project.is_none() && user.is_none() && hashtag.is_none();
        (
            1,
            table.into(),
            truncated,
            project,
            user,
            hashtag,
            Utc::now(),
        )
    }

    #[test]
    fn rows_decode_into_changes() {
        let change = |row| decode(row).map(|record| record.change).ok();
        assert_eq!(
            change(row("user_projects", Some(3), Some(4), None)),
            Some(Change::UserProject {
                project: ProjectId(3),
                user: UserId(4)
            })
        );
        assert_eq!(
            change(row("hashtags", None, None, None)),
            Some(Change::Truncate {
                table: Table::Hashtags
            })
        );
        assert_eq!(
            change(row("project_hashtags", Some(1), None, None)),
            Some(Change::Project {
                project: ProjectId(1)
            }),
            "a link to a NULL hashtag touches its project only"
        );
        assert!(decode(row("user_projects", None, Some(1), None)).is_err());
        assert!(decode(row("orders", Some(1), None, None)).is_err());
    }
}
