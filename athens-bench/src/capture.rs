//! The two capture modes side by side in one run: the outbox (triggers) and logical decoding
//! (`capture.mode = "logical"`). What each costs the writers (pgbench), how fast changes reach
//! the index (commit → acknowledged at a fixed rate, highest bounded rate), what an idle
//! `athens sync` costs, and what a stopped `athens sync` leaves behind (outbox rows or retained
//! WAL) and how long it takes to catch up.
//!
//! pgbench modes alternate within each round, so that drift on the shared machine hits each
//! alike; the median of the rounds is reported. The stream runs of the two modes follow each
//! other on the same data and index.

use std::time::{Duration, Instant};

use sea_orm::sqlx;

use crate::Bench;
use crate::load::Generator;
use crate::report::{Table, num, ratio};
use crate::source::{pgbench, transactions, update_script};
use crate::stats::medians;
use crate::stream::{engine, fixed_rate_plan, start_sync, step_plan};

/// How changes are captured in one measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Capture {
    /// No capture at all (`athens teardown`).
    None,
    /// Outbox triggers.
    Outbox,
    /// Logical decoding.
    Logical,
}

impl Capture {
    fn label(self) -> &'static str {
        match self {
            Capture::None => "none",
            Capture::Outbox => "outbox",
            Capture::Logical => "logical",
        }
    }
}

/// Installs `capture` (setup removes the other mode's objects) and points every later `athens`
/// command and the probes at it.
async fn install(bench: &mut Bench, capture: Capture) -> anyhow::Result<()> {
    bench
        .athens
        .env
        .retain(|(key, _)| key != "ATHENS_CAPTURE_MODE");
    bench.slot = None;
    match capture {
        Capture::None => {
            bench.athens.run(&["teardown"])?;
        }
        Capture::Outbox => {
            bench.athens.run(&["setup"])?;
        }
        Capture::Logical => {
            bench
                .athens
                .env
                .push(("ATHENS_CAPTURE_MODE".into(), "logical".into()));
            bench.athens.run(&["setup"])?;
            let database: String = sqlx::query_scalar("SELECT current_database()::text")
                .fetch_one(&bench.pool)
                .await?;
            bench.slot = Some(format!("athens_{database}"));
        }
    }
    Ok(())
}

/// WAL the slot retains, in bytes.
async fn retained(bench: &Bench) -> anyhow::Result<f64> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce((pg_current_wal_lsn() - restart_lsn)::float8, 0) \
         FROM pg_replication_slots WHERE slot_name = $1",
    )
    .bind(bench.slot.as_deref().unwrap_or_default())
    .fetch_optional(&bench.pool)
    .await?
    .unwrap_or(0.0))
}

/// Outbox rows and the outbox's size on disk, in bytes.
async fn outbox(bench: &Bench) -> anyhow::Result<(i64, f64)> {
    Ok(sqlx::query_as(
        "SELECT (SELECT count(*) FROM athens.outbox), \
                pg_total_relation_size('athens.outbox')::float8",
    )
    .fetch_one(&bench.pool)
    .await?)
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let result = measure(bench).await;
    // Leave the benchmark database as the other sections expect it: the outbox installed.
    install(bench, Capture::Outbox).await?;
    result
}

async fn measure(bench: &mut Bench) -> anyhow::Result<()> {
    writes(bench).await?;
    let mut stream = Table::new(
        &format!(
            "Capture modes: streaming (mixed writes on the five tables, open loop; fixed rate {:.0} changes/s for {:.0} s)",
            bench.stream_rate, bench.scale.stream_seconds
        ),
        &[
            "mode",
            "commit → ack p50 ms",
            "p99 ms",
            "p99.9 ms",
            "highest bounded rate changes/s",
            "idle Athens CPU",
            "idle transactions/s",
        ],
    );
    let mut stopped = Table::new(
        "Capture modes: `athens sync` stopped while pgbench writes, then restarted",
        &[
            "mode",
            "writes while stopped",
            "left behind",
            "catch-up s",
            "catch-up changes/s",
        ],
    );
    for capture in [Capture::Outbox, Capture::Logical] {
        install(bench, capture).await?;
        streaming(bench, capture, &mut stream).await?;
        catch_up(bench, capture, &mut stopped).await?;
    }
    stream.note("commit → ack: outbox mode as elsewhere in this file (outbox ids); logical mode: the operation's WAL position read in its own transaction against the slot's confirmed position, which Athens moves only past acknowledged transactions");
    stream.note("highest bounded rate: offered rates 200, 400, 800/s for the stream step's duration each, bounded as in the stream section");
    stream.note("idle: `athens sync` running, nothing to do, for the idle measurement's duration");
    stopped.note("logical: the slot retains the WAL of every write to the server while nobody consumes (here pgbench's single-row UPDATEs on this database only; other databases' writes count too), bounded only by max_slot_wal_keep_size");
    bench.report.tables.push(stream);
    bench.report.tables.push(stopped);
    Ok(())
}

