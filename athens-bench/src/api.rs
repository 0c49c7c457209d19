//! The API: `athens serve` as a child process, each search at constant rates, open loop, through
//! Athens and straight to the engine with the body Athens sends for it, side by side; then closed
//! loop, a fixed number of requests in flight, for the throughput each path saturates at.
//!
//! The direct bodies come from `athens-es`'s own query builder ([`athens_es::search_body`]); that
//! both paths ask the same question is still checked: they must report the same number of hits.

use std::time::{Duration, Instant};

use anyhow::ensure;
use athens_core::{DEFAULT_PAGE_SIZE, HashtagMode, SearchRequest, UserId};
use athens_es::EsConfig;
use serde_json::Value;
use tokio::task::JoinSet;

use crate::Bench;
use crate::report::{Table, num, ratio};
use crate::stats::Samples;

/// Rates of the search for the highest one with p99 ≤ 50 ms, requests per second.
const RATES: [f64; 9] = [10.0, 25.0, 50.0, 100.0, 200.0, 300.0, 400.0, 600.0, 800.0];
/// Pause after each run, so that a run that overloaded the engine does not leave a queue to the next.
const SETTLE: Duration = Duration::from_secs(2);
const TINY_RATES: [f64; 1] = [10.0];
/// The latency a rate must keep at p99 to count.
const P99_BUDGET_MS: f64 = 50.0;
/// Requests in flight of the closed-loop runs.
const CLOSED_CONCURRENCY: usize = 8;
/// Runs of each path in a closed-loop measurement, alternating, so that drift in the machine's load
/// (the engine shares its cores) weighs on both alike.
const CLOSED_ROUNDS: u32 = 5;
const TINY_CLOSED_ROUNDS: u32 = 2;

/// One search, as a path of the API and as the body Athens sends to the engine.
struct Search {
    name: &'static str,
    path: String,
    body: Value,
}

fn searches() -> anyhow::Result<Vec<Search>> {
    let config = EsConfig::default();
    let search = |name, path: &str, request: SearchRequest| -> anyhow::Result<Search> {
        Ok(Search {
            name,
            path: path.into(),
            // The API's page size when the path names none, as in these paths.
            body: athens_es::search_body(
                &SearchRequest {
                    size: DEFAULT_PAGE_SIZE,
                    ..request
                },
                &config,
            )?,
        })
    };
    Ok(vec![
        search(
            "fuzzy text `q=elasticsaerch sync`",
            "/v1/projects/search?q=elasticsaerch%20sync",
            SearchRequest {
                text: Some("elasticsaerch sync".into()),
                ..SearchRequest::default()
            },
        )?,
        search(
            "hashtags `rust,search` (any)",
            "/v1/hashtags/projects?hashtags=rust,search&mode=any",
            SearchRequest {
                hashtags: vec!["rust".into(), "search".into()],
                hashtag_mode: HashtagMode::Any,
                ..SearchRequest::default()
            },
        )?,
        search(
            "projects of user 1",
            "/v1/users/1/projects",
            SearchRequest {
                user_id: Some(UserId(1)),
                ..SearchRequest::default()
            },
        )?,
    ])
}

/// What an open-loop run saw.
struct Run {
    latency: Samples,
    took: Samples,
    errors: usize,
    total: Option<u64>,
}

/// Sends `rate` requests per second for `seconds`, each due at its time whatever the previous ones
/// do; latency counts from the due time.
async fn open_loop(
    http: &reqwest::Client,
    rate: f64,
    seconds: f64,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Run {
    let total = (rate * seconds).round().max(1.0) as usize;
    let start = Instant::now() + Duration::from_millis(20);
    let mut tasks = JoinSet::new();
    let _ = http;
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
        let sent = request().send();
        tasks.spawn(async move {
            let response = sent.await.ok()?;
            let ok = response.status().is_success();
            let body: Value = response.json().await.ok()?;
            let latency = due.elapsed();
            ok.then_some((latency, body))
        });
    }
    let mut run = Run {
        latency: Samples::default(),
        took: Samples::default(),
        errors: 0,
        total: None,
    };
    while let Some(done) = tasks.join_next().await {
        match done.ok().flatten() {
            Some((latency, body)) => {
                run.latency.push(latency);
                if let Some(took) = body["took"].as_f64() {
                    run.took.push_secs(took / 1000.0);
                }
                run.total = run
                    .total
                    .or(body["total"].as_u64())
                    .or(body["hits"]["total"]["value"].as_u64());
            }
            None => run.errors += 1,
        }
    }
    run
}

