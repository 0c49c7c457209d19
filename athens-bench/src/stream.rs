//! Streaming: `athens sync` as a child process under the open-loop mixed load of [`crate::load`]:
//! the highest rate at which lag stays bounded, latencies at a fixed rate, and two fan-out cases.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use sea_orm::sqlx;
use serde_json::json;

use crate::Bench;
use crate::load::{Engine, Generator, MIXED, Outcome, Plan, describe};
use crate::procs::{self, Running};
use crate::report::{Table, num, ratio};

/// Offered rates of the search for the highest bounded one, changes per second.
const RATES: [f64; 10] = [
    50.0, 100.0, 200.0, 300.0, 400.0, 600.0, 800.0, 1200.0, 1600.0, 2400.0,
];
const TINY_RATES: [f64; 2] = [20.0, 40.0];

/// Whether a step kept up: the load was offered in full (at most 0.1% of writes failing, say on a
/// deadlock), every change was acknowledged within the drain, the last quarter's p99 stayed under 2 s and its median did not grow over the first one's.
pub(crate) fn bounded(outcome: &Outcome) -> bool {
    let first = outcome.ack_latency(0.0, 0.25).ms(0.5);
    let mut last = outcome.ack_latency(0.75, 1.0);
    outcome.achieved_rate() >= 0.95 * outcome.rate
        && outcome.failed() * 1000 <= outcome.records.len()
        && outcome.unacked() == 0
        && last.ms(0.99) < 2000.0
        && last.ms(0.5) <= 2.0 * first + 100.0
}

/// Documents the live index has indexed or deleted so far (`_stats/indexing`, primaries).
pub(crate) async fn indexed(bench: &Bench) -> f64 {
    let stats = bench
        .engine(
            reqwest::Method::GET,
            &format!("{}/_stats/indexing", bench.alias),
            None,
        )
        .await
        .unwrap_or_default();
    let totals = &stats["_all"]["primaries"]["indexing"];
    totals["index_total"].as_f64().unwrap_or(f64::NAN)
        + totals["delete_total"].as_f64().unwrap_or(f64::NAN)
}

/// Starts `athens sync` and waits until it streams (a marker change goes through).
pub async fn start_sync(bench: &Bench) -> anyhow::Result<Running> {
    let sync = bench.athens.spawn(&["sync"], &[])?;
    sqlx::query("UPDATE projects SET name = name || '' WHERE id = 1")
        .execute(&bench.pool)
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    ensure!(
        sync.alive(),
        "athens sync exited (see {}/bench-sync.log)",
        bench.athens.log_dir.display()
    );
    bench.wait_drained(Duration::from_secs(120)).await?;
    Ok(sync)
}

/// The engine as the load's trackers see it.
pub fn engine(bench: &Bench) -> Engine {
    Engine {
        http: bench.http.clone(),
        url: bench.engine_url.clone(),
    }
}

/// One step of the stepped rate search: mixed writes at `rate` for a step, acknowledgements tracked,
/// 10 s for the last of them.
pub(crate) fn step_plan(bench: &Bench, rate: f64) -> Plan {
    Plan {
        rate,
        seconds: bench.scale.step_seconds,
        mix: MIXED,
        searchable_in: Vec::new(),
        track_acks: true,
        drain: Duration::from_secs(10),
    }
}

/// The fixed-rate latency run: mixed writes at the stream rate, acknowledgements and search
/// visibility in the alias tracked, 30 s for the last of them.
pub(crate) fn fixed_rate_plan(bench: &Bench) -> Plan {
    Plan {
        rate: bench.stream_rate,
        seconds: bench.scale.stream_seconds,
        mix: MIXED,
        searchable_in: vec![bench.alias.clone()],
        track_acks: true,
        drain: Duration::from_secs(30),
    }
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let sync = start_sync(bench).await?;
    let result = measure(bench, &sync).await;
    let usage = sync.stop().await?;
    result?;
    bench.report.headline(
        "`athens sync` peak RSS over the stream section",
        format!("{:.0} MiB", usage.peak_rss_mib),
        "absolute",
        None,
    );
    Ok(())
}

