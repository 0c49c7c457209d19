//! A fan-out survives a crash: a user with many projects is renamed, `athens sync` acknowledges the
//! rename (the outbox row is deleted, the slot moves past it) as soon as the user's projects are in
//! `athens.rebuild_queue`, is SIGKILLed while they drain, and the next `athens sync` rebuilds the
//! projects still queued: zero drift, every document with the new name.

use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Statement};

use crate::support::{World, engines, signal};

const PROJECTS: i64 = 10_000;
const DRAIN: Duration = Duration::from_secs(120);

async fn scalar(world: &World, sql: &str) -> i64 {
    let row = world
        .sql
        .query_one_raw(Statement::from_string(
            world.sql.get_database_backend(),
            sql,
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Whether the rename committed after WAL position `before` is acknowledged to the source: no
/// outbox row left, or the slot confirmed past it.
async fn rename_acknowledged(world: &World, mode: &str, before: i64) -> bool {
    if mode == "logical" {
        scalar(
            world,
            &format!(
                "SELECT count(*) FROM pg_replication_slots WHERE database = current_database() \
                 AND (confirmed_flush_lsn - '0/0'::pg_lsn) > {before}"
            ),
        )
        .await
            == 1
    } else {
        scalar(world, "SELECT count(*) FROM athens.outbox").await == 0
    }
}

#[tokio::test]
async fn sigkill_mid_fan_out_resumes_the_queued_projects() {
    fan_out_crash("outbox").await;
}

#[tokio::test]
async fn sigkill_mid_fan_out_resumes_the_queued_projects_through_logical_decoding() {
    fan_out_crash("logical").await;
}

async fn fan_out_crash(mode: &str) {
    let engine = &engines().await[0];
    let world = World::in_mode("fanout-crash", engine, mode).await.unwrap();
    world.ok(&["migrate"]).unwrap();
    world
        .sql(&format!(
            "INSERT INTO users (id, name) VALUES (1, 'Ada');
             INSERT INTO projects (id, name, slug, description)
               SELECT n, 'P' || n, 'p-' || n, 'project ' || n FROM generate_series(1, {PROJECTS}) AS n;
             INSERT INTO user_projects (project_id, user_id)
               SELECT n, 1 FROM generate_series(1, {PROJECTS}) AS n;"
        ))
        .await
        .unwrap();
    world.ok(&["setup"]).unwrap();
    let mut sync = world.spawn(&["sync"]).unwrap();
    world.wait_drained(DRAIN).await.unwrap();

    let before = scalar(
        &world,
        "SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .await;
    world
        .sql("UPDATE users SET name = 'Ada Lovelace' WHERE id = 1")
        .await
        .unwrap();
    // Kill once the rename is acknowledged and part of its fan-out is written.
    let started = Instant::now();
    let queued = loop {
        let queued = scalar(&world, "SELECT count(*) FROM athens.rebuild_queue").await;
        if queued > 0 && queued < PROJECTS * 3 / 4 {
            assert!(
                rename_acknowledged(&world, mode, before).await,
                "{queued} projects still queued and the rename is not acknowledged"
            );
            let mut killed = sync.0.take().unwrap();
            signal(&mut killed, "KILL").unwrap();
            break scalar(&world, "SELECT count(*) FROM athens.rebuild_queue").await;
        }
        assert!(
            started.elapsed() < DRAIN,
            "the fan-out never drained between a quarter and all of its projects ({queued} queued)"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(queued > 0, "the kill came after the fan-out drained");
    assert!(rename_acknowledged(&world, mode, before).await);

    let mut sync = world.spawn(&["sync"]).unwrap();
    world.wait_drained(DRAIN).await.unwrap();
    world.verify_clean().unwrap();
    let document = world.document(PROJECTS).await.unwrap().unwrap();
    assert_eq!(document["creators"][0]["name"], "Ada Lovelace");
    assert_eq!(sync.stop(), Some(0));
    world.cleanup().await;
}
