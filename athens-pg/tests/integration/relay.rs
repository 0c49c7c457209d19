//! The relay of the logical mode with partitions: decoded changes become the outbox rows the
//! triggers of four partitions would write (a project's in its partition, a copy of a user's or
//! hashtag's per partition, a truncate once for all), the slot moves past them, and a relay that
//! crashed after committing its rows and before moving the slot writes nothing twice.

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use athens_core::partition::Partition;
use athens_core::{Change, ChangeSource, ProjectId};
use athens_pg::{CaptureConfig, CaptureMode, PgSource};

use crate::support::{Captured, ack, exec, poll, ready_in, scalar};

fn four() -> CaptureConfig {
    CaptureConfig {
        partitions: NonZeroU32::new(4).unwrap(),
        ..CaptureConfig::logical()
    }
}

/// A database with the schema and the logical mode of four partitions (whose slot goes when the
/// result is dropped).
async fn relayed(test: &str) -> Captured {
    let captured = ready_in(test, CaptureMode::Logical).await;
    captured
        .source
        .install_logical_capture(&four())
        .await
        .unwrap();
    captured
}

/// What the slot still holds for Athens.
async fn in_the_slot(source: &PgSource) -> u64 {
    let logical = source.logical(&four()).await.unwrap();
    logical.backlog().await.unwrap().pending
}

async fn outbox_rows(source: &PgSource) -> i64 {
    scalar(source, "SELECT count(*) FROM athens.outbox").await
}

#[tokio::test]
async fn decoded_changes_become_the_rows_of_their_partitions() {
    let captured = relayed("relay-routing").await;
    let source = &captured.source;
    let capture = four();
    exec(
        source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Grace');
         INSERT INTO hashtags (id, name) VALUES (1, 'rust');
         INSERT INTO projects (id, name, slug, description)
             SELECT n, 'P' || n, 'p-' || n, 'text' FROM generate_series(1, 40) AS n;
         INSERT INTO project_hashtags (project_id, hashtag_id)
             SELECT n, 1 FROM generate_series(1, 40) AS n;",
    )
    .await;
    let relay = source.relay(&capture).await.unwrap();
    let queue = source.relayed(&capture);
    let every = queue.every_partition(capture.partitions);
    let first = relay.step(10_000).await.unwrap();
    assert_eq!(
        first.transactions, 1,
        "one script, one transaction: {first:?}"
    );
    assert_eq!(in_the_slot(source).await, 0, "the slot moved past them");
    // Two users and a hashtag copied to 4 partitions, 40 projects and 40 links routed once.
    assert_eq!(first.rows, 3 * 4 + 40 + 40, "{first:?}");
    ack(&every, &poll(&every).await).await;

    exec(
        source,
        "UPDATE projects SET description = 'new' WHERE id <= 10;
         UPDATE users SET name = 'Ada L.' WHERE id = 1;
         DELETE FROM hashtags WHERE id = 1;",
    )
    .await;
    relay.step(10_000).await.unwrap();
    let mut projects = BTreeSet::new();
    for partition in Partition::all(capture.partitions) {
        let changes = queue.partition(partition);
        let records = poll(&changes).await;
        let copies = records
            .iter()
            .filter(|record| matches!(record.change, Change::User { .. } | Change::Hashtag { .. }))
            .count();
        assert_eq!(copies, 2, "partition {partition}: one copy of each");
        for record in &records {
            let project = match record.change {
                Change::Project { project } | Change::ProjectHashtag { project, .. } => project,
                _ => continue,
            };
            assert!(partition.holds(project), "{project:?} in {partition}");
            projects.insert(project);
        }
        ack(&changes, &records).await;
    }
    let expected: BTreeSet<ProjectId> = (1..=40).map(ProjectId).collect();
    assert_eq!(
        projects, expected,
        "ten updates and forty unlinked hashtags"
    );
    assert_eq!(outbox_rows(source).await, 0);
    queue
        .capture_health()
        .await
        .expect("the relayed outbox is healthy without triggers");

    exec(source, "TRUNCATE user_projects").await;
    exec(source, "INSERT INTO users (id, name) VALUES (3, 'Linus')").await;
    relay.step(10_000).await.unwrap();
    assert_eq!(
        source.pending_truncates().await.unwrap(),
        1,
        "one truncate row for every partition"
    );
    assert_eq!(outbox_rows(source).await, 1 + 4);
}

#[tokio::test]
async fn a_relay_that_crashed_before_moving_the_slot_writes_nothing_twice() {
    let captured = relayed("relay-replay").await;
    let source = &captured.source;
    let capture = four();
    exec(
        source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada');
         INSERT INTO projects (id, name, slug, description)
             SELECT n, 'P' || n, 'p-' || n, 'text' FROM generate_series(1, 20) AS n;",
    )
    .await;
    let crashed = source.relay(&capture).await.unwrap();
    exec(
        source,
        "UPDATE projects SET description = 'second' WHERE id = 2",
    )
    .await;
    let written = crashed.relay(10_000).await.unwrap();
    assert_eq!((written.transactions, written.rows), (2, 4 + 20 + 1));
    assert!(written.confirm_to.is_some());
    // The process dies here: rows committed, slot not moved.
    drop(crashed);
    assert_eq!(in_the_slot(source).await, 22, "the slot still holds them");

    exec(
        source,
        "UPDATE projects SET description = 'later' WHERE id = 1",
    )
    .await;
    let restarted = source.relay(&capture).await.unwrap();
    let replayed = restarted.step(10_000).await.unwrap();
    assert_eq!(
        (replayed.skipped, replayed.transactions, replayed.rows),
        (2, 1, 1),
        "the two relayed transactions are skipped, the new one written: {replayed:?}"
    );
    assert_eq!(outbox_rows(source).await, 4 + 20 + 1 + 1, "no row twice");
    assert_eq!(in_the_slot(source).await, 0);
    let idle = restarted.step(10_000).await.unwrap();
    assert_eq!((idle.transactions, idle.skipped, idle.rows), (0, 0, 0));
}

#[tokio::test]
async fn a_count_changed_with_relayed_rows_pending_becomes_one_rebuild() {
    let captured = relayed("relay-recount").await;
    let source = &captured.source;
    exec(source, "INSERT INTO users (id, name) VALUES (1, 'Ada')").await;
    source
        .relay(&four())
        .await
        .unwrap()
        .step(100)
        .await
        .unwrap();
    assert_eq!(outbox_rows(source).await, 4, "a copy per partition");

    let two = CaptureConfig {
        partitions: NonZeroU32::new(2).unwrap(),
        ..CaptureConfig::logical()
    };
    source.install_logical_capture(&two).await.unwrap();
    assert_eq!(
        source.capture_partitions().await.unwrap(),
        NonZeroU32::new(2)
    );
    assert_eq!(outbox_rows(source).await, 0, "the rows of the old count go");
    source.relay(&two).await.unwrap().step(100).await.unwrap();
    assert_eq!(
        source.pending_truncates().await.unwrap(),
        1,
        "and a rebuild of every partition replaces them"
    );
}
