//! The oldest PostgreSQL Athens runs on, checked by `athens setup` (both install steps) and `athens
//! doctor`.
//!
//! What sets the minimum, newest feature first:
//! - the logical mode needs PostgreSQL 14: `pgoutput`'s `messages` option carries the resync
//!   message of a re-created slot;
//! - both modes need PostgreSQL 13: the outbox's storage parameter
//!   `autovacuum_vacuum_insert_scale_factor`, and the slot's `wal_status` and `safe_wal_size`
//!   (`athens status`, invalidated slots);
//! - older than that, and met by both: `VACUUM (SKIP_LOCKED)` (12), `EXECUTE FUNCTION` triggers and
//!   `pg_replication_slot_advance` (11), statement triggers with transition tables, identity
//!   columns and `pg_sequence_last_value` (10), `ENABLE ALWAYS` triggers (8.3).

use sea_orm::sqlx;

use crate::config::CaptureMode;
use crate::error::PgError;
use crate::source::PgSource;

/// Oldest PostgreSQL major version of the outbox mode.
pub const MIN_VERSION: u32 = 13;
/// Oldest PostgreSQL major version of the logical mode.
pub const MIN_LOGICAL_VERSION: u32 = 14;

/// The oldest major version `mode` runs on.
fn required(mode: CaptureMode) -> u32 {
    match mode {
        CaptureMode::Outbox => MIN_VERSION,
        CaptureMode::Logical => MIN_LOGICAL_VERSION,
    }
}

/// Checks a server's `server_version_num` (`150018` for 15.18) against what `mode` needs; `shown`
/// is its `server_version`, named in the error.
pub(crate) fn check(version_num: i32, shown: &str, mode: CaptureMode) -> Result<(), PgError> {
    let major = u32::try_from(version_num / 10_000).unwrap_or_default();
    let needed = required(mode);
    if major >= needed {
        return Ok(());
    }
    let shown = shown.split_whitespace().next().unwrap_or(shown);
    let mode = match mode {
        CaptureMode::Outbox => "",
        CaptureMode::Logical => " with capture.mode = \"logical\"",
    };
    Err(PgError::Misconfigured(format!(
        "PostgreSQL {shown} is too old: Athens needs PostgreSQL {needed} or later{mode} \
         (see athens-pg/SCHEMA.md)"
    )))
}

impl PgSource {
    /// The server's version (`15.18`), or a `Misconfigured` error naming it and the version the
    /// capture `mode` needs when the server is older.
    pub async fn check_version(&self, mode: CaptureMode) -> Result<String, PgError> {
        let (version_num, shown): (i32, String) = sqlx::query_as(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
        )
        .fetch_one(self.pool())
        .await?;
        check(version_num, &shown, mode)?;
        Ok(shown
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(version_num: i32, shown: &str, mode: CaptureMode) -> String {
        match check(version_num, shown, mode) {
            Err(PgError::Misconfigured(message)) => message,
            other => panic!("{version_num} accepted in {mode:?}: {other:?}"),
        }
    }

    #[test]
    fn servers_older_than_the_minimum_are_refused_naming_both_versions() {
        assert_eq!(
            refusal(120_007, "12.7", CaptureMode::Outbox),
            "PostgreSQL 12.7 is too old: Athens needs PostgreSQL 13 or later \
             (see athens-pg/SCHEMA.md)"
        );
        let logical = refusal(130_011, "13.11 (Debian 13.11-1)", CaptureMode::Logical);
        assert!(
            logical.starts_with("PostgreSQL 13.11 is too old: Athens needs PostgreSQL 14 or later with capture.mode = \"logical\""),
            "{logical}"
        );
        // Versions before 10 numbered their majors with two parts (9.6 is 90600).
        assert!(refusal(90_624, "9.6.24", CaptureMode::Outbox).contains("9.6.24"));
    }

    #[test]
    fn the_minimum_and_newer_servers_pass() {
        for (version_num, mode) in [
            (130_000, CaptureMode::Outbox),
            (140_000, CaptureMode::Logical),
            (150_018, CaptureMode::Outbox),
            (150_018, CaptureMode::Logical),
            (180_001, CaptureMode::Logical),
        ] {
            assert!(
                check(version_num, "x", mode).is_ok(),
                "{version_num} {mode:?}"
            );
        }
    }
}
