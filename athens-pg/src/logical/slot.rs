//! The objects of the logical mode and their upkeep: the publication on the five tables, replica
//! identities, the replication slot, its health (retained WAL, lag, invalidation) and its
//! re-creation.
//!
//! # Re-creating a slot without losing a change
//! A slot can vanish (dropped by an operator) or be invalidated by the server (`wal_status =
//! 'lost'` once it retained more than `max_slot_wal_keep_size`). What was committed meanwhile is
//! no longer in any stream, so only a backfill can catch up. The re-creation is crash-safe in
//! three steps: (1) a row in `athens.resync` records the intent; (2) the slot is dropped and
//! created again; (3) one transaction writes the logical message `athens`/`resync` into the new
//! slot's stream and deletes the intent. The message decodes as a truncate, so the engine rebuilds
//! every document from a snapshot taken after the new slot existed, and acknowledges the message
//! only after that. A crash between the steps leaves the intent row, and the next start resumes.

use std::time::Duration;

use sea_orm::sqlx::{self, AssertSqlSafe, PgPool};
use tracing::{info, warn};

use crate::capture::{
    OBJECTS_SQL, drop_triggers_sql, installed_partitions, lock_for_ddl, partitions_sql,
};
use crate::config::{CaptureConfig, CaptureMode};
use crate::error::{PgError, SETUP_HINT};
use crate::logical::pgoutput::{MESSAGE_PREFIX, RESYNC};
use crate::logical::relay::RELAY_SQL;
use crate::source::PgSource;
use crate::tables::{SourceTable, name_array, table_list, tables};

/// How long teardown retries dropping a slot that a consumer is reading at that moment.
const DROP_RETRIES: u32 = 50;

/// The logical mode's own object beyond the shared capture objects.
const RESYNC_SQL: &str = r#"
CREATE TABLE IF NOT EXISTS athens.resync (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    reason text NOT NULL,
    since timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE athens.resync IS 'A replication slot is being re-created: a full rebuild must follow';
"#;

/// Replica identities: link tables log their whole (key-only) old row, so a delete or a key
/// change names both keys whatever their primary key; the other tables need their primary key,
/// or the whole old row where they have none (PostgreSQL refuses UPDATE and DELETE on a published
/// table without a replica identity).
fn identity_sql() -> String {
    format!(
        r#"
DO $$
DECLARE
    source text;
BEGIN
    FOREACH source IN ARRAY {links} LOOP
        EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', to_regclass(source)::text);
    END LOOP;
    FOREACH source IN ARRAY {others} LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass(source) AND indisprimary)
           AND (SELECT relreplident FROM pg_class WHERE oid = to_regclass(source)) = 'd' THEN
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', to_regclass(source)::text);
        END IF;
    END LOOP;
END $$;
"#,
        links = name_array(SourceTable::is_link),
        others = name_array(|table| !table.is_link()),
    )
}

/// The slot as PostgreSQL reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotStatus {
    /// The slot's name.
    pub name: String,
    /// Whether a session reads it right now (in the logical mode only during a call).
    pub active: bool,
    /// `reserved`, `extended`, `unreserved` or `lost` (invalidated: Athens re-creates the slot
    /// and reindexes).
    pub wal_status: String,
    /// WAL the server keeps for this slot, in bytes (`None` once invalidated).
    pub retained_bytes: Option<u64>,
    /// WAL written since the slot's confirmed position, in bytes: how far the consumer is behind,
    /// counting writes to every table.
    pub lag_bytes: Option<u64>,
    /// Bytes the slot may still retain before `max_slot_wal_keep_size` invalidates it (`None`
    /// when unlimited).
    pub safe_wal_bytes: Option<i64>,
}

/// A slot's state, read once before deciding what to do with it.
pub(crate) enum SlotState {
    /// No slot of that name.
    Missing,
    /// The slot exists in another database: a configuration mistake.
    Foreign(String),
    /// Invalidated by the server.
    Lost,
    /// Usable, confirmed up to this LSN.
    Healthy(u64),
}

