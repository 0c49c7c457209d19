//! Change capture objects: a transactional outbox filled by statement-level triggers, a dead-letter
//! table, the version sequence, the rebuild queue (see `rebuild_queue`), all in the `athens`
//! schema. Needs no superuser and no replication slot, so it works on RDS (through a pooler only
//! in session mode: see `session`).
//!
//! # Design
//! - The tables, their keys and the document columns an UPDATE compares come from the one table
//!   specification (`tables`, derived from the entities), like the columns the document queries read.
//! - One `AFTER ... FOR EACH STATEMENT` trigger per table and event (INSERT, UPDATE, DELETE, TRUNCATE)
//!   with transition tables (`REFERENCING NEW TABLE / OLD TABLE`, which allow one event per trigger).
//!   A bulk statement costs one `INSERT .. SELECT` into the outbox, not one per row.
//! - Triggers are `ENABLE ALWAYS`: they fire for writes a logical-replication subscriber applies
//!   (`session_replication_role = replica`) too, and the capture check requires it.
//! - An UPDATE records only rows whose document columns changed: old and new rows are joined on the
//!   key and compared with `IS DISTINCT FROM`. On the link tables it records the pairs that appeared
//!   or disappeared.
//! - `ON DELETE CASCADE` runs the link tables' triggers too, so deleting a hashtag records one change
//!   per project that used it.
//! - TRUNCATE records one `truncate` row per table truncated (cascaded tables included) that had
//!   rows: the trigger runs `BEFORE TRUNCATE` and looks (`athens.had_rows`), so truncating an empty
//!   table does not force a full rebuild. The look is exact under `READ COMMITTED` (a fresh
//!   snapshot, and TRUNCATE holds the table exclusively); under `REPEATABLE READ` or
//!   `SERIALIZABLE` the transaction's snapshot may miss rows committed after it began, so there only
//!   a table without a single page counts as empty.
//! - Trigger functions are `SECURITY DEFINER` with a fixed `search_path`: application roles writing
//!   the tables need no privilege on the `athens` schema.
//! - Wake-up: a trigger sends `NOTIFY athens_outbox` only while a consumer waits, as told by the
//!   sequence `athens.wakeup` used as a register (a consumer about to wait `setval`s it to the time
//!   it waits until, and clears it when it wakes; a trigger reads it with one function call, no
//!   query). A notifying commit takes a cluster-wide lock, so notifying in every
//!   transaction serialises all writers' commits (measured: 8 times fewer single-row writes per
//!   second); a busy consumer does not wait, so writers then skip the NOTIFY. The one race (a
//!   writer looks just before a consumer starts waiting, and commits just after it looked at the
//!   outbox once more) costs at most one poll interval, the consumer's polling fallback.
//!   With partitioned writers the register is shared: each arms it up to its own deadline (the
//!   latest one stays) and none clears it, so a writer taking its change never silences another
//!   one's wait; the request expires a second after the longest wait.
//! - The version sequence starts at the install time in microseconds since the epoch, so removing
//!   and reinstalling capture never hands out a version lower than before.

use std::num::NonZeroU32;

use sea_orm::sqlx::{self, AssertSqlSafe};
use tracing::{info, warn};

use crate::config::CaptureMode;
use crate::error::{PgError, SETUP_HINT};
use crate::source::PgSource;
use crate::tables::{SourceTable, name_array, tables};

/// Schema holding every capture object.
pub const CAPTURE_SCHEMA: &str = "athens";
/// Channel the triggers notify when the outbox goes from empty to non-empty.
pub(crate) const CHANNEL: &str = "athens_outbox";
/// Advisory lock serialising concurrent installs and removals.
const INSTALL_LOCK: i64 = 0x61_74_68_65_6e_73_01;

/// Events a trigger is installed for, with the trigger's name suffix.
const EVENTS: [&str; 4] = ["insert", "update", "delete", "truncate"];

pub(crate) const OBJECTS_SQL: &str = r#"
CREATE SCHEMA IF NOT EXISTS athens;
COMMENT ON SCHEMA athens IS 'Athens change capture: outbox, dead letters, version sequence, trigger functions';

