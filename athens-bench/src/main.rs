//! `athens-bench`: Athens measured against the raw engine and against pgsync, side by side on one
//! machine, in one run. `deploy/local/bench` builds it in release mode, starts the services and runs
//! it; see `docs/benchmarks.md` for what each section measures and the figures of the last run.
//!
//! Sections (`--sections`, all by default, run in this order):
//! - `raw`: `_bulk` of Athens' own documents, prebuilt NDJSON, bulk size × concurrency, refresh off
//!   and 1 s, and the same documents through Athens' write path; single-document requests; the
//!   engine's ceiling on this machine;
//! - `readers`: the backfill's reader side alone: the real engine's backfill into an index that
//!   discards writes, 1, 2 and 4 readers alternating (issue 17);
//! - `backfill`: `athens reindex` as a child process: documents per second, CPU per 1k documents of
//!   PostgreSQL, the engine and Athens, Athens' peak memory;
//! - `ceiling`: `athens reindex` against a raw loader of the same documents, pre-encoded, with the
//!   same bulk size and requests in flight, alternating (issue 17); not in the default list;
//! - `stream`: `athens sync` under an open-loop, constant-rate mix of writes on the five tables:
//!   highest rate with bounded lag, commit-to-acknowledgement and commit-to-searchable latency,
//!   fan-out cases;
//! - `api`: `athens serve` against the engine directly, per search: open loop (latency at a rate,
//!   highest rate within a p99 budget) and closed loop (saturation throughput);
//! - `source`: write throughput with and without capture (pgbench), WAL per change, idle cost;
//! - `capture`: the outbox and the logical capture mode side by side (pgbench write throughput,
//!   commit-to-acknowledgement latency, highest bounded stream rate, idle cost, retained WAL
//!   while `athens sync` is stopped and its catch-up time); not in the default list: run it with
//!   `--sections capture --out <file>`;
//! - `pipeline`: the pipelined stream and fan-out (issue 17) on two builds of `athens` side by side
//!   (`--before-bin`): fan-out documents/s against the backfill's, commit-to-searchable of
//!   unrelated updates while a 10,000-project rename drains, Athens' CPU per 1,000 changes at each
//!   rate step; not in the default list;
//! - `outbox`: the outbox as a queue under stress: poll cost while a long snapshot is open, and the
//!   drain of a large backlog after an outage; not in the default list (`--sections outbox`);
//! - `pgsync`: pgsync's initial sync and change latency from the same database into the same
//!   engine, against Athens in the same run;
//! - `backlog`: an outbox of a million changes and no consumer (a database of its own): poll and
//!   backlog gauges before and after `ANALYZE`, against `count(*)`, and the first drain.
//!
//! `--relevance` runs the relevance benchmark instead (`relevance`, `docs/relevance.md`): Athens'
//! search against a plain fuzzy query on the Debian corpus; `--write-sample` writes its committed
//! sample; `--load-debian` fills a database with the Debian corpus (what `deploy/local/demo` loads).
//! `--suggest` measures as-you-type suggestions (`suggest`) on the same corpus.
#![allow(clippy::print_stdout)] // a benchmark prints its figures

mod api;
mod backfill;
mod backlog;
mod capture;
mod ceiling;
mod corpus;
mod delay;
mod discard;
mod load;
mod outbox;
mod pgsync;
mod pipeline;
mod procs;
mod raw;
mod readers;
mod relevance;
mod report;
mod source;
mod stats;
mod stream;
mod suggest;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use sea_orm::sqlx::postgres::PgPoolOptions;
use sea_orm::sqlx::{self, AssertSqlSafe, PgPool};
use serde_json::Value;

use procs::{Athens, Services};
use report::Report;

