//! The adapter's configuration: one serde struct the CLI combines with the others.

use std::num::NonZeroUsize;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::error::{EsError, setup_failed};
pub use crate::signing::AwsService;

/// The alias the API reads and backfills publish behind, unless configured otherwise.
pub const DEFAULT_ALIAS: &str = "athens-projects";

/// Longest alias accepted: physical index names append about 40 characters and must stay under 255
/// bytes.
const MAX_ALIAS_LEN: usize = 200;

/// How to reach and use an Elasticsearch or OpenSearch cluster.
///
/// Every field has a default suited to a local single node, so a configuration file only lists what
/// differs. Secrets are [`SecretString`]s: `Debug` prints them redacted.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EsConfig {
    /// Base URL of the engine, `http(s)://host:port` (a path prefix is kept, credentials are refused:
    /// use `auth`).
    pub url: String,
    /// The alias searches read; physical indexes are named `<alias>-v<mapping version>-<stamp>`.
    pub alias: String,
    /// Credentials, when the engine requires them.
    pub auth: Option<EsAuth>,
    /// PEM file of the certificate authority (or chain) that signed the engine's certificate; the
    /// system's roots are trusted otherwise. Hostnames are always verified.
    pub ca_certificate: Option<PathBuf>,
    /// Seconds before any request to the engine is abandoned.
    pub request_timeout_secs: u64,
    /// Time the engine may spend on one search, in milliseconds (the engine's `timeout`).
    pub search_timeout_ms: u64,
    /// Operations per bulk request.
    pub bulk_size: NonZeroUsize,
    /// Bulk requests one write call keeps in flight at once.
    pub bulk_concurrency: NonZeroUsize,
    /// Primary shards of a new index.
    pub shards: u32,
    /// Replicas of a serving index. `None` lets the engine pick 0 or 1 from the number of data nodes
    /// (`auto_expand_replicas: 0-1`), which keeps a single node green and a cluster redundant.
    pub replicas: Option<u32>,
    /// Refresh interval of a serving index, in the engine's time syntax (`1s`, `500ms`).
    pub refresh_interval: String,
    /// Gzip on the wire: compressed bulk bodies and compressed answers. Worth it over a slow or
    /// metered link; off by default, because on a local network it only costs CPU at both ends (the
    /// engine compresses every answer a client accepts gzip for).
    pub compression: bool,
}

/// Operations per bulk request by default.
const BULK_SIZE: NonZeroUsize = match NonZeroUsize::new(1_000) {
    Some(n) => n,
    None => panic!("the default bulk size is positive"),
};

/// Bulk requests in flight per write call by default.
const BULK_CONCURRENCY: NonZeroUsize = match NonZeroUsize::new(2) {
    Some(n) => n,
    None => panic!("the default bulk concurrency is positive"),
};

impl Default for EsConfig {
    fn default() -> Self {
        EsConfig {
            url: "http://127.0.0.1:9200".into(),
            alias: DEFAULT_ALIAS.into(),
            auth: None,
            ca_certificate: None,
            request_timeout_secs: 30,
            search_timeout_ms: 5_000,
            bulk_size: BULK_SIZE,
            bulk_concurrency: BULK_CONCURRENCY,
            shards: 1,
            replicas: None,
            refresh_interval: "1s".into(),
            compression: false,
        }
    }
}

/// Credentials for the engine.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum EsAuth {
    /// HTTP basic authentication (Elasticsearch native users, OpenSearch internal users, Amazon
    /// OpenSearch Service fine-grained access control).
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: SecretString,
    },
    /// An Elasticsearch API key: either `id` and `key` as the create-key API returns them, or only
    /// `key` holding the already encoded `base64(id:key)` value.
    ApiKey {
        /// The key's id, when `key` is not already encoded.
        id: Option<String>,
        /// The key, or the encoded key when `id` is absent.
        key: SecretString,
    },
    /// AWS Signature Version 4 (Amazon OpenSearch Service with IAM authorization, OpenSearch
    /// Serverless): every request is signed with credentials from the standard AWS chain
    /// (environment, web identity, ECS task role, profile, instance metadata).
    #[serde(rename = "aws-sigv4", alias = "aws_sigv4")]
    AwsSigV4 {
        /// Region of the domain or collection; the AWS chain's (`AWS_REGION`, the profile) when
        /// absent.
        #[serde(default)]
        region: Option<String>,
        /// `es` for a managed domain (the default), `aoss` for a serverless collection.
        #[serde(default)]
        service: AwsService,
    },
}

impl EsConfig {
    /// Checks the configuration without contacting the engine.
    pub fn validate(&self) -> Result<(), EsError> {
        self.checked_url().map(|_| ())
    }

