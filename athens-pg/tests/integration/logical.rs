//! The logical mode as a queue: only committed transactions, in commit order; acknowledgements
//! move the slot only past whole acknowledged transactions; a new process replays what was not
//! acknowledged; an idle slot retains no WAL; a vanished slot is re-created and asks for a
//! rebuild; setup and teardown.

use std::time::Duration;

use athens_core::{Ack, ChangeSource, Table};
use athens_pg::{CaptureConfig, CaptureMode};
use sea_orm::sqlx;

use crate::support::{
    ack_second_and_fourth, early_transaction, exec, ready_in, scalar, take_all, truncated, user,
};

#[tokio::test]
async fn only_committed_transactions_are_delivered_in_commit_order() {
    let captured = ready_in("logical-commit-order", CaptureMode::Logical).await;
    let mut early = early_transaction(&captured.source).await;
    exec(
        &captured.source,
        "INSERT INTO users (id, name) VALUES (2, 'late')",
    )
    .await;
    let first = take_all(captured.changes.as_ref()).await;
    assert_eq!(
        first.iter().map(|r| r.change).collect::<Vec<_>>(),
        vec![user(2)],
        "the open transaction is not delivered"
    );
    sqlx::query("COMMIT").execute(&mut early).await.unwrap();
    let second = take_all(captured.changes.as_ref()).await;
    assert_eq!(
        second.iter().map(|r| r.change).collect::<Vec<_>>(),
        vec![user(1)],
        "the early-started transaction comes once it commits, though the slot moved past its start"
    );
}