async fn measure(bench: &mut Bench, sync: &Running) -> anyhow::Result<()> {
    let tag = format!("{:x}", chrono::Utc::now().timestamp() % 0xfffff);
    let generator = Generator::new(bench.pool.clone(), &tag).await?;
    let engine = engine(bench);

    // The highest offered rate with bounded lag.
    let mut steps = Table::new(
        "Stream: rate search (mixed writes on the five tables, open loop)",
        &[
            "offered changes/s",
            "committed/s",
            "documents written/s",
            "machine CPU busy",
            "sent late p99 ms",
            "ack p50 ms",
            "ack p99 ms",
            "ack p50 last quarter ms",
            "failed",
            "not acked",
            "bounded",
        ],
    );
    steps.note(format!("mix: {}", describe(MIXED)));
    steps.note("machine CPU busy: all processes on all cores over the step and its drain (`/proc/stat`), load generator included");
    steps.note("documents written/s: the index's own count of indexed and deleted documents over the step (a change may rewrite several documents, or none)");
    steps.note(format!(
        "each step {} s, then up to 10 s for the last acknowledgements; bounded = offered in full, all acknowledged, last quarter's p99 < 2 s and its median at most twice the first quarter's + 100 ms",
        bench.scale.step_seconds
    ));
    let rates: &[f64] = if bench.tiny { &TINY_RATES } else { &RATES };
    let mut best: Option<f64> = None;
    let mut best_documents: Option<f64> = None;
    for &rate in rates {
        let plan = step_plan(bench, rate);
        let indexed_before = indexed(bench).await;
        let ticks_before = procs::machine_ticks();
        let outcome = generator.run(&plan, &engine).await?;
        let busy = procs::machine_busy(ticks_before, procs::machine_ticks());
        let ok = bounded(&outcome);
        let documents = (indexed(bench).await - indexed_before) / plan.seconds;
        let mut all = outcome.ack_latency(0.0, 1.0);
        let mut last = outcome.ack_latency(0.75, 1.0);
        println!(
            "stream {rate}/s: committed {:.0}/s, ack p50 {:.0} ms p99 {:.0} ms, failed {}, unacked {}, bounded {ok}{}",
            outcome.achieved_rate(),
            all.ms(0.5),
            all.ms(0.99),
            outcome.failed(),
            outcome.unacked(),
            outcome
                .first_error()
                .map(|e| format!(" (first error: {e})"))
                .unwrap_or_default()
        );
        steps.row(vec![
            num(rate, 0),
            num(outcome.achieved_rate(), 0),
            num(documents, 0),
            format!("{:.0}%", busy * 100.0),
            num(outcome.lateness().ms(0.99), 0),
            num(all.ms(0.5), 0),
            num(all.ms(0.99), 0),
            num(last.ms(0.5), 0),
            outcome.failed().to_string(),
            outcome.unacked().to_string(),
            if ok { "yes".into() } else { "**no**".into() },
        ]);
        if ok {
            best = Some(rate);
            best_documents = Some(documents);
        }
        let _ = bench.wait_drained(Duration::from_secs(120)).await;
        if !ok {
            break;
        }
    }
    if let Some(first) = steps.rows.first().map(|r| r[0].clone())
        && best.is_none()
    {
        steps.note(format!("no step was bounded, not even {first}/s"));
    }
    bench.report.tables.push(steps);
    // The ceiling counts single-document writes, so the stream is compared in documents written: a
    // change rewrites anywhere from none to thousands of documents.
    let of_single = match (best, best_documents, bench.single_ceiling) {
        (Some(_), Some(documents), Some(single)) => Some(documents / single),
        _ => None,
    };
    let best_text = match (best, best_documents) {
        (Some(rate), Some(documents)) => format!(
            "{} documents/s from {} changes/s",
            num(documents, 0),
            num(rate, 0)
        ),
        _ => "no bounded rate".into(),
    };
    bench.report.headline(
        "documents written/s at the highest bounded stream rate / raw single-document ceiling",
        of_single.map_or_else(
            || format!("{best_text} (no ceiling measured)"),
            |r| format!("{} ({best_text})", ratio(r)),
        ),
        "≥ 0.8×",
        of_single.map(|r| r >= 0.8),
    );

    // Latencies at a fixed rate.
    let rate = bench.stream_rate;
    let plan = fixed_rate_plan(bench);
    let indexed_before = indexed(bench).await;
    let before = bench.services.cpu();
    let athens_before = sync.cpu();
    let outcome = generator.run(&plan, &engine).await?;
    let documents = indexed(bench).await - indexed_before;
    let after = bench.services.cpu();
    let athens_cpu = sync.cpu() - athens_before;
    let (pg_cpu, engine_cpu, wall) = after.since(&before);
    let mut ack = outcome.ack_latency(0.0, 1.0);
    let (mut searchable, lost) = outcome.searchable_latency(0);
    println!(
        "stream fixed {rate}/s: ack p50 {:.0} p99 {:.0} p99.9 {:.0} ms; searchable p50 {:.0} p99 {:.0} ms ({} probes, {lost} lost)",
        ack.ms(0.5),
        ack.ms(0.99),
        ack.ms(0.999),
        searchable.ms(0.5),
        searchable.ms(0.99),
        searchable.len()
    );
    let mut fixed = Table::new(
        &format!(
            "Stream: latency at a fixed {rate:.0} changes/s for {:.0} s",
            plan.seconds
        ),
        &[
            "latency", "samples", "p50 ms", "p99 ms", "p99.9 ms", "max ms",
        ],
    );
    fixed.row(vec![
        "commit → acknowledged (index accepted)".into(),
        ack.len().to_string(),
        num(ack.ms(0.5), 0),
        num(ack.ms(0.99), 0),
        num(ack.ms(0.999), 0),
        num(ack.max() * 1000.0, 0),
    ]);
    fixed.row(vec![
        "commit → searchable (refresh 1 s)".into(),
        searchable.len().to_string(),
        num(searchable.ms(0.5), 0),
        num(searchable.ms(0.99), 0),
        num(searchable.ms(0.999), 0),
        num(searchable.max() * 1000.0, 0),
    ]);
    let changes = outcome.committed().max(1) as f64;
    fixed.note(format!(
        "the index wrote {documents:.0} documents for {changes:.0} changes ({:.2} per change: user and hashtag renames fan out)",
        documents / changes
    ));
    fixed.note(format!(
        "committed {:.0}/s, {} failed, {} never acknowledged, {lost} probes never seen; sent late p99 {:.0} ms",
        outcome.achieved_rate(),
        outcome.failed(),
        outcome.unacked(),
        outcome.lateness().ms(0.99)
    ));
    fixed.note(format!(
        "CPU per 1k changes over the run ({wall:.0} s): PostgreSQL {:.2} s (load generator's transactions included), engine {:.2} s, Athens {:.2} s",
        pg_cpu / changes * 1000.0,
        engine_cpu / changes * 1000.0,
        athens_cpu / changes * 1000.0
    ));
    bench.report.tables.push(fixed);
    bench.report.headline(
        &format!("commit → index ack p50 / p99 at {rate:.0}/s"),
        format!("{} / {} ms", num(ack.ms(0.5), 0), num(ack.ms(0.99), 0)),
        "< 50 / < 250 ms",
        (!ack.is_empty()).then(|| ack.ms(0.5) < 50.0 && ack.ms(0.99) < 250.0),
    );
    bench.report.headline(
        &format!("commit → searchable p99 at {rate:.0}/s (refresh 1 s)"),
        format!("{} ms", num(searchable.ms(0.99), 0)),
        "< 1250 ms",
        (!searchable.is_empty()).then(|| searchable.ms(0.99) < 1250.0),
    );

    fanout(bench, &engine, &tag).await
}