CREATE TABLE IF NOT EXISTS athens.outbox (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source_table text NOT NULL,
    op "char" NOT NULL,
    project_id bigint,
    user_id bigint,
    hashtag_id bigint,
    recorded_at timestamptz NOT NULL DEFAULT now()
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.05);
COMMENT ON TABLE athens.outbox IS 'Committed changes pending until Athens acknowledges them (deletes the rows)';
ALTER TABLE athens.outbox ADD COLUMN IF NOT EXISTS partition integer NOT NULL DEFAULT 0;
COMMENT ON COLUMN athens.outbox.partition IS 'The partition whose writer consumes the row (athens.partition_of its project); -1: every partition (a truncate); 0 with one partition';

CREATE TABLE IF NOT EXISTS athens.dead_letters (
    project_id bigint PRIMARY KEY,
    reason text NOT NULL,
    attempts integer NOT NULL DEFAULT 1,
    first_recorded_at timestamptz NOT NULL DEFAULT now(),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE athens.dead_letters IS 'Project documents the search index refused for good, with the last reason';

CREATE TABLE IF NOT EXISTS athens.rebuild_queue (
    lease_key bigint NOT NULL,
    project_id bigint NOT NULL,
    partition integer NOT NULL DEFAULT 0,
    stamp bigint NOT NULL,
    PRIMARY KEY (lease_key, project_id)
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_insert_scale_factor = 0.05);
COMMENT ON TABLE athens.rebuild_queue IS 'Projects the writers of lease_key must rebuild (a user or hashtag change''s fan-out): a row leaves once a document read after its stamp (a transaction id) is indexed';
COMMENT ON COLUMN athens.rebuild_queue.partition IS 'The partition whose writer rebuilds the project (athens.partition_of); 0 with one partition';

CREATE TABLE IF NOT EXISTS athens.consumer (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_ack_at timestamptz NOT NULL
);
ALTER TABLE athens.consumer ADD COLUMN IF NOT EXISTS lease_key bigint;
COMMENT ON TABLE athens.consumer IS 'When the consumer last acknowledged changes, and the lease key of the outbox consumer that did';

DO $$
BEGIN
    IF to_regclass('athens.version') IS NULL THEN
        EXECUTE format('CREATE SEQUENCE athens.version AS bigint START WITH %s',
            (extract(epoch FROM clock_timestamp()) * 1000000)::bigint);
    END IF;
END $$;
COMMENT ON SEQUENCE athens.version IS 'Versions of document snapshots: one nextval per read';

-- A register, not a counter: while a consumer waits, its last value is the Unix time in
-- milliseconds until which writers should notify; NULL (never called) otherwise. setval is
-- immediate and non-transactional, and triggers read it with a plain function call.
CREATE SEQUENCE IF NOT EXISTS athens.wakeup AS bigint;
COMMENT ON SEQUENCE athens.wakeup IS 'Until when (Unix ms) a consumer waits for a NOTIFY; writers notify only then';
DROP FUNCTION IF EXISTS athens.wake(bigint);

-- Whether a table about to be truncated holds rows (called by the TRUNCATE triggers, which run
-- BEFORE the truncation with the table locked exclusively). A snapshot older than the lock (REPEATABLE
-- READ, SERIALIZABLE) may not see rows committed since it began: there, any page counts as rows.
CREATE OR REPLACE FUNCTION athens.had_rows(rel regclass) RETURNS boolean
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    found_one boolean;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        found_one := pg_relation_size(rel) > 0;
    ELSE
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %s)', rel) INTO found_one;
    END IF;
    IF found_one THEN
        -- The outbox id comes next: its transaction must hold a transaction id first, as every
        -- other capture's does (polls rely on it, see athens-pg's cursor).
        PERFORM pg_current_xact_id();
    END IF;
    RETURN found_one;
END $fn$;
COMMENT ON FUNCTION athens.had_rows(regclass) IS 'Whether a table about to be truncated holds rows: truncating an empty table needs no rebuild';

-- The partition of a project id among `partitions`: athens_core::partition::mix, computed with
-- bigint arithmetic that never overflows (a product modulo 2^32 taken in 16-bit halves).
CREATE OR REPLACE FUNCTION athens.partition_of(id bigint, partitions integer) RETURNS integer
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    h bigint := (id & 4294967295) # ((id >> 32) & 4294967295);
BEGIN
    h := h # (h >> 16);
    h := (h * 51819 + (((h * 34283) & 65535) << 16)) & 4294967295;  -- h * 0x85ebca6b
    h := h # (h >> 13);
    h := (h * 44597 + (((h * 49842) & 65535) << 16)) & 4294967295;  -- h * 0xc2b2ae35
    h := h # (h >> 16);
    RETURN (h % partitions)::integer;
