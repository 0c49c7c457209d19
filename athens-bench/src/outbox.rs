//! The outbox as a queue under stress (issue 12, finding 8), not in the default sections: run it
//! with `--sections outbox --out <file>`.
//!
//! - **Poll cost under a long snapshot.** Two databases side by side, each with an outbox of
//!   pending rows; one holds a `REPEATABLE READ` transaction open that has read the outbox (what
//!   `pg_dump` does), the other none. Batches are polled and acknowledged in both, alternately, as
//!   `athens sync` does (`PgSource::poll` then `ack`, its periodic vacuum included); the poll
//!   latency is reported against the rows acknowledged so far. Rows deleted after the snapshot
//!   began cannot be vacuumed while it is open, so a scan that starts at the oldest index entry
//!   walks over all of them.
//! - **Backlog drain.** With no `athens sync` running, bulk statements commit changes on the
//!   seeded tables (an outage); then `athens sync` starts and the outbox is sampled every second
//!   until it is empty: changes and documents per second.

use std::time::{Duration, Instant};

use anyhow::Context;
use athens_core::{Ack, ChangeSource};
use athens_pg::{PgConfig, PgSource};
use sea_orm::sqlx::{self, Connection, PgConnection};

use crate::report::{Table, num, ratio};
use crate::stats::median;
use crate::{Bench, database_url, fresh_database};

/// Changes per poll, as `sync.batch_size`'s default.
const BATCH: usize = 1000;

/// Runs the section's `parts` (`poll`, `drain`).
pub async fn run(bench: &mut Bench, parts: &[String]) -> anyhow::Result<()> {
    if parts.iter().any(|part| part == "poll") {
        poll_cost(bench).await?;
    }
    if parts.iter().any(|part| part == "drain") {
        drain(bench).await?;
    }
    Ok(())
}

/// One side of the poll-cost comparison.
struct Side {
    source: PgSource,
    database: String,
    /// Poll and ack latencies, ms, one pair per batch.
    polls: Vec<f64>,
    acks: Vec<f64>,
    /// `backlog()` latency at each checkpoint, ms.
    backlogs: Vec<f64>,
}

