//! The rebuild queue (`athens.rebuild_queue`): the core's queue contract in both capture modes,
//! durability across sources, one queue per lease key, and partitions (each partition's writer
//! takes its own projects, a count change moves the queued projects to their new partitions).

use std::collections::BTreeSet;
use std::num::NonZeroU32;

use athens_core::partition::Partition;
use athens_core::{KeysetPage, ProjectId, RebuildQueue, SourceError};
use athens_pg::PgSource;

use crate::support::{config, empty, scalar};

/// The outbox mode.
mod outbox {
    use athens_pg::CaptureMode;

    use crate::support::ready_in;

    athens_core::rebuild_queue_clauses!(|test, clause| {
        let captured = ready_in(test, CaptureMode::Outbox).await;
        clause(&captured.source).await
    });
}

/// The logical mode: the queue is one of the capture objects both modes install.
mod logical {
    use athens_pg::CaptureMode;

    use crate::support::ready_in;

    athens_core::rebuild_queue_clauses!(|test, clause| {
        let captured = ready_in(test, CaptureMode::Logical).await;
        clause(&captured.source).await
    });
}

fn ids(range: std::ops::RangeInclusive<i64>) -> Vec<ProjectId> {
    range.map(ProjectId).collect()
}

async fn all(queue: &dyn RebuildQueue) -> Vec<i64> {
    queue
        .take(KeysetPage::first(1_000_000))
        .await
        .unwrap()
        .into_iter()
        .map(|queued| queued.project.0)
        .collect()
}

#[tokio::test]
async fn queued_projects_survive_the_source_that_queued_them() {
    let (source, url) = empty("queue-durable").await;
    source.migrate().await.unwrap();
    source.install_capture().await.unwrap();
    source.enqueue(&ids(1..=1000)).await.unwrap();
    source.close().await;
    let reopened = PgSource::connect(&config(&url)).await.unwrap();
    assert_eq!(all(&reopened).await, (1..=1000).collect::<Vec<_>>());
    assert_eq!(reopened.queued().await.unwrap(), 1000);
}

#[tokio::test]
async fn writers_of_other_lease_keys_keep_their_own_queue() {
    let (source, url) = empty("queue-lease-keys").await;
    source.migrate().await.unwrap();
    source.install_capture().await.unwrap();
    let other = PgSource::connect(&athens_pg::PgConfig {
        lease_key: 42,
        ..config(&url)
    })
    .await
    .unwrap();
    source.enqueue(&ids(1..=3)).await.unwrap();
    other.enqueue(&ids(3..=4)).await.unwrap();
    assert_eq!(all(&source).await, [1, 2, 3]);
    assert_eq!(all(&other).await, [3, 4]);
    other.clear().await.unwrap();
    assert_eq!(all(&source).await, [1, 2, 3], "another key's clear");
}

#[tokio::test]
async fn each_partition_takes_its_own_projects_and_a_new_count_moves_them() {
    let (source, _) = empty("queue-partitions").await;
    source.migrate().await.unwrap();
    let four = NonZeroU32::new(4).unwrap();
    source.install_partitioned_capture(four).await.unwrap();
    let every = source.every_partition(four);
    every.enqueue(&ids(1..=400)).await.unwrap();
    let mut seen = BTreeSet::new();
    for partition in Partition::all(four) {
        let taken = all(&source.partition(partition)).await;
        assert!(!taken.is_empty(), "partition {partition} took nothing");
        for project in taken {
            assert!(
                partition.holds(ProjectId(project)),
                "{project} in {partition}"
            );
            assert!(seen.insert(project), "{project} taken by two partitions");
        }
    }
    assert_eq!(seen.len(), 400, "the partitions share out every project");
    let agree = scalar(
        &source,
        "SELECT count(*) FROM athens.rebuild_queue WHERE partition = athens.partition_of(project_id, 4)",
    )
    .await;
    assert_eq!(agree, 400, "the queue's partitions are the capture's");

    // A partition's clear leaves the others'.
    let first = Partition::new(0, four).unwrap();
    let cleared = source.partition(first).queued().await.unwrap();
    source.partition(first).clear().await.unwrap();
    assert_eq!(every.queued().await.unwrap(), 400 - cleared);

    // Another count: every queued project moves to its partition under that count.
    let two = NonZeroU32::new(2).unwrap();
    source.install_partitioned_capture(two).await.unwrap();
    let moved = scalar(
        &source,
        "SELECT count(*) FROM athens.rebuild_queue WHERE partition = athens.partition_of(project_id, 2)",
    )
    .await;
    assert_eq!(moved as u64, 400 - cleared);
    // A writer still running with the old count is refused, like its polls.
    let stale = source.partition(Partition::new(3, four).unwrap());
    let refused = stale.take(KeysetPage::first(10)).await.unwrap_err();
    assert!(
        matches!(refused, SourceError::Misconfigured { .. }),
        "{refused:?}"
    );
}
