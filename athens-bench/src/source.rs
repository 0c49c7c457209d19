//! What capture costs the source: single-row write throughput with pgbench with and without the
//! triggers (and with `athens sync` consuming, as in production), WAL bytes per change, and what an
//! idle `athens sync` costs.
//!
//! Modes alternate within each round so that drift on a shared machine hits each alike; the median
//! of the rounds is reported. WAL is the cluster's (`pg_current_wal_insert_lsn`): other databases'
//! writes on a shared server land in it too, so the difference between modes is the figure to read.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, ensure};
use sea_orm::sqlx;

use crate::Bench;
use crate::report::{Table, num, ratio};
use crate::stats::medians;
use crate::stream::start_sync;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Off,
    On,
    Consumed,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Off => "no capture (`athens teardown`)",
            Mode::On => "capture installed, no consumer",
            Mode::Consumed => "capture + `athens sync` consuming",
        }
    }
}

const CLIENTS: &str = "8";

/// One pgbench run: (transactions per second, transactions, WAL bytes).
pub(crate) async fn pgbench(
    bench: &Bench,
    script: &std::path::Path,
    seconds: u32,
) -> anyhow::Result<(f64, f64, f64)> {
    let wal_before: String = sqlx::query_scalar("SELECT pg_current_wal_insert_lsn()::text")
        .fetch_one(&bench.pool)
        .await?;
    let output = Command::new("pgbench")
        .args([
            "-n",
            "-c",
            CLIENTS,
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(script)
        .arg(&bench.db_url)
        .output()
        .context("cannot run pgbench (apt-get install postgresql-client)")?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    ensure!(
        output.status.success(),
        "pgbench failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let wal: f64 = sqlx::query_scalar(
        "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)::float8",
    )
    .bind(&wal_before)
    .fetch_one(&bench.pool)
    .await?;
    let field = |prefix: &str| -> Option<f64> {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|value| value.parse().ok())
    };
    let tps = field("tps = ").context("no tps in pgbench's output")?;
    let transactions = field("number of transactions actually processed: ")
        .context("no count in pgbench's output")?;
    Ok((tps, transactions, wal))
}

/// Writes the pgbench script that updates the description of a random project (among the 90%
/// lowest ids) to log file `name`, and returns its path.
pub(crate) async fn update_script(bench: &Bench, name: &str) -> anyhow::Result<PathBuf> {
    let stable: i64 = sqlx::query_scalar("SELECT (max(id) * 9 / 10)::bigint FROM projects")
        .fetch_one(&bench.pool)
        .await?;
    let script = bench.athens.log_dir.join(name);
    std::fs::write(
        &script,
        format!(
            "\\set id random(1, {stable})\n\
             UPDATE projects SET description = left(md5(random()::text), 8) || ' ' || \
             regexp_replace(coalesce(description, ''), '^[0-9a-f]{{8}} ', '') WHERE id = :id;\n"
        ),
    )?;
    Ok(script)
}

/// Transactions committed or rolled back in the benchmark's database so far.
pub(crate) async fn transactions(bench: &Bench) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&bench.pool)
    .await
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let script = update_script(bench, "bench-pgbench.sql").await?;
    let rounds = if bench.tiny { 1 } else { 2 };
    let seconds = bench.scale.pgbench_seconds;
    let modes = [Mode::Off, Mode::On, Mode::Consumed];
    let mut results: Vec<(Mode, f64, f64)> = Vec::new();
    let mut sync = None;
    for round in 0..rounds {
        for mode in modes {
            match mode {
                Mode::Off => {
                    bench.athens.run(&["teardown"])?;
                }
                Mode::On => {
                    bench.athens.run(&["setup"])?;
                }
                Mode::Consumed => {
                    sync = Some(start_sync(bench).await?);
                }
            }
            let (tps, transactions, wal) = pgbench(bench, &script, seconds).await?;
            println!(
                "source round {round} {}: {tps:.0} tps, {:.0} WAL bytes per transaction",
                mode.label(),
                wal / transactions
            );
            results.push((mode, tps, wal / transactions));
            if let Some(running) = sync.take() {
                bench.wait_drained(Duration::from_secs(120)).await?;
                running.stop().await?;
            }
        }
    }
    let summary = |mode: Mode| medians(&results, mode);
    let (off_tps, off_wal) = summary(Mode::Off);
    let mut table = Table::new(
        &format!(
            "Source: single-row UPDATE throughput (pgbench, {CLIENTS} clients, {seconds} s × {rounds} rounds, median)"
        ),
        &[
            "mode",
            "transactions/s",
            "of no capture",
            "WAL bytes/transaction",
            "WAL added by capture",
        ],
    );
    for mode in modes {
        let (tps, wal) = summary(mode);
        table.row(vec![
            mode.label().into(),
            num(tps, 0),
            ratio(tps / off_tps),
            num(wal, 0),
            if mode == Mode::Off {
                "–".into()
            } else {
                format!("{} B", num(wal - off_wal, 0))
            },
        ]);
    }
    table.note("pgbench script: `UPDATE projects SET description = <new 8-character prefix> … WHERE id = random` (a document column: every transaction is captured)");
    table.note("with a consumer, its reads, deletes and the engine's indexing share the same 2 cores with pgbench: the figure includes that contention");

    // Idle: capture installed, `athens sync` running, nothing to do.
    let sync = start_sync(bench).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = bench.services.cpu();
    let athens_before = sync.cpu();
    let xact_before = transactions(bench).await?;
    tokio::time::sleep(Duration::from_secs_f64(bench.scale.idle_seconds)).await;
    let xact_after = transactions(bench).await?;
    let after = bench.services.cpu();
    let athens_idle = sync.cpu() - athens_before;
    sync.stop().await?;
    let (pg_cpu, _, wall) = after.since(&before);
    let xact_rate = (xact_after - xact_before) as f64 / wall;
    table.note(format!(
        "idle `athens sync` over {wall:.0} s: Athens {:.2}% of one core; {:.1} transactions/s in the database (polls and backlog gauges; the count includes this measurement's own two reads); PostgreSQL as a whole {:.2}% of one core (the cluster is shared)",
        athens_idle / wall * 100.0,
        xact_rate,
        pg_cpu / wall * 100.0
    ));
    bench.report.tables.push(table);
    let (on_tps, on_wal) = summary(Mode::On);
    bench.report.headline(
        "single-row write TPS with capture / without",
        ratio(on_tps / off_tps),
        "reported",
        None,
    );
    bench.report.headline(
        "WAL bytes per change with capture / without",
        format!(
            "{} ({} B → {} B)",
            ratio(on_wal / off_wal),
            num(off_wal, 0),
            num(on_wal, 0)
        ),
        "reported",
        None,
    );
    bench.report.headline(
        "idle `athens sync`: CPU, source transactions/s",
        format!(
            "{:.2}% of a core, {:.1}/s",
            athens_idle / wall * 100.0,
            xact_rate
        ),
        "reported",
        None,
    );
    Ok(())
}
