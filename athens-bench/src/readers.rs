//! The backfill's reader side alone (issue 17): the real engine's backfill
//! ([`SyncEngine::backfill`] over [`PgSource`]) from the benchmark's database into a
//! [`DiscardIndex`], with 1, 2 and 4 readers (`sync.backfill_readers`) alternating in one run, so
//! that what is measured is PostgreSQL's page reads and Athens' document building, not the engine.
//!
//! With `--readers-rtt-ms`, the same runs also go through a [`DelayProxy`] that adds that round
//! trip between Athens and PostgreSQL (a remote database, as in a real deployment), beside the
//! direct connection in the same rounds; the round trip each path really had is measured
//! (`SELECT 1`, one connection) and reported.
//!
//! The machine is shared, so each run records what limits it: the CPU seconds of the PostgreSQL
//! backends of the run (found by their `application_name` in `pg_stat_activity`), of this
//! process (the engine runs in it) and of the proxy, how busy the machine's cores were, and the
//! load average.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use athens_core::{EngineConfig, SyncEngine};
use athens_pg::{PgConfig, PgSource};
use sea_orm::sqlx::{self, Connection, PgConnection};
use tokio_util::sync::CancellationToken;

use crate::delay::DelayProxy;
use crate::discard::DiscardIndex;
use crate::report::{Table, num, ratio};
use crate::{Bench, procs};

/// Reader counts, in the order of the odd rounds (even rounds run them backwards).
const READERS: [usize; 3] = [1, 2, 4];
/// Rounds of the full run: the two orders once each, so that a drift of the machine's speed
/// during the run weighs on every reader count alike.
const ROUNDS: usize = 2;

/// Pause between two `SELECT 1` round trips of the probe that times a route during a run.
const PING_EVERY: Duration = Duration::from_millis(10);

/// How the readers reach PostgreSQL: directly, or through a delay proxy.
struct Route {
    /// The added round trip asked for, milliseconds (0 for the direct connection).
    added_ms: f64,
    /// The database URL the readers connect to.
    url: String,
    /// The proxy, when there is one (kept running for the whole section).
    proxy: Option<DelayProxy>,
}

impl Route {
    /// The direct connection, or a proxy adding `added_ms` in front of the benchmark's database.
    fn open(bench: &Bench, added_ms: Option<f64>) -> anyhow::Result<Route> {
        let Some(rtt) = added_ms else {
            return Ok(Route {
                added_ms: 0.0,
                url: bench.db_url.clone(),
                proxy: None,
            });
        };
        let mut url = reqwest::Url::parse(&bench.db_url)?;
        let target = format!(
            "{}:{}",
            url.host_str().context("no host in the database URL")?,
            url.port().unwrap_or(5432)
        );
        let proxy = DelayProxy::start(&target, rtt)?;
        url.set_port(Some(proxy.addr.port()))
            .map_err(|()| anyhow::anyhow!("cannot set the proxy's port"))?;
        Ok(Route {
            added_ms: rtt,
            url: url.to_string(),
            proxy: Some(proxy),
        })
    }

    fn label(&self) -> String {
        match &self.proxy {
            None => "direct".to_owned(),
            Some(proxy) if proxy.realtime => format!("+{} ms", self.added_ms),
            Some(_) => format!("+{} ms (proxy at normal priority)", self.added_ms),
        }
    }
}

/// Times `SELECT 1` round trips on one connection of `url`, one every [`PING_EVERY`], until
/// `stop`; the median in milliseconds.
async fn median_round_trip(url: String, stop: CancellationToken) -> anyhow::Result<f64> {
    let mut connection = PgConnection::connect(&url).await?;
    let mut times = Vec::new();
    while !stop.is_cancelled() {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&mut connection).await?;
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        tokio::select! {
            () = stop.cancelled() => {}
            () = tokio::time::sleep(PING_EVERY) => {}
        }
    }
    connection.close().await?;
    times.sort_by(f64::total_cmp);
    Ok(times.get(times.len() / 2).copied().unwrap_or(f64::NAN))
}

/// What one backfill into the discarding index did.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Which path (index into the section's paths).
    path: usize,
    readers: usize,
    documents: u64,
    seconds: f64,
    /// CPU seconds of this process (the engine and the source adapter).
    athens_cpu: f64,
    /// CPU seconds of the run's PostgreSQL backends.
    postgres_cpu: f64,
    /// CPU seconds of the delay proxy (0 on the direct path).
    proxy_cpu: f64,
    /// Median round trip of `SELECT 1` on the route during the run, milliseconds.
    rtt_ms: f64,
    /// Share of the machine's cores busy (every process), 0 to 1.
    busy: f64,
    /// One-minute load average at the end of the run.
    load: f64,
}

