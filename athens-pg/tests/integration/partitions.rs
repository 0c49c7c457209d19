//! Partitioned capture (docs/architecture.md, "Partitioned writers"): the trigger's partition of a
//! project agrees with athens-core's, each partition's source polls and acknowledges its own rows
//! (users and hashtags copied to every partition, a truncate written once for all), a writer of
//! another partition count is refused, a count changed with changes pending becomes a rebuild, and
//! the lease of every partition is taken all or none.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use athens_core::partition::{Partition, partition_of};
use athens_core::{Ack, Change, ChangeSource, ProjectId, SourceError, WriterLease};
use athens_pg::{PgConfig, PgSource};
use sea_orm::sqlx;

use crate::support::{ack, config, empty, exec, poll, scalar};

fn four() -> NonZeroU32 {
    NonZeroU32::new(4).unwrap()
}

/// A database with the schema and a capture of `partitions` partitions.
async fn partitioned(test: &str, partitions: NonZeroU32) -> PgSource {
    let (source, _) = empty(test).await;
    source.migrate().await.unwrap();
    source
        .install_partitioned_capture(partitions)
        .await
        .unwrap();
    source
}

/// The project a change names, if it names one.
fn project_of(change: &Change) -> Option<ProjectId> {
    match change {
        Change::Project { project }
        | Change::ProjectHashtag { project, .. }
        | Change::UserProject { project, .. } => Some(*project),
        Change::User { .. } | Change::Hashtag { .. } | Change::Truncate { .. } => None,
    }
}

#[tokio::test]
async fn the_sql_and_rust_partition_functions_agree() {
    let source = partitioned("partition-function", four()).await;
    let mut ids: Vec<i64> = (-2_000..30_000).collect();
    ids.extend([
        i64::MIN,
        i64::MAX,
        i64::MIN + 1,
        i64::MAX - 1,
        1 << 32,
        (1 << 32) + 1,
    ]);
    ids.extend((0..2_000).map(|n: i64| n.wrapping_mul(0x9e37_79b9_7f4a_7c15_u64 as i64)));
    for partitions in [1u32, 2, 3, 4, 7, 8, 64, 1000] {
        let count = NonZeroU32::new(partitions).unwrap();
        let computed: Vec<i32> = sqlx::query_scalar(
            "SELECT athens.partition_of(id, $2) FROM unnest($1::bigint[]) WITH ORDINALITY \
             AS t(id, n) ORDER BY n",
        )
        .bind(&ids)
        .bind(i32::try_from(partitions).unwrap())
        .fetch_all(source.pool())
        .await
        .unwrap();
        for (id, sql) in ids.iter().zip(computed) {
            assert_eq!(
                i64::from(sql),
                i64::from(partition_of(ProjectId(*id), count)),
                "project {id}, {partitions} partitions"
            );
        }
    }
}

