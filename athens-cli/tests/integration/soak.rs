//! Soak: random CRUD on all five tables at a steady, open-loop rate while a chaos driver SIGKILLs
//! the sync process, takes the engine away and takes PostgreSQL away at random moments. At the end
//! the backlog drains, `athens verify` finds zero drift and no document was dead-lettered. Prints a
//! report (run with `--nocapture` to see it).
//!
//! The short version runs in CI. Tunables (environment):
//! - `ATHENS_SOAK_SECONDS` (default 45): how long the load and the chaos last;
//! - `ATHENS_SOAK_RATE` (default 20): operations per second;
//! - `ATHENS_SOAK_FAULT_SECONDS` (default 6, 45 with real restarts): mean time between faults;
//! - `ATHENS_SOAK_SEED` (default 7): the random seed of the load and the chaos;
//! - `ATHENS_SOAK_ENGINE` (`elasticsearch` or `opensearch`, default the first engine);
//! - `ATHENS_SOAK_REAL_RESTARTS=1`: restart the real engine and PostgreSQL with `deploy/local/down`
//!   and `deploy/local/up` instead of cutting them off behind proxies (by hand only: it interrupts
//!   every other user of the services).
//!
//! Outages in the CI version go through `athens_testkit::Proxy`s in front of PostgreSQL and the
//! engine, through which only the sync process connects: the shared services keep serving the
//! tests that run beside this one, and the load (the application) keeps writing meanwhile.

use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use athens_testkit::{Proxy, TestEngine};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use crate::support::{World, engines, signal};

const DRAIN: Duration = Duration::from_secs(180);
/// Operations in flight at once before the scheduler counts the next ones as skipped.
const MAX_IN_FLIGHT: usize = 32;
/// Projects seeded before the load starts.
const SEEDED: i64 = 300;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// The run's parameters.
struct Plan {
    seconds: u64,
    rate: f64,
    fault_seconds: f64,
    seed: u64,
    real_restarts: bool,
}

impl Plan {
    fn from_env() -> Plan {
        let real_restarts = std::env::var("ATHENS_SOAK_REAL_RESTARTS").is_ok_and(|v| v == "1");
        Plan {
            seconds: env_or("ATHENS_SOAK_SECONDS", 45),
            rate: env_or("ATHENS_SOAK_RATE", 20.0),
            fault_seconds: env_or(
                "ATHENS_SOAK_FAULT_SECONDS",
                if real_restarts { 45.0 } else { 6.0 },
            ),
            seed: env_or("ATHENS_SOAK_SEED", 7),
            real_restarts,
        }
    }
}

/// What the load did.
#[derive(Default)]
struct LoadCounts {
    scheduled: AtomicU64,
    applied: AtomicU64,
    /// Refused by PostgreSQL for a race with another operation (deadlock, unique or foreign key
    /// conflict): the application's problem, not Athens'.
    conflicts: AtomicU64,
    /// Failed otherwise (connection lost while PostgreSQL restarts).
    failed: AtomicU64,
    /// Not issued: too many operations in flight.
    skipped: AtomicU64,
}

/// One random operation on one of the five tables; `n` keeps inserted names unique.
fn operation(rng: &mut StdRng, n: u64, projects: i64) -> String {
    let project: i64 = rng.random_range(1..=projects);
    let user: i64 = rng.random_range(1..=(SEEDED / 5 + (n as i64) / 10).max(1));
    let hashtag: i64 = rng.random_range(1..=(SEEDED / 5 + (n as i64) / 20).max(1));
    match rng.random_range(0..1000) {
        0..80 => format!("INSERT INTO users (name) VALUES ('soak user {n}')"),
        80..160 => format!("UPDATE users SET name = 'soak renamed {n}' WHERE id = {user}"),
        160..175 => format!("DELETE FROM users WHERE id = {user}"),
        175..235 => {
            format!("INSERT INTO hashtags (name) VALUES ('soak{n}') ON CONFLICT DO NOTHING")
        }
        235..295 => format!("UPDATE hashtags SET name = 'soakx{n}' WHERE id = {hashtag}"),
        295..305 => format!("DELETE FROM hashtags WHERE id = {hashtag}"),
        305..425 => format!(
            "INSERT INTO projects (name, slug, description) VALUES ('Soak {n}', 'soak-{n}', 'soak project number {n}')"
        ),
        425..575 => format!(
            "UPDATE projects SET description = 'soak edit {n}', name = 'Edited {n}' WHERE id = {project}"
        ),
        575..625 => format!("DELETE FROM projects WHERE id = {project}"),
        625..725 => format!(
            "INSERT INTO project_hashtags (project_id, hashtag_id) SELECT p.id, h.id FROM projects p, hashtags h \
             WHERE p.id = {project} AND h.id = {hashtag} ON CONFLICT DO NOTHING"
        ),
        725..775 => format!(
            "DELETE FROM project_hashtags WHERE project_id = {project} AND hashtag_id = {hashtag}"
        ),
        775..875 => format!(
            "INSERT INTO user_projects (project_id, user_id) SELECT p.id, u.id FROM projects p, users u \
             WHERE p.id = {project} AND u.id = {user} ON CONFLICT DO NOTHING"
        ),
        875..915 => {
            format!("DELETE FROM user_projects WHERE project_id = {project} AND user_id = {user}")
        }
        // One transaction over three tables, slow to commit.
        915..999 => format!(
            "BEGIN; \
             UPDATE projects SET name = 'Tx {n}' WHERE id = {project}; \
             UPDATE users SET name = 'tx user {n}' WHERE id = {user}; \
             INSERT INTO user_projects (project_id, user_id) SELECT p.id, u.id FROM projects p, users u \
               WHERE p.id = {project} AND u.id = {user} ON CONFLICT DO NOTHING; \
             SELECT pg_sleep(0.05); \
             COMMIT;"
        ),
        // Rare: a truncate, which makes the engine rebuild the whole index.
        _ => "TRUNCATE project_hashtags".to_string(),
    }
}

