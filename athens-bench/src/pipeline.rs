//! The pipelined stream and the fan-out that blocks nothing (issue 17), measured on two builds of
//! `athens` side by side in one run (`--before-bin`: the build to compare with; the build under test
//! otherwise): fan-out documents/s against the backfill's, commit → searchable of unrelated updates
//! at 100/s while one rename of the 10,000-project user drains (the target; renamed again
//! only once the previous rename is searchable, a few times for enough samples), the same while the
//! user is renamed every 4 s (an overload: more fan-out than the engine writes), and Athens' CPU per
//! 1,000 changes at each rate step.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::ensure;
use sea_orm::sqlx;
use serde_json::json;

use crate::load::{Engine, Generator, MIXED, Plan, Recheck, UPDATES, recheck};
use crate::readers::load_average;
use crate::report::{Table, num, ratio};
use crate::stream::{engine, fanout_user, start_sync};
use crate::{Bench, backfill, procs};

/// Offered rates of the CPU steps, changes per second.
const RATES: [f64; 4] = [100.0, 200.0, 400.0, 800.0];
const TINY_RATES: [f64; 2] = [20.0, 40.0];
/// Rate of the unrelated updates while renames drain.
const UPDATE_RATE: f64 = 100.0;
/// Seconds between two renames of the fan-out user while the updates of the overload step run.
const RENAME_EVERY: Duration = Duration::from_secs(4);
/// Updates alone before each rename of the one-rename step, and after the last one's drain.
const SETTLE: Duration = Duration::from_secs(3);
/// Seconds of updates a rename of the one-rename step needs left to start: its fan-out drains
/// within them, under the updates.
const ROOM: f64 = 12.0;

/// What one build did.
struct Figures {
    label: String,
    backfill: f64,
    fanout: f64,
    fanout_searchable: f64,
    /// One rename at a time: renames, updates committed while one drained, their p50 / p99 ms,
    /// those never seen, and the mean drain (rename commit → every document searchable), s.
    one_renames: usize,
    one_updates: usize,
    one_p50: f64,
    one_p99: f64,
    one_unseen: usize,
    one_drain: f64,
    /// The same updates committed while no rename drained: p50 / p99 ms and how many.
    baseline: (f64, f64, usize),
    renames: usize,
    updates_p50: f64,
    updates_p99: f64,
    updates_seen: usize,
    /// The probes not seen in the trackers' window, looked at again once the outbox drained.
    updates_unseen: Recheck,
    /// (offered rate, committed changes, Athens CPU s per 1,000 changes, machine busy)
    cpu: Vec<(f64, usize, f64, f64)>,
    /// One-minute load average when the build's measurement started and ended.
    load: (f64, f64),
}

/// Runs the section on `before` (if given) and on the build under test, in that order.
pub async fn run(bench: &mut Bench, before: Option<PathBuf>) -> anyhow::Result<()> {
    let tag = format!("{:x}", chrono::Utc::now().timestamp() % 0xfffff);
    let (user, linked) = fanout_user(bench, &format!("Pipeline {tag}")).await?;
    let under_test = bench.athens.bin.clone();
    let mut builds = Vec::new();
    if let Some(before) = before {
        builds.push(("before".to_owned(), before));
    }
    builds.push(("after".to_owned(), under_test.clone()));
    let mut measured = Vec::new();
    for (label, bin) in builds {
        bench.athens.bin = bin.clone();
        println!("pipeline: {label} ({})", bin.display());
        let result = measure(bench, &label, user, linked, &tag).await;
        bench.athens.bin = under_test.clone();
        measured.push(result?);
    }
    report(bench, &measured, linked);
    Ok(())
}

async fn rename(bench: &Bench, user: i64, name: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
        .bind(name)
        .bind(user)
        .execute(&bench.pool)
        .await?;
    Ok(())
}

async fn measure(
    bench: &mut Bench,
    label: &str,
    user: i64,
    linked: u64,
    tag: &str,
) -> anyhow::Result<Figures> {
    let load_before = load_average();
    let backfill = backfill::measure(bench, &[]).await?;
    println!(
        "  backfill: {} documents in {:.1} s, {:.0} docs/s",
        backfill.documents,
        backfill.seconds,
        backfill.rate()
    );
    let sync = start_sync(bench).await?;
    let result = streaming(bench, &sync, label, user, linked, tag).await;
    sync.stop().await?;
    let mut figures = result?;
    figures.backfill = backfill.rate();
    figures.load = (load_before, load_average());
    Ok(figures)
}

