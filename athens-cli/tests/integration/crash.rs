//! Crashes, outages and races: SIGKILL mid-backfill and mid-stream, the engine cut off while changes
//! stream, two sync processes beside concurrent writers, and random workloads with restarts. Each ends
//! with `athens verify` finding zero drift.

use std::time::Duration;

use athens_testkit::Proxy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::support::{World, engines, signal};

const DRAIN: Duration = Duration::from_secs(120);

/// Commits `count` small transactions touching all five tables, some of them slow to commit.
async fn write_load(world: &World, seed: u64, count: usize) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0..count {
        let project: i64 = rng.random_range(1..=200);
        let user: i64 = rng.random_range(1..=20);
        let hashtag: i64 = rng.random_range(1..=30);
        let statement = match n % 6 {
            0 => {
                format!("UPDATE projects SET description = 'load {seed}-{n}' WHERE id = {project}")
            }
            1 => format!("UPDATE users SET name = 'user {seed}-{n}' WHERE id = {user}"),
            2 => format!("UPDATE hashtags SET name = 'tag{seed}x{n}' WHERE id = {hashtag}"),
            3 => format!(
                "INSERT INTO project_hashtags (project_id, hashtag_id) SELECT {project}, {hashtag} \
                 WHERE EXISTS (SELECT 1 FROM projects WHERE id = {project}) \
                 AND EXISTS (SELECT 1 FROM hashtags WHERE id = {hashtag}) ON CONFLICT DO NOTHING"
            ),
            4 => format!(
                "DELETE FROM user_projects WHERE project_id = {project} AND user_id = {user}"
            ),
            _ => format!(
                "BEGIN; UPDATE projects SET name = 'slow {seed}-{n}' WHERE id = {project}; \
                 SELECT pg_sleep(0.05); COMMIT;"
            ),
        };
        world.sql(&statement).await?;
    }
    Ok(())
}

#[tokio::test]
async fn sigkill_mid_backfill_and_mid_stream_loses_nothing() {
    sigkill_loses_nothing("outbox", 20_000).await;
}

#[tokio::test]
async fn sigkill_mid_backfill_and_mid_stream_loses_nothing_through_logical_decoding() {
    sigkill_loses_nothing("logical", 5_000).await;
}

async fn sigkill_loses_nothing(mode: &str, projects: u64) {
    let engine = &engines().await[0];
    let world = World::in_mode("crash-sigkill", engine, mode).await.unwrap();
    world.prepare(projects).unwrap();

    let mut sync = world.spawn(&["sync"]).unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(&mut sync, "KILL").unwrap();

    let mut sync = world.spawn(&["sync"]).unwrap();
    let load = write_load(&world, 1, 120);
    let killer = async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        signal(&mut sync, "KILL").unwrap();
    };
    let (written, ()) = tokio::join!(load, killer);
    written.unwrap();

    let mut sync = world.spawn(&["sync"]).unwrap();
    world.wait_drained(DRAIN).await.unwrap();
    world.verify_clean().unwrap();
    // The build the first kill abandoned was resumed or dropped: no index is left unserved.
    let status: serde_json::Value =
        serde_json::from_str(&world.ok(&["status", "--json"]).unwrap()).unwrap();
    assert_eq!(status["stray_indexes"], serde_json::json!([]), "{status:#}");
    assert_eq!(signal(&mut sync, "TERM").unwrap(), Some(0));
    world.cleanup().await;
}

// Multi-threaded: the proxy's tasks must run while the test blocks on `athens` processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_cut_off_during_streaming_costs_only_time() {
    engine_cut_off("outbox").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_cut_off_during_logical_streaming_costs_only_time() {
    engine_cut_off("logical").await;
}

async fn engine_cut_off(mode: &str) {
    let engine = &engines().await[1 % engines().await.len()];
    let proxy = Proxy::start(engine.url.trim_start_matches("http://"))
        .await
        .unwrap();
    let world = World::in_mode("crash-outage", engine, mode)
        .await
        .unwrap()
        .with_engine_url(format!("http://{}", proxy.addr()));
    world.prepare(300).unwrap();
    let mut sync = world.spawn(&["sync"]).unwrap();
    world.wait_drained(DRAIN).await.unwrap();

    proxy.down().await;
    write_load(&world, 2, 60).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let during = world.run(&["status", "--json"]).unwrap();
    assert_eq!(
        during.status.code(),
        Some(1),
        "status says the engine is unreachable"
    );
    let status: serde_json::Value = serde_json::from_slice(&during.stdout).unwrap();
    assert!(
        status["pending_changes"].as_u64().unwrap() > 0,
        "nothing acknowledged: {status:#}"
    );
    assert!(status["engine_error"].is_string(), "{status:#}");
    proxy.up().await.unwrap();

    world.wait_drained(DRAIN).await.unwrap();
    world.verify_clean().unwrap();
    assert_eq!(signal(&mut sync, "TERM").unwrap(), Some(0));
    world.cleanup().await;
}