/// Whether a failed statement lost a race with another one (the load's own business).
fn is_conflict(message: &str) -> bool {
    [
        "deadlock",
        "duplicate key",
        "foreign key",
        "could not serialize",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

/// Issues operations at `plan.rate` per second until `until`, whatever their latency (open loop).
async fn load(sql: DatabaseConnection, plan: &Plan, until: Instant, counts: Arc<LoadCounts>) {
    let mut rng = StdRng::seed_from_u64(plan.seed);
    let mut ticks = tokio::time::interval(Duration::from_secs_f64(1.0 / plan.rate));
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = Vec::new();
    let mut n = 0u64;
    while Instant::now() < until {
        ticks.tick().await;
        n += 1;
        counts.scheduled.fetch_add(1, Ordering::Relaxed);
        let projects = SEEDED + (n as i64) * 12 / 100;
        let statement = operation(&mut rng, n, projects);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let sql = sql.clone();
        let counts = counts.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match sql.execute_unprepared(&statement).await {
                Ok(_) => counts.applied.fetch_add(1, Ordering::Relaxed),
                Err(error) if is_conflict(&error.to_string()) => {
                    counts.conflicts.fetch_add(1, Ordering::Relaxed)
                }
                Err(error) => {
                    eprintln!("soak: operation failed: {error}");
                    counts.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// The largest lag (age of the oldest pending change) and backlog seen, sampled twice a second from
/// the outbox.
#[derive(Default)]
struct LagCounts {
    max_lag_ms: AtomicU64,
    max_pending: AtomicU64,
}

async fn sample_lag(sql: DatabaseConnection, until: Instant, counts: Arc<LagCounts>) {
    let query = "SELECT coalesce(extract(epoch FROM clock_timestamp() - min(recorded_at)), 0)::float8, \
                 count(*) FROM athens.outbox";
    while Instant::now() < until {
        let row = sql
            .query_one_raw(Statement::from_string(
                sql.get_database_backend(),
                query.to_string(),
            ))
            .await;
        if let Ok(Some(row)) = row {
            let lag: f64 = row.try_get_by_index(0).unwrap_or_default();
            let pending: i64 = row.try_get_by_index(1).unwrap_or_default();
            counts
                .max_lag_ms
                .fetch_max((lag * 1000.0) as u64, Ordering::Relaxed);
            counts
                .max_pending
                .fetch_max(pending.max(0) as u64, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The faults the chaos driver injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillSync,
    EngineDown,
    DatabaseDown,
}

/// The sync process under chaos, restarted like a supervisor (systemd, ECS) would.
struct Supervised<'a> {
    world: &'a World,
    database_url: String,
    engine_url: String,
    log: PathBuf,
    child: Option<Child>,
    last_start: Instant,
    starts: u64,
    /// Exit statuses of processes that ended without being killed (a start while PostgreSQL was
    /// away fails with status 1, and the supervisor starts another).
    own_exits: Vec<Option<i32>>,
}

impl Supervised<'_> {
    fn start(&mut self) {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = self
            .world
            .athens(&["sync"])
            .env("ATHENS_DATABASE_URL", &self.database_url)
            .env("ATHENS_ENGINE_URL", &self.engine_url)
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.last_start = Instant::now();
        self.starts += 1;
    }

    /// Restarts the process if it ended by itself, at most once a second.
    fn watch(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().unwrap()
        {
            self.own_exits.push(status.code());
            self.child = None;
        }
        if self.child.is_none() && self.last_start.elapsed() >= Duration::from_secs(1) {
            self.start();
        }
    }

    fn kill(&mut self) {
        self.watch();
        if let Some(mut child) = self.child.take() {
            signal(&mut child, "KILL").unwrap();
        }
    }

    fn stop(&mut self) -> Option<i32> {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().unwrap()
        {
            self.own_exits.push(status.code());
            return status.code();
        }
        self.child
            .take()
            .and_then(|mut child| signal(&mut child, "TERM").unwrap())
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// Stops and starts a real service with the local scripts (by-hand soak only).
async fn restart_service(service: &'static str) {
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy/local");
    tokio::task::spawn_blocking(move || {
        for step in ["down", "up"] {
            let status = std::process::Command::new(local.join(step))
                .arg(service)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(status.success(), "deploy/local/{step} {service} failed");
        }
    })
    .await
    .unwrap();
}

fn host_port(url: &str) -> String {
    let url = url::Url::parse(url).unwrap();
    format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    )
}

fn via(url: &str, proxy: &Proxy) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.addr().port())).unwrap();
    url.to_string().trim_end_matches('/').to_string()
}

async fn soak_engine() -> TestEngine {
    let engines = engines().await;
    match std::env::var("ATHENS_SOAK_ENGINE") {
        Ok(name) => engines
            .into_iter()
            .find(|engine| engine.distribution == name)
            .unwrap_or_else(|| panic!("no engine {name} under test")),
        Err(_) => engines.into_iter().next().unwrap(),
    }
}

// Multi-threaded: the proxies, the load and the sampler run while the test blocks on `athens`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_random_crud_under_kills_and_outages_ends_with_zero_drift() {
    soak(Plan::from_env(), "outbox").await;
}

/// The same soak through logical decoding: the sync killed mid-stream, PostgreSQL taken away
/// while the slot is being read, the engine cut off. Shorter in CI (`ATHENS_SOAK_SECONDS` halved).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn soak_through_logical_decoding_ends_with_zero_drift() {
    let mut plan = Plan::from_env();
    plan.seconds = plan.seconds.div_ceil(2);
    soak(plan, "logical").await;
}

async fn soak(plan: Plan, mode: &str) {
    let engine = soak_engine().await;
    let world = World::in_mode("soak", &engine, mode).await.unwrap();
    world.prepare(SEEDED as u64).unwrap();

    let (database_proxy, engine_proxy) = if plan.real_restarts {
        (None, None)
    } else {
        (
            Some(Proxy::start(&host_port(&world.database.url)).await.unwrap()),
            Some(Proxy::start(&host_port(&engine.url)).await.unwrap()),
        )
    };
    let mut sync = Supervised {
        world: &world,
        database_url: database_proxy.as_ref().map_or_else(
            || world.database.url.clone(),
            |p| via(&world.database.url, p),
        ),
        engine_url: engine_proxy
            .as_ref()
            .map_or_else(|| engine.url.clone(), |p| via(&engine.url, p)),
        log: std::env::temp_dir().join(format!("{}.log", world.alias)),
        child: None,
        last_start: Instant::now(),
        starts: 0,
        own_exits: Vec::new(),
    };
    sync.start();
    world.wait_drained(DRAIN).await.unwrap();

    let started = Instant::now();
    let until = started + Duration::from_secs(plan.seconds);
    let load_counts = Arc::new(LoadCounts::default());
    let lag_counts = Arc::new(LagCounts::default());
    let load = tokio::spawn({
        let sql = world.sql.clone();
        let counts = load_counts.clone();
        let plan = Plan::from_env();
        async move { load(sql, &plan, until, counts).await }
    });
    let sampler = tokio::spawn(sample_lag(
        world.sql.clone(),
        until + DRAIN,
        lag_counts.clone(),
    ));

    // Chaos: every kind of fault once in a random order, then random ones, at random moments.
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut faults = vec![Fault::KillSync, Fault::EngineDown, Fault::DatabaseDown];
    faults.shuffle(&mut rng);
    let mut injected: Vec<(f64, Fault, f64)> = Vec::new();
    loop {
        // Gaps are capped so that even a short run sees every kind of fault.
        let pause = -plan.fault_seconds * (1.0 - rng.random::<f64>()).ln();
        let longest = (plan.fault_seconds * 4.0)
            .min(plan.seconds as f64 / 5.0)
            .max(0.5);
        let next = Instant::now() + Duration::from_secs_f64(pause.clamp(0.5, longest));
        while Instant::now() < next.min(until) {
            sync.watch();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if Instant::now() >= until {
            break;
        }
        let fault = faults.pop().unwrap_or_else(|| {
            [Fault::KillSync, Fault::EngineDown, Fault::DatabaseDown][rng.random_range(0..3)]
        });
        let at = started.elapsed().as_secs_f64();
        let outage = Duration::from_millis(rng.random_range(1000..6000));
        match (fault, &database_proxy, &engine_proxy) {
            (Fault::KillSync, _, _) => {
                sync.kill();
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
                sync.start();
            }
            (Fault::EngineDown, _, Some(proxy)) => {
                proxy.down().await;
                tokio::time::sleep(outage).await;
                proxy.up().await.unwrap();
            }
            (Fault::DatabaseDown, Some(proxy), _) => {
                proxy.down().await;
                tokio::time::sleep(outage).await;
                proxy.up().await.unwrap();
            }
            (Fault::EngineDown, _, None) => {
                restart_service(match engine.distribution.as_str() {
                    "opensearch" => "os",
                    _ => "es",
                })
                .await
            }
            (Fault::DatabaseDown, None, _) => restart_service("pg").await,
        }
        injected.push((at, fault, started.elapsed().as_secs_f64() - at));
    }
    load.await.unwrap();
    let load_seconds = started.elapsed().as_secs_f64();

    let drain_started = Instant::now();
    loop {
        sync.watch();
        let pending = world.status().unwrap()["pending_changes"].as_u64();
        if pending == Some(0) {
            break;
        }
        assert!(
            drain_started.elapsed() < DRAIN,
            "{pending:?} changes still pending after {DRAIN:?}\nlast lines of the sync log:\n{}",
            sync.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    let report = world.verify_clean().unwrap_or_else(|error| {
        panic!(
            "{error:#}\nlast lines of the sync log:\n{}",
            sync.log_tail()
        )
    });
    let status = world.status().unwrap();
    sampler.abort();
    let stopped = sync.stop();

    let count = |fault| injected.iter().filter(|(_, f, _)| *f == fault).count();
    let load = &load_counts;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    eprintln!(
        "\nsoak report: {} {} for {:.0} s at {} operations/s (seed {}, {} restarts)\n\
         operations: {} scheduled, {} applied, {} refused by PostgreSQL for races (deadlock, unique, foreign key), {} failed, {} skipped\n\
         faults survived: {} SIGKILLs of sync, {} engine {}, {} PostgreSQL {}; sync started {} times, {} ended by itself {:?}\n\
         faults (at s, kind, lasted s): {}\n\
         max lag {:.1} s, max backlog {} changes, drained {:.1} s after the load stopped\n\
         verify: {} projects checked, drift found: {}; dead letters: {}; sync stopped with {:?}\n",
        engine.distribution,
        engine.version,
        load_seconds,
        plan.rate,
        plan.seed,
        if plan.real_restarts { "real" } else { "proxy" },
        get(&load.scheduled),
        get(&load.applied),
        get(&load.conflicts),
        get(&load.failed),
        get(&load.skipped),
        count(Fault::KillSync),
        count(Fault::EngineDown),
        if plan.real_restarts {
            "restart(s)"
        } else {
            "outage(s)"
        },
        count(Fault::DatabaseDown),
        if plan.real_restarts {
            "restart(s)"
        } else {
            "outage(s)"
        },
        sync.starts,
        sync.own_exits.len(),
        sync.own_exits,
        injected
            .iter()
            .map(|(at, fault, lasted)| format!("{at:.1} {fault:?} {lasted:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        lag_counts.max_lag_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        lag_counts.max_pending.load(Ordering::Relaxed),
        drain_seconds,
        report["checked"],
        report["drift"],
        status["dead_letters"],
        stopped,
    );

    assert_eq!(report["drift"], 0);
    assert_eq!(status["dead_letters"], 0, "{status:#}");
    assert_eq!(stopped, Some(0), "sync stops cleanly on SIGTERM");
    for kind in [Fault::KillSync, Fault::EngineDown, Fault::DatabaseDown] {
        assert!(count(kind) >= 1, "{kind:?} injected at least once");
    }
    assert!(
        sync.own_exits.iter().all(|code| *code == Some(1)),
        "a sync process only ever ends by itself with status 1 (a start while PostgreSQL is away), never a panic: {:?}\n{}",
        sync.own_exits,
        sync.log_tail()
    );
    let scheduled = get(&load.scheduled);
    assert!(scheduled > 0);
    if !plan.real_restarts {
        assert_eq!(get(&load.failed), 0, "PostgreSQL itself stayed up");
    }
    assert!(
        get(&load.applied) * 10 >= scheduled * 9,
        "at least 90% of the operations applied"
    );
    world.cleanup().await;
    let _ = std::fs::remove_file(&sync.log);
}
