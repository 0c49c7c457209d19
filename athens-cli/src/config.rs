//! Layered settings: built-in defaults, then a TOML file, then `ATHENS_*` environment variables, then
//! flags. Each adapter owns its section's type; this module only combines and validates them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use athens_core::{EngineConfig, MappingChange, RetryPolicy};
use athens_pg::DatabaseUrl;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::cli::{GlobalArgs, LogFormat};

/// Every setting of the `athens` command.
#[derive(Debug, Deserialize)]
pub struct Settings {
    /// PostgreSQL connection and capture tuning.
    #[serde(default)]
    pub database: athens_pg::PgConfig,
    /// How changes are captured: the outbox (default) or logical decoding.
    #[serde(default)]
    pub capture: athens_pg::CaptureConfig,
    /// Search engine connection and index tuning.
    #[serde(default)]
    pub engine: athens_es::EsConfig,
    /// The API server.
    #[serde(default)]
    pub http: athens_http::HttpConfig,
    /// The sync engine.
    #[serde(default)]
    pub sync: SyncSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Metrics for CloudWatch (embedded metric format).
    #[serde(default)]
    pub metrics: crate::emf::MetricsSettings,
}

/// Tuning of the sync engine (`[sync]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncSettings {
    /// Most changes taken from the outbox per batch.
    pub batch_size: usize,
    /// Most documents loaded and written per request.
    pub chunk_size: usize,
    /// Bulk requests in flight at once during a backfill.
    pub write_concurrency: usize,
    /// Milliseconds a poll waits for a change before checking again.
    pub poll_wait_ms: u64,
    /// Longest pause between retries of a failing engine or database, in milliseconds.
    pub max_retry_ms: u64,
    /// Keep the previous physical index after a reindex.
    pub keep_previous_index: bool,
    /// When the live index was built with another mapping version (after an upgrade): `reindex`
    /// rebuilds it with zero downtime before streaming, `refuse` stops with a message.
    pub on_mapping_change: MappingChange,
}

impl Default for SyncSettings {
    fn default() -> Self {
        let engine = EngineConfig::default();
        SyncSettings {
            batch_size: engine.batch_size,
            chunk_size: engine.chunk_size,
            write_concurrency: engine.write_concurrency,
            poll_wait_ms: engine.poll_wait.as_millis() as u64,
            max_retry_ms: engine.retry.max.as_millis() as u64,
            keep_previous_index: engine.keep_previous_index,
            on_mapping_change: engine.on_mapping_change,
        }
    }
}

impl SyncSettings {
    /// The engine configuration these settings describe.
    pub fn engine_config(&self) -> EngineConfig {
        let defaults = EngineConfig::default();
        EngineConfig {
            batch_size: self.batch_size,
            chunk_size: self.chunk_size,
            write_concurrency: self.write_concurrency,
            poll_wait: Duration::from_millis(self.poll_wait_ms),
            retry: RetryPolicy {
                initial: defaults.retry.initial,
                max: Duration::from_millis(self.max_retry_ms),
            },
            keep_previous_index: self.keep_previous_index,
            on_mapping_change: self.on_mapping_change,
            ..defaults
        }
    }

