//! Errors: [`EsError`] for configuration and connection problems, and the one place where the
//! `elasticsearch` crate's transport errors and the engine's error statuses become Athens' error kinds
//! ([`IndexError`], [`SearchError`]).

use std::error::Error as StdError;
use std::fmt;

use athens_core::{Cause, ErrorChain, IndexError, SearchError};
use thiserror::Error;

/// Why the adapter could not be set up.
#[derive(Debug, Error)]
pub enum EsError {
    /// The configuration is not usable as written.
    #[error("invalid search engine configuration: {message}")]
    Config {
        /// What is wrong, naming the setting.
        message: String,
        /// The error that found it, when there was one (a parser's, the file system's, ...).
        #[source]
        source: Option<Cause>,
    },
    /// The engine did not answer (connection refused, DNS, TLS handshake, timeout, 5xx).
    #[error("search engine unreachable: {message}")]
    Unreachable {
        /// What went wrong, in words for an operator.
        message: String,
        /// The failed call: the transport error or the engine's error answer.
        #[source]
        source: Cause,
    },
    /// The engine refused the credentials (401) or their privileges (403) at the connection check.
    #[error("search engine refused the credentials: {message}")]
    Unauthorized {
        /// What went wrong, in words for an operator.
        message: String,
        /// The engine's error answer.
        #[source]
        source: Cause,
    },
    /// The engine answered the connection check with another error.
    #[error("search engine refused the connection check: {message}")]
    Refused {
        /// What went wrong, in words for an operator.
        message: String,
        /// The engine's error answer.
        #[source]
        source: Cause,
    },
    /// The engine is not one Athens supports.
    #[error(
        "unsupported search engine {distribution} {version}: Athens needs Elasticsearch 7.10 or \
         later, or OpenSearch"
    )]
    Unsupported {
        /// The distribution the engine reported.
        distribution: String,
        /// The version the engine reported.
        version: String,
    },
}

impl EsError {
    /// [`EsError::Config`] with `message` and no cause.
    pub fn config(message: impl Into<String>) -> Self {
        EsError::Config {
            message: message.into(),
            source: None,
        }
    }

    /// True when connecting again later may succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EsError::Unreachable { .. })
    }
}

/// Makes an error of a setup step into [`EsError::Config`]: "`what`: the error", the error kept as
/// the cause.
pub(crate) fn setup_failed<E>(what: impl fmt::Display) -> impl FnOnce(E) -> EsError
where
    E: StdError + Send + Sync + 'static,
{
    move |error| EsError::Config {
        message: format!("{what}: {error}"),
        source: Some(Box::new(error)),
    }
}

/// A failed call to the engine, before it is given the meaning of the port that made it. The
/// client's error, when there was one, is kept as its source.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer: connection refused or lost, timeout, TLS failure.
    Transport(Cause),
    /// The engine answered with an error status.
    Status {
        /// The HTTP status.
        status: u16,
        /// The engine's error type (`index_not_found_exception`...), when it sent one.
        kind: Option<String>,
        /// The engine's reason, or the start of the body.
        reason: String,
    },
    /// The answer could not be read.
    Decode(Cause),
}

/// How much of an unreadable error body is kept for the message.
const BODY_EXCERPT: usize = 300;

impl Failure {
    /// Classifies an error of the `elasticsearch` crate (raised before any status was read).
    pub(crate) fn from_client(error: elasticsearch::Error) -> Failure {
        if error.is_json() {
            Failure::Decode(Box::new(error))
        } else {
            Failure::Transport(Box::new(error))
        }
    }

    /// Reads an error answer: `{"error": {"type", "reason"}, "status"}`, `{"error": "..."}`, or any
    /// other body (a proxy's HTML page), of which the start is kept.
    pub(crate) fn from_body(status: u16, body: &[u8]) -> Failure {
        let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
        let error = parsed.as_ref().and_then(|value| value.get("error"));
        let kind = error
            .and_then(|error| error.get("type"))
            .and_then(|kind| kind.as_str())
            .map(str::to_owned);
        let reason = match error {
            Some(serde_json::Value::String(reason)) => reason.clone(),
            Some(error) => error
                .get("reason")
                .and_then(|reason| reason.as_str())
                .map_or_else(|| error.to_string(), str::to_owned),
            // On one line: a proxy's HTML page spans many.
            None => String::from_utf8_lossy(body)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(BODY_EXCERPT)
                .collect(),
        };
        Failure::Status {
            status,
            kind,
            reason,
        }
    }

