//! How to reach PostgreSQL: the URL (kept out of logs), pool size, timeouts, polling and the writer
//! lease key. One serde struct, combined with the other adapters' configs by the CLI.

use std::fmt;
use std::num::NonZeroU32;
use std::str::FromStr;
use std::time::Duration;

use sea_orm::sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use serde::{Deserialize, Deserializer};

use crate::error::PgError;

/// A PostgreSQL connection URL whose password never reaches a log: `Debug` and `Display` print
/// `postgres://user:***@host:port/db`.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL such as `postgres://user:password@host:5432/db?sslmode=require`.
    pub fn new(url: impl Into<String>) -> DatabaseUrl {
        DatabaseUrl(url.into())
    }

    /// The URL with its password, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with its password (and any `password=` parameter) masked.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let mut out = match url.find("://") {
            Some(scheme_end) => {
                let rest = &url[scheme_end + 3..];
                let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
                match rest[..authority_end].rfind('@') {
                    Some(at) => {
                        let userinfo = &rest[..at];
                        let user = userinfo.split(':').next().unwrap_or_default();
                        let masked = if userinfo.contains(':') {
                            format!("{user}:***")
                        } else {
                            user.to_string()
                        };
                        format!("{}{masked}{}", &url[..scheme_end + 3], &rest[at..])
                    }
                    None => url.clone(),
                }
            }
            None => "***".to_string(),
        };
        if let Some(start) = out.find("password=") {
            let value_start = start + "password=".len();
            let value_end = out[value_start..]
                .find('&')
                .map_or(out.len(), |end| value_start + end);
            out.replace_range(value_start..value_end, "***");
        }
        out
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// Everything the adapter needs to reach PostgreSQL.
///
/// Durations read from configuration files accept an integer of milliseconds or a string with a
/// unit: `"500ms"`, `"1s"`, `"2m"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PgConfig {
    /// Connection URL; its password is redacted from `Debug`.
    pub url: DatabaseUrl,
    /// Most pooled connections. The change listener holds one while a consumer waits for changes;
    /// the writer lease uses its own connection outside the pool.
    pub max_connections: u32,
    /// Longest wait to open a connection or take one from the pool before the source is reported
    /// unavailable.
    #[serde(deserialize_with = "duration")]
    pub connect_timeout: Duration,
    /// Longest a single statement may run before PostgreSQL cancels it (`statement_timeout`).
    #[serde(deserialize_with = "duration")]
    pub statement_timeout: Duration,
    /// How often a waiting poll looks at the outbox even without a notification: the fallback
    /// that bounds latency if a NOTIFY is lost.
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Key of the advisory lock behind the writer lease. Processes syncing the same database into
    /// the same index must share it.
    pub lease_key: i64,
    /// How long the writer lease's session may stay idle before the server ends it, freeing the
    /// lease for a standby (`idle_session_timeout`, PostgreSQL 14 or later). The holder uses its
    /// session at every step of its work, so only a hung holder (a stopped process, a stuck event
    /// loop: both keep the connection up) goes idle that long. Zero leaves the server's setting.
    #[serde(deserialize_with = "duration")]
    pub lease_timeout: Duration,
    /// `application_name` shown in `pg_stat_activity`.
    pub application_name: String,
}

/// Default advisory lock key of the writer lease: "athens" in ASCII.
pub const DEFAULT_LEASE_KEY: i64 = 0x61_74_68_65_6e_73;

impl Default for PgConfig {
    fn default() -> Self {
        PgConfig {
            url: DatabaseUrl::new("postgres://localhost:5432/athens"),
            max_connections: 10,
            connect_timeout: Duration::from_secs(10),
            statement_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            lease_key: DEFAULT_LEASE_KEY,
            lease_timeout: Duration::from_secs(60),
            application_name: "athens".into(),
        }
    }
}

impl PgConfig {
    /// The defaults with this URL.
    pub fn new(url: impl Into<String>) -> PgConfig {
        PgConfig {
            url: DatabaseUrl::new(url),
            ..PgConfig::default()
        }
    }

    /// Driver options for one connection: the URL plus the session settings Athens relies on.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, PgError> {
        let url = self.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(PgError::config(format!(
                "database url {} must start with postgres:// or postgresql://",
                self.url.redacted()
            )));
        }
        let options =
            PgConnectOptions::from_str(self.url.expose()).map_err(|error| PgError::Config {
                message: format!("invalid database url {}: {error}", self.url.redacted()),
                source: Some(Box::new(error)),
            })?;
        let timeout_ms = self.statement_timeout.as_millis().to_string();
        Ok(options.application_name(&self.application_name).options([
            ("statement_timeout", timeout_ms.as_str()),
            // The server notices a vanished client (and frees its writer lease) within ~30 s.
            ("tcp_keepalives_idle", "10"),
            ("tcp_keepalives_interval", "5"),
            ("tcp_keepalives_count", "3"),
        ]))
    }

    /// Pool options for the shared pool.
    pub(crate) fn pool_options(&self) -> PgPoolOptions {
        PgPoolOptions::new()
            .max_connections(self.max_connections.max(2))
            .acquire_timeout(self.connect_timeout)
            .idle_timeout(Duration::from_secs(300))
    }
}

/// Which change capture Athens uses (`[capture]`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureMode {
    /// Triggers write an outbox table (the default: needs no replication slot, works everywhere).
    #[default]
    Outbox,
    /// Logical decoding: a publication on the five tables read through a replication slot with
    /// `pgoutput`. Costs the source only its WAL; needs `wal_level = logical` and a role with the
    /// `REPLICATION` attribute (`rds_replication` on Amazon RDS).
    Logical,
}