#[tokio::test]
async fn each_partition_polls_its_projects_and_a_copy_of_every_user_and_hashtag_change() {
    let source = partitioned("partition-routing", four()).await;
    exec(
        &source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Grace');
         INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (2, 'go');
         INSERT INTO projects (id, name, slug, description)
             SELECT n, 'P' || n, 'p-' || n, 'text' FROM generate_series(1, 40) AS n;
         INSERT INTO user_projects (project_id, user_id)
             SELECT n, 1 + n % 2 FROM generate_series(1, 40) AS n;
         INSERT INTO project_hashtags (project_id, hashtag_id)
             SELECT n, 1 FROM generate_series(1, 40) AS n;",
    )
    .await;
    let every = source.every_partition(four());
    let inserted = poll(&every).await;
    assert!(inserted.len() > 120, "{} rows", inserted.len());
    ack(&every, &inserted).await;

    exec(
        &source,
        "UPDATE projects SET description = 'new' WHERE id <= 10;
         UPDATE users SET name = 'Ada L.' WHERE id = 1;
         DELETE FROM hashtags WHERE id = 1;",
    )
    .await;
    let mut projects = Vec::new();
    for partition in Partition::all(four()) {
        let changes = source.partition(partition);
        let records = poll(&changes).await;
        let users = records
            .iter()
            .filter(|record| {
                record.change
                    == Change::User {
                        user: athens_core::UserId(1),
                    }
            })
            .count();
        let hashtags = records
            .iter()
            .filter(|record| matches!(record.change, Change::Hashtag { .. }))
            .count();
        assert_eq!(
            (users, hashtags),
            (1, 1),
            "partition {partition}: one copy of each"
        );
        for record in &records {
            if let Some(project) = project_of(&record.change) {
                assert!(partition.holds(project), "{project:?} in {partition}");
                projects.push(project);
            }
        }
        assert_eq!(
            changes.backlog().await.unwrap().pending,
            records.len() as u64,
            "the backlog counts the partition's rows"
        );
        ack(&changes, &records).await;
        assert!(poll(&changes).await.is_empty(), "acknowledged");
    }
    let expected: BTreeSet<ProjectId> = (1..=40).map(ProjectId).collect();
    let seen: BTreeSet<ProjectId> = projects.iter().copied().collect();
    assert_eq!(seen, expected, "ten updates and forty unlinked hashtags");
    assert!(poll(&every).await.is_empty(), "nothing left for anyone");

    exec(&source, "TRUNCATE user_projects").await;
    for partition in Partition::all(four()) {
        assert!(
            poll(&source.partition(partition)).await.is_empty(),
            "a truncate is not a partition's alone"
        );
    }
    let truncates = poll(&every).await;
    assert_eq!(truncates.len(), 1, "one row for every partition");
    assert!(matches!(truncates[0].change, Change::Truncate { .. }));
    assert_eq!(
        scalar(&source, "SELECT partition::bigint FROM athens.outbox").await,
        -1
    );
}

#[tokio::test]
async fn a_writer_started_for_another_partition_count_is_refused() {
    let source = partitioned("partition-mismatch", four()).await;
    exec(
        &source,
        "INSERT INTO projects (id, name, slug) VALUES (1, 'A', 'a')",
    )
    .await;
    let two = NonZeroU32::new(2).unwrap();
    let error = source
        .partition(Partition::new(0, two).unwrap())
        .poll(10, Duration::ZERO)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SourceError::Misconfigured { .. }),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("writes 4 partition(s)") && message.contains("started with 2"),
        "{message}"
    );
    assert_eq!(source.capture_partitions().await.unwrap(), Some(four()));
}

#[tokio::test]
async fn a_count_changed_with_changes_pending_becomes_one_rebuild() {
    let source = partitioned("partition-recount", NonZeroU32::MIN).await;
    assert_eq!(
        source.capture_partitions().await.unwrap(),
        Some(NonZeroU32::MIN)
    );
    exec(
        &source,
        "INSERT INTO projects (id, name, slug) VALUES (1, 'A', 'a'), (2, 'B', 'b')",
    )
    .await;
    source.install_partitioned_capture(four()).await.unwrap();
    assert_eq!(source.capture_partitions().await.unwrap(), Some(four()));
    let pending = poll(&source.every_partition(four())).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert!(matches!(pending[0].change, Change::Truncate { .. }));

    source.install_partitioned_capture(four()).await.unwrap();
    assert_eq!(
        poll(&source.every_partition(four())).await.len(),
        1,
        "the same count again replaces nothing"
    );
    ack(&source.every_partition(four()), &pending).await;
    source.install_capture().await.unwrap();
    assert!(
        poll(&source).await.is_empty(),
        "a count changed with nothing pending needs no rebuild"
    );
    exec(&source, "UPDATE projects SET name = 'A2' WHERE id = 1").await;
    let one = poll(&source).await;
    assert_eq!(one.len(), 1);
    assert_eq!(
        scalar(&source, "SELECT partition::bigint FROM athens.outbox").await,
        0,
        "one partition writes as before"
    );
}