END $fn$;
COMMENT ON FUNCTION athens.partition_of(bigint, integer) IS 'The partition of a project id (athens_core::partition::partition_of)';

-- The outbox sequence's last value, for the poll floor (athens-pg's cursor): a definer's function,
-- so the runtime role needs no grant on the sequence itself (upgrades keep its documented grants).
CREATE OR REPLACE FUNCTION athens.outbox_last_id() RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
    SELECT pg_sequence_last_value(pg_get_serial_sequence('athens.outbox', 'id')::regclass)
$fn$;
COMMENT ON FUNCTION athens.outbox_last_id() IS 'The outbox id sequence''s last value (NULL before its first id), for the poll floor';
"#;

/// Drops the outbox triggers from the five tables, wherever they are.
pub(crate) fn drop_triggers_sql() -> String {
    format!(
        r#"
DO $$
DECLARE
    source text;
    event text;
BEGIN
    FOREACH source IN ARRAY {tables} LOOP
        IF to_regclass(source) IS NOT NULL THEN
            FOREACH event IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
                EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'athens_capture_' || event,
                    to_regclass(source)::text);
            END LOOP;
        END IF;
    END LOOP;
END $$;
"#,
        tables = name_array(|_| true)
    )
}

/// The statement recording the rows of one event into the outbox, as an `INSERT .. SELECT`.
fn capture_statement(captured: &SourceTable, event: &str) -> String {
    let table = captured.name();
    let outbox_columns: Vec<&str> = captured.keys.iter().map(|key| key.outbox).collect();
    let outbox_columns = outbox_columns.join(", ");
    let key_list = |alias: &str| -> String {
        let columns: Vec<String> = captured
            .keys
            .iter()
            .map(|key| format!("{alias}{}", key.column))
            .collect();
        columns.join(", ")
    };
    let insert = format!("INSERT INTO athens.outbox (source_table, op, {outbox_columns})");
    // A row whose leading key (the id, or the project of a link) is NULL belongs to no document:
    // a database Athens attaches to may allow one, and recording it would give a change naming
    // nothing.
    let lead = captured.keys.first().map_or("id", |key| key.column);
    match event {
        "insert" => format!(
            "{insert} SELECT '{table}', 'I', {} FROM athens_new WHERE {lead} IS NOT NULL",
            key_list("")
        ),
        "delete" => format!(
            "{insert} SELECT '{table}', 'D', {} FROM athens_old WHERE {lead} IS NOT NULL",
            key_list("")
        ),
        "truncate" => format!(
            "INSERT INTO athens.outbox (source_table, op) SELECT '{table}', 'T' \
             WHERE athens.had_rows(TG_RELID)"
        ),
        _ if captured.is_link() => {
            let keys = key_list("");
            format!(
                "{insert} SELECT '{table}', 'U', {keys} FROM ( \
                 (SELECT {keys} FROM athens_new EXCEPT SELECT {keys} FROM athens_old) \
                 UNION \
                 (SELECT {keys} FROM athens_old EXCEPT SELECT {keys} FROM athens_new)) AS moved \
                 WHERE {lead} IS NOT NULL"
            )
        }
        _ => {
            let key = lead;
            let columns = |alias: &str| -> String {
                let listed: Vec<String> = captured
                    .columns
                    .iter()
                    .map(|column| format!("{alias}.{}", column.name))
                    .collect();
                listed.join(", ")
            };
            format!(
                "{insert} SELECT '{table}', 'U', coalesce(n.{key}, o.{key}) \
                 FROM athens_new AS n FULL JOIN athens_old AS o ON o.{key} = n.{key} \
                 WHERE coalesce(n.{key}, o.{key}) IS NOT NULL \
                 AND (n.{key} IS NULL OR o.{key} IS NULL \
                 OR ({}) IS DISTINCT FROM ({}))",
                columns("n"),
                columns("o"),
            )
        }
    }
}