async fn poll_cost(bench: &mut Bench) -> anyhow::Result<()> {
    let rows: i64 = if bench.tiny { 20_000 } else { 1_000_000 };
    let mut sides = Vec::new();
    for name in ["snapshot", "free"] {
        let database = format!("athens_bench_outbox_{name}");
        fresh_database(&bench.db_url, &database).await?;
        let url = database_url(&bench.db_url, &database)?;
        let source = PgSource::connect(&PgConfig::new(url)).await?;
        source.migrate().await?;
        source.install_capture().await?;
        sqlx::query(
            "INSERT INTO athens.outbox (source_table, op, project_id) \
             SELECT 'projects', 'U', g FROM generate_series(1, $1) g",
        )
        .bind(rows)
        .execute(source.pool())
        .await?;
        sqlx::query("VACUUM ANALYZE athens.outbox")
            .execute(source.pool())
            .await?;
        sides.push(Side {
            source,
            database,
            polls: Vec::new(),
            acks: Vec::new(),
            backlogs: Vec::new(),
        });
    }
    // What pg_dump does: one REPEATABLE READ transaction that reads every table, open throughout.
    let snapshot_url = database_url(&bench.db_url, &sides[0].database)?;
    let mut dump = PgConnection::connect(&snapshot_url).await?;
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut dump)
        .await?;
    let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM athens.outbox")
        .fetch_one(&mut dump)
        .await?;
    println!(
        "outbox: {rows} rows pending in both databases, a snapshot of {seen} rows open in one"
    );
    let batches = usize::try_from(rows)? / BATCH;
    let checkpoints: Vec<usize> = [0.0, 0.01, 0.1, 0.25, 0.5, 0.75, 0.99]
        .iter()
        .map(|fraction| ((batches as f64 * fraction) as usize).max(10))
        .collect();
    let started = Instant::now();
    for batch in 0..batches {
        for side in &mut sides {
            let polled = Instant::now();
            let records = side.source.poll(BATCH, Duration::ZERO).await?;
            side.polls.push(polled.elapsed().as_secs_f64() * 1000.0);
            let acked = Instant::now();
            side.source
                .ack(&Ack {
                    changes: records.iter().map(|record| record.id).collect(),
                    dead_letters: Vec::new(),
                })
                .await?;
            side.acks.push(acked.elapsed().as_secs_f64() * 1000.0);
            if checkpoints.contains(&(batch + 1)) {
                let asked = Instant::now();
                side.source.backlog().await?;
                side.backlogs.push(asked.elapsed().as_secs_f64() * 1000.0);
            }
        }
        if (batch + 1) % 100 == 0 {
            println!(
                "outbox: {} rows acknowledged in each, last poll {:.1} ms with the snapshot, {:.1} ms without",
                (batch + 1) * BATCH,
                sides[0].polls[batch],
                sides[1].polls[batch]
            );
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    sqlx::query("ROLLBACK").execute(&mut dump).await?;
    dump.close().await?;

    let mut table = Table::new(
        &format!(
            "Outbox: poll cost while acknowledged rows pile up behind a long snapshot ({rows} rows, {BATCH} per poll)"
        ),
        &[
            "acknowledged rows",
            "poll ms, snapshot open",
            "poll ms, no snapshot",
            "ratio",
            "ack ms, snapshot open",
            "ack ms, no snapshot",
            "backlog() ms, snapshot open",
            "backlog() ms, no snapshot",
        ],
    );
    for (n, checkpoint) in checkpoints.iter().enumerate() {
        let window = |values: &[f64]| median(&values[checkpoint - 10..*checkpoint]);
        let (open, free) = (window(&sides[0].polls), window(&sides[1].polls));
        table.row(vec![
            format!("{}", (checkpoint - 5) * BATCH),
            num(open, 1),
            num(free, 1),
            ratio(open / free),
            num(window(&sides[0].acks), 1),
            num(window(&sides[1].acks), 1),
            num(sides[0].backlogs.get(n).copied().unwrap_or(f64::NAN), 1),
            num(sides[1].backlogs.get(n).copied().unwrap_or(f64::NAN), 1),
        ]);
    }
    let total = |values: &[f64]| values.iter().sum::<f64>() / 1000.0;
    table.note(format!(
        "poll and ack: median of the 10 batches around each point; backlog(): one call (what `athens sync` publishes every 5 s); whole run {elapsed:.0} s, polls in all {:.1} s with the snapshot open, {:.1} s without",
        total(&sides[0].polls),
        total(&sides[1].polls)
    ));
    table.note("snapshot: `BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM athens.outbox` on another connection, open until the end (as `pg_dump`); both databases on the same server, batches alternating between them; the periodic vacuum (every 50,000 acknowledged changes) runs in both");
    let last = checkpoints[checkpoints.len() - 1];
    let ratio_at_end =
        median(&sides[0].polls[last - 10..last]) / median(&sides[1].polls[last - 10..last]);
    bench.report.headline(
        "outbox poll latency with a long snapshot open / without, after all rows acknowledged",
        ratio(ratio_at_end),
        "reported",
        None,
    );
    bench.report.tables.push(table);
    for side in sides {
        side.source.close().await;
        let admin = sqlx::PgPool::connect(&bench.db_url).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            side.database
        )))
        .execute(&admin)
        .await?;
        admin.close().await;
    }
    Ok(())
}

/// Statements of the outage: each touches up to 10,000 rows; the mix is mostly project updates,
/// with user renames (each rewrites the user's projects) and hashtag links.
const OUTAGE: [(&str, u32); 3] = [
    (
        "UPDATE projects SET description = left(coalesce(description, ''), 200) || ' ' || $2 \
         WHERE id IN (SELECT 1 + (random() * ($1 - 1))::bigint FROM generate_series(1, 10000))",
        18,
    ),
    (
        "UPDATE users SET name = left(name, 60) || ' ' || $2 \
         WHERE id IN (SELECT 1 + (random() * ($1 / 5 - 1))::bigint FROM generate_series(1, 2000))",
        1,
    ),
    (
        "INSERT INTO project_hashtags (project_id, hashtag_id) \
         SELECT 1 + (random() * ($1 - 1))::bigint, 1 + (random() * ($1 / 20 - 1))::bigint \
         FROM generate_series(1, 10000) ON CONFLICT DO NOTHING",
        1,
    ),
];

