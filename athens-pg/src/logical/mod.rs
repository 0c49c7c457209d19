//! [`ChangeSource`] over logical decoding: a publication on the five tables, a replication slot
//! with the `pgoutput` plugin, read through PostgreSQL's SQL interface.
//!
//! # Why the SQL interface, not the streaming replication protocol
//! `poll` calls `pg_logical_slot_peek_binary_changes` (peek: nothing is consumed) and `ack` calls
//! `pg_replication_slot_advance` once the index accepted every change up to a transaction's end.
//! - sqlx, the driver under sea-orm, has no replication connections; a second PostgreSQL client
//!   with a protocol fork would be a second driver to keep, for one query.
//! - The SQL interface returns whole, committed transactions in commit order: "a change is
//!   delivered only after its commit" holds by construction.
//! - The slot is held only during a call. A standby `athens sync` (waiting for the writer lease)
//!   never holds it, and no keepalive or status update is needed while idle: the consumer moves
//!   the slot's confirmed position itself (below), so an idle slot retains no WAL.
//! - A crash replays from the slot's confirmed position, which moves only in `ack`.
//!
//! The price: a peek decodes again from the confirmed position, so changes polled and not yet
//! acknowledged are decoded once per poll. The engine acknowledges each batch before the next
//! poll, so that is one batch, measured in `docs/benchmarks.md`.
//!
//! # Identities and positions
//! A change's [`ChangeId`] is its rank in the stream after the slot's confirmed position, plus the
//! number of changes acknowledged before it in this process: the same change has the same id on
//! every poll until acknowledged. Each transaction remembers the end of its commit record; `ack`
//! advances the slot to the end of the last transaction whose every change is acknowledged.
//! When a poll found nothing up to the WAL flush position it read to, the slot advances there, so
//! writes to other tables are not retained for Athens.
//!
//! # What a change says
//! The same [`Change`]s as the outbox, from the rows' keys (see [`pgoutput`]). Link tables log
//! their whole old row (replica identity full: both keys); the other tables their primary key,
//! and a key change sends the old key too. An UPDATE that rewrites a row with the same values is
//! reported (the old row is not logged, so it cannot be compared): its document is rebuilt under
//! a new version, which is harmless.

pub(crate) mod pgoutput;
mod relay;
mod slot;

use std::collections::BTreeSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use athens_core::{Ack, Backlog, ChangeId, ChangeRecord, ChangeSource, ErrorChain, SourceError};
use chrono::{DateTime, Utc};
use sea_orm::sqlx;
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::config::CaptureConfig;
use crate::error::PgError;
use crate::source::PgSource;
use pgoutput::{Decoder, Event};
pub use relay::{Relay, Relayed};
pub use slot::SlotStatus;
use slot::{SlotState, finish_resync, lsn_text, resync, slot_state};

/// Polling interval while changes flow.
const QUICK_POLL: Duration = Duration::from_millis(50);
/// How long after the last change seen a waiting poll keeps polling quickly.
const LINGER: Duration = Duration::from_millis(500);
/// How often a polling consumer looks at the slot's retained WAL (warning, metrics).
const HEALTH_EVERY: Duration = Duration::from_secs(15);
/// SQLSTATE of a slot another session holds.
const IN_USE: &str = "55006";

/// Most messages a backlog count decodes.
const BACKLOG_LIMIT: i64 = 100_000;
/// Retained WAL of the slot, in bytes.
pub const SLOT_RETAINED_WAL: &str = "athens_capture_slot_retained_wal_bytes";
/// WAL written since the slot's confirmed position, in bytes.
pub const SLOT_LAG: &str = "athens_capture_slot_lag_bytes";