async fn streaming(
    bench: &Bench,
    sync: &procs::Running,
    label: &str,
    user: i64,
    linked: u64,
    tag: &str,
) -> anyhow::Result<Figures> {
    let engine = engine(bench);
    let by_user = json!({ "term": { "creators.id": user } });

    // One rename on a quiet stream: documents per second until acknowledged.
    let marker = format!("mk{tag}{label}fanout");
    let since = Instant::now();
    rename(bench, user, &format!("Renamed {marker}")).await?;
    bench.wait_drained(Duration::from_secs(600)).await?;
    let acked = since.elapsed().as_secs_f64();
    let renamed =
        json!({ "bool": { "filter": [by_user, { "match": { "creators.name": marker } }] } });
    let deadline = Instant::now() + Duration::from_secs(300);
    while engine.count(&bench.alias, renamed.clone()).await? < linked {
        ensure!(
            Instant::now() < deadline,
            "the rename never became searchable"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let searchable = since.elapsed().as_secs_f64();
    println!(
        "  fan-out: {linked} documents acknowledged in {acked:.2} s ({:.0} docs/s), searchable in {searchable:.2} s",
        linked as f64 / acked
    );

    // Unrelated updates at 100/s while one rename at a time drains.
    let generator = Generator::new(bench.pool.clone(), &format!("{tag}{label}")).await?;
    let plan = Plan {
        rate: UPDATE_RATE,
        seconds: bench.scale.stream_seconds / 2.0,
        mix: UPDATES,
        searchable_in: vec![bench.alias.clone()],
        track_acks: false,
        drain: Duration::from_secs(30),
    };
    let renamer = tokio::spawn(one_at_a_time(
        bench.pool.clone(),
        engine.clone(),
        bench.alias.clone(),
        (user, linked),
        format!("mk{tag}{label}one"),
        plan.seconds,
    ));
    let outcome = generator.run(&plan, &engine).await?;
    let windows = renamer.await??;
    let draining = |at: Instant| windows.iter().any(|(from, to)| (*from..=*to).contains(&at));
    let (mut during, one_unseen) = outcome.searchable_latency_where(0, draining);
    // The same run's updates committed while no fan-out drained: the machine's own baseline.
    let (mut quiet, _) = outcome.searchable_latency_where(0, |at| !draining(at));
    let one_drain = if windows.is_empty() {
        f64::NAN
    } else {
        windows
            .iter()
            .map(|(from, to)| (*to - *from).as_secs_f64())
            .sum::<f64>()
            / windows.len() as f64
    };
    println!(
        "  updates at {UPDATE_RATE}/s committed while one of {} renames drained (mean {one_drain:.2} s): searchable p50 {:.0} ms p99 {:.0} ms ({} updates, {one_unseen} not seen in the window)",
        windows.len(),
        during.ms(0.5),
        during.ms(0.99),
        during.len()
    );
    println!(
        "  the same run's updates committed while no rename drained: searchable p50 {:.0} ms p99 {:.0} ms ({} updates)",
        quiet.ms(0.5),
        quiet.ms(0.99),
        quiet.len()
    );
    bench.wait_drained(Duration::from_secs(120)).await?;

    // Unrelated updates at 100/s while the user is renamed every few seconds.
    let plan = Plan {
        rate: UPDATE_RATE,
        seconds: bench.scale.stream_seconds / 2.0,
        mix: UPDATES,
        searchable_in: vec![bench.alias.clone()],
        track_acks: true,
        drain: Duration::from_secs(30),
    };
    let renamer = {
        let pool = bench.pool.clone();
        let seconds = plan.seconds;
        let label = label.to_owned();
        tokio::spawn(async move {
            let started = Instant::now();
            let mut renames = 0;
            while started.elapsed().as_secs_f64() + RENAME_EVERY.as_secs_f64() < seconds {
                tokio::time::sleep(RENAME_EVERY / 2).await;
                sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
                    .bind(format!("Renamed {label} {renames}"))
                    .bind(user)
                    .execute(&pool)
                    .await?;
                renames += 1;
                tokio::time::sleep(RENAME_EVERY / 2).await;
            }
            anyhow::Ok(renames)
        })
    };
    let outcome = generator.run(&plan, &engine).await?;
    let renames = renamer.await??;
    let (mut updates, lost) = outcome.searchable_latency(0);
    println!(
        "  updates at {UPDATE_RATE}/s during {renames} renames: searchable p50 {:.0} ms p99 {:.0} ms ({} seen, {lost} not seen in the window)",
        updates.ms(0.5),
        updates.ms(0.99),
        updates.len()
    );
    bench.wait_drained(Duration::from_secs(120)).await?;
    // Once nothing is pending, an update the index accepted is searchable within a refresh.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let unseen = recheck(
        &engine,
        &bench.alias,
        &bench.pool,
        &outcome.unseen_probes(0),
    )
    .await?;
    println!(
        "  once drained: {} late, {} lost (in the database, not in the index), {} gone from the database",
        unseen.late, unseen.lost, unseen.gone
    );

    // Athens' CPU per 1,000 changes at each rate.
    let rates: &[f64] = if bench.tiny { &TINY_RATES } else { &RATES };
    let mut cpu = Vec::new();
    for &rate in rates {
        let plan = crate::stream::step_plan(bench, rate);
        let plan = Plan { mix: MIXED, ..plan };
        let ticks = procs::machine_ticks();
        let athens = sync.cpu();
        let outcome = generator.run(&plan, &engine).await?;
        bench.wait_drained(Duration::from_secs(120)).await?;
        let used = sync.cpu() - athens;
        let busy = procs::machine_busy(ticks, procs::machine_ticks());
        let changes = outcome.committed();
        let per_k = used / changes.max(1) as f64 * 1000.0;
        println!(
            "  {rate}/s: {changes} changes, Athens {used:.2} CPU s ({per_k:.3} per 1k changes), machine {:.0}% busy",
            busy * 100.0
        );
        cpu.push((rate, changes, per_k, busy));
    }
    Ok(Figures {
        label: label.to_owned(),
        backfill: 0.0,
        fanout: linked as f64 / acked,
        fanout_searchable: searchable,
        one_renames: windows.len(),
        one_updates: during.len(),
        one_p50: during.ms(0.5),
        one_p99: during.ms(0.99),
        one_unseen,
        one_drain,
        baseline: (quiet.ms(0.5), quiet.ms(0.99), quiet.len()),
        renames,
        updates_p50: updates.ms(0.5),
        updates_p99: updates.ms(0.99),
        updates_seen: updates.len(),
        updates_unseen: unseen,
        cpu,
        load: (f64::NAN, f64::NAN),
    })
}

/// Renames `user` (with `linked` projects) one rename at a time while `seconds` of updates run:
/// each rename `SETTLE` after the start or after the previous one's documents are all searchable,
/// while at least `ROOM` seconds of updates are left. Returns each rename's window, from its commit
/// until every document of the user is searchable with the new name.
async fn one_at_a_time(
    pool: sqlx::PgPool,
    engine: Engine,
    alias: String,
    (user, linked): (i64, u64),
    marker: String,
    seconds: f64,
) -> anyhow::Result<Vec<(Instant, Instant)>> {
    let started = Instant::now();
    let mut windows = Vec::new();
    loop {
        tokio::time::sleep(SETTLE).await;
        if started.elapsed().as_secs_f64() + ROOM > seconds {
            return Ok(windows);
        }
        let marker = format!("{marker}{}", windows.len());
        sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
            .bind(format!("Renamed {marker}"))
            .bind(user)
            .execute(&pool)
            .await?;
        let from = Instant::now();
        let renamed = json!({ "bool": { "filter": [
            { "term": { "creators.id": user } },
            { "match": { "creators.name": marker } },
        ] } });
        while engine.count(&alias, renamed.clone()).await? < linked {
            ensure!(
                from.elapsed() < Duration::from_secs(300),
                "the rename never became searchable"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        windows.push((from, Instant::now()));
    }
}

fn report(bench: &mut Bench, measured: &[Figures], linked: u64) {
    let mut header = vec!["figure".to_owned()];
    header.extend(measured.iter().map(|f| f.label.clone()));
    header.push("target".into());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut table = Table::new(
        "Stream pipeline (issue 17): two builds side by side in one run",
        &header,
    );
    let mut row = |figure: String, cell: &dyn Fn(&Figures) -> String, target: &str| {
        let mut cells = vec![figure];
        cells.extend(measured.iter().map(cell));
        cells.push(target.into());
        table.row(cells);
    };
    row(
        "backfill (`athens reindex`), docs/s".into(),
        &|f| num(f.backfill, 0),
        "reference",
    );
    row(
        format!("fan-out: rename of a user with {linked} projects, docs/s until acknowledged"),
        &|f| num(f.fanout, 0),
        "reference",
    );
    row(
        "fan-out docs/s ÷ backfill docs/s".into(),
        &|f| ratio(f.fanout / f.backfill),
        "≥ 0.8×",
    );
    row(
        "fan-out until searchable, s".into(),
        &|f| num(f.fanout_searchable, 2),
        "absolute",
    );
    row(
        format!(
            "commit → searchable of unrelated updates at {UPDATE_RATE:.0}/s committed while one rename of the user drains, p50 / p99 ms"
        ),
        &|f| format!("{} / {}", num(f.one_p50, 0), num(f.one_p99, 0)),
        "p99 < 1500 ms (refresh 1 s + 500 ms)",
    );
    row(
        "one rename at a time: renames; updates committed while one drained; of those never seen; mean drain (rename commit → searchable), s".into(),
        &|f| {
            format!(
                "{}; {}; {}; {}",
                f.one_renames,
                f.one_updates,
                f.one_unseen,
                num(f.one_drain, 2)
            )
        },
        "unseen 0",
    );
    row(
        "the same run's updates committed while no rename drained (the machine's baseline), p50 / p99 ms (updates)".into(),
        &|f| {
            let (p50, p99, count) = f.baseline;
            format!("{} / {} ({count})", num(p50, 0), num(p99, 0))
        },
        "reference",
    );
    row(
        format!(
            "overload: commit → searchable of unrelated updates at {UPDATE_RATE:.0}/s while the user is renamed every {} s, p50 / p99 ms",
            RENAME_EVERY.as_secs()
        ),
        &|f| format!("{} / {}", num(f.updates_p50, 0), num(f.updates_p99, 0)),
        "reported (more fan-out than the engine writes)",
    );
    row(
        "overload: renames during the updates; updates seen within 60 s; then, once drained: late / lost / gone from the database".into(),
        &|f| {
            let unseen = f.updates_unseen;
            format!(
                "{}; {}; {} / {} / {}",
                f.renames, f.updates_seen, unseen.late, unseen.lost, unseen.gone
            )
        },
        "lost 0",
    );
    let steps = measured.first().map_or(0, |f| f.cpu.len());
    for step in 0..steps {
        let rate = measured[0].cpu[step].0;
        row(
            format!(
                "Athens CPU s per 1,000 changes at {rate:.0} changes/s (changes committed; machine busy)"
            ),
            &|f| {
                f.cpu.get(step).map_or_else(
                    || "n/a".into(),
                    |(_, changes, per_k, busy)| {
                        format!("{} ({changes}; {:.0}%)", num(*per_k, 3), busy * 100.0)
                    },
                )
            },
            if rate >= 400.0 { "≤ 0.1" } else { "reported" },
        );
    }
    row(
        "load average (1 min) at the start / end of the build's measurement".into(),
        &|f| format!("{} / {}", num(f.load.0, 1), num(f.load.1, 1)),
        "reported",
    );
    table.note("builds measured one after the other against the same database and engine, each with its own `athens reindex` (backfill), a rename on a quiet stream (fan-out), 100 project updates/s for half the stream run while the user is renamed one rename at a time (each 3 s after the previous one is searchable; the figure takes the updates committed between a rename's commit and its last document searchable), the same while the user is renamed every 4 s (overload), and the mixed load at each rate step (`step_seconds` each, then drained)");
    table.note("Athens CPU: the `athens sync` process (`/proc/<pid>/stat`) over the step and its drain, divided by the changes committed in the step");
    bench.report.tables.push(table);
}