/// pgbench write throughput with no capture, the outbox, and logical decoding (with and without
/// a consumer).
async fn writes(bench: &mut Bench) -> anyhow::Result<()> {
    let script = update_script(bench, "bench-pgbench-capture.sql").await?;
    let rounds = if bench.tiny { 1 } else { 2 };
    let seconds = bench.scale.pgbench_seconds;
    let modes = [
        (Capture::None, false),
        (Capture::Outbox, false),
        (Capture::Logical, false),
        (Capture::Outbox, true),
        (Capture::Logical, true),
    ];
    let mut results: Vec<((Capture, bool), f64, f64)> = Vec::new();
    for round in 0..rounds {
        for (capture, consumed) in modes {
            install(bench, capture).await?;
            let sync = if consumed {
                Some(start_sync(bench).await?)
            } else {
                None
            };
            let (tps, transactions, wal) = pgbench(bench, &script, seconds).await?;
            println!(
                "capture round {round} {} consumed {consumed}: {tps:.0} tps, {:.0} WAL bytes per transaction",
                capture.label(),
                wal / transactions
            );
            results.push(((capture, consumed), tps, wal / transactions));
            if let Some(sync) = sync {
                bench.wait_drained(Duration::from_secs(300)).await?;
                sync.stop().await?;
            }
        }
    }
    let summary = |mode: (Capture, bool)| medians(&results, mode);
    let (none_tps, none_wal) = summary((Capture::None, false));
    let mut table = Table::new(
        &format!(
            "Capture modes: single-row UPDATE throughput (pgbench, 8 clients, {seconds} s × {rounds} rounds, median)"
        ),
        &[
            "capture",
            "consumer",
            "transactions/s",
            "of no capture",
            "WAL bytes/transaction",
            "WAL added",
        ],
    );
    for mode in modes {
        let (tps, wal) = summary(mode);
        table.row(vec![
            mode.0.label().into(),
            if mode.1 {
                "`athens sync`".into()
            } else {
                "none".into()
            },
            num(tps, 0),
            ratio(tps / none_tps),
            num(wal, 0),
            if mode.0 == Capture::None {
                "–".into()
            } else {
                format!("{} B", num(wal - none_wal, 0))
            },
        ]);
    }
    table.note("pgbench script: `UPDATE projects SET description = <new 8-character prefix> … WHERE id = random` (a document column: every transaction is captured)");
    table.note("logical: the publication and the slot exist; the writers' only extra is what `wal_level = logical` logs anyway (the server runs with it in every mode here)");
    let (logical_tps, _) = summary((Capture::Logical, false));
    bench.report.headline(
        "single-row write TPS with logical capture / no capture",
        ratio(logical_tps / none_tps),
        "≥ 0.95×",
        Some(logical_tps / none_tps >= 0.95),
    );
    bench.report.tables.push(table);
    Ok(())
}