impl Run {
    fn rate(&self) -> f64 {
        self.documents as f64 / self.seconds
    }
}

/// The one-minute load average (`/proc/loadavg`).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// CPU seconds so far of each PostgreSQL backend whose `application_name` is `application`.
async fn backends(bench: &Bench, application: &str) -> anyhow::Result<HashMap<i32, f64>> {
    let pids: Vec<i32> =
        sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE application_name = $1")
            .bind(application)
            .fetch_all(&bench.pool)
            .await?;
    Ok(pids
        .into_iter()
        .filter_map(|pid| Some((pid, procs::cpu_seconds(u32::try_from(pid).ok()?)?)))
        .collect())
}

/// CPU seconds the backends used between two readings (a backend born in between counts whole).
fn backends_since(before: &HashMap<i32, f64>, after: &HashMap<i32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, cpu)| cpu - before.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// One backfill with `readers` readers over route `routes[path]` into a fresh discarding index.
async fn measure(
    bench: &Bench,
    routes: &[Route],
    path: usize,
    readers: usize,
) -> anyhow::Result<Run> {
    let application = format!("athens-bench-readers-{}", std::process::id());
    let config = PgConfig {
        application_name: application.clone(),
        max_connections: u32::try_from(readers)?.max(4) + 2,
        ..PgConfig::new(routes[path].url.clone())
    };
    let proxy_pid = routes[path].proxy.as_ref().map(DelayProxy::pid);
    let proxy_cpu = || proxy_pid.and_then(procs::cpu_seconds).unwrap_or(0.0);
    let source = Arc::new(PgSource::connect(&config).await?);
    let lease = source.lease().await?;
    let index = Arc::new(DiscardIndex::default());
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        index.clone(),
        Arc::new(lease),
        source.clone(),
        EngineConfig {
            backfill_readers: NonZeroUsize::new(readers).context("no readers")?,
            ..EngineConfig::default()
        },
        CancellationToken::new(),
    );
    engine.acquire_lease().await?;
    let pg_before = backends(bench, &application).await?;
    let athens_before = procs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let proxy_before = proxy_cpu();
    let ticks = procs::machine_ticks();
    let stop_probe = CancellationToken::new();
    let probe = tokio::spawn(median_round_trip(
        routes[path].url.clone(),
        stop_probe.clone(),
    ));
    let report = engine.backfill().await;
    stop_probe.cancel();
    let busy = procs::machine_busy(ticks, procs::machine_ticks());
    let athens_cpu = procs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN) - athens_before;
    let proxy_cpu = proxy_cpu() - proxy_before;
    let pg_after = backends(bench, &application).await?;
    engine.release_lease().await?;
    source.close().await;
    let report = report?;
    let rtt_ms = probe.await??;
    ensure!(
        index.written() == report.documents && report.documents >= bench.projects * 9 / 10,
        "{readers} reader(s) wrote {} documents ({} reported) of {} projects",
        index.written(),
        report.documents,
        bench.projects
    );
    Ok(Run {
        path,
        readers,
        documents: report.documents,
        seconds: report.elapsed.as_secs_f64(),
        athens_cpu,
        postgres_cpu: backends_since(&pg_before, &pg_after),
        proxy_cpu,
        rtt_ms,
        busy,
        load: load_average(),
    })
}

