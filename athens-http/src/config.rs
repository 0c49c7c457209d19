//! The API server's settings: one serde struct the CLI layers from defaults, a file and the environment.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the HTTP server. Every field has a default, so `{}` is a valid configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on, `host:port`; `0.0.0.0:8080` by default (tests use `127.0.0.1:0`).
    pub addr: String,
    /// Origins allowed to call the API from a browser (`https://app.example.com`). Empty (the
    /// default): no CORS headers at all, so browsers allow same-origin calls only.
    pub cors_origins: Vec<String>,
    /// Longest a request may take before it is answered `503` with `Retry-After`, in milliseconds.
    pub request_timeout_ms: u64,
    /// Most API requests served at once; beyond it requests are answered `503` with `Retry-After`
    /// at once instead of queueing. `/healthz` and `/metrics` are exempt.
    pub max_concurrency: NonZeroUsize,
    /// Largest total size of a request's header names and values, in bytes (`431` beyond it).
    pub max_header_bytes: usize,
    /// Longest request target (path and query), in bytes (`414` beyond it).
    pub max_uri_bytes: usize,
    /// Largest request body accepted, in bytes (`413` beyond it). The API reads no body.
    pub max_body_bytes: u64,
    /// Time left to requests in flight after shutdown begins, in milliseconds.
    pub shutdown_grace_ms: u64,
    /// A connection on which a read or a write waits this long is closed, in milliseconds: a
    /// client that opens connections and sends nothing, stalls half-way through its request
    /// headers, or stops reading its answer, holds them no longer than this (one that trickles a
    /// byte at a time is a load balancer's to stop). Keep it above `request_timeout_ms`, and
    /// above the idle timeout of a load balancer in front (60 s on AWS ALB), so the balancer is
    /// the one that closes idle keep-alive connections.
    pub idle_timeout_ms: NonZeroU64,
    /// Seconds a client is told to wait (`Retry-After`) when the service is busy or a dependency
    /// is unavailable.
    pub retry_after_secs: u32,
}

/// Default of [`HttpConfig::max_concurrency`] (a zero would fail the build).
const MAX_CONCURRENCY: NonZeroUsize = NonZeroUsize::new(512).unwrap();
/// Default of [`HttpConfig::idle_timeout_ms`].
const IDLE_TIMEOUT_MS: NonZeroU64 = NonZeroU64::new(75_000).unwrap();

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            addr: "0.0.0.0:8080".into(),
            cors_origins: Vec::new(),
            request_timeout_ms: 10_000,
            max_concurrency: MAX_CONCURRENCY,
            max_header_bytes: 16 * 1024,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 16 * 1024,
            shutdown_grace_ms: 10_000,
            idle_timeout_ms: IDLE_TIMEOUT_MS,
            retry_after_secs: 1,
        }
    }
}

impl HttpConfig {
    /// [`request_timeout_ms`](Self::request_timeout_ms) as a duration.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// [`shutdown_grace_ms`](Self::shutdown_grace_ms) as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// [`idle_timeout_ms`](Self::idle_timeout_ms) as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_millis(self.idle_timeout_ms.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_document_gives_the_defaults() {
        let config: HttpConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, HttpConfig::default());
        assert_eq!(config.addr, "0.0.0.0:8080");
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.request_timeout(), Duration::from_secs(10));
    }

    #[test]
    fn a_zero_limit_is_refused() {
        for field in ["max_concurrency", "idle_timeout_ms"] {
            let error = serde_json::from_str::<HttpConfig>(&format!(r#"{{"{field}": 0}}"#))
                .unwrap_err()
                .to_string();
            assert!(error.contains("nonzero"), "{field}: {error}");
        }
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<HttpConfig>(r#"{"adr": "127.0.0.1:1"}"#).is_err());
    }
}