/// Runs `call` again while another session holds the slot (`IN_USE`), every 25 ms up to 40 times,
/// then returns its result.
async fn while_in_use<T, F, Fut>(mut call: F) -> Result<T, PgError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, PgError>>,
{
    let mut attempt = 0;
    loop {
        match call().await {
            Err(error) if error.sqlstate().as_deref() == Some(IN_USE) && attempt < 40 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
}

/// One transaction of the last peek: its changes' ids and where its commit record ends.
#[derive(Debug, Clone, Copy)]
struct Span {
    first: i64,
    count: i64,
    end_lsn: u64,
}

/// Where the consumer stands in the slot's stream.
#[derive(Debug, Default)]
struct Cursor {
    /// The slot's confirmed position as last read or set; `None` until first used.
    confirmed: Option<u64>,
    /// Id of the first change after the confirmed position.
    base: i64,
    /// Transactions of the last peek, in commit order.
    spans: Vec<Span>,
    /// The last peek read every transaction committed before this position.
    complete_to: Option<u64>,
    /// Acknowledged ids the slot has not moved past yet (part of a transaction still pending).
    acked: BTreeSet<i64>,
    /// WAL flush position at the last peek that found nothing: no need to peek again until it moves.
    idle_at: Option<u64>,
}

/// The logical-decoding change source. Build it with [`PgSource::logical`]; the
/// [`DocumentSource`](athens_core::DocumentSource) stays the [`PgSource`].
pub struct LogicalSource {
    source: PgSource,
    slot: String,
    publication: String,
    warn_bytes: u64,
    cursor: tokio::sync::Mutex<Cursor>,
    last_seen: Mutex<Option<Instant>>,
    last_health: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for LogicalSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogicalSource")
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .finish_non_exhaustive()
    }
}

impl PgSource {
    /// The logical-decoding change source of this database (see [`install_logical_capture`]
    /// for what it needs).
    ///
    /// [`install_logical_capture`]: PgSource::install_logical_capture
    pub async fn logical(&self, capture: &CaptureConfig) -> Result<LogicalSource, PgError> {
        capture.validate().map_err(PgError::config)?;
        Ok(LogicalSource {
            slot: self.slot_name(capture).await?,
            publication: capture.publication.clone(),
            warn_bytes: capture.retained_wal_warning_mb.saturating_mul(1 << 20),
            source: self.clone(),
            cursor: tokio::sync::Mutex::new(Cursor::default()),
            last_seen: Mutex::new(None),
            last_health: Mutex::new(None),
        })
    }
}

/// What one peek decoded.
struct Peeked {
    records: Vec<ChangeRecord>,
    spans: Vec<Span>,
    /// Messages returned (the limit counts messages, not changes).
    messages: usize,
    /// Commit time of the first transaction.
    oldest: Option<DateTime<Utc>>,
}

impl LogicalSource {
    /// The slot's name.
    pub fn slot(&self) -> &str {
        &self.slot
    }

    /// The confirmed position, re-creating the slot first if it is missing or was invalidated, and
    /// finishing a re-creation a crash interrupted.
    async fn confirmed(&self, cursor: &mut Cursor) -> Result<u64, PgError> {
        if let Some(confirmed) = cursor.confirmed {
            return Ok(confirmed);
        }
        let pool = self.source.pool();
        finish_resync(pool, &self.slot).await?;
        let confirmed = match slot_state(pool, &self.slot).await? {
            SlotState::Healthy(confirmed) => confirmed,
            SlotState::Foreign(database) => {
                return Err(PgError::Misconfigured(format!(
                    "replication slot {} belongs to database {database}: set capture.slot",
                    self.slot
                )));
            }
            state => {
                let reason = match state {
                    SlotState::Lost => "the server invalidated the slot (max_slot_wal_keep_size)",
                    _ => "the slot does not exist",
                };
                resync(pool, &self.slot, reason).await?;
                match slot_state(pool, &self.slot).await? {
                    SlotState::Healthy(confirmed) => confirmed,
                    _ => return Err(PgError::Invalid("re-created slot unusable".into())),
                }
            }
        };
        *cursor = Cursor {
            confirmed: Some(confirmed),
            base: cursor.base,
            ..Cursor::default()
        };
        Ok(confirmed)
    }

    /// Decodes the stream after the confirmed position: at most `limit` messages (whole
    /// transactions), committed before `upto`. Another session may hold the slot for the
    /// milliseconds of its own call (`athens status` counting the backlog): that is waited out.
    async fn peek(&self, base: i64, upto: u64, limit: i64) -> Result<Peeked, PgError> {
        let rows: Vec<Vec<u8>> = while_in_use(|| async {
            sqlx::query_scalar(
                "SELECT data FROM pg_logical_slot_peek_binary_changes($1, $2::pg_lsn, $3::int, \
                   'proto_version', '1', 'publication_names', $4, 'messages', 'true')",
            )
            .bind(&self.slot)
            .bind(lsn_text(upto))
            .bind(limit)
            .bind(&self.publication)
            .fetch_all(self.source.pool())
            .await
            .map_err(PgError::from)
        })
        .await?;
        let mut decoder = Decoder::default();
        let mut peeked = Peeked {
            records: Vec::new(),
            spans: Vec::new(),
            messages: rows.len(),
            oldest: None,
        };
        let mut next = base;
        let mut first = base;
        let mut committed_at = Utc::now();
        for data in &rows {
            match decoder.decode(data)? {
                Event::Begin { committed_at: at } => {
                    committed_at = at;
                    first = next;
                    peeked.oldest.get_or_insert(at);
                }
                Event::Changes(changes) => {
                    for change in changes {
                        peeked.records.push(ChangeRecord {
                            id: ChangeId(next),
                            change,
                            recorded_at: committed_at,
                        });
                        next += 1;
                    }
                }
                Event::Commit { end_lsn } => peeked.spans.push(Span {
                    first,
                    count: next - first,
                    end_lsn,
                }),
                Event::Skip => {}
            }
        }
        Ok(peeked)
    }

    /// The WAL flush position now.
    async fn flush_lsn(&self) -> Result<u64, PgError> {
        let lsn: i64 =
            sqlx::query_scalar("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
                .fetch_one(self.source.pool())
                .await?;
        Ok(u64::try_from(lsn).unwrap_or_default())
    }

    /// Moves the slot's confirmed position to `lsn`.
    async fn advance(&self, cursor: &mut Cursor, lsn: u64) -> Result<(), PgError> {
        while_in_use(|| async {
            sqlx::query("SELECT pg_replication_slot_advance($1, $2::pg_lsn)")
                .bind(&self.slot)
                .bind(lsn_text(lsn))
                .execute(self.source.pool())
                .await
                .map_err(PgError::from)
        })
        .await?;
        cursor.confirmed = Some(lsn);
        Ok(())
    }

    /// The oldest pending changes, at most `max`, without waiting.
    async fn fetch(&self, max: usize) -> Result<Vec<ChangeRecord>, PgError> {
        let mut cursor = self.cursor.lock().await;
        let result = self.fetch_locked(&mut cursor, max).await;
        if let Err(error) = &result {
            // Whatever failed, read the slot's state again next time: an invalidated or dropped
            // slot is then re-created.
            cursor.confirmed = None;
            debug!(error = %ErrorChain(error), "logical poll failed");
        }
        result
    }

    async fn fetch_locked(
        &self,
        cursor: &mut Cursor,
        max: usize,
    ) -> Result<Vec<ChangeRecord>, PgError> {
        let confirmed = self.confirmed(cursor).await?;
        let upto = self.flush_lsn().await?;
        if cursor.spans.is_empty() && cursor.idle_at == Some(upto) {
            return Ok(Vec::new());
        }
        let wanted = i64::try_from(max.saturating_add(cursor.acked.len())).unwrap_or(i64::MAX);
        let limit = wanted
            .saturating_mul(3)
            .saturating_add(3)
            .min(i64::from(i32::MAX));
        let peeked = self.peek(cursor.base, upto, limit).await?;
        let complete = (peeked.messages as i64) < limit;
        cursor.spans = peeked.spans;
        cursor.complete_to = complete.then_some(upto);
        if cursor.spans.is_empty() {
            cursor.idle_at = complete.then_some(upto);
            if complete && upto > confirmed {
                // Nothing for Athens up to here: let the server recycle that WAL.
                self.advance(cursor, upto).await?;
            }
            return Ok(Vec::new());
        }
        cursor.idle_at = None;
        let acked = &cursor.acked;
        let records: Vec<ChangeRecord> = peeked
            .records
            .into_iter()
            .filter(|record| !acked.contains(&record.id.0))
            .take(max)
            .collect();
        if records.is_empty() {
            // Everything found was acknowledged already (an advance failed after the ack).
            self.advance_acknowledged(cursor).await?;
        }
        Ok(records)
    }

    /// Records `ids` as acknowledged and advances the slot past every transaction now fully
    /// acknowledged.
    async fn acknowledge(&self, ids: &[ChangeId]) -> Result<(), PgError> {
        let mut cursor = self.cursor.lock().await;
        let base = cursor.base;
        cursor
            .acked
            .extend(ids.iter().map(|id| id.0).filter(|id| *id >= base));
        let result = self.advance_acknowledged(&mut cursor).await;
        if result.is_err() {
            cursor.confirmed = None;
        }
        result
    }

    /// Advances the slot to the end of the last transaction whose changes are all acknowledged
    /// (or to where the last peek read up to, when every transaction it found is).
    async fn advance_acknowledged(&self, cursor: &mut Cursor) -> Result<(), PgError> {
        let mut target = None;
        let mut done = 0;
        for span in &cursor.spans {
            if (span.first..span.first + span.count).all(|id| cursor.acked.contains(&id)) {
                target = Some(span.end_lsn);
                done += 1;
            } else {
                break;
            }
        }
        if done == cursor.spans.len() {
            target = cursor.complete_to.or(target);
        }
        let Some(target) = target else {
            return Ok(());
        };
        if cursor
            .confirmed
            .is_some_and(|confirmed| target <= confirmed)
        {
            return Ok(());
        }
        let passed: i64 = cursor.spans[..done].iter().map(|span| span.count).sum();
        self.advance(cursor, target).await?;
        cursor.spans.drain(..done);
        cursor.base += passed;
        let base = cursor.base;
        cursor.acked.retain(|id| *id >= base);
        if cursor.spans.is_empty() {
            cursor.complete_to = None;
        }
        debug!(slot = %self.slot, lsn = %lsn_text(target), "slot advanced");
        Ok(())
    }

    /// Looks at the slot's retained WAL now and then: publishes it as metrics, warns past the
    /// threshold.
    async fn watch_health(&self) {
        let now = Instant::now();
        {
            let mut last = self
                .last_health
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| now.duration_since(at) < HEALTH_EVERY) {
                return;
            }
            *last = Some(now);
        }
        let capture = CaptureConfig {
            slot: Some(self.slot.clone()),
            ..CaptureConfig::logical()
        };
        match self.source.slot_status(&capture).await {
            Ok(Some(status)) => {
                let retained = status.retained_bytes.unwrap_or_default();
                metrics::gauge!(SLOT_RETAINED_WAL).set(retained as f64);
                metrics::gauge!(SLOT_LAG).set(status.lag_bytes.unwrap_or_default() as f64);
                if retained > self.warn_bytes {
                    warn!(
                        slot = %self.slot,
                        retained_bytes = retained,
                        threshold_bytes = self.warn_bytes,
                        "the replication slot retains much WAL: is the consumer keeping up?"
                    );
                }
            }
            Ok(None) => {}
            Err(error) => debug!(error = %ErrorChain(&error), "could not read the slot's status"),
        }
    }

    fn flowing(&self, now: Instant) -> bool {
        self.last_seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|seen| now.duration_since(seen) < LINGER)
    }

    async fn count_backlog(&self) -> Result<Backlog, PgError> {
        let (dead_letters, last_ack_at): (i64, Option<DateTime<Utc>>) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM athens.dead_letters), \
                    (SELECT last_ack_at FROM athens.consumer)",
        )
        .fetch_one(self.source.pool())
        .await?;
        let cursor = self.cursor.lock().await;
        // Read-only (`athens status` calls it too): a missing or invalidated slot is reported
        // by the slot's status and re-created by the consumer, not here.
        if !matches!(
            slot_state(self.source.pool(), &self.slot).await?,
            SlotState::Healthy(_)
        ) {
            return Ok(Backlog {
                dead_letters: u64::try_from(dead_letters).unwrap_or_default(),
                last_ack_at,
                ..Backlog::default()
            });
        }
        let upto = self.flush_lsn().await?;
        let peeked = self.peek(cursor.base, upto, BACKLOG_LIMIT).await?;
        let pending = peeked
            .records
            .iter()
            .filter(|record| !cursor.acked.contains(&record.id.0))
            .count();
        let oldest_age = peeked
            .oldest
            .filter(|_| pending > 0)
            .and_then(|at| (Utc::now() - at).to_std().ok());
        Ok(Backlog {
            pending: pending as u64,
            oldest_age,
            dead_letters: u64::try_from(dead_letters).unwrap_or_default(),
            last_ack_at,
            partition: None,
        })
    }
}

#[async_trait]
impl ChangeSource for LogicalSource {
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let deadline = crate::changes::poll_deadline(wait);
        loop {
            let batch = self.fetch(max).await?;
            let now = Instant::now();
            if !batch.is_empty() {
                *self
                    .last_seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(now);
                return Ok(batch);
            }
            self.watch_health().await;
            if now >= deadline {
                return Ok(batch);
            }
            let interval = if self.flowing(now) {
                QUICK_POLL
            } else {
                self.source.config().poll_interval
            };
            tokio::time::sleep(interval.min(deadline - now)).await;
        }
    }

    async fn ack(&self, ack: &Ack) -> Result<(), SourceError> {
        if ack.is_empty() {
            return Ok(());
        }
        // Dead letters and the ack time first, then the slot: a crash between the two replays the
        // changes, which records the same dead letters again (harmless), never loses one.
        self.source
            .record_ack(!ack.changes.is_empty(), &ack.dead_letters)
            .await?;
        if !ack.changes.is_empty() {
            self.acknowledge(&ack.changes).await?;
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, SourceError> {
        Ok(self.count_backlog().await?)
    }
}