async fn drain(bench: &mut Bench) -> anyhow::Result<()> {
    let target: i64 = if bench.tiny { 20_000 } else { 1_000_000 };
    let projects = i64::try_from(bench.projects)?;
    let pending = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM athens.outbox")
            .fetch_one(&bench.pool)
            .await
    };
    let outage = Instant::now();
    let mut round = 0u32;
    while pending().await? < target {
        for (sql, times) in OUTAGE {
            for _ in 0..times {
                round += 1;
                sqlx::query(sql)
                    .bind(projects)
                    .bind(round.to_string())
                    .execute(&bench.pool)
                    .await
                    .with_context(|| format!("outage statement {sql}"))?;
            }
        }
    }
    let backlog = pending().await?;
    let (users, projects_named): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE source_table = 'users'), \
                count(DISTINCT project_id) FROM athens.outbox",
    )
    .fetch_one(&bench.pool)
    .await?;
    sqlx::query("VACUUM ANALYZE athens.outbox")
        .execute(&bench.pool)
        .await?;
    println!(
        "outbox: {backlog} changes committed in {:.0} s with no writer ({users} user renames, {projects_named} distinct projects named)",
        outage.elapsed().as_secs_f64()
    );
    let indexed_before = crate::stream::indexed(bench).await;
    let started = Instant::now();
    let sync = bench.athens.spawn(&["sync"], &[])?;
    let mut samples: Vec<(f64, i64, f64)> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let left = pending().await?;
        let written = crate::stream::indexed(bench).await - indexed_before;
        samples.push((started.elapsed().as_secs_f64(), left, written));
        if left == 0 {
            break;
        }
        anyhow::ensure!(sync.alive(), "athens sync exited during the drain");
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(3600),
            "{left} changes still pending after an hour"
        );
    }
    let seconds = started.elapsed().as_secs_f64();
    let usage = sync.stop().await?;
    let written = samples.last().map_or(0.0, |sample| sample.2);
    let mut table = Table::new(
        &format!(
            "Outbox: draining a backlog of {backlog} changes after an outage (release build, `sync.batch_size` {BATCH})"
        ),
        &[
            "elapsed s",
            "changes left",
            "changes/s since the last row",
            "documents written/s since the last row",
        ],
    );
    let mut previous = (0.0, backlog, 0.0);
    let every = (samples.len() / 10).max(1);
    for (n, sample) in samples.iter().enumerate() {
        if (n + 1) % every != 0 && n + 1 != samples.len() {
            continue;
        }
        let span = (sample.0 - previous.0).max(0.001);
        table.row(vec![
            num(sample.0, 0),
            sample.1.to_string(),
            num((previous.1 - sample.1) as f64 / span, 0),
            num((sample.2 - previous.2) / span, 0),
        ]);
        previous = *sample;
    }
    table.note(format!(
        "whole drain: {seconds:.0} s, {:.0} changes/s, {written:.0} documents written ({:.0}/s, {:.2} per change); Athens CPU {:.1} s, peak RSS {:.0} MiB",
        backlog as f64 / seconds,
        written / seconds,
        written / backlog as f64,
        usage.cpu,
        usage.peak_rss_mib
    ));
    table.note(format!(
        "outage: bulk statements of up to 10,000 rows on the seeded tables with no `athens sync` running ({users} user renames, {projects_named} distinct projects named directly); documents: the index's own count of indexed and deleted documents"
    ));
    bench.report.headline(
        "backlog drain after an outage, changes/s (documents/s)",
        format!("{:.0} ({:.0})", backlog as f64 / seconds, written / seconds),
        "reported",
        None,
    );
    bench.report.tables.push(table);
    Ok(())
}