#[tokio::test]
async fn partial_acks_keep_the_transaction_and_a_new_process_replays_it() {
    let captured = ready_in("logical-partial-ack", CaptureMode::Logical).await;
    exec(
        &captured.source,
        "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 10) g;
         INSERT INTO hashtags (name) VALUES ('second transaction');",
    )
    .await;
    let changes = captured.changes.as_ref();
    let batch = changes.poll(4, Duration::ZERO).await.unwrap();
    assert_eq!(batch.len(), 4, "at most max, even inside a transaction");
    assert_eq!(changes.poll(4, Duration::ZERO).await.unwrap(), batch);
    let rest = ack_second_and_fourth(changes, &batch).await;
    assert_eq!(rest.len(), 9, "8 users left and the hashtag");

    // A new process (a restart after a crash) starts from the slot, which has not moved: the
    // whole first transaction comes back, acknowledged parts included.
    let restarted = captured
        .source
        .logical(&CaptureConfig::logical())
        .await
        .unwrap();
    assert_eq!(take_all(&restarted).await.len(), 11);
    assert!(
        restarted
            .poll(100, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    let backlog = restarted.backlog().await.unwrap();
    assert_eq!((backlog.pending, backlog.oldest_age), (0, None));
}

#[tokio::test]
async fn an_idle_consumer_lets_the_server_recycle_other_tables_wal() {
    let captured = ready_in("logical-idle", CaptureMode::Logical).await;
    let capture = CaptureConfig::logical();
    exec(
        &captured.source,
        "CREATE TABLE unrelated (id int, filler text);
         INSERT INTO unrelated SELECT g, repeat('x', 500) FROM generate_series(1, 20000) g;",
    )
    .await;
    let before = captured
        .source
        .slot_status(&capture)
        .await
        .unwrap()
        .unwrap();
    assert!(
        before.lag_bytes.unwrap() > 5_000_000,
        "the slot is behind the unrelated writes: {before:?}"
    );
    let written = scalar(
        &captured.source,
        "SELECT (pg_current_wal_flush_lsn() - '0/0'::pg_lsn)::bigint",
    )
    .await;
    assert!(
        captured
            .changes
            .poll(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    // Other tests write to the same server meanwhile: compare positions, not the lag.
    let confirmed = scalar(
        &captured.source,
        &format!(
            "SELECT (confirmed_flush_lsn - '0/0'::pg_lsn)::bigint FROM pg_replication_slots \
             WHERE slot_name = '{}'",
            before.name
        ),
    )
    .await;
    assert!(
        confirmed >= written,
        "a poll that finds nothing moves the slot past the unrelated writes"
    );
    let after = captured
        .source
        .slot_status(&capture)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(after.wal_status, "lost");
    assert!(!after.active, "the slot is held only during a call");
}

#[tokio::test]
async fn a_dropped_slot_is_recreated_and_asks_for_a_rebuild() {
    let captured = ready_in("logical-dropped-slot", CaptureMode::Logical).await;
    let capture = CaptureConfig::logical();
    let slot = captured.source.slot_name(&capture).await.unwrap();
    exec(
        &captured.source,
        "INSERT INTO users (id, name) VALUES (1, 'a')",
    )
    .await;
    assert_eq!(take_all(captured.changes.as_ref()).await.len(), 1);
    exec(
        &captured.source,
        &format!("SELECT pg_drop_replication_slot('{slot}')"),
    )
    .await;
    exec(
        &captured.source,
        "INSERT INTO users (id, name) VALUES (2, 'lost while no slot existed')",
    )
    .await;
    // The consumer notices at its next poll, re-creates the slot, and asks for a rebuild.
    let mut seen = Vec::new();
    for _ in 0..3 {
        match captured.changes.poll(100, Duration::ZERO).await {
            Ok(records) if !records.is_empty() => {
                seen = records;
                break;
            }
            Ok(_) | Err(_) => {}
        }
    }
    assert_eq!(
        seen.iter().map(|r| r.change).collect::<Vec<_>>(),
        vec![truncated(Table::Projects)],
        "a rebuild covers what no slot recorded"
    );
    assert_eq!(
        scalar(&captured.source, "SELECT count(*) FROM athens.resync").await,
        0
    );
    let ack = Ack {
        changes: seen.iter().map(|r| r.id).collect(),
        dead_letters: Vec::new(),
    };
    captured.changes.ack(&ack).await.unwrap();
    exec(
        &captured.source,
        "INSERT INTO users (id, name) VALUES (3, 'c')",
    )
    .await;
    assert_eq!(
        take_all(captured.changes.as_ref())
            .await
            .iter()
            .map(|r| r.change)
            .collect::<Vec<_>>(),
        vec![user(3)]
    );
}

#[tokio::test]
async fn setup_switches_modes_and_teardown_drops_the_slot() {
    let captured = ready_in("logical-setup", CaptureMode::Logical).await;
    let source = &captured.source;
    let capture = CaptureConfig::logical();
    let slot = source.slot_name(&capture).await.unwrap();
    source.check_logical_capture(&capture).await.unwrap();
    assert!(source.check_capture().await.is_err(), "no outbox triggers");
    exec(source, "INSERT INTO users (id, name) VALUES (1, 'a')").await;
    source.install_logical_capture(&capture).await.unwrap();
    assert_eq!(
        take_all(captured.changes.as_ref()).await.len(),
        1,
        "a second setup keeps the slot and its position"
    );
    assert_eq!(
        scalar(
            source,
            "SELECT count(*) FROM pg_class WHERE relreplident = 'f' \
             AND relname IN ('project_hashtags', 'user_projects')"
        )
        .await,
        2
    );

    // Back to the outbox: triggers in, slot and publication out.
    source.remove_logical_capture(&capture).await.unwrap();
    source.install_capture().await.unwrap();
    source.check_capture().await.unwrap();
    let slots = format!("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{slot}'");
    assert_eq!(scalar(source, &slots).await, 0);
    assert_eq!(
        scalar(source, "SELECT count(*) FROM pg_publication").await,
        0
    );
    let error = source
        .check_logical_capture(&capture)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("athens setup"), "{error}");

    // And to the logical mode again: the triggers go.
    source.install_logical_capture(&capture).await.unwrap();
    assert_eq!(
        scalar(
            source,
            "SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'athens_capture_%'"
        )
        .await,
        0
    );
    source.remove_logical_capture(&capture).await.unwrap();
    source.remove_capture().await.unwrap();
    assert_eq!(scalar(source, &slots).await, 0);
}