/// The statement recording the rows of one event into the outbox of `partitions` partitions: with
/// one, [`capture_statement`]'s; with more, each row also gets its partition. A row naming a
/// project goes to that project's partition; a row naming a user or a hashtag (which the trigger
/// cannot resolve to projects) is written once per partition, and each partition's writer resolves
/// its copy to its own projects; a truncate is written once for every partition (`-1`).
fn partitioned_statement(captured: &SourceTable, event: &str, partitions: u32) -> String {
    let single = capture_statement(captured, event);
    if partitions <= 1 {
        return single;
    }
    let table = captured.name();
    if event == "truncate" {
        return format!(
            "INSERT INTO athens.outbox (source_table, op, partition) SELECT '{table}', 'T', -1 \
             WHERE athens.had_rows(TG_RELID)"
        );
    }
    let columns: Vec<&str> = captured.keys.iter().map(|key| key.outbox).collect();
    let columns = columns.join(", ");
    let insert = format!("INSERT INTO athens.outbox (source_table, op, {columns})");
    let select = single.strip_prefix(&insert).unwrap_or(&single).trim_start();
    let (partition, copies) = if captured.keys.iter().any(|key| key.outbox == "project_id") {
        (
            format!("athens.partition_of(c.project_id, {partitions})"),
            String::new(),
        )
    } else {
        (
            "part".to_string(),
            format!(" CROSS JOIN generate_series(0, {}) AS part", partitions - 1),
        )
    };
    format!(
        "INSERT INTO athens.outbox (source_table, op, {columns}, partition) \
         SELECT c.*, {partition} FROM ({select}) AS c(source_table, op, {columns}){copies}"
    )
}

/// The trigger function and trigger of one table and event.
fn trigger_sql(captured: &SourceTable, event: &str, partitions: u32) -> String {
    let table = captured.name();
    let function = format!("athens.capture_{table}_{event}");
    let trigger = format!("athens_capture_{event}");
    let statement = partitioned_statement(captured, event, partitions);
    let referencing = match event {
        "insert" => " REFERENCING NEW TABLE AS athens_new",
        "update" => " REFERENCING NEW TABLE AS athens_new OLD TABLE AS athens_old",
        "delete" => " REFERENCING OLD TABLE AS athens_old",
        _ => "",
    };
    // TRUNCATE triggers look at the rows before they are gone.
    let timing = if event == "truncate" {
        "BEFORE"
    } else {
        "AFTER"
    };
    format!(
        r#"
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
BEGIN
    {statement};
    IF FOUND AND pg_sequence_last_value('athens.wakeup')
            > (extract(epoch FROM clock_timestamp()) * 1000)::bigint THEN
        PERFORM pg_notify('athens_outbox', '');
    END IF;
    RETURN NULL;
END $fn$;
DROP TRIGGER IF EXISTS {trigger} ON {table};
CREATE TRIGGER {trigger} {timing} {upper} ON {table}{referencing}
    FOR EACH STATEMENT EXECUTE FUNCTION {function}();
ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger};
"#,
        upper = event.to_uppercase(),
    )
}

/// A new partition count, in the transaction that installs it: the queued projects move to their
/// new partitions and the pending outbox rows, routed for the old count, are deleted. True when
/// rows were deleted: the caller then asks for a rebuild of the whole index, whose snapshot
/// (taken after this commit) covers what they named.
pub(crate) async fn recount(
    tx: &mut sqlx::PgConnection,
    before: Option<NonZeroU32>,
    partitions: NonZeroU32,
) -> Result<bool, PgError> {
    let Some(before) = before.filter(|before| *before != partitions) else {
        return Ok(false);
    };
    crate::rebuild_queue::repartition(tx, partitions).await?;
    let replaced = sqlx::query("DELETE FROM athens.outbox")
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if replaced > 0 {
        warn!(
            before = before.get(),
            partitions = partitions.get(),
            replaced,
            "the partition count changed with changes pending: they are replaced by a rebuild of the whole index"
        );
    }
    Ok(replaced > 0)
}