/// What a closed-loop run saw.
#[derive(Default)]
struct Closed {
    latency: Samples,
    errors: usize,
    elapsed: Duration,
}

impl Closed {
    fn per_second(&self) -> f64 {
        self.latency.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// `concurrency` workers, each sending its next request when the previous one answered, for
/// `duration`; adds what they saw to `into`.
async fn closed_loop(
    into: &mut Closed,
    concurrency: usize,
    duration: Duration,
    request: impl Fn() -> reqwest::RequestBuilder,
) {
    let started = Instant::now();
    let deadline = started + duration;
    let request = &request;
    let workers = (0..concurrency).map(|_| async move {
        let mut latency = Vec::new();
        let mut errors = 0;
        while Instant::now() < deadline {
            let sent = Instant::now();
            match request().send().await {
                Ok(response) if response.status().is_success() => {
                    if response.bytes().await.is_err() {
                        errors += 1;
                    }
                }
                _ => errors += 1,
            }
            latency.push(sent.elapsed());
        }
        (latency, errors)
    });
    for (latency, errors) in futures::future::join_all(workers).await {
        for sample in latency {
            into.latency.push(sample);
        }
        into.errors += errors;
    }
    into.elapsed += started.elapsed();
}

/// Each search closed loop through Athens and direct, in alternating rounds: the throughput each
/// path saturates at and the latency it has there.
async fn saturation(bench: &Bench, base: &str, searches: &[Search]) -> anyhow::Result<Table> {
    let seconds = bench.scale.api_seconds;
    let rounds = if bench.tiny {
        TINY_CLOSED_ROUNDS
    } else {
        CLOSED_ROUNDS
    };
    let slice = Duration::from_secs_f64(seconds) / rounds;
    let mut table = Table::new(
        &format!(
            "API: closed loop, {CLOSED_CONCURRENCY} requests in flight ({seconds:.0} s per path in {rounds} alternating rounds)"
        ),
        &[
            "search",
            "via Athens req/s",
            "via Athens p50 ms",
            "via Athens p99 ms",
            "engine direct req/s",
            "engine direct p50 ms",
            "engine direct p99 ms",
            "ratio",
            "p99 overhead ms",
        ],
    );
    let direct_url = format!("{}/{}/_search", bench.engine_url, bench.alias);
    for search in searches {
        let url = format!("{base}{}", search.path);
        let via = || bench.http.get(&url);
        let direct = || bench.http.post(&direct_url).json(&search.body);
        let paths: [&dyn Fn() -> reqwest::RequestBuilder; 2] = [&via, &direct];
        let mut seen = [Closed::default(), Closed::default()];
        for round in 0..rounds as usize {
            // Via Athens first in even rounds, direct first in odd ones.
            for path in [round % 2, (round + 1) % 2] {
                closed_loop(&mut seen[path], CLOSED_CONCURRENCY, slice, paths[path]).await;
            }
        }
        let [mut athens, mut engine] = seen;
        ensure!(
            athens.errors == 0 && engine.errors == 0,
            "{}: {} errors via Athens, {} direct",
            search.name,
            athens.errors,
            engine.errors
        );
        println!(
            "api {} closed loop × {CLOSED_CONCURRENCY}: athens {:.0}/s p99 {:.1} ms, direct {:.0}/s p99 {:.1} ms",
            search.name,
            athens.per_second(),
            athens.latency.ms(0.99),
            engine.per_second(),
            engine.latency.ms(0.99)
        );
        table.row(vec![
            search.name.into(),
            num(athens.per_second(), 0),
            num(athens.latency.ms(0.5), 1),
            num(athens.latency.ms(0.99), 1),
            num(engine.per_second(), 0),
            num(engine.latency.ms(0.5), 1),
            num(engine.latency.ms(0.99), 1),
            ratio(athens.per_second() / engine.per_second()),
            num(athens.latency.ms(0.99) - engine.latency.ms(0.99), 1),
        ]);
    }
    table.note("closed loop: each of the requests in flight is sent when the previous one answered, so the rate is the most each path serves on this machine, not a latency at a given rate");
    table.note("ratio: Athens' requests per second as a share of the engine's; the client, Athens, the engine and PostgreSQL share the 2 cores");
    Ok(table)
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let serve = bench
        .athens
        .spawn(&["serve"], &[("ATHENS_HTTP_ADDR", &addr)])?;
    let base = format!("http://{addr}");
    let ready = async {
        for _ in 0..300 {
            if let Ok(response) = bench.http.get(format!("{base}/readyz")).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        anyhow::bail!(
            "athens serve did not become ready (see {}/bench-serve.log)",
            bench.athens.log_dir.display()
        )
    };
    let result = match ready.await {
        Ok(()) => measure(bench, &base, &serve).await,
        Err(error) => Err(error),
    };
    let usage = serve.stop().await?;
    result?;
    bench.report.headline(
        "`athens serve` peak RSS over the API section",
        format!("{:.0} MiB", usage.peak_rss_mib),
        "absolute",
        None,
    );
    Ok(())
}

async fn measure(
    bench: &mut Bench,
    base: &str,
    serve: &crate::procs::Running,
) -> anyhow::Result<()> {
    let seconds = bench.scale.api_seconds;
    let min_requests = bench.scale.api_min_requests;
    // How long a run at `rate` lasts: the section's seconds, or longer for enough requests.
    let run_seconds = |rate: f64| seconds.max(min_requests / rate);
    let rates: &[f64] = if bench.tiny { &TINY_RATES } else { &RATES };
    // The smoke run only proves the section runs: no need to let the machine settle between runs.
    let settle = if bench.tiny {
        Duration::from_millis(100)
    } else {
        SETTLE
    };
    let fixed_rate = bench.api_rate;
    let mut fixed = Table::new(
        &format!(
            "API: latency at a fixed {fixed_rate:.0} searches/s each, open loop ({:.0} s per run)",
            run_seconds(fixed_rate)
        ),
        &[
            "search",
            "hits",
            "via Athens p50 ms",
            "via Athens p99 ms",
            "engine direct p50 ms",
            "engine direct p99 ms",
            "engine `took` p50 ms",
            "p99 overhead ms",
            "Athens CPU ms/request",
        ],
    );
    let mut limits = Table::new(
        &format!("API: highest rate with p99 ≤ {P99_BUDGET_MS:.0} ms (steps: {rates:?}/s)"),
        &["search", "via Athens /s", "engine direct /s", "ratio"],
    );
    let mut worst_overhead: f64 = f64::NEG_INFINITY;
    let mut worst_ratio: f64 = f64::INFINITY;
    let searches = searches()?;
    // Warm both paths (JIT, caches, connections).
    for search in &searches {
        let url = format!("{base}{}", search.path);
        let _ = open_loop(&bench.http, 20.0, 1.0, || bench.http.get(&url)).await;
    }
    for search in &searches {
        let url = format!("{base}{}", search.path);
        let direct_url = format!("{}/{}/_search", bench.engine_url, bench.alias);
        let via = || bench.http.get(&url);
        let direct = || bench.http.post(&direct_url).json(&search.body);

        let cpu_before = serve.cpu();
        let mut athens = open_loop(&bench.http, fixed_rate, run_seconds(fixed_rate), via).await;
        let athens_cpu = serve.cpu() - cpu_before;
        tokio::time::sleep(settle).await;
        let mut engine = open_loop(&bench.http, fixed_rate, run_seconds(fixed_rate), direct).await;
        tokio::time::sleep(settle).await;
        ensure!(
            athens.total == engine.total,
            "{}: Athens counts {:?} hits, the direct body {:?}: the bodies differ",
            search.name,
            athens.total,
            engine.total
        );
        let overhead = athens.latency.ms(0.99) - engine.latency.ms(0.99);
        worst_overhead = worst_overhead.max(overhead);
        println!(
            "api {} at {fixed_rate}/s: athens p50 {:.1} p99 {:.1} ms, direct p50 {:.1} p99 {:.1} ms, errors {}+{}",
            search.name,
            athens.latency.ms(0.5),
            athens.latency.ms(0.99),
            engine.latency.ms(0.5),
            engine.latency.ms(0.99),
            athens.errors,
            engine.errors
        );
        fixed.row(vec![
            search.name.into(),
            athens.total.map_or("?".into(), |t| t.to_string()),
            num(athens.latency.ms(0.5), 1),
            num(athens.latency.ms(0.99), 1),
            num(engine.latency.ms(0.5), 1),
            num(engine.latency.ms(0.99), 1),
            num(engine.took.ms(0.5), 0),
            num(overhead, 1),
            num(athens_cpu / athens.latency.len().max(1) as f64 * 1000.0, 2),
        ]);

        // Each path climbs the steps until its p99 breaks the budget (or a request fails).
        let paths: [(&str, &dyn Fn() -> reqwest::RequestBuilder); 2] =
            [("via Athens", &via), ("direct", &direct)];
        let mut best = [0.0_f64; 2];
        let mut climbing = [true; 2];
        for &rate in rates {
            for (path, (label, request)) in paths.iter().enumerate() {
                if !climbing[path] {
                    continue;
                }
                let mut run = open_loop(&bench.http, rate, run_seconds(rate), request).await;
                tokio::time::sleep(settle).await;
                climbing[path] = run.errors == 0 && run.latency.ms(0.99) <= P99_BUDGET_MS;
                if climbing[path] {
                    best[path] = rate;
                }
                println!(
                    "api {} {label} at {rate}/s: p99 {:.1} ms",
                    search.name,
                    run.latency.ms(0.99)
                );
            }
            if !climbing.contains(&true) {
                break;
            }
        }
        let [best_athens, best_direct] = best;
        let limit_ratio = if best_direct > 0.0 {
            best_athens / best_direct
        } else {
            f64::NAN
        };
        if limit_ratio.is_finite() {
            worst_ratio = worst_ratio.min(limit_ratio);
        }
        limits.row(vec![
            search.name.into(),
            num(best_athens, 0),
            num(best_direct, 0),
            ratio(limit_ratio),
        ]);
    }
    fixed.note("latency is from each request's due time to its last byte (open loop: a late answer delays none of the next requests)");
    fixed.note("direct = the same query body Athens builds, posted to the alias; Athens asks PostgreSQL whether a user exists only when the user's page is empty, which none of these is");
    limits.note(
        "a rate is met when every request succeeded and p99 ≤ 50 ms; 0 = not even the first step",
    );
    limits.note(format!(
        "each run lasts {seconds:.0} s, or longer to send at least {min_requests:.0} requests; the client, Athens, the engine and PostgreSQL share the 2 cores"
    ));
    let saturated = saturation(bench, base, &searches).await?;
    bench.report.tables.push(fixed);
    bench.report.tables.push(limits);
    bench.report.tables.push(saturated);
    bench.report.headline(
        "API throughput at p99 ≤ 50 ms via Athens / engine direct (worst search)",
        ratio(worst_ratio),
        "≥ 0.9×",
        worst_ratio.is_finite().then_some(worst_ratio >= 0.9),
    );
    bench.report.headline(
        &format!("API p99 overhead at {fixed_rate:.0}/s (worst search)"),
        format!("{} ms", num(worst_overhead, 1)),
        "< 3 ms",
        worst_overhead.is_finite().then_some(worst_overhead < 3.0),
    );
    Ok(())
}
