//! Layered settings: built-in defaults, then a TOML file, then `ATHENS_*` environment variables, then
//! flags. Each adapter owns its section's type; this module only combines and validates them.

use std::path::{Path, PathBuf};

use athens_core::EngineConfig;
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
    /// The sync engine (`[sync]`).
    #[serde(default)]
    pub sync: EngineConfig,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Metrics for CloudWatch (embedded metric format).
    #[serde(default)]
    pub metrics: crate::emf::MetricsSettings,
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
    ("ATHENS_CAPTURE_PARTITIONS", "capture.partitions"),
    (
        "ATHENS_CAPTURE_PARTITIONS_PER_PROCESS",
        "capture.partitions_per_process",
    ),
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
    ("ATHENS_SYNC_FANOUT_CHUNK_SIZE", "sync.fanout_chunk_size"),
    ("ATHENS_SYNC_BACKFILL_READERS", "sync.backfill_readers"),
    (
        "ATHENS_SYNC_CHECKPOINT_INTERVAL_MS",
        "sync.checkpoint_interval_ms",
    ),
    ("ATHENS_SYNC_BATCH_LINGER_MS", "sync.batch_linger_ms"),
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
    let mut settings: Settings = figment.extract().map_err(invalid)?;
    if let Some(password) = std::env::var(DATABASE_PASSWORD)
        .ok()
        .filter(|p| !p.is_empty())
    {
        settings.database.url = with_password(&settings.database.url, &password)?;
    }
    settings.capture.validate().map_err(ConfigError)?;
    settings.metrics.validate().map_err(ConfigError)?;
    settings
        .engine
        .validate()
        .map_err(|error| ConfigError(format!("invalid engine settings: {error}")))?;
    Ok(settings)
}

/// The message for settings that do not deserialize. A zero where a positive number is needed
/// (the `NonZero*` fields) is said with the key's name and where it came from.
fn invalid(error: figment::Error) -> ConfigError {
    use figment::error::{Actual, Kind};
    if let Kind::InvalidValue(Actual::Unsigned(0) | Actual::Signed(0), expected) = &error.kind
        && expected.starts_with("a nonzero")
        && !error.path.is_empty()
    {
        let key = error.path.join(".");
        let variable = ENVIRONMENT
            .iter()
            .find(|(_, setting)| *setting == key)
            .map(|(variable, _)| variable);
        let origin = match (&error.metadata, variable) {
            (Some(origin), Some(variable)) if origin.name.contains("environment") => {
                format!(" (in {variable})")
            }
            (Some(origin), _) => match &origin.source {
                Some(source) => format!(" (in {} {source})", origin.name),
                None => format!(" (in {})", origin.name),
            },
            (None, _) => String::new(),
        };
        return ConfigError(format!("{key} must be at least 1{origin}"));
    }
    ConfigError(format!("invalid configuration: {error}"))
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
        assert_eq!(settings.sync, EngineConfig::default());
        assert_eq!(settings.log.format, LogFormat::Text);
        settings.engine.validate().unwrap();
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

    fn sync_section(toml: &str) -> Result<EngineConfig, ConfigError> {
        Figment::new()
            .merge(Toml::string(toml))
            .extract::<Settings>()
            .map(|settings| settings.sync)
            .map_err(invalid)
    }

    #[test]
    fn the_sync_section_deserializes_into_the_engine_config() {
        let config = sync_section(
            "[sync]\nbatch_size = 7\nchunk_size = 3\nwrite_concurrency = 2\npoll_wait_ms = 250\n\
             batch_linger_ms = 40\nmax_retry_ms = 500\nkeep_previous_index = true\n\
             on_mapping_change = \"refuse\"\n",
        )
        .unwrap();
        let defaults = EngineConfig::default();
        assert_eq!(
            config,
            EngineConfig {
                batch_size: 7.try_into().unwrap(),
                chunk_size: 3.try_into().unwrap(),
                write_concurrency: 2.try_into().unwrap(),
                poll_wait: std::time::Duration::from_millis(250),
                batch_linger: std::time::Duration::from_millis(40),
                retry: athens_core::RetryPolicy {
                    max: std::time::Duration::from_millis(500),
                    ..defaults.retry
                },
                keep_previous_index: true,
                on_mapping_change: athens_core::MappingChange::Refuse,
                ..defaults
            }
        );
        assert_eq!(sync_section("[sync]\n").unwrap(), defaults);
    }

    #[test]
    fn a_later_layer_overrides_one_key_of_the_file() {
        let config = Figment::new()
            .merge(Toml::string("[sync]\nchunk_size = 3\nbatch_size = 9\n"))
            .merge(Serialized::default("sync.chunk_size", 40))
            .extract::<Settings>()
            .unwrap()
            .sync;
        assert_eq!(config.chunk_size.get(), 40);
        assert_eq!(config.batch_size.get(), 9);
    }

    /// Every setting that must be at least 1.
    const NONZERO_KEYS: [&str; 11] = [
        "sync.batch_size",
        "sync.chunk_size",
        "sync.write_concurrency",
        "sync.fanout_chunk_size",
        "sync.backfill_readers",
        "engine.bulk_size",
        "engine.bulk_concurrency",
        "http.max_concurrency",
        "http.idle_timeout_ms",
        "capture.partitions",
        "capture.partitions_per_process",
    ];

    #[test]
    fn a_zero_size_is_refused_naming_its_key() {
        for key in NONZERO_KEYS {
            let (section, name) = key.split_once('.').unwrap();
            let in_file = Figment::new().merge(Toml::string(&format!("[{section}]\n{name} = 0\n")));
            let in_layer = Figment::new().merge(Serialized::default(key, 0));
            for (figment, origin) in [(in_file, " (in TOML source string)"), (in_layer, "")] {
                let error = figment.extract::<Settings>().map_err(invalid).unwrap_err();
                assert!(
                    error
                        .to_string()
                        .starts_with(&format!("{key} must be at least 1{origin}")),
                    "{error}"
                );
            }
        }
        let error = sync_section("[sync]\nbatch_size = -1\n").unwrap_err();
        assert!(
            error.to_string().starts_with("invalid configuration"),
            "{error}"
        );
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