/// The partition count of the capture installed in the database (see
/// [`PgSource::capture_partitions`]).
pub(crate) async fn installed_partitions(
    conn: &mut sqlx::PgConnection,
) -> Result<Option<NonZeroU32>, PgError> {
    let (outbox, function): (bool, bool) = sqlx::query_as(
        "SELECT to_regclass('athens.outbox') IS NOT NULL, \
         to_regprocedure('athens.partitions()') IS NOT NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    if !outbox {
        return Ok(None);
    }
    if !function {
        return Ok(Some(NonZeroU32::MIN));
    }
    let partitions: i32 = sqlx::query_scalar("SELECT athens.partitions()")
        .fetch_one(&mut *conn)
        .await?;
    u32::try_from(partitions)
        .ok()
        .and_then(NonZeroU32::new)
        .map(Some)
        .ok_or_else(|| PgError::Invalid(format!("athens.partitions() says {partitions}")))
}

/// Serialises installs and removals, and bounds how long DDL may wait for table locks: a trigger
/// change queued behind a long transaction would otherwise hold up every writer queued behind it.
/// A lock timeout is reported as `Unavailable`, so the caller may simply retry.
pub(crate) async fn lock_for_ddl(conn: &mut sqlx::PgConnection) -> Result<(), PgError> {
    sqlx::raw_sql("SET LOCAL lock_timeout = '10s'; SET LOCAL statement_timeout = 0")
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(INSTALL_LOCK)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The partition count (`athens.partitions()`) and the partitions' index (only with more than
/// one: one partition's polls read the outbox in id order without it).
pub(crate) fn partitions_sql(partitions: u32) -> String {
    let index = if partitions > 1 {
        "CREATE INDEX IF NOT EXISTS outbox_partition ON athens.outbox (partition, id);\n\
         CREATE INDEX IF NOT EXISTS rebuild_queue_partition \
         ON athens.rebuild_queue (lease_key, partition, project_id);"
    } else {
        "DROP INDEX IF EXISTS athens.outbox_partition;\n\
         DROP INDEX IF EXISTS athens.rebuild_queue_partition;"
    };
    format!(
        "
CREATE OR REPLACE FUNCTION athens.partitions() RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $fn$ SELECT {partitions} $fn$;
COMMENT ON FUNCTION athens.partitions() IS 'How many partitions the capture writes (athens setup, capture.partitions)';
{index}
"
    )
}

/// The whole install script for `partitions` partitions: objects, the partition count, the
/// partitions' index (only with more than one: one partition's polls read the outbox in id order
/// without it), then every trigger.
fn install_sql(partitions: u32) -> String {
    let mut script = String::from(OBJECTS_SQL);
    script.push_str(&partitions_sql(partitions));
    for captured in tables() {
        for event in EVENTS {
            script.push_str(&trigger_sql(captured, event, partitions));
        }
    }
    script
}

impl PgSource {
    /// Installs (or upgrades) the capture objects and triggers. Idempotent: running it again replaces
    /// functions and triggers and keeps the outbox, dead letters and version sequence with their
    /// contents. Needs the five tables (see [`migrate`](PgSource::migrate) or attach to existing ones) and
    /// the right to create a schema and triggers on them (table owner), not superuser.
    pub async fn install_capture(&self) -> Result<(), PgError> {
        self.install_partitioned_capture(NonZeroU32::MIN).await
    }

    /// [`install_capture`](Self::install_capture) for `partitions` partitions (see
    /// `athens_core::partition`): each outbox row names the partition whose writer consumes it.
    ///
    /// The count is fixed while changes are pending: changing it re-partitions nothing. So when an
    /// install changes it and the outbox holds rows, they are replaced, in the install's
    /// transaction, by one truncate row (partition `-1`: every partition's): the writers then rebuild the whole
    /// index from a snapshot taken after this commit, which covers every change the rows named
    /// (the triggers hold their tables' locks until then, so no row of the old count follows).
    pub async fn install_partitioned_capture(&self, partitions: NonZeroU32) -> Result<(), PgError> {
        self.check_version(CaptureMode::Outbox).await?;
        self.check_schema().await?;
        let mut tx = self.pool().begin().await?;
        lock_for_ddl(&mut tx).await?;
        let before = installed_partitions(&mut tx).await?;
        sqlx::raw_sql(AssertSqlSafe(install_sql(partitions.get())))
            .execute(&mut *tx)
            .await?;
        if recount(&mut tx, before, partitions).await? {
            sqlx::query(
                "INSERT INTO athens.outbox (source_table, op, partition) \
                 VALUES ('projects', 'T', -1)",
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        info!(
            schema = CAPTURE_SCHEMA,
            partitions = partitions.get(),
            "change capture installed"
        );
        Ok(())
    }

    /// How many changes for every partition (truncates) are pending: each asks for a rebuild of
    /// the whole index by a writer holding every partition.
    pub async fn pending_truncates(&self) -> Result<u64, PgError> {
        let pending: i64 =
            sqlx::query_scalar("SELECT count(*) FROM athens.outbox WHERE partition = -1")
                .fetch_one(self.pool())
                .await?;
        Ok(u64::try_from(pending).unwrap_or_default())
    }

    /// How many partitions the installed capture writes: `None` without an outbox, 1 for a
    /// capture installed before partitions existed.
    pub async fn capture_partitions(&self) -> Result<Option<NonZeroU32>, PgError> {
        let mut conn = self.pool().acquire().await?;
        installed_partitions(&mut conn).await
    }

    /// Removes the triggers from the five tables and drops the `athens` schema (outbox, dead letters,
    /// version sequence, functions). Leaves the tables and their rows untouched. Idempotent. Pending
    /// changes are lost: a later install must be followed by a full reindex.
    pub async fn remove_capture(&self) -> Result<(), PgError> {
        let mut tx = self.pool().begin().await?;
        lock_for_ddl(&mut tx).await?;
        let installed: bool = sqlx::query_scalar("SELECT to_regclass('athens.outbox') IS NOT NULL")
            .fetch_one(&mut *tx)
            .await?;
        let pending: i64 = if installed {
            sqlx::query_scalar("SELECT count(*) FROM athens.outbox")
                .fetch_one(&mut *tx)
                .await?
        } else {
            0
        };
        sqlx::raw_sql(AssertSqlSafe(drop_triggers_sql()))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql("DROP SCHEMA IF EXISTS athens CASCADE")
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if pending > 0 {
            warn!(pending, "change capture removed with changes still pending");
        } else {
            info!("change capture removed");
        }
        Ok(())
    }

    /// Fails with a `Misconfigured` error naming what is missing unless every capture object and all
    /// twenty triggers exist and are `ENABLE ALWAYS`: a trigger disabled, or enabled in the default
    /// origin mode (which does not fire for writes a logical-replication subscriber applies, with
    /// `session_replication_role = replica`), counts as missing.
    pub async fn check_capture(&self) -> Result<(), PgError> {
        let mut expected: Vec<String> = Vec::new();
        for captured in tables() {
            for event in EVENTS {
                expected.push(format!("{}.athens_capture_{event}", captured.name()));
            }
        }
        let (objects, triggers): (Vec<String>, Vec<String>) = sqlx::query_as(
            "SELECT \
               array_remove(ARRAY[ \
                 CASE WHEN to_regclass('athens.outbox') IS NULL THEN 'table athens.outbox' END, \
                 CASE WHEN to_regclass('athens.dead_letters') IS NULL THEN 'table athens.dead_letters' END, \
                 CASE WHEN to_regclass('athens.version') IS NULL THEN 'sequence athens.version' END, \
                 CASE WHEN to_regclass('athens.consumer') IS NULL THEN 'table athens.consumer' END, \
                 CASE WHEN to_regclass('athens.rebuild_queue') IS NULL THEN 'table athens.rebuild_queue' END, \
             CASE WHEN to_regclass('athens.wakeup') IS NULL THEN 'sequence athens.wakeup' END], NULL), \
               coalesce((SELECT array_agg(c.relname || '.' || t.tgname) \
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid \
                 WHERE t.tgname LIKE 'athens\\_capture\\_%' AND t.tgenabled = 'A' \
                   AND t.tgrelid IN (SELECT to_regclass(name) FROM unnest($1::text[]) AS name)), \
                 '{}')",
        )
        .bind(tables().iter().map(SourceTable::name).collect::<Vec<_>>())
        .fetch_one(self.pool())
        .await?;
        let nothing_installed =
            triggers.is_empty() && objects.iter().any(|object| object == "table athens.outbox");
        let mut missing = objects;
        missing.extend(
            expected
                .into_iter()
                .filter(|trigger| !triggers.contains(trigger))
                .map(|trigger| format!("trigger {trigger}")),
        );
        if missing.is_empty() {
            Ok(())
        } else if nothing_installed {
            // Nothing at all: the list of every object would only hide the one thing to do.
            Err(PgError::Misconfigured(format!(
                "{SETUP_HINT} (nothing of it is in this database)"
            )))
        } else {
            Err(PgError::Misconfigured(format!(
                "{SETUP_HINT} (missing: {})",
                missing.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use athens_core::Table;

    use super::*;
    use crate::tables::table;

    #[test]
    fn an_update_compares_document_columns_only() {
        let sql = capture_statement(table(Table::Projects), "update");
        assert!(sql.contains("FULL JOIN athens_old AS o ON o.id = n.id"));
        assert!(sql.contains(
            "(n.name, n.slug, n.description, n.created_at, n.updated_at) IS DISTINCT FROM \
             (o.name, o.slug, o.description, o.created_at, o.updated_at)"
        ));
    }

    #[test]
    fn a_link_update_records_pairs_that_moved() {
        let sql = capture_statement(table(Table::UserProjects), "update");
        assert!(sql.contains("SELECT project_id, user_id FROM athens_new EXCEPT"));
        assert!(
            sql.starts_with("INSERT INTO athens.outbox (source_table, op, project_id, user_id)")
        );
    }

    #[test]
    fn rows_without_their_leading_key_are_not_recorded() {
        assert!(capture_statement(table(Table::Users), "insert").ends_with("WHERE id IS NOT NULL"));
        assert!(
            capture_statement(table(Table::ProjectHashtags), "delete")
                .ends_with("WHERE project_id IS NOT NULL")
        );
        assert!(
            capture_statement(table(Table::UserProjects), "update")
                .ends_with("WHERE project_id IS NOT NULL")
        );
        assert!(
            capture_statement(table(Table::Projects), "update")
                .contains("WHERE coalesce(n.id, o.id) IS NOT NULL AND (")
        );
    }

    #[test]
    fn one_partition_captures_as_before() {
        for captured in tables() {
            for event in EVENTS {
                assert_eq!(
                    partitioned_statement(captured, event, 1),
                    capture_statement(captured, event)
                );
            }
        }
        assert!(install_sql(1).contains("DROP INDEX IF EXISTS athens.outbox_partition"));
    }

    #[test]
    fn partitions_route_projects_and_copy_users_and_hashtags() {
        let projects = partitioned_statement(table(Table::Projects), "update", 4);
        assert!(
            projects.starts_with(
                "INSERT INTO athens.outbox (source_table, op, project_id, partition) \
                 SELECT c.*, athens.partition_of(c.project_id, 4) FROM (SELECT 'projects', 'U', \
                 coalesce(n.id, o.id) FROM athens_new AS n FULL JOIN"
            ),
            "{projects}"
        );
        assert!(projects.ends_with("AS c(source_table, op, project_id)"));
        let link = partitioned_statement(table(Table::UserProjects), "delete", 4);
        assert!(
            link.contains("athens.partition_of(c.project_id, 4)"),
            "{link}"
        );
        let users = partitioned_statement(table(Table::Users), "update", 4);
        assert!(
            users.ends_with(
                "AS c(source_table, op, user_id) CROSS JOIN generate_series(0, 3) AS part"
            ),
            "{users}"
        );
        assert!(users.contains("SELECT c.*, part FROM"));
        let truncate = partitioned_statement(table(Table::Hashtags), "truncate", 4);
        assert!(
            truncate.contains("SELECT 'hashtags', 'T', -1 WHERE"),
            "{truncate}"
        );
        let script = install_sql(4);
        assert!(script.contains("$fn$ SELECT 4 $fn$"));
        assert!(script.contains("CREATE INDEX IF NOT EXISTS outbox_partition"));
    }

    #[test]
    fn the_script_has_a_trigger_per_table_and_event() {
        let script = install_sql(1);
        assert_eq!(script.matches("CREATE TRIGGER").count(), 20);
        assert_eq!(script.matches("ENABLE ALWAYS TRIGGER").count(), 20);
        assert!(script.contains("BEFORE TRUNCATE ON users\n    FOR EACH STATEMENT"));
        assert!(
            capture_statement(table(Table::ProjectHashtags), "truncate")
                .ends_with("athens.had_rows(TG_RELID)")
        );
    }
}
