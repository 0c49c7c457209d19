//! A backfill killed mid-way resumes from the checkpoint saved with its index: against the real
//! binary, PostgreSQL and the engine, with changes committed while nobody writes, and no project
//! missed or left stale (`athens verify` finds zero drift).

use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::support::{World, engines, signal};

const PROJECTS: u64 = 5_000;

/// Small pages, one write in flight per reader and a checkpoint every 100 ms: a kill after the
/// first saved progress leaves most of the work undone.
const SLOW_BACKFILL: [(&str, &str); 4] = [
    ("ATHENS_SYNC_CHUNK_SIZE", "100"),
    ("ATHENS_SYNC_WRITE_CONCURRENCY", "1"),
    ("ATHENS_SYNC_BACKFILL_READERS", "2"),
    ("ATHENS_SYNC_CHECKPOINT_INTERVAL_MS", "100"),
];

/// The ranges of the checkpoint saved with the world's unfinished index, if any.
async fn saved_ranges(world: &World) -> anyhow::Result<Vec<Value>> {
    let answer: Value = reqwest::Client::new()
        .get(format!(
            "{}/{}-v*/_mapping?filter_path=*.mappings._meta&allow_no_indices=true",
            world.engine.url, world.alias
        ))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let Some(indexes) = answer.as_object() else {
        return Ok(Vec::new());
    };
    Ok(indexes
        .values()
        .filter_map(|index| index["mappings"]["_meta"]["athens_backfill"]["ranges"].as_array())
        .flatten()
        .cloned()
        .collect())
}

/// The number of documents a `reindex` output line says it wrote.
fn written(output: &str) -> anyhow::Result<u64> {
    output
        .split_whitespace()
        .skip_while(|word| *word != "reindexed")
        .nth(1)
        .context("no `reindexed N` in the output")?
        .parse()
        .context("documents written")
}

#[tokio::test]
async fn a_reindex_killed_mid_way_resumes_from_its_checkpoint_and_misses_nothing() {
    let engine = &engines().await[0];
    let world = World::new("resume", engine).await.unwrap();
    world.prepare(PROJECTS).unwrap();

    let mut reindex = world.athens(&["reindex"]);
    reindex.envs(SLOW_BACKFILL);
    let mut reindex = reindex.stdout(std::process::Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    loop {
        let ranges = saved_ranges(&world).await.unwrap();
        let progressed = ranges
            .iter()
            .filter(|range| !range["done_through"].is_null())
            .count();
        if progressed >= 2 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no checkpoint progress after two minutes: {ranges:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    signal(&mut reindex, "KILL").unwrap();

    // While nobody writes: the lowest projects (read first by the first range) change or go, a
    // project is added past the highest id, the highest (not read yet) changes.
    world
        .sql(
            "UPDATE projects SET description = 'changed after its page was written' WHERE id = 1; \
             DELETE FROM projects WHERE id = 2; \
             INSERT INTO projects (name, slug, description, created_at) \
               VALUES ('late', 'late', 'added while the reindex was down', now()); \
             UPDATE projects SET description = 'changed before its page was read' \
               WHERE id = (SELECT max(id) - 1 FROM projects);",
        )
        .await
        .unwrap();

    let mut resumed = world.athens(&["reindex"]);
    resumed.envs(SLOW_BACKFILL);
    resumed.env("ATHENS_SYNC_CHUNK_SIZE", "1000");
    resumed.env("ATHENS_SYNC_WRITE_CONCURRENCY", "4");
    let output = resumed.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("resumed"), "not resumed: {stdout}");
    let documents = written(&stdout).unwrap();
    assert!(
        documents < PROJECTS,
        "a resumed backfill writes only what was left: {documents} of {PROJECTS}"
    );

    let mut sync = world.spawn(&["sync"]).unwrap();
    world.wait_drained(Duration::from_secs(120)).await.unwrap();
    world.verify_clean().unwrap();
    let first = world
        .document(1)
        .await
        .unwrap()
        .expect("project 1 is indexed");
    assert_eq!(first["description"], "changed after its page was written");
    assert_eq!(world.document(2).await.unwrap(), None, "project 2 is gone");
    assert_eq!(signal(&mut sync, "TERM").unwrap(), Some(0));
    world.cleanup().await;
}