/// Polls until the outbox is empty and until `done` holds in the index; returns both times since
/// `since`.
async fn settle(
    bench: &Bench,
    since: Instant,
    mut done: impl AsyncFnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<(f64, f64)> {
    let mut acked = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        if acked.is_none() && bench.pending().await? == 0 {
            acked = Some(since.elapsed().as_secs_f64());
        }
        if done().await? {
            let searchable = since.elapsed().as_secs_f64();
            let acked = match acked {
                Some(acked) => acked,
                None => {
                    bench.wait_drained(Duration::from_secs(600)).await?;
                    since.elapsed().as_secs_f64()
                }
            };
            return Ok((acked, searchable));
        }
        ensure!(
            Instant::now() < deadline,
            "fan-out did not settle in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A new user named `name`, credited with the fan-out's number of projects, spread over the stable
/// ones (the first nine tenths of the ids, which the load never deletes): its id and how many
/// projects it got.
pub(crate) async fn fanout_user(bench: &Bench, name: &str) -> anyhow::Result<(i64, u64)> {
    let stable: i64 = sqlx::query_scalar("SELECT (max(id) * 9 / 10)::bigint FROM projects")
        .fetch_one(&bench.pool)
        .await?;
    let wanted = (bench.scale.fanout_projects as i64).min(stable);
    let user: i64 = sqlx::query_scalar("INSERT INTO users (name) VALUES ($1) RETURNING id::bigint")
        .bind(name)
        .fetch_one(&bench.pool)
        .await?;
    let step = (stable / wanted).max(1);
    let linked = sqlx::query(
        "INSERT INTO user_projects (project_id, user_id) \
         SELECT id, $1 FROM projects WHERE id <= $2 AND id % $3 = 0 ORDER BY id LIMIT $4",
    )
    .bind(user)
    .bind(stable)
    .bind(step)
    .bind(wanted)
    .execute(&bench.pool)
    .await?
    .rows_affected();
    Ok((user, linked))
}

async fn fanout(bench: &mut Bench, engine: &Engine, tag: &str) -> anyhow::Result<()> {
    let mut table = Table::new(
        "Stream: fan-out (time from the commit until every document is updated)",
        &[
            "case",
            "documents",
            "until acknowledged s",
            "until searchable s",
            "docs/s",
        ],
    );
    // A user with `fanout_projects` projects, renamed.
    let (user, linked) = fanout_user(bench, "Fanout Benchuser").await?;
    bench.wait_drained(Duration::from_secs(600)).await?;
    let by_user = json!({ "term": { "creators.id": user } });
    wait_count(engine, &bench.alias, by_user.clone(), linked).await?;
    let marker = format!("mk{tag}fanout");
    let since = Instant::now();
    sqlx::query("UPDATE users SET name = $1 WHERE id = $2")
        .bind(format!("Renamed {marker}"))
        .bind(user)
        .execute(&bench.pool)
        .await?;
    let renamed =
        json!({ "bool": { "filter": [by_user, { "match": { "creators.name": marker } }] } });
    let (acked, searchable) = settle(bench, since, async || {
        Ok(engine.count(&bench.alias, renamed.clone()).await? >= linked)
    })
    .await?;
    println!(
        "fan-out rename of a user with {linked} projects: acked {acked:.2} s, searchable {searchable:.2} s"
    );
    table.row(vec![
        format!("rename a user with {linked} projects"),
        linked.to_string(),
        num(acked, 2),
        num(searchable, 2),
        num(linked as f64 / acked, 0),
    ]);
    let rename = searchable;

    // A hashtag on a tenth of the projects, deleted.
    let name = format!("fanouttag{tag}");
    let hashtag: i64 =
        sqlx::query_scalar("INSERT INTO hashtags (name) VALUES ($1) RETURNING id::bigint")
            .bind(&name)
            .fetch_one(&bench.pool)
            .await?;
    let tagged = sqlx::query(
        "INSERT INTO project_hashtags (project_id, hashtag_id) \
         SELECT id, $1 FROM projects WHERE id % 10 = 3",
    )
    .bind(hashtag)
    .execute(&bench.pool)
    .await?
    .rows_affected();
    bench.wait_drained(Duration::from_secs(600)).await?;
    let by_tag = json!({ "term": { "hashtags.name": name } });
    wait_count(engine, &bench.alias, by_tag.clone(), tagged).await?;
    let since = Instant::now();
    sqlx::query("DELETE FROM hashtags WHERE id = $1")
        .bind(hashtag)
        .execute(&bench.pool)
        .await?;
    let (acked, searchable) = settle(bench, since, async || {
        Ok(engine.count(&bench.alias, by_tag.clone()).await? == 0)
    })
    .await?;
    println!(
        "fan-out delete of a hashtag on {tagged} projects: acked {acked:.2} s, searchable {searchable:.2} s"
    );
    table.row(vec![
        format!("delete a hashtag used by {tagged} projects (10%)"),
        tagged.to_string(),
        num(acked, 2),
        num(searchable, 2),
        num(tagged as f64 / acked, 0),
    ]);
    table.note("one statement commits; Athens resolves the user or hashtag to its projects (or receives one cascaded change per project) and rewrites each document");
    bench.report.tables.push(table);
    bench.report.headline(
        "fan-out: user rename / hashtag delete, until searchable",
        format!("{} s / {} s", num(rename, 2), num(searchable, 2)),
        "absolute",
        None,
    );
    Ok(())
}

/// Waits until `query` counts `expected` documents in `alias` (the setup of a fan-out case has
/// landed).
async fn wait_count(
    engine: &Engine,
    alias: &str,
    query: serde_json::Value,
    expected: u64,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let count = engine.count(alias, query.clone()).await.context("count")?;
        if count == expected {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "index counts {count} documents for {query}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
