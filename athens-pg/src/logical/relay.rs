//! The relay of the logical mode with partitions (`capture.partitions` > 1): one consumer of the
//! slot decodes it and writes every change into `athens.outbox` as the outbox triggers of `P`
//! partitions would (a project's row in its partition, a user's or hashtag's row once per
//! partition, a truncate once with partition `-1`), then moves the slot past what it committed.
//! From there each partition's writer is the outbox mode's ([`PgSource::partition`]): the slot
//! retains WAL only while the relay is behind, a partition that lags retains outbox rows.
//!
//! # Delivery
//! [`Relay::relay`] inserts the rows of every whole transaction of one peek in one database
//! transaction, which also moves `athens.relay.end_lsn` to the end of the last of them;
//! [`Relay::confirm`] then advances the slot. A crash between the two replays those transactions on
//! the next peek: the row of `athens.relay`, locked by the relaying transaction, says they are in
//! the outbox already, and they are skipped. Two relays at once (a holder whose lease lapsed while
//! it hung) serialise on that lock and skip each other's transactions, so the relay lease
//! ([`PgSource::relay_lease`]) saves work, it does not guard correctness.
//!
//! The relaying transaction takes its transaction id before its first outbox id, as a trigger's
//! does: the partitions' poll floors rely on it (see `crate::cursor`).

use std::num::NonZeroU32;

use athens_core::Change;
use sea_orm::sqlx;
use tracing::debug;

use super::slot::lsn_text;
use super::{Cursor, LogicalSource, Peeked, while_in_use};
use crate::config::CaptureConfig;
use crate::error::PgError;
use crate::lease::PgLease;
use crate::source::PgSource;

/// The relay's own objects: where it stands in the slot's stream.
pub(crate) const RELAY_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS athens.relay (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    end_lsn bigint NOT NULL
);
COMMENT ON TABLE athens.relay IS 'End of the last decoded transaction whose changes the relay wrote into athens.outbox';
INSERT INTO athens.relay (end_lsn) VALUES (0) ON CONFLICT (singleton) DO NOTHING;
"#;

/// The bit xor'ed into `database.lease_key` for the relay's lease: below the partitions' bits
/// (48 and up, see `crate::source::partition_lease_key`), above the default key.
const RELAY_KEY_BIT: i64 = 1 << 47;

/// The outbox rows of decoded changes, as parallel arrays for one `INSERT .. SELECT FROM unnest`.
#[derive(Debug, Default)]
struct Rows {
    tables: Vec<&'static str>,
    truncates: Vec<bool>,
    projects: Vec<Option<i64>>,
    users: Vec<Option<i64>>,
    hashtags: Vec<Option<i64>>,
    recorded_at: Vec<chrono::DateTime<chrono::Utc>>,
}

impl Rows {
    /// Adds the row of `change`: its table and the keys the outbox triggers would write.
    fn push(&mut self, change: &Change, recorded_at: chrono::DateTime<chrono::Utc>) {
        let (table, project, user, hashtag) = match *change {
            Change::Project { project } => ("projects", Some(project.0), None, None),
            Change::User { user } => ("users", None, Some(user.0), None),
            Change::Hashtag { hashtag } => ("hashtags", None, None, Some(hashtag.0)),
            Change::ProjectHashtag { project, hashtag } => {
                ("project_hashtags", Some(project.0), None, Some(hashtag.0))
            }
            Change::UserProject { project, user } => {
                ("user_projects", Some(project.0), Some(user.0), None)
            }
            Change::Truncate { table } => (table.as_str(), None, None, None),
        };
        self.tables.push(table);
        self.truncates
            .push(matches!(change, Change::Truncate { .. }));
        self.projects.push(project);
        self.users.push(user);
        self.hashtags.push(hashtag);
        self.recorded_at.push(recorded_at);
    }
}

/// Writes the rows into the outbox for `partitions` partitions, routed as the triggers route
/// theirs, in the order given.
const INSERT_ROWS: &str = "INSERT INTO athens.outbox \
        (source_table, op, project_id, user_id, hashtag_id, recorded_at, partition) \
    SELECT c.source_table, CASE WHEN c.truncated THEN 'T' ELSE 'U' END::\"char\", \
           c.project_id, c.user_id, c.hashtag_id, c.recorded_at, part.partition \
    FROM unnest($1::text[], $2::boolean[], $3::bigint[], $4::bigint[], $5::bigint[], \
                $6::timestamptz[]) WITH ORDINALITY \
         AS c(source_table, truncated, project_id, user_id, hashtag_id, recorded_at, n) \
    CROSS JOIN LATERAL ( \
        SELECT -1 AS partition WHERE c.truncated \
        UNION ALL \
        SELECT athens.partition_of(c.project_id, $7) WHERE NOT c.truncated AND c.project_id IS NOT NULL \
        UNION ALL \
        SELECT generate_series(0, $7 - 1) WHERE NOT c.truncated AND c.project_id IS NULL) AS part \
    ORDER BY c.n, part.partition";

