//! Source-side figures: seed time, single-row write throughput with and without change capture, and
//! how the outbox behaves with a large backlog.
//!
//! ```text
//! eval "$(deploy/local/env)"
//! cargo run --release -p athens-pg --example source_bench -- \
//!     [--projects 100000] [--clients 8] [--seconds 10] [--rounds 3] [--million] [--no-backlog]
//! ```
//!
//! `--million` also seeds 1,000,000 projects; `--rounds 0` skips the write throughput.
//!
//! Each measurement gets a fresh database from `ATHENS_TEST_DATABASE_URL` (the role needs
//! CREATEDB). Write throughput runs alternate between "capture off" and "capture on" rounds (with a
//! consumer polling and acknowledging, as in production) so that drift on a shared machine hits
//! both; the median of each is reported.
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a command-line tool

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use athens_core::{Ack, ChangeSource};
use athens_pg::{PgConfig, PgSource, SeedOptions};
use sea_orm::sqlx;

struct Options {
    projects: u64,
    clients: usize,
    seconds: u64,
    rounds: usize,
    million: bool,
    backlog: bool,
}

fn options() -> Options {
    let mut options = Options {
        projects: 100_000,
        clients: 8,
        seconds: 10,
        rounds: 3,
        million: false,
        backlog: true,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || -> u64 { args.next().and_then(|v| v.parse().ok()).expect(flag) };
        match flag.as_str() {
            "--projects" => options.projects = value(),
            "--clients" => options.clients = value() as usize,
            "--seconds" => options.seconds = value(),
            "--rounds" => options.rounds = value() as usize,
            "--million" => options.million = true,
            "--no-backlog" => options.backlog = false,
            other => panic!("unknown flag {other}"),
        }
    }
    options
}

async fn fresh(name: &str, clients: usize) -> PgSource {
    let database = athens_testkit::database(name)
        .await
        .expect("bench database");
    let config = PgConfig {
        max_connections: clients as u32 + 4,
        ..PgConfig::new(database.url)
    };
    let source = PgSource::connect(&config).await.expect("connect");
    source.migrate().await.expect("migrate");
    source
}

async fn seeded(name: &str, projects: u64, clients: usize) -> (PgSource, Duration) {
    let source = fresh(name, clients).await;
    let report = source
        .seed(&SeedOptions::scaled(projects), |_| {})
        .await
        .expect("seed");
    println!(
        "seed {projects} projects: {:.1} s ({} users, {} hashtags, {} creator links, {} hashtag links)",
        report.elapsed.as_secs_f64(),
        report.users,
        report.hashtags,
        report.user_projects,
        report.project_hashtags
    );
    (source, report.elapsed)
}

/// `clients` connections doing single-row write transactions for `seconds`: half updates of a
/// random project's description, half inserts of a new project. Returns transactions per second.
async fn write_load(source: &PgSource, clients: usize, seconds: u64, max_id: i64) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for client in 0..clients {
        let pool = source.pool().clone();
        let done = done.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("connection");
            let mut n: u64 = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                if n.is_multiple_of(2) {
                    let id = rand::random_range(1..=max_id);
                    sqlx::query("UPDATE projects SET description = $1 WHERE id = $2")
                        .bind(format!("rewritten by client {client} at {n}"))
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .expect("update");
                } else {
                    let slug = format!("bench-{client}-{n}-{}", rand::random::<u32>());
                    sqlx::query(
                        "INSERT INTO projects (name, slug, description) VALUES ($1, $1, 'new')",
                    )
                    .bind(slug)
                    .execute(&mut *conn)
                    .await
                    .expect("insert");
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let warm = done.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let measured = done.load(Ordering::Relaxed) - warm;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.expect("client");
    }
    measured as f64 / elapsed.as_secs_f64()
}

