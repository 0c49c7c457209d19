//! The command line: global options and one subcommand per job.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Athens keeps an Elasticsearch/OpenSearch index in sync with PostgreSQL and serves a search API.
///
/// Settings come from defaults, then a TOML file (`--config`), then `ATHENS_*` environment variables,
/// then flags. See docs/configuration.md.
#[derive(Debug, Parser)]
#[command(name = "athens", version, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (default: ./athens.toml when it exists).
    #[arg(long, short = 'c', global = true, env = "ATHENS_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL URL, e.g. postgres://athens:secret@db:5432/athens.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
    /// Search engine URL, e.g. https://search.example.com:9200.
    #[arg(long, global = true)]
    pub engine_url: Option<String>,
    /// Name of the index alias the API reads.
    #[arg(long, global = true)]
    pub index: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// Log filter in `tracing` syntax, e.g. `info` or `athens_core=debug,info`.
    #[arg(long, global = true)]
    pub log: Option<String>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or upgrade the demo schema (users, hashtags, projects and their links).
    Migrate,
    /// Fill the demo schema with deterministic, realistic data.
    Seed(SeedArgs),
    /// Install change capture (outbox, triggers, lease, dead letters). Idempotent.
    Setup,
    /// Remove change capture. Leaves your tables and data untouched. Idempotent.
    Teardown,
    /// Create (or update) the least-privileged role sync and serve log in as, with the password in
    /// ATHENS_RUNTIME_PASSWORD (sent as a SCRAM verifier, never in clear). Run as the tables' owner
    /// with CREATEROLE (RDS's master user), after `setup`. Idempotent.
    GrantRuntime(GrantRuntimeArgs),
    /// Backfill every project into a fresh index and swap the alias to it (zero downtime).
    Reindex(ReindexArgs),
    /// Stream changes into the index until stopped (backfills first if the alias is missing).
    Sync,
    /// Serve the search API (and Swagger UI at /docs).
    Serve,
    /// Sync and serve in one process: the main job.
    Run,
    /// Show the backlog, the lag, the index against the database, and dead letters.
    Status(StatusArgs),
    /// Compare every indexed document with one built fresh from the database.
    Verify(VerifyArgs),
    /// Check every setting and service Athens needs, and print the fix for each that fails.
    Doctor(DoctorArgs),
}

/// Options of `athens seed`.
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of projects to create.
    #[arg(long, default_value_t = 2_000)]
    pub projects: u64,
    /// Number of users (default: one per 5 projects, at least 50).
    #[arg(long)]
    pub users: Option<u64>,
    /// Number of hashtags (default: one per 20 projects, between 60 and 20,000).
    #[arg(long)]
    pub hashtags: Option<u64>,
    /// Random seed: the same seed gives the same data.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Seed even when the tables already hold projects.
    #[arg(long, conflicts_with = "if_empty")]
    pub force: bool,
    /// Do nothing (and succeed) when the tables already hold projects.
    #[arg(long)]
    pub if_empty: bool,
}

/// Options of `athens grant-runtime`.
#[derive(Debug, Args)]
pub struct GrantRuntimeArgs {
    /// Name of the runtime role.
    #[arg(long, default_value = "athens_runtime")]
    pub role: String,
}

/// Options of `athens reindex`.
#[derive(Debug, Args)]
pub struct ReindexArgs {
    /// Keep the previous physical index instead of deleting it after the swap.
    #[arg(long)]
    pub keep_previous: bool,
}

/// Options of `athens status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `athens verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Rewrite drifted documents from the database and delete orphans. Takes the writer lease
    /// (repairs go through the single writer): waits for a running sync to release it.
    #[arg(long)]
    pub repair: bool,
    /// With --repair, how long to wait for the writer lease before giving up, in seconds.
    #[arg(long, default_value_t = 30, requires = "repair")]
    pub lease_wait_secs: u64,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `athens doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}