#[tokio::test]
async fn the_lease_of_every_partition_is_taken_all_or_none() {
    let source = partitioned("partition-leases", four()).await;
    let one = Partition::new(1, four()).unwrap();
    let partition = source.partition(one).lease().await.unwrap();
    let every_view = source.every_partition(four());
    let every = every_view.lease().await.unwrap();
    assert!(partition.try_acquire().await.unwrap());
    assert!(!every.try_acquire().await.unwrap(), "partition 1 is held");
    let zero = source
        .partition(Partition::new(0, four()).unwrap())
        .lease()
        .await
        .unwrap();
    assert!(
        zero.try_acquire().await.unwrap(),
        "the failed attempt kept no partition"
    );
    zero.release().await.unwrap();
    partition.release().await.unwrap();
    assert!(every.try_acquire().await.unwrap());
    assert!(every.is_held().await.unwrap());
    assert!(
        !partition.try_acquire().await.unwrap(),
        "every partition is held"
    );
    let unpartitioned = source.lease().await.unwrap();
    assert!(
        unpartitioned.try_acquire().await.unwrap(),
        "the one-partition lease is another key"
    );
    unpartitioned.release().await.unwrap();

    exec(
        &source,
        "INSERT INTO projects (id, name, slug) VALUES (1, 'A', 'a')",
    )
    .await;
    let records = poll(&every_view).await;
    ack(&every_view, &records).await;
    every.release().await.unwrap();
    exec(
        &source,
        "INSERT INTO projects (id, name, slug) VALUES (2, 'B', 'b')",
    )
    .await;
    let records = poll(&every_view).await;
    let refused = every_view
        .ack(&Ack {
            changes: records.iter().map(|record| record.id).collect(),
            dead_letters: Vec::new(),
        })
        .await
        .unwrap_err();
    assert!(
        matches!(refused, SourceError::LeaseLost { .. }),
        "a released lease fences acknowledgements: {refused}"
    );
    assert!(
        refused.to_string().starts_with(
            "writer lease lost: the writer leases of all 4 partitions (advisory locks of key"
        ),
        "the refusal names the lease: {refused}"
    );
}

/// An idle partition's writer wakes on a change of its own at once, while the writer of another
/// partition takes one of its own: before, the first to wake cleared the wake-up register the
/// other waited on, and the other waited for `database.poll_interval`. The partitions of one
/// process listen on one connection.
#[tokio::test]
async fn an_idle_partition_wakes_on_its_own_change_while_another_takes_one() {
    let database = athens_testkit::database("partition-wakeup").await.unwrap();
    let slow = PgConfig {
        poll_interval: Duration::from_secs(30),
        ..config(&database.url)
    };
    let source = PgSource::connect(&slow).await.unwrap();
    source.migrate().await.unwrap();
    let two = NonZeroU32::new(2).unwrap();
    source.install_partitioned_capture(two).await.unwrap();
    let partition = |index| Partition::new(index, two).unwrap();
    let views = [
        source.partition(partition(0)),
        source.partition(partition(1)),
    ];
    let project_in = |index| {
        (1..)
            .find(|id| partition_of(ProjectId(*id), two) == index)
            .unwrap()
    };
    for view in &views {
        assert!(
            view.poll(10, Duration::from_millis(300))
                .await
                .unwrap()
                .is_empty()
        );
    }

    let started = Instant::now();
    let timed_poll = |view: &PgSource| {
        let view = view.clone();
        async move {
            let records = view.poll(10, Duration::from_secs(20)).await.unwrap();
            (records.len(), started.elapsed())
        }
    };
    let commits = async {
        for (index, after) in [(0, 300), (1, 500)] {
            tokio::time::sleep(Duration::from_millis(after)).await;
            exec(
                &source,
                &format!(
                    "INSERT INTO projects (id, name, slug) VALUES ({0}, 'P', 'p-{0}')",
                    project_in(index)
                ),
            )
            .await;
        }
    };
    let (zero, one, ()) = tokio::join!(timed_poll(&views[0]), timed_poll(&views[1]), commits);
    assert_eq!(zero.0, 1);
    assert_eq!(one.0, 1);
    let listening = scalar(
        &source,
        "SELECT count(*) FROM pg_stat_activity \
         WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
    )
    .await;
    assert_eq!(listening, 1, "the partitions share one LISTEN connection");
    assert!(
        one.1 < Duration::from_secs(2),
        "partition 1 took its change {:?} after the polls began (committed at 800 ms, partition \
         0's at 300 ms woke it at {:?}), polling interval 30 s",
        one.1,
        zero.1
    );
}