/// What one [`Relay::relay`] did, and where [`Relay::confirm`] moves the slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Decoded transactions written into the outbox.
    pub transactions: usize,
    /// Decoded transactions skipped: an earlier relay had written them (a crash before it
    /// confirmed them, or another relay at once).
    pub skipped: usize,
    /// Outbox rows inserted.
    pub rows: u64,
    /// Where the slot may move: the end of the last transaction peeked, or the WAL flush position
    /// the peek read every transaction up to; `None`: nothing to move.
    pub confirm_to: Option<u64>,
}

/// The consumer of the slot that feeds the partitions' outbox (see the module documentation).
/// Build it with [`PgSource::relay`].
#[derive(Debug)]
pub struct Relay {
    logical: LogicalSource,
    partitions: NonZeroU32,
}

impl PgSource {
    /// The relay of this database's slot into the outbox of `capture.partitions` partitions.
    pub async fn relay(&self, capture: &CaptureConfig) -> Result<Relay, PgError> {
        Ok(Relay {
            logical: self.logical(capture).await?,
            partitions: capture.partitions,
        })
    }

    /// The relay's lease: one advisory lock of its own (`database.lease_key` with bit 47 flipped),
    /// on its own connection. Not tied to a partition's: the relay keeps the slot moving while the
    /// partitions' writers hand their leases over or give them all to a rebuild.
    pub async fn relay_lease(&self) -> Result<PgLease, PgError> {
        let key = self.config().lease_key ^ RELAY_KEY_BIT;
        PgLease::fenced(
            self.config(),
            std::sync::Arc::default(),
            vec![key],
            format!("the relay lease (advisory lock {key})"),
        )
        .await
    }
}

impl Relay {
    /// The slot's name.
    pub fn slot(&self) -> &str {
        self.logical.slot()
    }

    /// Writes the changes of the next whole transactions of the slot (at most about `max`
    /// changes' messages, at least one transaction) into the outbox and commits, without moving
    /// the slot: [`confirm`](Self::confirm) does, with what this returns.
    pub async fn relay(&self, max: usize) -> Result<Relayed, PgError> {
        let mut cursor = self.logical.cursor.lock().await;
        let result = self.relay_locked(&mut cursor, max).await;
        if result.is_err() {
            cursor.confirmed = None;
        }
        result
    }

    async fn relay_locked(&self, cursor: &mut Cursor, max: usize) -> Result<Relayed, PgError> {
        let confirmed = self.logical.confirmed(cursor).await?;
        let upto = self.logical.flush_lsn().await?;
        if cursor.idle_at == Some(upto) {
            return Ok(Relayed::default());
        }
        let limit = i64::try_from(max)
            .unwrap_or(i64::MAX)
            .saturating_mul(3)
            .saturating_add(3)
            .min(i64::from(i32::MAX));
        let peeked = self.logical.peek(cursor.base, upto, limit).await?;
        let complete = (peeked.messages as i64) < limit;
        let Some(last) = peeked.spans.last() else {
            cursor.idle_at = complete.then_some(upto);
            let confirm_to = (complete && upto > confirmed).then_some(upto);
            return Ok(Relayed {
                confirm_to,
                ..Relayed::default()
            });
        };
        cursor.idle_at = None;
        let confirm_to = Some(if complete { upto } else { last.end_lsn });
        let mut relayed = self.write(cursor.base, &peeked).await?;
        relayed.confirm_to = confirm_to;
        Ok(relayed)
    }

