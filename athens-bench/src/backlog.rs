//! The outbox under a large backlog, as after a long outage of the engine: a fresh database of its
//! own whose outbox is filled with a million changes (20,000 in the smoke run) and no consumer;
//! the time of one poll before and after `ANALYZE`, of the backlog gauges against an exact
//! `count(*)`, and of draining the first slice with poll and acknowledgement the way the engine
//! does when it comes back.

use std::time::{Duration, Instant};

use athens_core::{Ack, ChangeSource};
use athens_pg::{PgConfig, PgSource};
use sea_orm::sqlx::{self, AssertSqlSafe};

use crate::Bench;
use crate::report::{Table, num};

/// The section's own database on the benchmark's server (created afresh, dropped at the end).
const DATABASE: &str = "athens_bench_backlog";
/// Changes polled and acknowledged per batch, like the engine's default batch.
const BATCH: usize = 1_000;

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let (changes, drained) = if bench.tiny {
        (20_000, 5_000)
    } else {
        (1_000_000, 100_000)
    };
    crate::fresh_database(&bench.db_url, DATABASE).await?;
    let source = PgSource::connect(&PgConfig::new(crate::database_url(
        &bench.db_url,
        DATABASE,
    )?))
    .await?;
    let result = measure(&source, changes, drained).await;
    source.close().await;
    sqlx::raw_sql(AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)"
    )))
    .execute(&bench.pool)
    .await?;
    bench.report.tables.push(result?);
    Ok(())
}

/// A row of the table, printed too: what was timed, how long it took, what it found.
fn row(table: &mut Table, what: String, elapsed: Duration, result: String) {
    let ms = num(elapsed.as_secs_f64() * 1e3, 1);
    println!("backlog: {what}: {ms} ms, {result}");
    table.row(vec![what, ms, result]);
}

async fn measure(source: &PgSource, changes: u64, drained: usize) -> anyhow::Result<Table> {
    source.migrate().await?;
    source.install_capture().await?;
    let mut table = Table::new(
        &format!("Outbox with a backlog of {changes} changes and no consumer (a fresh database)"),
        &["what", "ms", "result"],
    );
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO athens.outbox (source_table, op, project_id)
         SELECT 'projects', 'U', g FROM generate_series(1, $1) g",
    )
    .bind(changes as i64)
    .execute(source.pool())
    .await?;
    let filled = started.elapsed();
    row(
        &mut table,
        "fill the outbox (one INSERT … generate_series)".into(),
        filled,
        format!("{changes} rows"),
    );
    for (label, analyze) in [("before ANALYZE", false), ("after ANALYZE", true)] {
        if analyze {
            sqlx::query("ANALYZE athens.outbox")
                .execute(source.pool())
                .await?;
        }
        let started = Instant::now();
        let batch = source.poll(BATCH, Duration::ZERO).await?;
        let polled = started.elapsed();
        let started = Instant::now();
        let backlog = source.backlog().await?;
        let gauged = started.elapsed();
        row(
            &mut table,
            format!("poll of {BATCH}, {label}"),
            polled,
            format!("{} changes", batch.len()),
        );
        row(
            &mut table,
            format!("`backlog()` gauges, {label}"),
            gauged,
            format!(
                "{} pending, oldest {} s",
                backlog.pending,
                backlog
                    .oldest_age
                    .map_or_else(|| "?".into(), |age| age.as_secs().to_string())
            ),
        );
    }
    let started = Instant::now();
    let exact: i64 = sqlx::query_scalar("SELECT count(*) FROM athens.outbox")
        .fetch_one(source.pool())
        .await?;
    row(
        &mut table,
        "exact `count(*)`, for comparison".into(),
        started.elapsed(),
        format!("{exact} rows"),
    );
    let started = Instant::now();
    let mut done = 0;
    while done < drained {
        let batch = source.poll(BATCH, Duration::ZERO).await?;
        anyhow::ensure!(!batch.is_empty(), "the outbox ran dry after {done} changes");
        done += batch.len();
        source
            .ack(&Ack {
                changes: batch.iter().map(|record| record.id).collect(),
                dead_letters: Vec::new(),
            })
            .await?;
    }
    let drain = started.elapsed();
    row(
        &mut table,
        format!("poll + ack of the first {done} changes, {BATCH} per batch"),
        drain,
        format!("{} changes/s", num(done as f64 / drain.as_secs_f64(), 0)),
    );
    table.note("what the engine meets when it comes back after a long outage: the gauges must stay cheap (they run every few seconds) and the first batches must not scan the whole backlog");
    Ok(table)
}
