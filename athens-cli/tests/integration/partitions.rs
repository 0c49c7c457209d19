//! Partitioned writers end to end (docs/configuration.md, "Partitioned writers"), in the outbox
//! mode and in the logical mode (a relay decoding the slot into the partitions' outbox): four
//! partitions shared by two `athens sync` processes through updates, user renames, hashtag
//! deletes, a SIGKILL of one process (the other takes its partitions, and the relay, over), a
//! truncate (a rebuild holding every partition) and a reindex, each ending with `athens verify`
//! finding zero drift; a process started for another partition count, or in a mode not set up,
//! is refused.

use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::bail;
use athens_core::ProjectId;
use athens_core::partition::partition_of;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::Value;

use crate::support::{Running, World, engines, signal};

const DRAIN: Duration = Duration::from_secs(120);

/// `athens args…` with four partitions (at most `per_process` of them streamed by it).
fn athens(world: &World, args: &[&str], per_process: Option<u32>) -> Command {
    let mut command = world.athens(args);
    command.env("ATHENS_CAPTURE_PARTITIONS", "4");
    if let Some(per_process) = per_process {
        command.env(
            "ATHENS_CAPTURE_PARTITIONS_PER_PROCESS",
            per_process.to_string(),
        );
    }
    command
}

fn ok(mut command: Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "exited {:?}\nstdout: {}\nstderr: {}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn spawn(world: &World, per_process: Option<u32>) -> Child {
    athens(world, &["sync"], per_process)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Waits until nothing is pending, the alias exists, and `athens verify` finds zero drift.
async fn drained_without_drift(world: &World) {
    let started = Instant::now();
    loop {
        let status: Value =
            serde_json::from_str(&ok(athens(world, &["status", "--json"], None))).unwrap();
        assert_eq!(status["partitions"], 4, "{status:#}");
        if crate::support::drained(&status) && status["live_index"].is_string() {
            break;
        }
        assert!(started.elapsed() < DRAIN, "not drained: {status:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let report: Value =
        serde_json::from_str(&ok(athens(world, &["verify", "--json"], None))).unwrap();
    assert_eq!(report["drift"], 0, "{report:#}");
}

/// The advisory locks held on the test's database (each partition's lease is a session of its
/// own; a rebuild holds all four in one).
async fn locks(world: &World) -> i64 {
    let row = world
        .sql
        .query_one_raw(Statement::from_string(
            world.sql.get_database_backend(),
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = \
               (SELECT oid FROM pg_database WHERE datname = current_database())",
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index(0).unwrap()
}

/// Waits until `wanted` partition leases are held.
async fn held(world: &World, wanted: i64) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let held = locks(world).await;
        if held == wanted {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("{held} leases held, {wanted} wanted");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Before any writer runs, one project's change is pending in its partition only, as `athens
/// status` shows it.
async fn pending_in_its_partition_only(world: &World) {
    world
        .sql("UPDATE projects SET description = 'pending' WHERE id = 7")
        .await
        .unwrap();
    let own = partition_of(ProjectId(7), NonZeroU32::new(4).unwrap());
    let status: Value =
        serde_json::from_str(&ok(athens(world, &["status", "--json"], None))).unwrap();
    let pending: Vec<u64> = status["partition_backlogs"]
        .as_array()
        .unwrap_or_else(|| panic!("no partition backlogs in {status:#}"))
        .iter()
        .map(|backlog| backlog["pending_changes"].as_u64().unwrap())
        .collect();
    let expected: Vec<u64> = (0..4)
        .map(|partition| u64::from(partition == own))
        .collect();
    assert_eq!(pending, expected, "{status:#}");
    let text = ok(athens(world, &["status"], None));
    assert!(
        text.contains(&format!("partition {own}/4      1 pending")),
        "{text}"
    );
}

/// Updates, renames of users with many projects, hashtag deletes, new and deleted projects.
async fn changes(world: &World, round: u32) {
    for n in 0..20u32 {
        let project = 1 + (n * 37 + round * 11) % 600;
        world
            .sql(&format!(
                "UPDATE projects SET description = 'round {round} change {n}' WHERE id = {project}"
            ))
            .await
            .unwrap();
    }
    world
        .sql(&format!(
            "UPDATE users SET name = 'renamed {round}' WHERE id IN ({}, {});
             DELETE FROM hashtags WHERE id = {};
             INSERT INTO projects (name, slug, description) VALUES ('new {round}', 'new-{round}', 'x');
             DELETE FROM projects WHERE id = {};",
            1 + round,
            10 + round,
            1 + round,
            600 - round
        ))
        .await
        .unwrap();
}

#[tokio::test]
async fn four_partitions_over_two_processes_survive_a_sigkill_with_zero_drift() {
    sigkill_over_two_processes("outbox", &engines().await[0]).await;
}

/// The logical mode: the first process also holds the relay lease (one more advisory lock), so
/// the SIGKILL takes the relay down with two partitions, and the second takes all of them over.
#[tokio::test]
async fn four_partitions_fed_by_the_relay_survive_a_sigkill_of_its_process_with_zero_drift() {
    let all = engines().await;
    sigkill_over_two_processes("logical", &all[1 % all.len()]).await;
}

/// The relay's lease, held by one process in the logical mode.
fn relay_leases(mode: &str) -> i64 {
    i64::from(mode == "logical")
}

async fn sigkill_over_two_processes(mode: &str, engine: &athens_testkit::TestEngine) {
    let world = World::in_mode("partitions-kill", engine, mode)
        .await
        .unwrap();
    let relay = relay_leases(mode);
    world.ok(&["migrate"]).unwrap();
    world.ok(&["seed", "--projects", "600"]).unwrap();
    ok(athens(&world, &["setup"], None));
    if mode == "outbox" {
        // In the logical mode a change is in the slot until the relay runs.
        pending_in_its_partition_only(&world).await;
    }

    let mut first = Running(Some(spawn(&world, Some(2))));
    held(&world, 2 + relay)
        .await
        .unwrap_or_else(|error| panic!("first process: {error}"));
    let second = Running(Some(spawn(&world, Some(4))));
    held(&world, 4 + relay).await.unwrap();
    drained_without_drift(&world).await;

    changes(&world, 1).await;
    drained_without_drift(&world).await;

    changes(&world, 2).await;
    let killed = first
        .0
        .take()
        .map(|mut child| signal(&mut child, "KILL").unwrap());
    assert_eq!(killed, Some(None), "killed by a signal");
    changes(&world, 3).await;
    // The killed process's partitions (and in the logical mode the relay) hold pending changes:
    // only a take-over drains them.
    drained_without_drift(&world).await;
    held(&world, 4 + relay).await.unwrap();

    let mut second = second;
    assert_eq!(second.stop(), Some(0));
    world.cleanup().await;
}

#[tokio::test]
async fn a_truncate_and_a_reindex_rebuild_across_every_partition() {
    let all = engines().await;
    truncate_and_reindex("outbox", &all[1 % all.len()]).await;
}

#[tokio::test]
async fn a_truncate_decoded_by_the_relay_rebuilds_across_every_partition() {
    truncate_and_reindex("logical", &engines().await[0]).await;
}

async fn truncate_and_reindex(mode: &str, engine: &athens_testkit::TestEngine) {
    let world = World::in_mode("partitions-truncate", engine, mode)
        .await
        .unwrap();
    let relay = relay_leases(mode);
    world.ok(&["migrate"]).unwrap();
    world.ok(&["seed", "--projects", "300"]).unwrap();
    ok(athens(&world, &["setup"], None));
    let mut first = Running(Some(spawn(&world, Some(2))));
    let mut second = Running(Some(spawn(&world, Some(2))));
    held(&world, 4 + relay).await.unwrap();
    drained_without_drift(&world).await;

    changes(&world, 1).await;
    world.sql("TRUNCATE user_projects").await.unwrap();
    changes(&world, 2).await;
    drained_without_drift(&world).await;
    held(&world, 4 + relay).await.unwrap();

    assert_eq!(first.stop(), Some(0));
    assert_eq!(second.stop(), Some(0));
    let reindexed = ok(athens(&world, &["reindex"], None));
    assert!(reindexed.starts_with("reindexed"), "{reindexed}");
    let mut third = Running(Some(spawn(&world, None)));
    changes(&world, 3).await;
    drained_without_drift(&world).await;
    // Before the slot goes: a running relay would re-create it.
    assert_eq!(third.stop(), Some(0));
    world.cleanup().await;
}

#[tokio::test]
async fn another_partition_count_or_a_mode_not_set_up_is_refused() {
    let engine = &engines().await[0];
    let world = World::new("partitions-refused", engine).await.unwrap();
    world.ok(&["migrate"]).unwrap();
    ok(athens(&world, &["setup"], None));

    let refused = |command: &mut Command| {
        let output = command.output().unwrap();
        assert!(
            matches!(output.status.code(), Some(1 | 2)),
            "a message and a failure's exit code (2: the settings): {output:?}"
        );
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let mut two = world.athens(&["sync"]);
    two.env("ATHENS_CAPTURE_PARTITIONS", "2");
    let message = refused(&mut two);
    assert!(
        message.contains("the change capture writes 4 partition(s)")
            && message.contains("the configuration says 2"),
        "{message}"
    );
    let message = refused(&mut world.athens(&["sync"]));
    assert!(message.contains("the configuration says 1"), "{message}");
    // The logical mode with partitions needs its own setup (publication, slot, relay).
    let mut logical = athens(&world, &["sync"], None);
    logical.env("ATHENS_CAPTURE_MODE", "logical");
    let message = refused(&mut logical);
    assert!(
        message.contains("logical change capture is not ready")
            && message.contains("table athens.relay"),
        "{message}"
    );
    world.cleanup().await;
}