/// Benchmarks Athens against the raw engine and pgsync; prints one table and writes it as markdown.
#[derive(Debug, Parser)]
#[command(name = "athens-bench")]
struct Args {
    /// Projects to seed (users and hashtags scale with them).
    #[arg(long, default_value_t = 100_000)]
    projects: u64,
    /// Sections to run, comma-separated: raw,readers,backfill,stream,api,source,pgsync,backlog
    /// (and ceiling, capture, pipeline, outbox on request).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "raw,readers,backfill,stream,api,source,pgsync,backlog"
    )]
    sections: Vec<String>,
    /// Smoke size: 2,000 projects and runs of a second or two, to prove the runner works.
    #[arg(long)]
    tiny: bool,
    /// Also backfill 1,000,000 projects (seeds the rest first; minutes), at the end.
    #[arg(long)]
    million: bool,
    /// Markdown output (the generated part between its markers is replaced).
    #[arg(long, default_value = "docs/benchmarks.md")]
    out: PathBuf,
    /// A PostgreSQL URL whose role may create databases; the benchmark uses its own database
    /// `athens_bench` on that server.
    #[arg(
        long,
        env = "ATHENS_DATABASE_URL",
        default_value = "postgres://athens:athens@127.0.0.1:54329/athens"
    )]
    database_url: String,
    /// The benchmark's own database on that server (dropped and created afresh).
    #[arg(long, default_value = DATABASE)]
    database: String,
    /// Use the benchmark's database as it is when it already holds --projects projects or more:
    /// no fresh database, no seeding (a large database is seeded once for several runs).
    #[arg(long)]
    keep_database: bool,
    /// The engine (OpenSearch by default: pgsync's engine here).
    #[arg(long, default_value = "http://127.0.0.1:9208")]
    engine_url: String,
    /// Which local engine that is (`os` or `es`), to find its JVM's pid file.
    #[arg(long, default_value = "os")]
    engine_name: String,
    /// State directory of the local services (pid files, logs).
    #[arg(long, env = "ATHENS_HOME")]
    athens_home: Option<PathBuf>,
    /// State directory of the engine's instance when it is not --athens-home: an instance of the
    /// benchmark's own, started by `deploy/local/up es` with another `ATHENS_HOME` and port (see
    /// docs/benchmarks.md), whose JVM's pid file is under its `run/`.
    #[arg(long)]
    engine_home: Option<PathBuf>,
    /// The `athens` binary (default: next to this one).
    #[arg(long)]
    athens_bin: Option<PathBuf>,
    /// An earlier `athens` build measured beside this one by the `pipeline` section.
    #[arg(long)]
    before_bin: Option<PathBuf>,
    /// Parts of the `outbox` section, comma-separated: `poll` (poll cost under a long snapshot),
    /// `drain` (backlog drain after an outage).
    #[arg(long, value_delimiter = ',', default_value = "poll,drain")]
    outbox_parts: Vec<String>,
    /// Changes per second of the fixed-rate latency run.
    #[arg(long, default_value_t = 100.0)]
    stream_rate: f64,
    /// Searches per second of the fixed-rate API run (low enough for the costliest search: the
    /// overhead is read where nothing queues).
    #[arg(long, default_value_t = 10.0)]
    api_rate: f64,
    /// Directory holding pgsync's `bootstrap` and `pgsync` commands (a virtualenv's `bin`).
    #[arg(long)]
    pgsync_bin: Option<PathBuf>,
    /// Port of the Redis server pgsync uses.
    #[arg(long, default_value_t = 6389)]
    redis_port: u16,
    /// The command line that reproduces this run, quoted in the report.
    #[arg(long, default_value = "deploy/local/bench")]
    command: String,
    /// Run the relevance benchmark on the Debian corpus instead of the sections (writes
    /// docs/relevance.md unless --out says otherwise).
    #[arg(long)]
    relevance: bool,
    /// Relevance corpus: `live` (`apt-cache dumpavail`), `sample` (the committed sample and its
    /// recorded queries) or a dumpavail file.
    #[arg(long, default_value = "live")]
    corpus: String,
    /// Relevance queries generated per kind (live corpus or file).
    #[arg(long, default_value_t = 200)]
    per_kind: usize,
    /// Engines of the relevance run, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "http://127.0.0.1:9207,http://127.0.0.1:9208"
    )]
    relevance_engines: Vec<String>,
    /// Measure as-you-type suggestions (`GET /v1/suggestions`) on the Debian corpus (`--corpus`)
    /// instead of the sections: items typed key by key through `athens serve`, per engine of
    /// `--relevance-engines`; prints the latency table.
    #[arg(long)]
    suggest: bool,
    /// Items typed per kind by `--suggest`.
    #[arg(long, default_value_t = 300)]
    suggest_items: usize,
    /// Write the committed Debian sample and its recorded queries from `apt-cache dumpavail`
    /// (into the testkit's data directory under the current directory), then exit.
    #[arg(long)]
    write_sample: bool,
    /// Relevance: print each query whose first hit is wrong (for tuning).
    #[arg(long)]
    show_misses: bool,
    /// Load the Debian corpus (`--corpus`: sample, live or a dumpavail file) into the five tables
    /// of the database at --database-url, unless they hold projects already, then exit (what
    /// deploy/local/demo loads).
    #[arg(long)]
    load_debian: bool,
    /// Round trips (milliseconds) added between Athens and PostgreSQL in the `readers` section, by
    /// a delay proxy on loopback, comma-separated (a remote database simulated: RDS is 0.3–1 ms);
    /// each is measured beside the direct connection in the same rounds. Empty: direct only.
    #[arg(long, value_delimiter = ',')]
    readers_rtt_ms: Vec<f64>,
    /// Rounds of the `ceiling` section (each a raw load and an `athens reindex`, the order
    /// alternating).
    #[arg(long, default_value_t = 2)]
    ceiling_rounds: usize,
    /// Serve a delay proxy in front of this PostgreSQL HOST:PORT instead of benchmarking (what the
    /// `readers` section starts as a child process for `--readers-rtt-ms`).
    #[arg(long, hide = true)]
    delay_proxy: Option<String>,
    /// The round trip the delay proxy adds, in milliseconds.
    #[arg(long, hide = true, default_value_t = 0.0)]
    delay_rtt_ms: f64,
}