    /// Inserts the rows of the peeked transactions the relay has not written yet, and records the
    /// end of the last one, in one transaction.
    async fn write(&self, base: i64, peeked: &Peeked) -> Result<Relayed, PgError> {
        let mut tx = self.logical.source.pool().begin().await?;
        sqlx::query("SELECT pg_current_xact_id()")
            .execute(&mut *tx)
            .await?;
        let written: i64 =
            sqlx::query_scalar("SELECT end_lsn FROM athens.relay WHERE singleton FOR UPDATE")
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| {
                    PgError::Misconfigured(format!(
                        "{} with capture.mode = \"logical\" and capture.partitions > 1 \
                         (missing: the row of athens.relay)",
                        crate::error::SETUP_HINT
                    ))
                })?;
        let written = u64::try_from(written).unwrap_or_default();
        let mut rows = Rows::default();
        let mut relayed = Relayed::default();
        for span in &peeked.spans {
            if span.end_lsn <= written {
                relayed.skipped += 1;
                continue;
            }
            relayed.transactions += 1;
            let first = usize::try_from(span.first - base).unwrap_or_default();
            let count = usize::try_from(span.count).unwrap_or_default();
            for record in peeked.records.iter().skip(first).take(count) {
                rows.push(&record.change, record.recorded_at);
            }
        }
        let end = peeked.spans.last().map_or(0, |span| span.end_lsn);
        if relayed.transactions == 0 {
            tx.rollback().await?;
            return Ok(relayed);
        }
        let count = i32::try_from(self.partitions.get()).unwrap_or(i32::MAX);
        relayed.rows = sqlx::query(INSERT_ROWS)
            .bind(&rows.tables)
            .bind(&rows.truncates)
            .bind(&rows.projects)
            .bind(&rows.users)
            .bind(&rows.hashtags)
            .bind(&rows.recorded_at)
            .bind(count)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE athens.relay SET end_lsn = $1")
            .bind(i64::try_from(end).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await?;
        if relayed.rows > 0 {
            // As the triggers do: wake a waiting partition's writer.
            sqlx::query(
                "SELECT pg_notify('athens_outbox', '') WHERE pg_sequence_last_value('athens.wakeup') \
                 > (extract(epoch FROM clock_timestamp()) * 1000)::bigint",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        debug!(
            transactions = relayed.transactions,
            skipped = relayed.skipped,
            rows = relayed.rows,
            through = %lsn_text(end),
            "relayed decoded transactions into the outbox"
        );
        Ok(relayed)
    }

    /// Moves the slot to where `relayed` says, unless it is there already (another relay moved
    /// it further): from then on the slot no longer holds those transactions.
    pub async fn confirm(&self, relayed: &Relayed) -> Result<(), PgError> {
        let Some(target) = relayed.confirm_to else {
            return Ok(());
        };
        let mut cursor = self.logical.cursor.lock().await;
        let slot = self.logical.slot();
        let result = while_in_use(|| async {
            sqlx::query(
                "SELECT pg_replication_slot_advance(slot_name, $2::pg_lsn) \
                 FROM pg_replication_slots \
                 WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn",
            )
            .bind(slot)
            .bind(lsn_text(target))
            .execute(self.logical.source.pool())
            .await
            .map_err(PgError::from)
        })
        .await;
        // Read the slot's position again next time: it moved here, or another relay moved it.
        cursor.confirmed = None;
        result?;
        debug!(slot, lsn = %lsn_text(target), "slot advanced past relayed transactions");
        Ok(())
    }

    /// [`relay`](Self::relay) then [`confirm`](Self::confirm); every 15 s or so it also looks at
    /// the slot's retained WAL, as the one-partition consumer does (the slot gauges, the warning).
    pub async fn step(&self, max: usize) -> Result<Relayed, PgError> {
        let relayed = self.relay(max).await?;
        self.confirm(&relayed).await?;
        self.logical.watch_health().await;
        Ok(relayed)
    }
}

#[cfg(test)]
mod tests {
    use athens_core::{HashtagId, ProjectId, Table, UserId};

    use super::*;

    #[test]
    fn changes_become_the_rows_the_triggers_write() {
        let at = chrono::Utc::now();
        let mut rows = Rows::default();
        rows.push(
            &Change::Project {
                project: ProjectId(7),
            },
            at,
        );
        rows.push(&Change::User { user: UserId(3) }, at);
        rows.push(
            &Change::ProjectHashtag {
                project: ProjectId(7),
                hashtag: HashtagId(9),
            },
            at,
        );
        rows.push(
            &Change::Truncate {
                table: Table::Hashtags,
            },
            at,
        );
        assert_eq!(
            rows.tables,
            ["projects", "users", "project_hashtags", "hashtags"]
        );
        assert_eq!(rows.truncates, [false, false, false, true]);
        assert_eq!(rows.projects, [Some(7), None, Some(7), None]);
        assert_eq!(rows.users, [None, Some(3), None, None]);
        assert_eq!(rows.hashtags, [None, None, Some(9), None]);
    }
}