/// An LSN as PostgreSQL writes it (`16/B374D848`), for a `::pg_lsn` cast.
pub(crate) fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

/// The state of `slot`.
pub(crate) async fn slot_state(pool: &PgPool, slot: &str) -> Result<SlotState, PgError> {
    type Row = (Option<String>, Option<String>, Option<i64>, bool);
    let row: Option<Row> = sqlx::query_as(
        "SELECT database, wal_status, (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint, \
                database = current_database() \
         FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(slot)
    .fetch_optional(pool)
    .await?;
    Ok(match row {
        None => SlotState::Missing,
        Some((database, _, _, false)) => SlotState::Foreign(database.unwrap_or_default()),
        Some((_, Some(status), _, _)) if status == "lost" => SlotState::Lost,
        Some((_, _, confirmed, _)) => {
            SlotState::Healthy(u64::try_from(confirmed.unwrap_or_default()).unwrap_or_default())
        }
    })
}

/// Drops `slot`, retrying while a consumer reads it (a call of the SQL interface lasts
/// milliseconds). Missing slots are fine.
async fn drop_slot(pool: &PgPool, slot: &str) -> Result<(), PgError> {
    let mut attempt = 0;
    loop {
        let result = sqlx::query(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(slot)
        .execute(pool)
        .await;
        match result.map_err(PgError::from) {
            Ok(_) => return Ok(()),
            Err(error)
                if error.sqlstate().as_deref() == Some("55006") && attempt < DROP_RETRIES =>
            {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn create_slot(pool: &PgPool, slot: &str) -> Result<(), PgError> {
    sqlx::query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')")
        .bind(slot)
        .execute(pool)
        .await?;
    info!(slot, "replication slot created");
    Ok(())
}

/// Finishes a re-creation recorded in `athens.resync`, if one is: makes sure a usable slot
/// exists, then writes the resync message into its stream and clears the intent, atomically.
/// Returns whether there was one.
pub(crate) async fn finish_resync(pool: &PgPool, slot: &str) -> Result<bool, PgError> {
    let reason: Option<String> = sqlx::query_scalar("SELECT reason FROM athens.resync")
        .fetch_optional(pool)
        .await?;
    let Some(reason) = reason else {
        return Ok(false);
    };
    match slot_state(pool, slot).await? {
        SlotState::Healthy(_) => {}
        SlotState::Foreign(database) => return Err(foreign(slot, &database)),
        SlotState::Lost => {
            drop_slot(pool, slot).await?;
            create_slot(pool, slot).await?;
        }
        SlotState::Missing => create_slot(pool, slot).await?,
    }
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_logical_emit_message(true, $1, $2::bytea)")
        .bind(MESSAGE_PREFIX)
        .bind(RESYNC)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM athens.resync")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    warn!(slot, reason = %reason, "replication slot re-created: every document will be rebuilt");
    Ok(true)
}

/// Records why the slot must be re-created, then re-creates it (see the module documentation).
pub(crate) async fn resync(pool: &PgPool, slot: &str, reason: &str) -> Result<(), PgError> {
    warn!(slot, reason, "replication slot unusable, re-creating it");
    sqlx::query(
        "INSERT INTO athens.resync (reason) VALUES ($1) \
         ON CONFLICT (singleton) DO UPDATE SET reason = excluded.reason",
    )
    .bind(reason)
    .execute(pool)
    .await?;
    finish_resync(pool, slot).await?;
    Ok(())
}

fn foreign(slot: &str, database: &str) -> PgError {
    PgError::Misconfigured(format!(
        "replication slot {slot} belongs to database {database}: set capture.slot to a name of its own"
    ))
}

impl PgSource {
    /// Installs the logical mode: the shared capture objects (dead letters, version sequence),
    /// replica identities, the publication on the five tables and the slot; removes the outbox
    /// triggers if the outbox mode was installed before. Idempotent: a healthy slot is kept with
    /// its position; a lost one is re-created (and a rebuild requested). Needs the table owner for
    /// the publication and the `REPLICATION` attribute for the slot.
    ///
    /// The slot is created after the publication and before any backfill: every change committed
    /// after its consistent point is in its stream, everything before is in a backfill's snapshot.
    ///
    /// With `capture.partitions` > 1 the outbox is the partitions' queue, which the relay fills
    /// (see [`Relay`](crate::Relay)): the install records the count and creates the partitions'
    /// index and the relay's position, as the outbox mode's does, without triggers. When it changes
    /// the count with rows pending, they are deleted and a rebuild is requested in the same
    /// transaction (the slot is past them).
    pub async fn install_logical_capture(&self, capture: &CaptureConfig) -> Result<(), PgError> {
        self.check_version(CaptureMode::Logical).await?;
        self.check_schema().await?;
        let publication = &capture.publication;
        capture.validate().map_err(PgError::config)?;
        let partitions = capture.partitions;
        let mut tx = self.pool().begin().await?;
        lock_for_ddl(&mut tx).await?;
        let before = installed_partitions(&mut tx).await?;
        let script = format!(
            "{OBJECTS_SQL}{RESYNC_SQL}{RELAY_SQL}{count}{drop_triggers}{identity}
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_publication WHERE pubname = '{publication}') THEN
        ALTER PUBLICATION {publication} SET TABLE {tables};
    ELSE
        CREATE PUBLICATION {publication} FOR TABLE {tables};
    END IF;
END $$;",
            count = partitions_sql(partitions.get()),
            drop_triggers = drop_triggers_sql(),
            identity = identity_sql(),
            tables = table_list(),
        );
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut *tx)
            .await?;
        // The relay routed the pending rows for the old count, and the slot has moved past them:
        // the resync's rebuild covers what they named.
        if crate::capture::recount(&mut tx, before, partitions).await? {
            sqlx::query(
                "INSERT INTO athens.resync (reason) VALUES ($1) \
                 ON CONFLICT (singleton) DO UPDATE SET reason = excluded.reason",
            )
            .bind("the partition count changed with changes pending")
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        let slot = self.slot_name(capture).await?;
        match slot_state(self.pool(), &slot).await? {
            SlotState::Missing => create_slot(self.pool(), &slot).await?,
            SlotState::Healthy(_) => info!(slot, "replication slot kept"),
            SlotState::Foreign(database) => return Err(foreign(&slot, &database)),
            SlotState::Lost => {
                resync(self.pool(), &slot, "the server invalidated the slot").await?
            }
        }
        finish_resync(self.pool(), &slot).await?;
        info!(publication, slot, "logical change capture installed");
        Ok(())
    }

    /// Removes the logical mode's objects: the slot (so the server stops retaining WAL for it),
    /// the publication, the link tables' full replica identity (back to their primary key) and
    /// `athens.resync`. Leaves the shared capture objects to
    /// [`remove_capture`](PgSource::remove_capture). Idempotent.
    pub async fn remove_logical_capture(&self, capture: &CaptureConfig) -> Result<(), PgError> {
        capture.validate().map_err(PgError::config)?;
        let slot = self.slot_name(capture).await?;
        drop_slot(self.pool(), &slot).await?;
        let mut tx = self.pool().begin().await?;
        lock_for_ddl(&mut tx).await?;
        let script = format!(
            "DROP PUBLICATION IF EXISTS {publication};
DO $$
DECLARE
    source text;
BEGIN
    FOREACH source IN ARRAY {links} LOOP
        IF EXISTS (SELECT 1 FROM pg_index WHERE indrelid = to_regclass(source) AND indisprimary) THEN
            EXECUTE format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', to_regclass(source)::text);
        END IF;
    END LOOP;
END $$;
DROP TABLE IF EXISTS athens.resync;
DROP TABLE IF EXISTS athens.relay;",
            publication = capture.publication,
            links = name_array(SourceTable::is_link),
        );
        sqlx::raw_sql(AssertSqlSafe(script))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        info!(slot, "logical change capture removed");
        Ok(())
    }

    /// Fails with a `Misconfigured` error naming what is missing unless the logical mode is
    /// installed: the shared objects (with partitions, the relay's position too), the publication
    /// on the five tables, and a slot of this
    /// database (a missing or invalidated slot is not an error: the source re-creates it).
    pub async fn check_logical_capture(&self, capture: &CaptureConfig) -> Result<(), PgError> {
        let (objects, published): (Vec<String>, i64) = sqlx::query_as(
            "SELECT array_remove(ARRAY[ \
                 CASE WHEN to_regclass('athens.dead_letters') IS NULL THEN 'table athens.dead_letters' END, \
                 CASE WHEN to_regclass('athens.version') IS NULL THEN 'sequence athens.version' END, \
                 CASE WHEN to_regclass('athens.consumer') IS NULL THEN 'table athens.consumer' END, \
                 CASE WHEN to_regclass('athens.rebuild_queue') IS NULL THEN 'table athens.rebuild_queue' END, \
                 CASE WHEN to_regclass('athens.resync') IS NULL THEN 'table athens.resync' END, \
                 CASE WHEN $3 AND to_regclass('athens.relay') IS NULL THEN 'table athens.relay' END], NULL), \
               (SELECT count(*) FROM pg_publication_tables WHERE pubname = $1 AND tablename = ANY($2))",
        )
        .bind(&capture.publication)
        .bind(tables().iter().map(SourceTable::name).collect::<Vec<_>>())
        .bind(capture.partitions.get() > 1)
        .fetch_one(self.pool())
        .await?;
        let mut missing = objects;
        if usize::try_from(published).unwrap_or_default() < tables().len() {
            missing.push(format!(
                "publication {} on the five tables",
                capture.publication
            ));
        }
        if !missing.is_empty() {
            return Err(PgError::Misconfigured(format!(
                "{SETUP_HINT} with capture.mode = \"logical\" (missing: {})",
                missing.join(", ")
            )));
        }
        let slot = self.slot_name(capture).await?;
        if let SlotState::Foreign(database) = slot_state(self.pool(), &slot).await? {
            return Err(foreign(&slot, &database));
        }
        Ok(())
    }

    /// The slot's health, `None` when it does not exist.
    pub async fn slot_status(
        &self,
        capture: &CaptureConfig,
    ) -> Result<Option<SlotStatus>, PgError> {
        let slot = self.slot_name(capture).await?;
        type Row = (bool, Option<String>, Option<i64>, Option<i64>, Option<i64>);
        let row: Option<Row> = sqlx::query_as(
            "SELECT active, wal_status, \
                        (pg_current_wal_lsn() - restart_lsn)::bigint, \
                        (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint, \
                        safe_wal_size \
                 FROM pg_replication_slots \
                 WHERE slot_name = $1 AND database = current_database()",
        )
        .bind(&slot)
        .fetch_optional(self.pool())
        .await?;
        let bytes = |value: Option<i64>| value.map(|v| u64::try_from(v).unwrap_or_default());
        Ok(
            row.map(|(active, wal_status, retained, lag, safe)| SlotStatus {
                name: slot,
                active,
                wal_status: wal_status.unwrap_or_else(|| "unknown".into()),
                retained_bytes: bytes(retained),
                lag_bytes: bytes(lag),
                safe_wal_bytes: safe,
            }),
        )
    }

    /// The slot name for this database (see [`CaptureConfig::slot`]).
    pub async fn slot_name(&self, capture: &CaptureConfig) -> Result<String, PgError> {
        if let Some(slot) = &capture.slot {
            return Ok(slot.clone());
        }
        let database: String = sqlx::query_scalar("SELECT current_database()::text")
            .fetch_one(self.pool())
            .await?;
        Ok(capture.slot_for(&database))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsns_print_like_postgresql() {
        assert_eq!(lsn_text(0x16_B374_D848), "16/B374D848");
        assert_eq!(lsn_text(0), "0/0");
    }
}