#[tokio::test]
async fn two_sync_processes_and_concurrent_writers_never_let_an_older_state_win() {
    for engine in engines().await {
        two_writers(&engine, "outbox").await;
    }
}

#[tokio::test]
async fn two_sync_processes_and_concurrent_writers_through_logical_decoding() {
    two_writers(&engines().await[0], "logical").await;
}

async fn two_writers(engine: &athens_testkit::TestEngine, mode: &str) {
    {
        let world = World::in_mode("crash-two-writers", engine, mode)
            .await
            .unwrap();
        world.prepare(200).unwrap();
        let mut first = world.spawn(&["sync"]).unwrap();
        let mut second = world.spawn(&["sync"]).unwrap();
        let writers =
            futures::future::join_all((0..4).map(|seed| write_load(&world, 10 + seed, 80)));
        let killer = async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            signal(&mut first, "KILL").unwrap();
        };
        let (results, ()) = tokio::join!(writers, killer);
        for result in results {
            result.unwrap();
        }
        world.wait_drained(DRAIN).await.unwrap();
        world.verify_clean().unwrap();
        assert_eq!(signal(&mut second, "TERM").unwrap(), Some(0));
        world.cleanup().await;
    }
}

#[tokio::test]
async fn random_crud_on_all_tables_with_restarts_converges() {
    let engines = engines().await;
    let engine = &engines[engines.len() - 1];
    let world = World::new("crash-random", engine).await.unwrap();
    world.prepare(100).unwrap();
    let mut rng = StdRng::seed_from_u64(
        std::env::var("ATHENS_TEST_SEED")
            .ok()
            .and_then(|seed| seed.parse().ok())
            .unwrap_or(7),
    );
    let mut sync = world.spawn(&["sync"]).unwrap();
    for n in 0..300 {
        let id: i64 = rng.random_range(1..=140);
        let other: i64 = rng.random_range(1..=40);
        let statement = match rng.random_range(0..12) {
            0 => format!("INSERT INTO users (name) VALUES ('random user {n}')"),
            1 => format!("UPDATE users SET name = 'renamed {n}' WHERE id = {other}"),
            2 => format!("DELETE FROM users WHERE id = {other}"),
            3 => format!("INSERT INTO hashtags (name) VALUES ('random{n}') ON CONFLICT DO NOTHING"),
            4 => format!("DELETE FROM hashtags WHERE id = {other}"),
            5 => format!(
                "INSERT INTO projects (name, slug, description) VALUES ('R{n}', 'random-{n}', 'random project {n}')"
            ),
            6 => format!("UPDATE projects SET description = 'edited {n}' WHERE id = {id}"),
            7 => format!("DELETE FROM projects WHERE id = {id}"),
            8 => format!(
                "INSERT INTO project_hashtags (project_id, hashtag_id) SELECT p.id, h.id FROM projects p, hashtags h WHERE p.id = {id} AND h.id = {other} ON CONFLICT DO NOTHING"
            ),
            9 => format!("DELETE FROM user_projects WHERE project_id = {id}"),
            10 => format!(
                "INSERT INTO user_projects (project_id, user_id) SELECT p.id, u.id FROM projects p, users u WHERE p.id = {id} AND u.id = {other} ON CONFLICT DO NOTHING"
            ),
            _ => "TRUNCATE project_hashtags".to_string(),
        };
        world.sql(&statement).await.unwrap();
        if rng.random_ratio(1, 40) {
            signal(
                &mut sync,
                if rng.random_bool(0.5) { "KILL" } else { "TERM" },
            )
            .unwrap();
            sync = world.spawn(&["sync"]).unwrap();
        }
    }
    world.wait_drained(DRAIN).await.unwrap();
    world.verify_clean().unwrap();
    assert_eq!(signal(&mut sync, "TERM").unwrap(), Some(0));
    world.cleanup().await;
}