/// Durations and sizes of the runs, full or tiny.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    /// Documents per point of the raw sweep (at most).
    pub raw_docs: usize,
    /// Seconds of each single-document run.
    pub single_seconds: f64,
    /// Seconds of each step of the stream's rate search.
    pub step_seconds: f64,
    /// Seconds of the fixed-rate stream run.
    pub stream_seconds: f64,
    /// Projects a fan-out touches (the user's projects; the hashtag gets a tenth of all).
    pub fanout_projects: u64,
    /// Seconds of each API step.
    pub api_seconds: f64,
    /// Fewest requests of an API run: a run lasts long enough to send them, so that a p99 is not
    /// the single slowest of a few dozen.
    pub api_min_requests: f64,
    /// Seconds of each pgbench round.
    pub pgbench_seconds: u32,
    /// Seconds of the idle measurement.
    pub idle_seconds: f64,
    /// Seconds of pgsync's change-latency run.
    pub pgsync_seconds: f64,
}

impl Scale {
    fn full() -> Scale {
        Scale {
            raw_docs: 50_000,
            single_seconds: 6.0,
            step_seconds: 12.0,
            stream_seconds: 60.0,
            fanout_projects: 10_000,
            api_seconds: 6.0,
            api_min_requests: 200.0,
            pgbench_seconds: 10,
            idle_seconds: 10.0,
            pgsync_seconds: 30.0,
        }
    }

    fn tiny() -> Scale {
        Scale {
            raw_docs: 2_000,
            single_seconds: 1.0,
            step_seconds: 2.0,
            stream_seconds: 3.0,
            fanout_projects: 200,
            api_seconds: 1.0,
            api_min_requests: 5.0,
            pgbench_seconds: 2,
            idle_seconds: 2.0,
            pgsync_seconds: 3.0,
        }
    }
}

/// Every section, in the order they run.
const SECTIONS: [&str; 12] = [
    "raw", "readers", "backfill", "ceiling", "stream", "api", "source", "pgsync", "capture",
    "backlog", "pipeline", "outbox",
];

