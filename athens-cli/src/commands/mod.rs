//! One function per subcommand. Human output goes to stdout; logs go to stderr.

mod doctor;
mod inspect;
mod partitioned;
mod relay;
mod schema;
mod serve;
mod sync;

use metrics_exporter_prometheus::PrometheusHandle;

use crate::cli::Command;
use crate::config::Settings;

/// Runs `command` to completion.
pub async fn run(
    command: Command,
    settings: Settings,
    metrics: Option<PrometheusHandle>,
) -> anyhow::Result<()> {
    match command {
        Command::Migrate => schema::migrate(&settings).await,
        Command::Seed(args) => schema::seed(&settings, &args).await,
        Command::Setup => schema::setup(&settings).await,
        Command::Teardown => schema::teardown(&settings).await,
        Command::GrantRuntime(args) => schema::grant_runtime(&settings, &args).await,
        Command::Reindex(args) => sync::reindex(&settings, &args).await,
        Command::Sync => sync::sync(&settings, metrics).await,
        Command::Serve => serve::serve(&settings, metrics).await,
        Command::Run => serve::run(&settings, metrics).await,
        Command::Status(args) => inspect::status(&settings, &args).await,
        Command::Verify(args) => inspect::verify(&settings, &args).await,
        Command::Doctor(args) => doctor::doctor(&settings, &args).await,
    }
}