    /// The HTTP status, when the engine answered.
    pub(crate) fn status(&self) -> Option<u16> {
        match self {
            Failure::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// True when the same call may succeed later: no answer, 429 or 5xx.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Failure::Transport(_) => true,
            Failure::Status { status, .. } => *status == 429 || *status >= 500,
            Failure::Decode(_) => false,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Transport(cause) => {
                write!(
                    f,
                    "no answer from the engine: {}",
                    ErrorChain(cause.as_ref())
                )
            }
            Failure::Status {
                status,
                kind: Some(kind),
                reason,
            } => write!(f, "engine answered {status} {kind}: {reason}"),
            Failure::Status {
                status,
                kind: None,
                reason,
            } => write!(f, "engine answered {status}: {reason}"),
            Failure::Decode(cause) => {
                write!(
                    f,
                    "unreadable answer from the engine: {}",
                    ErrorChain(cause.as_ref())
                )
            }
        }
    }
}

impl StdError for Failure {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Failure::Transport(cause) | Failure::Decode(cause) => Some(cause.as_ref()),
            Failure::Status { .. } => None,
        }
    }
}

impl From<Failure> for IndexError {
    /// The failure's words, with the failure (and the client's error below it) as the cause.
    fn from(failure: Failure) -> Self {
        let message = failure.to_string();
        let error = match &failure {
            Failure::Decode(_) => IndexError::invalid(message),
            Failure::Status { status: 404, .. } => IndexError::not_found(message),
            _ if failure.is_transient() => IndexError::unavailable(message),
            _ => IndexError::rejected(message),
        };
        error.with_source(failure)
    }
}

impl From<Failure> for SearchError {
    /// The failure's words, with the failure (and the client's error below it) as the cause.
    fn from(failure: Failure) -> Self {
        let message = failure.to_string();
        let error = if failure.is_transient() || failure.status() == Some(404) {
            SearchError::unavailable(message)
        } else {
            SearchError::internal(message)
        };
        error.with_source(failure)
    }
}

impl From<Failure> for EsError {
    /// The failure's words, with the failure (and the client's error below it) as the cause.
    fn from(failure: Failure) -> Self {
        let message = failure.to_string();
        match failure.status() {
            _ if failure.is_transient() => EsError::Unreachable {
                message,
                source: Box::new(failure),
            },
            Some(401 | 403) => EsError::Unauthorized {
                message,
                source: Box::new(failure),
            },
            _ => EsError::Refused {
                message,
                source: Box::new(failure),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_structured_and_plain_error_bodies() {
        let failure = Failure::from_body(
            404,
            br#"{"error":{"root_cause":[],"type":"index_not_found_exception","reason":"no such index [x]"},"status":404}"#,
        );
        assert!(matches!(
            &failure,
            Failure::Status { status: 404, kind: Some(kind), reason }
                if kind == "index_not_found_exception" && reason == "no such index [x]"
        ));
        assert!(matches!(
            IndexError::from(failure),
            IndexError::NotFound { .. }
        ));

        let failure = Failure::from_body(404, br#"{"error":"alias [x] missing","status":404}"#);
        assert!(
            matches!(&failure, Failure::Status { kind: None, reason, .. } if reason == "alias [x] missing")
        );

        let failure = Failure::from_body(502, b"<html>bad gateway</html>");
        assert!(failure.to_string().contains("bad gateway"));
        assert!(matches!(
            IndexError::from(failure),
            IndexError::Unavailable { .. }
        ));
    }

    #[test]
    fn maps_statuses_to_port_errors() {
        let status = |status| Failure::Status {
            status,
            kind: None,
            reason: String::new(),
        };
        assert!(matches!(
            IndexError::from(status(429)),
            IndexError::Unavailable { .. }
        ));
        assert!(matches!(
            IndexError::from(status(503)),
            IndexError::Unavailable { .. }
        ));
        assert!(matches!(
            IndexError::from(status(400)),
            IndexError::Rejected { .. }
        ));
        assert!(matches!(
            IndexError::from(status(403)),
            IndexError::Rejected { .. }
        ));
        assert!(matches!(
            IndexError::from(Failure::Transport("refused".into())),
            IndexError::Unavailable { .. }
        ));
        assert!(matches!(
            IndexError::from(Failure::Decode("eof".into())),
            IndexError::Invalid { .. }
        ));
        assert!(matches!(
            SearchError::from(status(404)),
            SearchError::Unavailable { .. }
        ));
        assert!(matches!(
            SearchError::from(status(400)),
            SearchError::Internal { .. }
        ));
        assert!(matches!(
            EsError::from(status(401)),
            EsError::Unauthorized { .. }
        ));
        assert!(matches!(
            EsError::from(status(400)),
            EsError::Refused { .. }
        ));
        assert!(EsError::from(Failure::Transport("refused".into())).is_retryable());
    }
}
