//! The adapter's error type and, in one place, how driver errors map to the port's
//! [`SourceError`] kinds: lost connections are retryable, missing objects and refused credentials
//! need an operator and say which command fixes them.

use athens_core::{Cause, SourceError};
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};
use thiserror::Error;

/// Hint attached to errors caused by missing change-capture objects.
pub(crate) const SETUP_HINT: &str = "capture is not installed: run `athens setup`";
/// Hint attached to errors caused by missing source tables.
pub(crate) const MIGRATE_HINT: &str = "the schema is missing: run `athens migrate`";

/// What went wrong in the PostgreSQL adapter.
#[derive(Debug, Error)]
pub enum PgError {
    /// The configuration cannot work (malformed URL, bad option).
    #[error("invalid configuration: {message}")]
    Config {
        /// What is wrong, naming the setting.
        message: String,
        /// The error that found it, when there was one (a URL parser's, ...).
        #[source]
        source: Option<Cause>,
    },
    /// The database is reachable but not set up for Athens; the message says what to run.
    #[error("{0}")]
    Misconfigured(String),
    /// The database holds data Athens cannot read (a capture row naming an unknown table, ...).
    #[error("invalid data: {0}")]
    Invalid(String),
    /// The first connection failed; the message names the setting that fixes it.
    #[error("{message}")]
    Connect {
        /// What is wrong and how to fix it, in one sentence.
        message: String,
        /// True when the server may simply not be up yet (refused, unreachable, timed out).
        retryable: bool,
        /// The driver's error, when there was one (none for a timeout).
        #[source]
        source: Option<sqlx::Error>,
    },
    /// A driver error.
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// An ORM error (schema migrations, entity writes).
    #[error(transparent)]
    Orm(#[from] DbErr),
    /// The writer lease is no longer held by this process (found by an acknowledgement, fenced
    /// by it, or by the lease itself): another writer may have taken over.
    #[error("{lease} is no longer held by this process: {reason}")]
    LeaseLost {
        /// Which lease.
        lease: String,
        /// What is known of the loss: who holds it now, or that its session ended.
        reason: String,
        /// The error that ended its session, when there was one.
        #[source]
        source: Option<Box<PgError>>,
    },
}

/// What an error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Misconfigured,
    Invalid,
}

impl PgError {
    /// [`PgError::Config`] with `message` and no cause.
    pub fn config(message: impl Into<String>) -> Self {
        PgError::Config {
            message: message.into(),
            source: None,
        }
    }

    /// [`PgError::LeaseLost`] of `lease` for `reason`, with no cause.
    pub(crate) fn lease_lost(lease: String, reason: impl Into<String>) -> Self {
        PgError::LeaseLost {
            lease,
            reason: reason.into(),
            source: None,
        }
    }

    /// True when the same call may succeed later without anyone acting (lost connection, timeout,
    /// failover, serialization conflict).
    pub fn is_retryable(&self) -> bool {
        self.kind() == Kind::Unavailable
    }

    fn kind(&self) -> Kind {
        match self {
            PgError::Config { .. } | PgError::Misconfigured(_) => Kind::Misconfigured,
            PgError::Invalid(_) | PgError::LeaseLost { .. } => Kind::Invalid,
            PgError::Connect {
                retryable: true, ..
            } => Kind::Unavailable,
            PgError::Connect { .. } => Kind::Misconfigured,
            PgError::Database(error) => sqlx_kind(error),
            PgError::Orm(error) => match error {
                DbErr::ConnectionAcquire(_) => Kind::Unavailable,
                DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => {
                    match runtime {
                        RuntimeErr::SqlxError(error) => sqlx_kind(error),
                        _ => Kind::Invalid,
                    }
                }
                DbErr::Migration(_) => Kind::Misconfigured,
                _ => Kind::Invalid,
            },
        }
    }

    /// The SQLSTATE of a database error, if this is one.
    pub fn sqlstate(&self) -> Option<String> {
        let error = match self {
            PgError::Database(error) => error,
            PgError::Orm(DbErr::Conn(RuntimeErr::SqlxError(error)))
            | PgError::Orm(DbErr::Exec(RuntimeErr::SqlxError(error)))
            | PgError::Orm(DbErr::Query(RuntimeErr::SqlxError(error))) => error.as_ref(),
            _ => return None,
        };
        match error {
            sqlx::Error::Database(db) => db.code().map(|code| code.into_owned()),
            _ => None,
        }
    }