/// Polls and acknowledges until `stop`, as the engine would (without the index work).
fn consume(source: &PgSource, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let source = source.clone();
    tokio::spawn(async move {
        let mut consumed = 0;
        while !stop.load(Ordering::Relaxed) {
            let batch = source
                .poll(1000, Duration::from_millis(200))
                .await
                .expect("poll");
            consumed += batch.len() as u64;
            let ack = Ack {
                changes: batch.iter().map(|record| record.id).collect(),
                dead_letters: Vec::new(),
            };
            source.ack(&ack).await.expect("ack");
        }
        consumed
    })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn throughput(options: &Options) {
    let (source, _) = seeded("bench-tps", options.projects, options.clients).await;
    let max_id = options.projects as i64;
    let (mut off, mut on) = (Vec::new(), Vec::new());
    for round in 0..options.rounds {
        source.remove_capture().await.expect("teardown");
        let tps = write_load(&source, options.clients, options.seconds, max_id).await;
        println!("round {round}: capture off {tps:>8.0} tx/s");
        off.push(tps);

        source.install_capture().await.expect("setup");
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = consume(&source, stop.clone());
        let tps = write_load(&source, options.clients, options.seconds, max_id).await;
        stop.store(true, Ordering::Relaxed);
        let consumed = consumer.await.expect("consumer");
        let left = source.backlog().await.expect("backlog").pending;
        println!(
            "round {round}: capture on  {tps:>8.0} tx/s (consumer took {consumed} changes, {left} left)"
        );
        on.push(tps);
    }
    let (off, on) = (median(&mut off), median(&mut on));
    println!(
        "single-row writes, {} clients: capture off {off:.0} tx/s, on {on:.0} tx/s: capture costs {:.1}%",
        options.clients,
        100.0 * (off - on) / off
    );
}

async fn large_backlog() {
    let source = fresh("bench-backlog", 4).await;
    source.install_capture().await.expect("setup");
    let started = Instant::now();
    sqlx::query(
        "INSERT INTO athens.outbox (source_table, op, project_id)
         SELECT 'projects', 'U', g FROM generate_series(1, 1000000) g",
    )
    .execute(source.pool())
    .await
    .expect("fill");
    println!(
        "outbox filled with 1,000,000 changes in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for (label, analyze) in [("before ANALYZE", false), ("after ANALYZE", true)] {
        if analyze {
            sqlx::query("ANALYZE athens.outbox")
                .execute(source.pool())
                .await
                .expect("analyze");
        }
        let started = Instant::now();
        let batch = source.poll(1000, Duration::ZERO).await.expect("poll");
        let polled = started.elapsed();
        let started = Instant::now();
        let backlog = source.backlog().await.expect("backlog");
        let measured = started.elapsed();
        println!(
            "{label}: poll of {} in {:.1} ms; backlog() in {:.1} ms reports {} pending, oldest {:?}",
            batch.len(),
            polled.as_secs_f64() * 1e3,
            measured.as_secs_f64() * 1e3,
            backlog.pending,
            backlog
                .oldest_age
                .map(|age| Duration::from_secs(age.as_secs()))
        );
    }
    let started = Instant::now();
    let exact: i64 = sqlx::query_scalar("SELECT count(*) FROM athens.outbox")
        .fetch_one(source.pool())
        .await
        .expect("count");
    println!(
        "for comparison, exact count(*) of {exact} rows: {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    // Drain a first slice the way the engine does after an outage.
    let started = Instant::now();
    let mut drained = 0;
    while drained < 100_000 {
        let batch = source.poll(1000, Duration::ZERO).await.expect("poll");
        drained += batch.len();
        let ack = Ack {
            changes: batch.iter().map(|record| record.id).collect(),
            dead_letters: Vec::new(),
        };
        source.ack(&ack).await.expect("ack");
    }
    println!(
        "poll+ack of the first {drained} changes (1000 per batch): {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::main]
async fn main() {
    let options = options();
    if options.million {
        seeded("bench-seed-1m", 1_000_000, 4).await;
    }
    if options.backlog {
        large_backlog().await;
    }
    if options.rounds > 0 {
        throughput(&options).await;
    }
}