/// Name of the benchmark's own database.
pub const DATABASE: &str = "athens_bench";

/// What every section shares.
pub struct Bench {
    /// Projects seeded.
    pub projects: u64,
    /// Sizes and durations.
    pub scale: Scale,
    /// Whether this is the smoke run.
    pub tiny: bool,
    /// URL of the benchmark database.
    pub db_url: String,
    /// Alias of the index Athens maintains in the benchmark: the database's name, so runs on
    /// databases of their own (`--database`) never write, or drop, each other's indexes on a
    /// shared engine.
    pub alias: String,
    /// The engine's URL.
    pub engine_url: String,
    /// Pool on the benchmark database, for load generators and probes.
    pub pool: PgPool,
    /// HTTP client for the engine and the API.
    pub http: reqwest::Client,
    /// How to run `athens`.
    pub athens: Athens,
    /// The services' processes.
    pub services: Services,
    /// Results.
    pub report: Report,
    /// The engine's `_bulk` ceiling (documents per second, refresh off), once measured.
    pub bulk_ceiling: Option<f64>,
    /// Bulk size and requests in flight of that ceiling.
    pub bulk_best: Option<(usize, usize)>,
    /// The engine's single-document ceiling (requests per second, refresh 1 s), once measured.
    pub single_ceiling: Option<f64>,
    /// Athens' backfill rate at the seeded size, once measured.
    pub backfill_rate: Option<f64>,
    /// State directory of the services.
    pub athens_home: PathBuf,
    /// Fixed rates of the stream and API runs.
    pub stream_rate: f64,
    /// Searches per second of the fixed-rate API run.
    pub api_rate: f64,
    /// pgsync's commands and Redis port.
    pub pgsync: Option<(PathBuf, u16)>,
    /// The replication slot while the logical capture mode is installed (`capture` section).
    pub slot: Option<String>,
    /// Round trips added to PostgreSQL's in the `readers` section (milliseconds), beside direct.
    pub readers_rtt_ms: Vec<f64>,
    /// Rounds of the `ceiling` section.
    pub ceiling_rounds: usize,
}