    /// The message an operator reads: the driver's words plus, for missing objects, the command
    /// that creates them.
    fn operator_message(&self) -> String {
        let message = self.to_string();
        match self.sqlstate().as_deref() {
            Some(code) if is_missing_object(code) => {
                if message.contains("athens") {
                    format!("{SETUP_HINT} ({message})")
                } else {
                    format!("{MIGRATE_HINT} ({message})")
                }
            }
            Some("28P01" | "28000") => format!("authentication failed: {message}"),
            Some("42501") => format!("permission denied: {message}"),
            Some("3D000") => format!("database does not exist: {message}"),
            _ => message,
        }
    }
}

/// Undefined table, column, function or schema.
fn is_missing_object(code: &str) -> bool {
    matches!(code, "42P01" | "42703" | "42883" | "3F000")
}

fn sqlx_kind(error: &sqlx::Error) -> Kind {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_)
        | sqlx::Error::BeginFailed => Kind::Unavailable,
        sqlx::Error::Configuration(_) | sqlx::Error::Tls(_) => Kind::Misconfigured,
        sqlx::Error::Database(db) => match db.code() {
            Some(code) => sqlstate_kind(&code),
            None => Kind::Invalid,
        },
        _ => Kind::Invalid,
    }
}

/// Classifies a SQLSTATE (see PostgreSQL's errcodes table).
fn sqlstate_kind(code: &str) -> Kind {
    match code {
        // connection exceptions, shutdown/failover, too many connections, out of resources,
        // serialization failures and deadlocks, lock timeouts, cancelled statements (timeout),
        // and a read-only server (a failover promoted a replica the client still points at).
        c if c.starts_with("08") || c.starts_with("53") || c.starts_with("40") => Kind::Unavailable,
        // 55006: an object in use, such as a replication slot another session reads right now.
        "57P01" | "57P02" | "57P03" | "57014" | "55P03" | "55006" | "25006" => Kind::Unavailable,
        // credentials, missing database or objects, privileges
        c if c.starts_with("28") || is_missing_object(c) => Kind::Misconfigured,
        "3D000" | "42501" => Kind::Misconfigured,
        _ => Kind::Invalid,
    }
}

impl From<PgError> for SourceError {
    /// The operator's message, with the adapter's error kept whole as the cause (its driver error,
    /// SQLSTATE and I/O error below it).
    fn from(error: PgError) -> Self {
        let message = error.operator_message();
        let kind = match error {
            PgError::LeaseLost { .. } => SourceError::lease_lost(message),
            _ => match error.kind() {
                Kind::Unavailable => SourceError::unavailable(message),
                Kind::Misconfigured => SourceError::misconfigured(message),
                Kind::Invalid => SourceError::invalid(message),
            },
        };
        kind.with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_map_to_kinds() {
        assert_eq!(sqlstate_kind("08006"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("57P01"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("40001"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("53300"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("25006"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("55006"), Kind::Unavailable);
        assert_eq!(sqlstate_kind("28P01"), Kind::Misconfigured);
        assert_eq!(sqlstate_kind("42P01"), Kind::Misconfigured);
        assert_eq!(sqlstate_kind("42501"), Kind::Misconfigured);
        assert_eq!(sqlstate_kind("3D000"), Kind::Misconfigured);
        assert_eq!(sqlstate_kind("22P02"), Kind::Invalid);
    }

    #[test]
    fn transport_errors_are_retryable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(PgError::Database(sqlx::Error::Io(refused)).is_retryable());
        assert!(PgError::Database(sqlx::Error::PoolTimedOut).is_retryable());
        assert!(!PgError::config("bad").is_retryable());
        let source: SourceError = PgError::Misconfigured("table users is missing".into()).into();
        assert!(
            matches!(&source, SourceError::Misconfigured { message: m, .. } if m.contains("users"))
        );
    }

    #[test]
    fn source_errors_keep_the_driver_error_as_their_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused by peer");
        let error = SourceError::from(PgError::Database(sqlx::Error::Io(refused)));
        assert!(error.is_retryable());
        let driver = std::error::Error::source(&error)
            .and_then(|cause| cause.downcast_ref::<PgError>())
            .and_then(|cause| std::error::Error::source(cause))
            .and_then(|cause| cause.downcast_ref::<std::io::Error>());
        assert_eq!(
            driver.map(std::io::Error::kind),
            Some(std::io::ErrorKind::ConnectionRefused),
            "{error:?}"
        );
        let chain = athens_core::ErrorChain(&error).to_string();
        assert_eq!(chain.matches("refused by peer").count(), 1, "{chain}");
    }
}
