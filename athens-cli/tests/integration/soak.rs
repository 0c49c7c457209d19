//! Soak: random CRUD on all five tables at a steady, open-loop rate while a chaos driver SIGKILLs
//! the sync holding the writer lease (a standby sync takes over), takes the engine away, takes
//! PostgreSQL away, and runs `athens reindex` and `athens verify --repair`, which take the lease
//! over from the syncs and hand it back. Every acknowledged change is checked against the index
//! as soon as the source shows it acknowledged ([`acks`]), not only the final state. At the end
//! the backlog drains, every committed change was acknowledged, none is missing from the index,
//! `athens verify` finds zero drift, no document was dead-lettered, and `athens teardown` removes
//! the claim indexes every writer left. Prints a report (run with `--nocapture` to see it).
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

mod acks;
mod fleet;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use athens_testkit::{Proxy, TestEngine};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement, TransactionTrait};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::time::MissedTickBehavior;

use self::acks::{Ledger, Role, Target, run_statements};
use self::fleet::{Fleet, JobKind, LeaseWatch, SYNCS, watch_lease};
use crate::support::{World, engines};

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

/// One random operation on one of the five tables as the statements of one transaction, each
/// with what it returns for the acknowledgement check; `n` keeps inserted names unique.
fn operation(rng: &mut StdRng, n: u64, projects: i64) -> Vec<(String, Role)> {
    use Role::{Direct, Indirect, Write};
    let project: i64 = rng.random_range(1..=projects);
    let user: i64 = rng.random_range(1..=(SEEDED / 5 + (n as i64) / 10).max(1));
    let hashtag: i64 = rng.random_range(1..=(SEEDED / 5 + (n as i64) / 20).max(1));
    let one = |sql: String, role| vec![(sql, role)];
    match rng.random_range(0..1000) {
        0..80 => one(
            format!("INSERT INTO users (name) VALUES ('soak user {n}')"),
            Write,
        ),
        80..160 => vec![
            (
                format!("UPDATE users SET name = 'soak renamed {n}' WHERE id = {user}"),
                Write,
            ),
            (
                format!("SELECT project_id FROM user_projects WHERE user_id = {user}"),
                Indirect,
            ),
        ],
        // The cascade deletes the links: changes naming those projects.
        160..175 => vec![
            (
                format!("SELECT project_id FROM user_projects WHERE user_id = {user}"),
                Direct,
            ),
            (format!("DELETE FROM users WHERE id = {user}"), Write),
        ],
        175..235 => one(
            format!("INSERT INTO hashtags (name) VALUES ('soak{n}') ON CONFLICT DO NOTHING"),
            Write,
        ),
        235..295 => vec![
            (
                format!("UPDATE hashtags SET name = 'soakx{n}' WHERE id = {hashtag}"),
                Write,
            ),
            (
                format!("SELECT project_id FROM project_hashtags WHERE hashtag_id = {hashtag}"),
                Indirect,
            ),
        ],
        295..305 => vec![
            (
                format!("SELECT project_id FROM project_hashtags WHERE hashtag_id = {hashtag}"),
                Direct,
            ),
            (format!("DELETE FROM hashtags WHERE id = {hashtag}"), Write),
        ],
        305..425 => one(
            format!(
                "INSERT INTO projects (name, slug, description) VALUES ('Soak {n}', 'soak-{n}', 'soak project number {n}') RETURNING id"
            ),
            Direct,
        ),
        425..575 => one(
            format!(
                "UPDATE projects SET description = 'soak edit {n}', name = 'Edited {n}' WHERE id = {project} RETURNING id"
            ),
            Direct,
        ),
        575..625 => one(
            format!("DELETE FROM projects WHERE id = {project} RETURNING id"),
            Direct,
        ),
        625..725 => one(
            format!(
                "INSERT INTO project_hashtags (project_id, hashtag_id) SELECT p.id, h.id FROM projects p, hashtags h \
                 WHERE p.id = {project} AND h.id = {hashtag} ON CONFLICT DO NOTHING RETURNING project_id"
            ),
            Direct,
        ),
        725..775 => one(
            format!(
                "DELETE FROM project_hashtags WHERE project_id = {project} AND hashtag_id = {hashtag} RETURNING project_id"
            ),
            Direct,
        ),
        775..875 => one(
            format!(
                "INSERT INTO user_projects (project_id, user_id) SELECT p.id, u.id FROM projects p, users u \
                 WHERE p.id = {project} AND u.id = {user} ON CONFLICT DO NOTHING RETURNING project_id"
            ),
            Direct,
        ),
        875..915 => one(
            format!(
                "DELETE FROM user_projects WHERE project_id = {project} AND user_id = {user} RETURNING project_id"
            ),
            Direct,
        ),
        // One transaction over three tables, slow to commit.
        915..999 => vec![
            (
                format!("UPDATE projects SET name = 'Tx {n}' WHERE id = {project} RETURNING id"),
                Direct,
            ),
            (
                format!("UPDATE users SET name = 'tx user {n}' WHERE id = {user}"),
                Write,
            ),
            (
                format!("SELECT project_id FROM user_projects WHERE user_id = {user}"),
                Indirect,
            ),
            (
                format!(
                    "INSERT INTO user_projects (project_id, user_id) SELECT p.id, u.id FROM projects p, users u \
                     WHERE p.id = {project} AND u.id = {user} ON CONFLICT DO NOTHING RETURNING project_id"
                ),
                Direct,
            ),
            ("SELECT pg_sleep(0.05)".to_string(), Write),
        ],
        // Rare: a truncate, which makes the engine rebuild the whole index.
        _ => vec![
            (
                "SELECT DISTINCT project_id FROM project_hashtags".to_string(),
                Direct,
            ),
            ("TRUNCATE project_hashtags".to_string(), Write),
        ],
    }
}