    fn validate(&self) -> Result<(), String> {
        for (name, value) in [
            ("sync.batch_size", self.batch_size),
            ("sync.chunk_size", self.chunk_size),
            ("sync.write_concurrency", self.write_concurrency),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Logging (`[log]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Filter in `tracing` syntax.
    pub filter: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            filter: "info".into(),
        }
    }
}

/// Environment variables Athens reads, and the setting each one sets. Other `ATHENS_*` variables
/// (those of the local scripts, for instance) are not settings and are ignored.
pub const ENVIRONMENT: &[(&str, &str)] = &[
    ("ATHENS_DATABASE_URL", "database.url"),
    (
        "ATHENS_DATABASE_MAX_CONNECTIONS",
        "database.max_connections",
    ),
    ("ATHENS_CAPTURE_MODE", "capture.mode"),
    ("ATHENS_CAPTURE_SLOT", "capture.slot"),
    ("ATHENS_ENGINE_URL", "engine.url"),
    ("ATHENS_INDEX", "engine.alias"),
    ("ATHENS_ENGINE_AUTH", "engine.auth.method"),
    ("ATHENS_ENGINE_AWS_REGION", "engine.auth.region"),
    ("ATHENS_ENGINE_AWS_SERVICE", "engine.auth.service"),
    ("ATHENS_ENGINE_USERNAME", "engine.auth.username"),
    ("ATHENS_ENGINE_PASSWORD", "engine.auth.password"),
    ("ATHENS_ENGINE_API_KEY", "engine.auth.key"),
    ("ATHENS_ENGINE_CA_CERT", "engine.ca_certificate"),
    ("ATHENS_ENGINE_REPLICAS", "engine.replicas"),
    ("ATHENS_ENGINE_COMPRESSION", "engine.compression"),
    ("ATHENS_HTTP_ADDR", "http.addr"),
    ("ATHENS_HTTP_CORS_ORIGINS", "http.cors_origins"),
    ("ATHENS_SYNC_BATCH_SIZE", "sync.batch_size"),
    ("ATHENS_SYNC_CHUNK_SIZE", "sync.chunk_size"),
    ("ATHENS_SYNC_WRITE_CONCURRENCY", "sync.write_concurrency"),
    ("ATHENS_METRICS_EMF", "metrics.emf"),
    ("ATHENS_METRICS_EMF_NAMESPACE", "metrics.emf_namespace"),
    ("ATHENS_METRICS_EMF_STACK", "metrics.emf_stack"),
    ("ATHENS_LOG_FORMAT", "log.format"),
    ("ATHENS_LOG", "log.filter"),
];

/// The database password, when it is kept apart from `database.url` (as in a secret store that
/// rotates it): it replaces the URL's password.
pub const DATABASE_PASSWORD: &str = "ATHENS_DATABASE_PASSWORD";

/// A settings problem, said in one sentence.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// Loads settings from every layer and validates them.
pub fn load(args: &GlobalArgs) -> Result<Settings, ConfigError> {
    let mut figment = Figment::new();
    if let Some(path) = config_file(args.config.as_deref())? {
        figment = figment.merge(Toml::file_exact(path));
    }
    let environment = Env::raw()
        .filter_map(|key| {
            ENVIRONMENT
                .iter()
                .find(|(name, _)| key.as_str().eq_ignore_ascii_case(name))
                .map(|(_, setting)| (*setting).into())
        })
        .split(".");
    figment = figment.merge(environment);
    // Credentials in the environment also say which kind they are, unless ATHENS_ENGINE_AUTH does.
    if std::env::var_os("ATHENS_ENGINE_AUTH").is_none() {
        if std::env::var_os("ATHENS_ENGINE_API_KEY").is_some() {
            figment = figment.merge(Serialized::default("engine.auth.method", "api_key"));
        } else if std::env::var_os("ATHENS_ENGINE_USERNAME").is_some() {
            figment = figment.merge(Serialized::default("engine.auth.method", "basic"));
        }
    }
    let flags = [
        ("database.url", args.database_url.clone()),
        ("engine.url", args.engine_url.clone()),
        ("engine.alias", args.index.clone()),
        ("log.filter", args.log.clone()),
    ];
    for (key, value) in flags {
        if let Some(value) = value {
            figment = figment.merge(Serialized::default(key, value));
        }
    }
    if let Some(format) = args.log_format {
        figment = figment.merge(Serialized::default("log.format", format));
    }
    let mut settings: Settings = figment
        .extract()
        .map_err(|error| ConfigError(format!("invalid configuration: {error}")))?;
    if let Some(password) = std::env::var(DATABASE_PASSWORD)
        .ok()
        .filter(|p| !p.is_empty())
    {
        settings.database.url = with_password(&settings.database.url, &password)?;
    }
    settings.sync.validate().map_err(ConfigError)?;
    settings.capture.validate().map_err(ConfigError)?;
    settings.metrics.validate().map_err(ConfigError)?;
    settings
        .engine
        .validate()
        .map_err(|error| ConfigError(format!("invalid engine settings: {error}")))?;
    Ok(settings)
}

/// `url` with its password replaced by `password` (percent-encoded as the URL needs).
fn with_password(url: &DatabaseUrl, password: &str) -> Result<DatabaseUrl, ConfigError> {
    let mut parsed = Url::parse(url.expose())
        .map_err(|error| ConfigError(format!("database.url {url} is not a URL: {error}")))?;
    if parsed.username().is_empty() {
        return Err(ConfigError(format!(
            "{DATABASE_PASSWORD} is set but database.url {url} names no user"
        )));
    }
    parsed
        .set_password(Some(password))
        .map_err(|()| ConfigError(format!("database.url {url} cannot carry a password")))?;
    Ok(DatabaseUrl::new(parsed.to_string()))
}

fn config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    match explicit {
        Some(path) if path.is_file() => Ok(Some(path.to_path_buf())),
        Some(path) => Err(ConfigError(format!(
            "configuration file {} does not exist",
            path.display()
        ))),
        None => {
            let default = PathBuf::from("athens.toml");
            Ok(default.is_file().then_some(default))
        }
    }
}

#[cfg(test)]
mod tests {
    use figment::providers::Format;

    use super::*;

    /// The complete file shown in docs/configuration.md.
    fn documented_file() -> String {
        let doc = include_str!("../../docs/configuration.md");
        let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let end = start + doc[start..].find("```").expect("the block ends");
        doc[start..end].to_string()
    }

    #[test]
    fn the_documented_file_is_a_valid_configuration() {
        let settings: Settings = Figment::new()
            .merge(Toml::string(&documented_file()))
            .extract()
            .unwrap();
        assert_eq!(settings.engine.alias, "athens-projects");
        assert!(matches!(
            settings.engine.auth,
            Some(athens_es::EsAuth::Basic { .. })
        ));
        assert_eq!(settings.http.cors_origins, ["https://app.example.com"]);
        assert_eq!(settings.sync.engine_config().batch_size, 1000);
        assert_eq!(settings.log.format, LogFormat::Text);
        settings.engine.validate().unwrap();
        settings.sync.validate().unwrap();
    }

    #[test]
    fn every_documented_variable_maps_to_a_setting_and_back() {
        let doc = include_str!("../../docs/configuration.md");
        for (variable, _) in ENVIRONMENT {
            assert!(doc.contains(variable), "{variable} is documented");
        }
    }

    #[test]
    fn a_separate_password_replaces_the_urls_and_is_encoded() {
        let url = DatabaseUrl::new(
            "postgres://athens@db.example.com:5432/athens?sslmode=verify-full&sslrootcert=/ca.pem",
        );
        let with = with_password(&url, "p@ss:w/rd#1").unwrap();
        assert_eq!(
            with.expose(),
            "postgres://athens:p%40ss%3Aw%2Frd%231@db.example.com:5432/athens?sslmode=verify-full&sslrootcert=/ca.pem"
        );
        assert!(!with.to_string().contains("p%40ss"), "{with}");
        let replaced = with_password(&DatabaseUrl::new("postgres://a:old@h/d"), "new").unwrap();
        assert_eq!(replaced.expose(), "postgres://a:new@h/d");
        assert!(with_password(&DatabaseUrl::new("postgres://h/d"), "x").is_err());
    }

    #[test]
    fn aws_sigv4_is_read_from_the_documented_names() {
        let settings: Settings = Figment::new()
            .merge(Toml::string(
                "[engine.auth]\nmethod = \"aws-sigv4\"\nregion = \"eu-west-3\"\n",
            ))
            .extract()
            .unwrap();
        assert!(matches!(
            settings.engine.auth,
            Some(athens_es::EsAuth::AwsSigV4 { region: Some(ref r), service: athens_es::AwsService::Es }) if r == "eu-west-3"
        ));
    }

    #[test]
    fn a_typo_in_the_file_is_refused() {
        let error = Figment::new()
            .merge(Toml::string("[sync]\nbatch_sise = 5\n"))
            .extract::<Settings>()
            .unwrap_err();
        assert!(error.to_string().contains("batch_sise"), "{error}");
    }
}