/// How changes are captured: the mode and, for logical decoding, the names of its objects.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaptureConfig {
    /// `outbox` (default) or `logical`.
    pub mode: CaptureMode,
    /// Replication slot of the logical mode. Slots are per server, not per database: the default,
    /// `athens_<database>`, keeps two databases of one server apart.
    pub slot: Option<String>,
    /// Publication of the logical mode (per database).
    pub publication: String,
    /// Retained WAL, in MiB, above which the logical mode warns (logs, `athens status`).
    pub retained_wal_warning_mb: u64,
    /// Partitions of the projects, each streamed by the holder of its own writer lease
    /// (docs/architecture.md, "Partitioned writers"). `athens setup` writes it into the capture;
    /// every `athens sync` of the database must say the same. In the logical mode a relay
    /// decodes the slot into the outbox, which the partitions then consume (`Relay`).
    pub partitions: NonZeroU32,
    /// Most partitions one `athens sync` process streams at once (the others wait as its
    /// standbys); unset: all of them.
    pub partitions_per_process: Option<NonZeroU32>,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            mode: CaptureMode::Outbox,
            slot: None,
            publication: "athens".into(),
            retained_wal_warning_mb: 1024,
            partitions: NonZeroU32::MIN,
            partitions_per_process: None,
        }
    }
}

impl CaptureConfig {
    /// The logical-decoding configuration.
    pub fn logical() -> CaptureConfig {
        CaptureConfig {
            mode: CaptureMode::Logical,
            ..CaptureConfig::default()
        }
    }

    /// Checks the names: PostgreSQL allows lower-case letters, digits and underscores in slot
    /// names, and Athens asks the same of the publication (it is spliced into DDL).
    pub fn validate(&self) -> Result<(), String> {
        let valid = |name: &str| {
            !name.is_empty()
                && name.len() <= 63
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if let Some(slot) = &self.slot
            && !valid(slot)
        {
            return Err(format!(
                "capture.slot {slot:?} must be 1 to 63 lower-case letters, digits or underscores"
            ));
        }
        if !valid(&self.publication) {
            return Err(format!(
                "capture.publication {:?} must be 1 to 63 lower-case letters, digits or underscores",
                self.publication
            ));
        }
        Ok(())
    }

    /// The slot name: the configured one, or `athens_` and the database name made valid.
    pub(crate) fn slot_for(&self, database: &str) -> String {
        if let Some(slot) = &self.slot {
            return slot.clone();
        }
        let mut name: String = format!("athens_{database}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .collect();
        name.truncate(63);
        name
    }
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Millis(u64),
        Text(String),
    }
    match Raw::deserialize(deserializer)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(text) => parse_duration(&text).map_err(serde::de::Error::custom),
    }
}

/// Parses `"250ms"`, `"3s"`, `"2m"` or a bare number of milliseconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: expected e.g. \"500ms\" or \"2s\""))?;
    match unit.trim() {
        "" | "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "m" => Ok(Duration::from_secs(value * 60)),
        other => Err(format!(
            "invalid duration unit {other:?} in {text:?}: use ms, s or m"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_hide_the_password() {
        let url =
            DatabaseUrl::new("postgres://athens:s3cret@db.example:5432/athens?sslmode=require");
        assert_eq!(
            url.to_string(),
            "postgres://athens:***@db.example:5432/athens?sslmode=require"
        );
        let config = PgConfig::new(url.expose());
        assert!(!format!("{config:?}").contains("s3cret"));
        let param = DatabaseUrl::new("postgres://db/athens?user=a&password=s3cret&sslmode=require");
        assert_eq!(
            param.redacted(),
            "postgres://db/athens?user=a&password=***&sslmode=require"
        );
        assert_eq!(
            DatabaseUrl::new("postgres://a@db/x").redacted(),
            "postgres://a@db/x"
        );
        assert_eq!(DatabaseUrl::new("p@ss:word@oops").redacted(), "***");
    }

    #[test]
    fn durations_accept_units_and_plain_milliseconds() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("3s"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("40"), Ok(Duration::from_millis(40)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("3h").is_err());
    }

    #[test]
    fn config_deserializes_with_defaults() {
        let config: PgConfig =
            serde_json::from_str(r#"{"url": "postgres://x/y", "poll_interval": "200ms"}"#).unwrap();
        assert_eq!(config.poll_interval, Duration::from_millis(200));
        assert_eq!(config.max_connections, 10);
        assert_eq!(config.url.expose(), "postgres://x/y");
    }

    #[test]
    fn slot_names_are_valid_and_per_database() {
        let capture = CaptureConfig::logical();
        assert_eq!(capture.slot_for("Shop-DB"), "athens_shop_db");
        assert_eq!(capture.slot_for(&"x".repeat(80)).len(), 63);
        capture.validate().unwrap();
        let bad = CaptureConfig {
            slot: Some("Bad Name".into()),
            ..CaptureConfig::logical()
        };
        assert!(bad.validate().unwrap_err().contains("capture.slot"));
        let bad = CaptureConfig {
            publication: "x; DROP".into(),
            ..CaptureConfig::logical()
        };
        assert!(bad.validate().unwrap_err().contains("capture.publication"));
        let parsed: CaptureConfig = serde_json::from_str(r#"{"mode": "logical"}"#).unwrap();
        assert_eq!(parsed.mode, CaptureMode::Logical);
        assert_eq!(parsed.partitions.get(), 1);
        let partitioned: CaptureConfig =
            serde_json::from_str(r#"{"mode": "logical", "partitions": 4}"#).unwrap();
        assert_eq!(partitioned.validate(), Ok(()));
    }
}