    /// The configuration checked, and its URL parsed.
    pub(crate) fn checked_url(&self) -> Result<Url, EsError> {
        let url = Url::parse(&self.url).map_err(setup_failed(format_args!(
            "url {:?} is not a URL",
            self.url
        )))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "url must be http or https, not {}",
                url.scheme()
            )));
        }
        if url.host_str().is_none() {
            return Err(invalid("url has no host".into()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "url must not carry credentials: set auth instead".into(),
            ));
        }
        check_alias(&self.alias)?;
        if let Some(EsAuth::AwsSigV4 {
            region: Some(region),
            ..
        }) = &self.auth
        {
            let valid = !region.is_empty()
                && region
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid {
                return Err(invalid(format!(
                    "auth region {region:?} is not an AWS region name such as us-east-1"
                )));
            }
        }
        if self.request_timeout_secs == 0 || self.search_timeout_ms == 0 {
            return Err(invalid("timeouts must be greater than zero".into()));
        }
        if self.shards == 0 {
            return Err(invalid("shards must be at least 1".into()));
        }
        let interval = self.refresh_interval.as_str();
        let digits = interval.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        if interval != "-1" && (digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit())) {
            return Err(invalid(format!(
                "refresh_interval {interval:?} is not a time like 1s or 500ms"
            )));
        }
        Ok(url)
    }
}

/// An alias must be a valid lowercase index name without wildcards, so that it can never select
/// indexes it does not own.
fn check_alias(alias: &str) -> Result<(), EsError> {
    let valid_chars = alias
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    let valid_start = alias
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !valid_chars || !valid_start || alias.len() > MAX_ALIAS_LEN {
        return Err(invalid(format!(
            "alias {alias:?} must be 1 to {MAX_ALIAS_LEN} characters of a-z, 0-9, - and _, \
             starting with a letter or digit"
        )));
    }
    Ok(())
}

fn invalid(reason: String) -> EsError {
    EsError::config(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let url = EsConfig::default().checked_url().unwrap();
        assert_eq!(url.as_str(), "http://127.0.0.1:9200/");
    }

    #[test]
    fn refuses_unsafe_aliases_and_urls() {
        for alias in ["", "Athens", "athens-*", "a,b", "_all", "-x", "a b"] {
            let config = EsConfig {
                alias: alias.into(),
                ..EsConfig::default()
            };
            assert!(
                config.validate().is_err(),
                "alias {alias:?} must be refused"
            );
        }
        for url in ["ftp://x", "not a url", "http://user:pw@host:9200"] {
            let config = EsConfig {
                url: url.into(),
                ..EsConfig::default()
            };
            assert!(config.validate().is_err(), "url {url:?} must be refused");
        }
        let config = EsConfig {
            refresh_interval: "soon".into(),
            ..EsConfig::default()
        };
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_zero_bulk_setting_is_refused() {
        for key in ["bulk_size", "bulk_concurrency"] {
            let refused = serde_json::from_value::<EsConfig>(serde_json::json!({ key: 0 }));
            let message = refused
                .err()
                .map(|error| error.to_string())
                .unwrap_or_default();
            assert!(
                message.contains("nonzero"),
                "{key} = 0 must be refused, got {message:?}"
            );
        }
    }

    #[test]
    fn reads_a_partial_config_and_redacts_secrets() {
        let config: EsConfig = serde_json::from_value(serde_json::json!({
            "url": "https://search.example.com",
            "auth": {"method": "basic", "username": "athens", "password": "hunter2"},
            "replicas": 1
        }))
        .unwrap();
        assert_eq!(config.alias, DEFAULT_ALIAS);
        assert_eq!(config.replicas, Some(1));
        let printed = format!("{config:?}");
        assert!(printed.contains("athens") && !printed.contains("hunter2"));

        let key: EsConfig = serde_json::from_value(serde_json::json!({
            "auth": {"method": "api_key", "key": "ZW5jb2RlZA=="}
        }))
        .unwrap();
        assert!(matches!(key.auth, Some(EsAuth::ApiKey { id: None, .. })));
        assert!(!format!("{key:?}").contains("ZW5jb2RlZA"));
    }

    #[test]
    fn reads_aws_sigv4_with_and_without_region() {
        let signed: EsConfig = serde_json::from_value(serde_json::json!({
            "url": "https://vpc-athens.eu-west-3.es.amazonaws.com",
            "auth": {"method": "aws-sigv4", "region": "eu-west-3", "service": "aoss"}
        }))
        .unwrap();
        assert!(matches!(
            signed.auth,
            Some(EsAuth::AwsSigV4 { region: Some(ref r), service: AwsService::Aoss }) if r == "eu-west-3"
        ));
        signed.validate().unwrap();
        let chain: EsConfig =
            serde_json::from_value(serde_json::json!({"auth": {"method": "aws_sigv4"}})).unwrap();
        assert!(matches!(
            chain.auth,
            Some(EsAuth::AwsSigV4 {
                region: None,
                service: AwsService::Es
            })
        ));
        let bad: EsConfig = serde_json::from_value(serde_json::json!({
            "auth": {"method": "aws-sigv4", "region": "Europe/Paris"}
        }))
        .unwrap();
        assert!(bad.validate().is_err());
        let unknown: Result<EsConfig, _> = serde_json::from_value(serde_json::json!({
            "auth": {"method": "aws-sigv4", "service": "s3"}
        }));
        assert!(unknown.is_err());
    }

    #[test]
    fn refuses_unknown_fields() {
        let result: Result<EsConfig, _> =
            serde_json::from_value(serde_json::json!({"bulk_sise": 10}));
        assert!(result.is_err());
    }
}