impl Bench {
    /// `GET`/`POST` JSON against the engine; fails on an error status.
    pub async fn engine(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self.http.request(
            method,
            format!("{}/{}", self.engine_url, path.trim_start_matches('/')),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!(
                "engine answered {status} to {path}: {}",
                truncate(&text, 400)
            );
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Deletes every index whose name starts with `prefix` (listed first: wildcard deletes may be
    /// refused by the engine).
    pub async fn drop_indexes(&self, prefix: &str) -> anyhow::Result<()> {
        let listed = self
            .engine(
                reqwest::Method::GET,
                &format!("_cat/indices/{prefix}*?format=json&h=index"),
                None,
            )
            .await?;
        for entry in listed.as_array().into_iter().flatten() {
            if let Some(name) = entry["index"].as_str() {
                self.engine(reqwest::Method::DELETE, name, None).await?;
            }
        }
        Ok(())
    }

    /// Work the sync has left: pending changes and projects queued for a rebuild (a fan-out's
    /// change is acknowledged once its projects are queued).
    pub async fn pending(&self) -> anyhow::Result<i64> {
        Ok(self.pending_changes().await? + self.queued_projects().await?)
    }

    /// Projects of fan-outs queued for a rebuild (0 for a build without the rebuild queue).
    async fn queued_projects(&self) -> anyhow::Result<i64> {
        let exists: bool =
            sqlx::query_scalar("SELECT to_regclass('athens.rebuild_queue') IS NOT NULL")
                .fetch_one(&self.pool)
                .await?;
        if !exists {
            return Ok(0);
        }
        Ok(
            sqlx::query_scalar("SELECT count(*) FROM athens.rebuild_queue")
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Pending outbox rows; in the logical mode, messages pending in the slot (peeked, with
    /// retries while `athens sync` holds the slot for its own call).
    async fn pending_changes(&self) -> anyhow::Result<i64> {
        let Some(slot) = &self.slot else {
            return Ok(sqlx::query_scalar("SELECT count(*) FROM athens.outbox")
                .fetch_one(&self.pool)
                .await?);
        };
        let mut attempt = 0;
        loop {
            let peeked = sqlx::query_scalar(
                "SELECT count(*) FROM pg_logical_slot_peek_binary_changes($1, NULL, NULL, \
                 'proto_version', '1', 'publication_names', 'athens', 'messages', 'true')",
            )
            .bind(slot)
            .fetch_one(&self.pool)
            .await;
            match peeked {
                Ok(count) => return Ok(count),
                Err(_) if attempt < 100 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Waits until the outbox is empty, up to `timeout`; returns how long it took.
    pub async fn wait_drained(&self, timeout: Duration) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let pending = self.pending().await?;
            if pending == 0 {
                return Ok(started.elapsed());
            }
            if started.elapsed() > timeout {
                bail!("{pending} changes still pending after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// At most `max` characters of `text`.
pub fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

/// The URL of database `name` on the server of `url`.
fn database_url(url: &str, name: &str) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).context("database url is not a URL")?;
    parsed.set_path(&format!("/{name}"));
    Ok(parsed.to_string())
}

/// Creates database `name` afresh (dropping any replication slot a previous pgsync run left).
async fn fresh_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = PgPoolOptions::new()
        .max_connections(1)
        .connect(admin_url)
        .await
        .context("cannot connect to PostgreSQL: start it with deploy/local/up")?;
    sqlx::query(
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
         WHERE database = $1 AND NOT active",
    )
    .bind(name)
    .execute(&admin)
    .await?;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await?;
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await?;
    admin.close().await;
    Ok(())
}

/// Projects in the database at `url`; 0 when it cannot be read (no database, no table).
async fn seeded_projects(url: &str) -> u64 {
    let Ok(pool) = PgPoolOptions::new().max_connections(1).connect(url).await else {
        return 0;
    };
    let count: Result<i64, _> = sqlx::query_scalar("SELECT count(*) FROM projects")
        .fetch_one(&pool)
        .await;
    pool.close().await;
    count.map_or(0, |count| u64::try_from(count).unwrap_or(0))
}

/// An engine's distribution and version ("opensearch 2.19.1") from its answer to `GET /`.
fn engine_label(root: &Value) -> String {
    format!(
        "{} {}",
        root["version"]["distribution"]
            .as_str()
            .unwrap_or("elasticsearch"),
        root["version"]["number"].as_str().unwrap_or("?")
    )
}

/// Deletes the indexes matching `pattern` on `engine` (listed first: wildcard deletes may be
/// refused by the engine).
async fn drop_matching(http: &reqwest::Client, engine: &str, pattern: &str) -> anyhow::Result<()> {
    let listed: Value = http
        .get(format!(
            "{engine}/_cat/indices/{pattern}?format=json&h=index"
        ))
        .send()
        .await?
        .json()
        .await?;
    for entry in listed.as_array().into_iter().flatten() {
        if let Some(name) = entry["index"].as_str() {
            http.delete(format!("{engine}/{name}"))
                .send()
                .await?
                .error_for_status()?;
        }
    }
    Ok(())
}

/// One line per fact about the machine and the software under test.
async fn context(bench: &Bench, command: &str) -> Vec<String> {
    let run = |program: &str, args: &[&str]| -> String {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
            .unwrap_or_else(|_| "unknown".into())
    };
    let memory = run("free", &["-h"])
        .lines()
        .nth(1)
        .and_then(|line| line.split_whitespace().nth(1).map(str::to_owned))
        .unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines().find_map(|line| {
                line.strip_prefix("model name")
                    .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
            })
        })
        .unwrap_or_default();
    let pg: String = sqlx::query_scalar("SHOW server_version")
        .fetch_one(&bench.pool)
        .await
        .unwrap_or_default();
    let engine = bench
        .engine(reqwest::Method::GET, "/", None)
        .await
        .map(|root| engine_label(&root))
        .unwrap_or_default();
    let jvm = std::fs::read_to_string(format!("/proc/{}/cmdline", bench.services.engine))
        .map(|cmdline| {
            let options: Vec<&str> = cmdline
                .split('\0')
                .filter(|arg| arg.starts_with("-Xmx") || arg.starts_with("-XX:TieredStopAtLevel"))
                .collect();
            options.join(" ")
        })
        .unwrap_or_default();
    let commit = Some(run("git", &["rev-parse", "--short", "HEAD"]))
        .filter(|commit| !commit.is_empty())
        .unwrap_or_else(|| "unknown (not a git checkout)".into());
    let dirty = !run("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    vec![
        format!(
            "command: `{command}` at commit {commit}{}",
            if dirty {
                " with uncommitted changes"
            } else {
                ""
            }
        ),
        format!(
            "machine: {} cores (`nproc`), {memory} memory (`free -h`), kernel {} (`uname -r`), {cpu}",
            run("nproc", &[]),
            run("uname", &["-r"])
        ),
        format!(
            "PostgreSQL {pg}; engine {engine} (JVM {}; heap and JIT: `{jvm}`); {}; athens built in release mode",
            run("sh", &["-c", "java -version 2>&1 | head -n 1"]),
            run("rustc", &["--version"])
        ),
        format!(
            "data: {} projects seeded by `athens seed` (users = projects / 5, hashtags = projects / 20)",
            bench.projects
        ),
        format!(
            "date: {}; the machine is shared and noisy: compare the ratios, measured side by side, rather than the absolute figures",
            chrono::Utc::now().format("%Y-%m-%d %H:%M UTC")
        ),
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(target) = &args.delay_proxy {
        return delay::serve(target, args.delay_rtt_ms);
    }
    let scale = if args.tiny {
        Scale::tiny()
    } else {
        Scale::full()
    };
    let projects = if args.tiny { 2_000 } else { args.projects };
    let athens_home = match &args.athens_home {
        Some(home) => home.clone(),
        None => std::env::current_dir()?.join(".athens"),
    };
    let athens_bin = match &args.athens_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("no directory around this binary")?
            .join("athens"),
    };
    let log_dir = athens_home.join("logs");
    std::fs::create_dir_all(&log_dir)?;
    if args.write_sample {
        return relevance::write_sample(&std::env::current_dir()?);
    }
    if args.load_debian {
        return relevance::load_demo(&args.corpus, &args.database_url).await;
    }
    let corpus_run = |per_kind: usize| corpus::CorpusRun {
        corpus: args.corpus.clone(),
        per_kind,
        engines: args.relevance_engines.clone(),
        admin_url: args.database_url.clone(),
        athens: Athens {
            bin: athens_bin.clone(),
            env: Vec::new(),
            log_dir: log_dir.clone(),
        },
    };
    if args.suggest {
        return suggest::run(suggest::Options {
            run: corpus_run(args.suggest_items),
            port: 18_093,
        })
        .await;
    }
    if args.relevance {
        let out = if args.out == Path::new("docs/benchmarks.md") {
            PathBuf::from("docs/relevance.md")
        } else {
            args.out.clone()
        };
        return relevance::run(relevance::Options {
            run: corpus_run(args.per_kind),
            out,
            command: args.command.clone(),
            show_misses: args.show_misses,
        })
        .await;
    }
    let db_url = database_url(&args.database_url, &args.database)?;
    let services = Services::find(
        &athens_home,
        args.engine_home.as_deref().unwrap_or(&athens_home),
        &args.engine_name,
    )?;

    let started = Instant::now();
    println!(
        "athens-bench: database {}, {projects} projects",
        args.database
    );
    let kept = if args.keep_database && !args.tiny {
        seeded_projects(&db_url).await >= projects
    } else {
        false
    };
    if !kept {
        fresh_database(&args.database_url, &args.database).await?;
    }
    let pool = PgPoolOptions::new()
        .max_connections(48)
        .acquire_timeout(Duration::from_secs(60))
        .connect(&db_url)
        .await?;
    let alias = args.database.to_lowercase();
    let athens = Athens {
        bin: athens_bin,
        env: vec![
            ("ATHENS_DATABASE_URL".into(), db_url.clone()),
            ("ATHENS_ENGINE_URL".into(), args.engine_url.clone()),
            ("ATHENS_INDEX".into(), alias.clone()),
            ("ATHENS_LOG".into(), "warn".into()),
            ("ATHENS_LOG_FORMAT".into(), "text".into()),
        ],
        log_dir,
    };
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(120))
        .build()?;
    let mut bench = Bench {
        projects,
        scale,
        tiny: args.tiny,
        db_url,
        alias,
        engine_url: args.engine_url.trim_end_matches('/').to_owned(),
        pool,
        http,
        athens,
        services,
        report: Report::default(),
        bulk_ceiling: None,
        bulk_best: None,
        single_ceiling: None,
        backfill_rate: None,
        athens_home,
        stream_rate: if args.tiny { 20.0 } else { args.stream_rate },
        api_rate: if args.tiny { 5.0 } else { args.api_rate },
        pgsync: args.pgsync_bin.clone().map(|bin| (bin, args.redis_port)),
        slot: None,
        readers_rtt_ms: args.readers_rtt_ms.clone(),
        ceiling_rounds: args.ceiling_rounds.max(1),
    };
    // The alias's indexes are named `<alias>-…`: the dash keeps another database's out.
    bench.drop_indexes(&format!("{}-", bench.alias)).await?;

    if kept {
        println!("kept database {} as it is", args.database);
    } else {
        let seed_started = Instant::now();
        bench.athens.run(&["migrate"])?;
        bench
            .athens
            .run(&["seed", "--projects", &projects.to_string()])?;
        bench.athens.run(&["setup"])?;
        sqlx::raw_sql("VACUUM ANALYZE").execute(&bench.pool).await?;
        println!(
            "seeded {projects} projects in {:.1} s",
            seed_started.elapsed().as_secs_f64()
        );
    }
    bench.report.context = context(&bench, &args.command).await;

    for section in &args.sections {
        if !SECTIONS.contains(&section.as_str()) {
            bail!("unknown section {section}");
        }
    }
    for name in SECTIONS {
        if !args.sections.iter().any(|s| s == name) {
            continue;
        }
        let section_started = Instant::now();
        println!("== {name}");
        if !["raw", "backfill", "backlog", "readers", "ceiling"].contains(&name) {
            backfill::ensure_index(&mut bench).await?;
        }
        let result = match name {
            "raw" => raw::run(&mut bench).await,
            "backfill" => backfill::run(&mut bench).await,
            "readers" => readers::run(&mut bench).await,
            "ceiling" => ceiling::run(&mut bench).await,
            "stream" => stream::run(&mut bench).await,
            "api" => api::run(&mut bench).await,
            "source" => source::run(&mut bench).await,
            "capture" => capture::run(&mut bench).await,
            "backlog" => backlog::run(&mut bench).await,
            "pipeline" => pipeline::run(&mut bench, args.before_bin.clone()).await,
            "outbox" => outbox::run(&mut bench, &args.outbox_parts).await,
            _ => pgsync::run(&mut bench).await,
        };
        if let Err(error) = result {
            println!("section {name} failed: {error:#}");
            bench.report.failures.push(format!("{name}: {error:#}"));
        }
        println!(
            "== {name} done in {:.0} s",
            section_started.elapsed().as_secs_f64()
        );
    }
    if args.million && !args.tiny {
        println!("== backfill at 1,000,000 projects");
        if let Err(error) = backfill::million(&mut bench).await {
            bench
                .report
                .failures
                .push(format!("backfill 1M: {error:#}"));
        }
    }
    bench.report.context.push(format!(
        "whole run: {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    println!("\n{}", bench.report.text());
    bench.report.write(&args.out)?;
    println!("written to {}", args.out.display());
    if !bench.report.failures.is_empty() && args.tiny {
        bail!("{} section(s) failed", bench.report.failures.len());
    }
    Ok(())
}