/// Latency at the fixed rate, the highest bounded rate, and the idle cost, in one mode.
async fn streaming(bench: &mut Bench, capture: Capture, table: &mut Table) -> anyhow::Result<()> {
    let sync = start_sync(bench).await?;
    let tag = format!(
        "{}{:x}",
        capture.label(),
        chrono::Utc::now().timestamp() % 0xfffff
    );
    let mut generator = Generator::new(bench.pool.clone(), &tag).await?;
    generator.track_slot(bench.slot.clone());
    let engine = engine(bench);
    let plan = fixed_rate_plan(bench);
    let outcome = generator.run(&plan, &engine).await?;
    let mut ack = outcome.ack_latency(0.0, 1.0);
    println!(
        "capture {} fixed {}/s: ack p50 {:.0} p99 {:.0} ms, unacked {}",
        capture.label(),
        plan.rate,
        ack.ms(0.5),
        ack.ms(0.99),
        outcome.unacked()
    );
    let (p50, p99, p999) = (ack.ms(0.5), ack.ms(0.99), ack.ms(0.999));
    if capture == Capture::Logical {
        bench.report.headline(
            &format!(
                "logical capture: commit → index ack p50 / p99 at {:.0}/s",
                plan.rate
            ),
            format!("{} / {} ms", num(p50, 0), num(p99, 0)),
            "< 50 / < 250 ms",
            (!ack.is_empty()).then_some(p50 < 50.0 && p99 < 250.0),
        );
    }
    let _ = bench.wait_drained(Duration::from_secs(120)).await;

    let rates: &[f64] = if bench.tiny {
        &[20.0, 40.0]
    } else {
        &[200.0, 400.0, 800.0]
    };
    let mut best = None;
    for &rate in rates {
        let plan = step_plan(bench, rate);
        let outcome = generator.run(&plan, &engine).await?;
        let ok = crate::stream::bounded(&outcome);
        println!(
            "capture {} rate {rate}/s: committed {:.0}/s, unacked {}, bounded {ok}",
            capture.label(),
            outcome.achieved_rate(),
            outcome.unacked()
        );
        let _ = bench.wait_drained(Duration::from_secs(120)).await;
        if !ok {
            break;
        }
        best = Some(rate);
    }

    tokio::time::sleep(Duration::from_secs(2)).await;
    let athens_before = sync.cpu();
    let xact_before = transactions(bench).await?;
    let idle_started = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(bench.scale.idle_seconds)).await;
    let xact_after = transactions(bench).await?;
    let wall = idle_started.elapsed().as_secs_f64();
    let athens_idle = sync.cpu() - athens_before;
    sync.stop().await?;
    table.row(vec![
        capture.label().into(),
        num(p50, 0),
        num(p99, 0),
        num(p999, 0),
        best.map_or_else(|| "none bounded".into(), |rate| num(rate, 0)),
        format!("{:.2}% of a core", athens_idle / wall * 100.0),
        num((xact_after - xact_before) as f64 / wall, 1),
    ]);
    Ok(())
}

/// With no `athens sync` running, writes with pgbench, measures what waits (outbox rows or
/// retained WAL), then starts `athens sync` and times the catch-up.
async fn catch_up(bench: &mut Bench, capture: Capture, table: &mut Table) -> anyhow::Result<()> {
    let script = bench.athens.log_dir.join("bench-pgbench-capture.sql");
    let seconds = bench.scale.pgbench_seconds * 3;
    let (tps, transactions, _) = pgbench(bench, &script, seconds).await?;
    let left = match capture {
        Capture::Logical => format!(
            "{} MiB of WAL retained by the slot",
            num(retained(bench).await? / 1_048_576.0, 1)
        ),
        _ => {
            let (rows, size) = outbox(bench).await?;
            format!("{rows} outbox rows ({} MiB)", num(size / 1_048_576.0, 1))
        }
    };
    let target: i64 =
        sqlx::query_scalar("SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint")
            .fetch_one(&bench.pool)
            .await?;
    let started = Instant::now();
    let sync = bench.athens.spawn(&["sync"], &[])?;
    match &bench.slot {
        // Peeking a large backlog while the consumer decodes it would slow both: wait for the
        // slot's confirmed position to pass the last write instead.
        Some(slot) => loop {
            let confirmed: i64 = sqlx::query_scalar(
                "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots \
                 WHERE slot_name = $1",
            )
            .bind(slot)
            .fetch_one(&bench.pool)
            .await?;
            if confirmed >= target {
                break;
            }
            anyhow::ensure!(
                started.elapsed() < Duration::from_secs(900),
                "no catch-up in 15 minutes"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        },
        None => {
            bench.wait_drained(Duration::from_secs(900)).await?;
        }
    }
    let catch_up = started.elapsed().as_secs_f64();
    sync.stop().await?;
    println!(
        "capture {} stopped: {transactions:.0} writes at {tps:.0}/s left {left}; caught up in {catch_up:.1} s",
        capture.label()
    );
    table.row(vec![
        capture.label().into(),
        format!("{transactions:.0} in {seconds} s"),
        left,
        num(catch_up, 1),
        num(transactions / catch_up.max(0.001), 0),
    ]);
    Ok(())
}
