//! Logs through `tracing`: human-readable or JSON, on stderr.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::LogFormat;
use crate::config::LogSettings;

/// Libraries whose info-level logs say nothing an operator needs; the configured filter can still
/// raise them.
const QUIET: &str = "sqlx=warn,sea_orm_migration=warn";

/// Installs the log subscriber.
pub fn init(settings: &LogSettings) {
    // PostgreSQL's notices ("… does not exist, skipping") and the migrator's chatter are noise at info.
    let directives = format!("{QUIET},{}", settings.filter);
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = match settings.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
