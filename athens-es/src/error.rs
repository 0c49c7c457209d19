//! Errors: [`EsError`] for configuration and connection problems, and the one place where the
//! `elasticsearch` crate's transport errors and the engine's error statuses become Athens' error kinds
//! ([`IndexError`], [`SearchError`]).

use std::error::Error as StdError;
use std::fmt;

use athens_core::{IndexError, SearchError};
use thiserror::Error;

/// Why the adapter could not be set up.
#[derive(Debug, Error)]
pub enum EsError {
    /// The configuration is not usable as written.
    #[error("invalid search engine configuration: {0}")]
    Config(String),
    /// The engine did not answer (connection refused, DNS, TLS handshake, timeout, 5xx).
    #[error("search engine unreachable: {0}")]
    Unreachable(String),
    /// The engine refused the credentials (401) or their privileges (403) at the connection check.
    #[error("search engine refused the credentials: {0}")]
    Unauthorized(String),
    /// The engine answered the connection check with another error.
    #[error("search engine refused the connection check: {0}")]
    Refused(String),
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
    /// True when connecting again later may succeed without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, EsError::Unreachable(_))
    }
}

/// A failed call to the engine, before it is given the meaning of the port that made it.
#[derive(Debug)]
pub(crate) enum Failure {
    /// No answer: connection refused or lost, timeout, TLS failure.
    Transport(String),
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
    Decode(String),
}

/// How much of an unreadable error body is kept for the message.
const BODY_EXCERPT: usize = 300;

impl Failure {
    /// Classifies an error of the `elasticsearch` crate (raised before any status was read).
    pub(crate) fn from_client(error: &elasticsearch::Error) -> Failure {
        if error.is_json() {
            Failure::Decode(chain(error))
        } else {
            Failure::Transport(chain(error))
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
            Failure::Transport(reason) => write!(f, "no answer from the engine: {reason}"),
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
            Failure::Decode(reason) => write!(f, "unreadable answer from the engine: {reason}"),
        }
    }
}

/// An error with its sources, so "error sending request" says why.
fn chain(error: &(dyn StdError + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

impl From<Failure> for IndexError {
    fn from(failure: Failure) -> Self {
        match &failure {
            Failure::Decode(_) => IndexError::Invalid(failure.to_string()),
            Failure::Status { status: 404, .. } => IndexError::NotFound(failure.to_string()),
            _ if failure.is_transient() => IndexError::Unavailable(failure.to_string()),
            _ => IndexError::Rejected(failure.to_string()),
        }
    }
}

impl From<Failure> for SearchError {
    fn from(failure: Failure) -> Self {
        if failure.is_transient() || failure.status() == Some(404) {
            SearchError::Unavailable(failure.to_string())
        } else {
            SearchError::Internal(failure.to_string())
        }
    }
}

impl From<Failure> for EsError {
    fn from(failure: Failure) -> Self {
        match failure.status() {
            _ if failure.is_transient() => EsError::Unreachable(failure.to_string()),
            Some(401 | 403) => EsError::Unauthorized(failure.to_string()),
            _ => EsError::Refused(failure.to_string()),
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
        assert!(matches!(IndexError::from(failure), IndexError::NotFound(_)));

        let failure = Failure::from_body(404, br#"{"error":"alias [x] missing","status":404}"#);
        assert!(
            matches!(&failure, Failure::Status { kind: None, reason, .. } if reason == "alias [x] missing")
        );

        let failure = Failure::from_body(502, b"<html>bad gateway</html>");
        assert!(failure.to_string().contains("bad gateway"));
        assert!(matches!(
            IndexError::from(failure),
            IndexError::Unavailable(_)
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
            IndexError::Unavailable(_)
        ));
        assert!(matches!(
            IndexError::from(status(503)),
            IndexError::Unavailable(_)
        ));
        assert!(matches!(
            IndexError::from(status(400)),
            IndexError::Rejected(_)
        ));
        assert!(matches!(
            IndexError::from(status(403)),
            IndexError::Rejected(_)
        ));
        assert!(matches!(
            IndexError::from(Failure::Transport("refused".into())),
            IndexError::Unavailable(_)
        ));
        assert!(matches!(
            IndexError::from(Failure::Decode("eof".into())),
            IndexError::Invalid(_)
        ));
        assert!(matches!(
            SearchError::from(status(404)),
            SearchError::Unavailable(_)
        ));
        assert!(matches!(
            SearchError::from(status(400)),
            SearchError::Internal(_)
        ));
        assert!(matches!(
            EsError::from(status(401)),
            EsError::Unauthorized(_)
        ));
        assert!(matches!(EsError::from(status(400)), EsError::Refused(_)));
        assert!(EsError::from(Failure::Transport("refused".into())).is_retryable());
    }
}