/// Runs the section: on each path (direct, then each added round trip), every reader count in
/// each round, the order of paths and reader counts reversed every other round.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let rounds = if bench.tiny { 1 } else { ROUNDS };
    let mut paths = vec![Route::open(bench, None)?];
    for &rtt in &bench.readers_rtt_ms {
        paths.push(Route::open(bench, Some(rtt))?);
    }
    let load_before = load_average();
    let mut runs: Vec<(usize, Run)> = Vec::new();
    for round in 1..=rounds {
        let mut order = READERS.to_vec();
        let mut path_order: Vec<usize> = (0..paths.len()).collect();
        if round % 2 == 0 {
            order.reverse();
            path_order.reverse();
        }
        for &path in &path_order {
            for &readers in &order {
                let run = measure(bench, &paths, path, readers).await?;
                println!(
                    "readers {readers} round {round} path {} (round trip {:.2} ms): {} docs in {:.1} s, {:.0} docs/s; Athens {:.2} cores, PostgreSQL {:.2} cores, proxy {:.2} cores, machine {:.0}% busy, load {:.2}",
                    paths[path].label(),
                    run.rtt_ms,
                    run.documents,
                    run.seconds,
                    run.rate(),
                    run.athens_cpu / run.seconds,
                    run.postgres_cpu / run.seconds,
                    run.proxy_cpu / run.seconds,
                    run.busy * 100.0,
                    run.load
                );
                runs.push((round, run));
            }
        }
    }
    // A reader count's rate on a path over all its rounds: documents over seconds, summed.
    let rate_of = |path: usize, readers: usize| -> f64 {
        let (documents, seconds) = runs
            .iter()
            .filter(|(_, run)| run.path == path && run.readers == readers)
            .fold((0.0, 0.0), |(d, s), (_, run)| {
                (d + run.documents as f64, s + run.seconds)
            });
        documents / seconds
    };
    let mut table = Table::new(
        &format!(
            "Backfill, reader side alone ({} projects into an index that discards writes)",
            bench.projects
        ),
        &[
            "path to PostgreSQL",
            "round trip ms (median, during the run)",
            "readers",
            "round",
            "docs/s",
            "÷ 1 reader (same path, round)",
            "Athens CPU s/1k docs",
            "Athens cores",
            "PostgreSQL CPU s/1k docs",
            "PostgreSQL cores",
            "Athens + PostgreSQL cores per reader",
            "proxy cores",
            "machine busy",
            "load average",
        ],
    );
    let mut sorted = runs.clone();
    sorted.sort_by_key(|(round, run)| (run.path, *round));
    for (round, run) in &sorted {
        let single = runs
            .iter()
            .find(|(r, other)| r == round && other.path == run.path && other.readers == 1)
            .map_or(f64::NAN, |(_, other)| other.rate());
        let per_k = |cpu: f64| num(cpu / run.documents as f64 * 1000.0, 3);
        table.row(vec![
            paths[run.path].label(),
            num(run.rtt_ms, 2),
            run.readers.to_string(),
            round.to_string(),
            num(run.rate(), 0),
            ratio(run.rate() / single),
            per_k(run.athens_cpu),
            num(run.athens_cpu / run.seconds, 2),
            per_k(run.postgres_cpu),
            num(run.postgres_cpu / run.seconds, 2),
            num(
                (run.athens_cpu + run.postgres_cpu) / run.seconds / run.readers as f64,
                2,
            ),
            num(run.proxy_cpu / run.seconds, 2),
            format!("{:.0}%", run.busy * 100.0),
            num(run.load, 2),
        ]);
    }
    let defaults = EngineConfig::default();
    table.note(format!(
        "the real engine's backfill (`SyncEngine::backfill`, {} ranges per reader when readers > 1, pages of {} documents, {} writes in flight per reader) over `PgSource`, into `DiscardIndex` (athens-bench: accepts and drops every write); reader counts alternate within each round, the order (and that of the paths) reversed every other round; load average {load_before:.2} at the start",
        4, defaults.chunk_size, defaults.write_concurrency
    ));
    table.note("Athens = this process (`/proc/self/stat`: the engine, the source adapter, document building); PostgreSQL = the run's backends (`pg_stat_activity` by `application_name`, `/proc/<pid>/stat`); cores = CPU seconds ÷ wall seconds; machine busy: `/proc/stat`, every process, 100% = both cores");
    if paths.len() > 1 {
        table.note(format!(
            "+N ms: through a delay proxy on loopback (athens-bench `delay.rs`, a child process at a real-time priority, `chrt -f 10`) that holds every byte N/2 ms in each direction, a remote database simulated; round trip: the median of `SELECT 1` timed on a connection of its own through the same path every {} ms during the run (this process's tokio scheduling included, as the readers' is)",
            PING_EVERY.as_millis()
        ));
    }
    for (index, path) in paths.iter().enumerate() {
        let one = rate_of(index, 1);
        let summary: Vec<String> = READERS
            .iter()
            .map(|&readers| {
                format!(
                    "{readers}: {} docs/s ({})",
                    num(rate_of(index, readers), 0),
                    ratio(rate_of(index, readers) / one)
                )
            })
            .collect();
        table.note(format!(
            "{}, over all rounds (documents ÷ seconds): {}",
            path.label(),
            summary.join("; ")
        ));
        let two = rate_of(index, 2) / one;
        let what = match path.proxy {
            None => "backfill, reader side alone: 2 readers ÷ 1 reader".to_owned(),
            Some(_) => format!(
                "backfill, reader side alone, PostgreSQL {} ms of round trip away: 2 readers ÷ 1 reader",
                path.added_ms
            ),
        };
        bench
            .report
            .headline(&what, ratio(two), "≥ 1.7×", Some(two >= 1.7));
    }
    bench.report.tables.push(table);
    Ok(())
}