/// Runs one operation in a transaction, recorded in the ledger before it commits.
async fn apply(
    sql: &DatabaseConnection,
    statements: &[(String, Role)],
    n: u64,
    ledger: &Ledger,
    logical: bool,
) -> Result<(), sea_orm::DbErr> {
    let txn = sql.begin().await?;
    let touched = run_statements(&txn, statements).await?;
    let at = ledger.record(&txn, n, touched, logical).await?;
    if let Err(error) = txn.commit().await {
        ledger.committed(at, None);
        return Err(error);
    }
    let lsn = if logical {
        // At or after the end of the commit record: once the slot confirmed it, the change is
        // acknowledged.
        let row = sql
            .query_one_raw(Statement::from_string(
                sql.get_database_backend(),
                "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint".to_string(),
            ))
            .await?
            .ok_or_else(|| sea_orm::DbErr::Custom("no WAL position".into()))?;
        Some(row.try_get_by_index::<i64>(0)?)
    } else {
        None
    };
    ledger.committed(at, Some(lsn));
    Ok(())
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
async fn load(
    sql: DatabaseConnection,
    plan: &Plan,
    until: Instant,
    counts: Arc<LoadCounts>,
    ledger: Arc<Ledger>,
    logical: bool,
) {
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
        let statements = operation(&mut rng, n, projects);
        let Ok(permit) = in_flight.clone().try_acquire_owned() else {
            counts.skipped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let sql = sql.clone();
        let counts = counts.clone();
        let ledger = ledger.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            match apply(&sql, &statements, n, &ledger, logical).await {
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
    /// SIGKILL the sync holding the lease: the standby takes over.
    KillSync,
    EngineDown,
    DatabaseDown,
    /// `athens reindex`, handed the lease by crashing the syncs.
    Reindex,
    /// `athens verify --repair`, handed the lease likewise.
    Repair,
}

const FAULTS: [Fault; 5] = [
    Fault::KillSync,
    Fault::EngineDown,
    Fault::DatabaseDown,
    Fault::Reindex,
    Fault::Repair,
];

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

/// Sleeps `duration` while the fleet is watched (restarts, jobs ending, the lease handed over).
async fn idle(fleet: &mut Fleet<'_>, lease: &LeaseWatch, duration: Duration) {
    let until = Instant::now() + duration;
    loop {
        fleet.watch(lease.holder().as_deref());
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        tokio::time::sleep(left.min(Duration::from_millis(200))).await;
    }
}

async fn soak(plan: Plan, mode: &str) {
    let engine = soak_engine().await;
    let world = World::in_mode("soak", &engine, mode).await.unwrap();
    world.prepare(SEEDED as u64).unwrap();
    let logical = mode == "logical";

    let (database_proxy, engine_proxy) = if plan.real_restarts {
        (None, None)
    } else {
        (
            Some(Proxy::start(&host_port(&world.database.url)).await.unwrap()),
            Some(Proxy::start(&host_port(&engine.url)).await.unwrap()),
        )
    };
    let mut fleet = Fleet::new(
        &world,
        database_proxy.as_ref().map_or_else(
            || world.database.url.clone(),
            |p| via(&world.database.url, p),
        ),
        engine_proxy
            .as_ref()
            .map_or_else(|| engine.url.clone(), |p| via(&engine.url, p)),
    );
    let watching = Arc::new(AtomicBool::new(false));
    let lease = Arc::new(LeaseWatch::default());
    let lease_watch = tokio::spawn(watch_lease(
        world.sql.clone(),
        lease.clone(),
        watching.clone(),
    ));
    fleet.start_all();
    world.wait_drained(DRAIN).await.unwrap();

    let ledger = Arc::new(Ledger::default());
    let checking = Arc::new(AtomicBool::new(false));
    let checker = tokio::spawn(acks::checker(
        world.sql.clone(),
        ledger.clone(),
        Target {
            engine_url: engine.url.clone(),
            alias: world.alias.clone(),
        },
        Duration::from_millis(250),
        checking.clone(),
    ));
    let started = Instant::now();
    let until = started + Duration::from_secs(plan.seconds);
    let load_counts = Arc::new(LoadCounts::default());
    let lag_counts = Arc::new(LagCounts::default());
    let load = tokio::spawn({
        let sql = world.sql.clone();
        let counts = load_counts.clone();
        let ledger = ledger.clone();
        let plan = Plan::from_env();
        async move { load(sql, &plan, until, counts, ledger, logical).await }
    });
    let sampler = tokio::spawn(sample_lag(
        world.sql.clone(),
        until + DRAIN,
        lag_counts.clone(),
    ));

    // Chaos: every kind of fault once in a random order, then random ones, at random moments.
    let mut rng = StdRng::seed_from_u64(plan.seed ^ 0x5eed);
    let mut faults = FAULTS.to_vec();
    faults.shuffle(&mut rng);
    let mut injected: Vec<(f64, Fault, f64)> = Vec::new();
    loop {
        // Gaps are capped so that even a short run sees every kind of fault.
        let pause = -plan.fault_seconds * (1.0 - rng.random::<f64>()).ln();
        let longest = (plan.fault_seconds * 4.0)
            .min(plan.seconds as f64 / 7.0)
            .max(0.5);
        let gap = Duration::from_secs_f64(pause.clamp(0.5, longest));
        idle(
            &mut fleet,
            &lease,
            gap.min(until.saturating_duration_since(Instant::now())),
        )
        .await;
        if Instant::now() >= until {
            break;
        }
        let mut fault = faults
            .pop()
            .unwrap_or_else(|| FAULTS[rng.random_range(0..FAULTS.len())]);
        if fleet.job_running() && matches!(fault, Fault::Reindex | Fault::Repair) {
            fault = Fault::KillSync;
        }
        let at = started.elapsed().as_secs_f64();
        let outage = Duration::from_millis(rng.random_range(1000..6000));
        match (fault, &database_proxy, &engine_proxy) {
            (Fault::KillSync, _, _) => {
                // The leader, not the standby: right after a job or a restart nobody (or the job)
                // may hold the lease, and killing the first slot then killed the standby, so no
                // hand-over between the syncs happened at all.
                let waited = Instant::now();
                while !fleet.is_sync(lease.holder().as_deref())
                    && waited.elapsed() < Duration::from_secs(10)
                {
                    idle(&mut fleet, &lease, Duration::from_millis(200)).await;
                }
                fleet.kill_leader(lease.holder().as_deref());
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..1500))).await;
            }
            (Fault::EngineDown, _, Some(proxy)) | (Fault::DatabaseDown, Some(proxy), _) => {
                proxy.down().await;
                idle(&mut fleet, &lease, outage).await;
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
            (Fault::Reindex | Fault::Repair, _, _) => {
                let kind = if fault == Fault::Reindex {
                    JobKind::Reindex
                } else {
                    JobKind::Repair
                };
                // The first job of a kind runs without other faults, so that even a short run
                // completes one; later ones meet the outages and kills that come.
                let guarded = !fleet.ended.iter().any(|end| end.kind == kind);
                fleet.start_job(kind);
                let waited = Instant::now();
                while guarded && fleet.job_running() && waited.elapsed() < DRAIN {
                    idle(&mut fleet, &lease, Duration::from_millis(200)).await;
                }
            }
        }
        injected.push((at, fault, started.elapsed().as_secs_f64() - at));
    }
    load.await.unwrap();
    let load_seconds = started.elapsed().as_secs_f64();

    let drain_started = Instant::now();
    while fleet.job_running() && drain_started.elapsed() < DRAIN {
        idle(&mut fleet, &lease, Duration::from_millis(200)).await;
    }
    fleet.kill_job();
    loop {
        fleet.watch(lease.holder().as_deref());
        let status = world.status().unwrap();
        let pending = status["pending_changes"].as_u64();
        if crate::support::drained(&status) {
            break;
        }
        assert!(
            drain_started.elapsed() < DRAIN,
            "{pending:?} changes still pending after {DRAIN:?}\nlast lines of the logs:\n{}",
            fleet.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let drain_seconds = drain_started.elapsed().as_secs_f64();
    // The checker sees the last acknowledgements (the slot moves on at the next idle poll).
    let settle = Instant::now();
    while ledger.counts().0 > 0 && settle.elapsed() < Duration::from_secs(30) {
        idle(&mut fleet, &lease, Duration::from_millis(250)).await;
    }
    checking.store(true, Ordering::Relaxed);
    checker.await.unwrap();
    let report = world
        .verify_clean()
        .unwrap_or_else(|error| panic!("{error:#}\nlast lines of the logs:\n{}", fleet.log_tail()));
    let status = world.status().unwrap();
    sampler.abort();
    let stopped = fleet.stop();
    watching.store(true, Ordering::Relaxed);
    lease_watch.await.unwrap();

    // Every writer that ran left a claim index; teardown removes them all.
    let claims = || async {
        let url = format!(
            "{}/_cat/indices/{}-claim-*?h=index",
            engine.url, world.alias
        );
        reqwest::get(url).await.unwrap().text().await.unwrap()
    };
    let claims_before = claims().await.lines().count();
    world.ok(&["teardown"]).unwrap();
    let claims_after = claims().await.lines().count();

    let count = |fault| injected.iter().filter(|(_, f, _)| *f == fault).count();
    let load = &load_counts;
    let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
    let jobs = |kind| fleet.ended.iter().filter(move |end| end.kind == kind);
    let reindexed = jobs(JobKind::Reindex)
        .filter(|end| end.code == Some(0))
        .count();
    let repairs: Vec<Value> = jobs(JobKind::Repair)
        .filter_map(|end| serde_json::from_str(&end.stdout).ok())
        .collect();
    let repaired: u64 = repairs
        .iter()
        .map(|report| report["repaired"].as_u64().unwrap_or_default())
        .sum();
    let handovers = lease.handovers();
    let to_jobs = handovers
        .iter()
        .filter(|(_, to)| !SYNCS.contains(&to.as_str()))
        .count();
    let between_syncs = handovers
        .iter()
        .filter(|(from, to)| SYNCS.contains(&from.as_str()) && SYNCS.contains(&to.as_str()))
        .count();
    // The lease passed from one sync to the other, directly or with jobs holding it in between
    // (a job may take the lease a killed leader left before the standby does).
    let sync_holders: Vec<&str> = handovers
        .iter()
        .flat_map(|(from, to)| [from.as_str(), to.as_str()])
        .filter(|holder| SYNCS.contains(holder))
        .collect();
    let sync_to_sync = sync_holders
        .windows(2)
        .filter(|pair| pair[0] != pair[1])
        .count();
    let acks = ledger.stats();
    let (unchecked, checked) = ledger.counts();
    let violations = ledger.violations();
    let uncaptured = ledger.uncaptured();
    let kinds = |kind| {
        FAULTS
            .iter()
            .filter(|fault| **fault == kind)
            .map(|fault| count(*fault))
            .sum::<usize>()
    };
    eprintln!(
        "\nsoak report: {} {} {mode} for {:.0} s at {} operations/s (seed {}, {} restarts)\n\
         operations: {} scheduled, {} applied, {} refused by PostgreSQL for races (deadlock, unique, foreign key), {} failed, {} skipped\n\
         faults survived: {} SIGKILLs of the leading sync, {} engine {}, {} PostgreSQL {}; sync started {} times, {} ended by itself {:?}: {:?}\n\
         maintenance: {} reindexes ({} completed), {} repairs ({} reported, {} documents repaired); jobs: {}\n\
         lease hand-overs: {} ({} between the syncs, {} to a job, {} from a job back to a sync; from one sync to the other {} times, jobs between included)\n\
         faults (at s, kind, lasted s): {}\n\
         max lag {:.1} s, max backlog {} changes, drained {:.1} s after the load stopped\n\
         acknowledged changes checked against the index: {} of {} committed ({} documents, {} deferred to a pending change, {} rounds retried), {} acknowledged but missing, {} never acknowledged, {} not captured\n\
         verify: {} projects checked, drift found: {}; dead letters: {}; syncs stopped with {:?}; claim indexes: {} before teardown, {} after\n",
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
        fleet.starts,
        fleet.own_exits.len(),
        fleet.own_exits,
        fleet.exit_reasons(),
        kinds(Fault::Reindex),
        reindexed,
        kinds(Fault::Repair),
        repairs.len(),
        repaired,
        fleet
            .ended
            .iter()
            .map(|end| format!(
                "{} exited {:?} after {:.1} s",
                end.name, end.code, end.seconds
            ))
            .collect::<Vec<_>>()
            .join(", "),
        handovers.len(),
        between_syncs,
        to_jobs,
        handovers.len() - between_syncs - to_jobs,
        sync_to_sync,
        injected
            .iter()
            .map(|(at, fault, lasted)| format!("{at:.1} {fault:?} {lasted:.1}"))
            .collect::<Vec<_>>()
            .join(", "),
        lag_counts.max_lag_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        lag_counts.max_pending.load(Ordering::Relaxed),
        drain_seconds,
        acks.acknowledgements,
        checked + unchecked,
        acks.documents,
        acks.deferred,
        acks.unreadable,
        violations.len(),
        unchecked,
        uncaptured.len(),
        report["checked"],
        report["drift"],
        status["dead_letters"],
        stopped,
        claims_before,
        claims_after,
    );

    assert!(
        violations.is_empty(),
        "acknowledged changes missing from the index (operation, project, version bound, version held): {:?}\nlast lines of the logs:\n{}",
        violations
            .iter()
            .take(20)
            .map(|v| (v.operation, v.project, v.bound, v.found))
            .collect::<Vec<_>>(),
        fleet.log_tail()
    );
    assert_eq!(unchecked, 0, "every committed change was acknowledged");
    assert!(
        uncaptured.is_empty(),
        "operations that wrote projects but left no outbox row: {uncaptured:?}"
    );
    assert!(
        checked > 0 && acks.documents > 0,
        "the check saw acknowledgements"
    );
    assert_eq!(report["drift"], 0);
    assert_eq!(status["dead_letters"], 0, "{status:#}");
    assert!(
        stopped.iter().all(|code| *code == Some(0)),
        "syncs stop cleanly on SIGTERM: {stopped:?}"
    );
    for kind in FAULTS {
        assert!(count(kind) >= 1, "{kind:?} injected at least once");
    }
    assert!(reindexed >= 1, "a reindex completed during the chaos");
    assert!(!repairs.is_empty(), "a repair completed during the chaos");
    assert!(
        sync_to_sync >= 1 && to_jobs >= 1,
        "the lease changed hands: {handovers:?}"
    );
    assert!(claims_before >= 1, "writers claimed the index");
    assert_eq!(claims_after, 0, "teardown removes every claim index");
    assert!(
        fleet.own_exits.iter().all(|code| *code == Some(1)),
        "a sync process only ever ends by itself with status 1 (a start while PostgreSQL is away), never a panic: {:?}\n{}",
        fleet.own_exits,
        fleet.log_tail()
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
    fleet.remove_files();
}
