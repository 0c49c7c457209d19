//! The outbox as a queue: no change skipped when commits land out of id order, wake-up by NOTIFY,
//! the polling fallback, acknowledgement with dead letters, and the backlog.

use std::time::{Duration, Instant};

use athens_core::{Ack, ChangeRecord, ChangeSource, DeadLetter, ProjectId, SourceError};
use athens_pg::PgSource;
use sea_orm::sqlx::{self, Connection, PgConnection};

use crate::support::{
    ack_second_and_fourth, config, drain, early_transaction, exec, ready, scalar, take_all, user,
};

/// A poll of `source` waiting up to `wait`, while `sql` commits `delay` after the poll began.
async fn poll_during(
    source: &PgSource,
    wait: Duration,
    delay: Duration,
    sql: &str,
) -> Result<Vec<ChangeRecord>, SourceError> {
    let (polled, ()) = tokio::join!(source.poll(10, wait), async {
        tokio::time::sleep(delay).await;
        exec(source, sql).await;
    });
    polled
}

#[tokio::test]
async fn a_change_that_commits_after_a_later_one_is_not_skipped() {
    let source = ready("outbox-trap").await;
    let mut early = early_transaction(&source).await;

    exec(&source, "INSERT INTO users (id, name) VALUES (2, 'late')").await;
    let first = take_all(&source).await;
    assert_eq!(first.len(), 1);
    assert_eq!(
        first[0].change,
        user(2),
        "only the committed change is visible"
    );

    sqlx::query("COMMIT").execute(&mut early).await.unwrap();
    let second = take_all(&source).await;
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].change, user(1));
    assert!(
        second[0].id < first[0].id,
        "the early change has the lower id, yet it is returned after the later one was acknowledged"
    );
}

#[tokio::test]
async fn unacknowledged_changes_come_back_and_acks_are_exact() {
    let source = ready("outbox-ack").await;
    exec(
        &source,
        "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 10) g",
    )
    .await;
    let batch = source.poll(4, Duration::ZERO).await.unwrap();
    assert_eq!(batch.len(), 4);
    assert_eq!(
        source.poll(4, Duration::ZERO).await.unwrap(),
        batch,
        "same oldest four"
    );
    let rest = ack_second_and_fourth(&source, &batch).await;
    assert_eq!(rest.len(), 8);
    assert!(
        source
            .poll(0, Duration::from_secs(5))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_notification_wakes_a_waiting_poll_at_once() {
    let database = athens_testkit::database("outbox-notify").await.unwrap();
    let mut slow = config(&database.url);
    slow.poll_interval = Duration::from_secs(30);
    let source = PgSource::connect(&slow).await.unwrap();
    source.migrate().await.unwrap();
    source.install_capture().await.unwrap();
    // Start the listener with a first wait, then measure a wake-up.
    assert!(
        source
            .poll(10, Duration::from_millis(300))
            .await
            .unwrap()
            .is_empty()
    );
    let started = Instant::now();
    let polled = poll_during(
        &source,
        Duration::from_secs(20),
        Duration::from_millis(300),
        "INSERT INTO users (id, name) VALUES (5, 'Ada')",
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(polled.unwrap().len(), 1);
    assert!(
        waited < Duration::from_secs(1),
        "woken {waited:?} after the poll began (commit at 300 ms), polling interval 30 s"
    );
}

#[tokio::test]
async fn polling_finds_a_change_whose_notification_never_came() {
    let database = athens_testkit::database("outbox-fallback").await.unwrap();
    let mut quick = config(&database.url);
    quick.poll_interval = Duration::from_millis(250);
    let source = PgSource::connect(&quick).await.unwrap();
    source.migrate().await.unwrap();
    source.install_capture().await.unwrap();
    let started = Instant::now();
    // A row written straight into the outbox: no trigger, so no NOTIFY.
    let polled = poll_during(
        &source,
        Duration::from_secs(20),
        Duration::from_millis(300),
        "INSERT INTO athens.outbox (source_table, op, user_id) VALUES ('users', 'I', 42)",
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(polled.unwrap()[0].change, user(42));
    assert!(
        waited < Duration::from_millis(300 + 250 + 400),
        "found by polling after {waited:?}"
    );
}

#[tokio::test]
async fn a_poll_with_nothing_pending_waits_for_its_deadline() {
    let source = ready("outbox-timeout").await;
    let started = Instant::now();
    let polled = source.poll(10, Duration::from_millis(600)).await.unwrap();
    assert!(polled.is_empty());
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(600) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
}

#[tokio::test]
async fn writers_notify_only_while_a_consumer_waits() {
    let source = ready("outbox-notify-waiting").await;
    let url = source.config().url.expose().to_string();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("athens_outbox").await.unwrap();
    exec(&source, "INSERT INTO users (name) VALUES ('a')").await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(quiet.is_err(), "nobody waits: no notification");
    drain(&source).await;
    // Right after changes, a consumer polls quickly instead of asking for notifications.
    tokio::time::sleep(Duration::from_millis(700)).await;

    let polled = poll_during(
        &source,
        Duration::from_secs(10),
        Duration::from_millis(400),
        "BEGIN; INSERT INTO users (name) VALUES ('b'); INSERT INTO users (name) VALUES ('c'); COMMIT;",
    )
    .await;
    assert_eq!(polled.unwrap().len(), 2);
    let notified = tokio::time::timeout(Duration::from_secs(2), listener.recv()).await;
    assert!(notified.is_ok(), "a waiting consumer is notified");
    let folded = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(folded.is_err(), "once per transaction");
    assert_eq!(
        scalar(
            &source,
            "SELECT count(*) FROM (SELECT pg_sequence_last_value('athens.wakeup') AS until) w
             WHERE until > extract(epoch FROM clock_timestamp()) * 1000"
        )
        .await,
        0,
        "the consumer that woke withdrew its request"
    );
    drain(&source).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    exec(&source, "INSERT INTO users (name) VALUES ('d')").await;
    let quiet = tokio::time::timeout(Duration::from_millis(500), listener.recv()).await;
    assert!(quiet.is_err(), "no consumer waits any more");
}

#[tokio::test]
async fn while_changes_flow_a_consumer_polls_quickly_without_notifications() {
    let database = athens_testkit::database("outbox-flowing").await.unwrap();
    let mut slow = config(&database.url);
    slow.poll_interval = Duration::from_secs(30);
    let source = PgSource::connect(&slow).await.unwrap();
    source.migrate().await.unwrap();
    source.install_capture().await.unwrap();
    let url = source.config().url.expose().to_string();
    let mut listener = sqlx::postgres::PgListener::connect(&url).await.unwrap();
    listener.listen("athens_outbox").await.unwrap();
    for n in 0..5 {
        exec(
            &source,
            &format!("INSERT INTO users (name) VALUES ('u{n}')"),
        )
        .await;
        let started = Instant::now();
        let polled = source.poll(10, Duration::from_secs(5)).await.unwrap();
        assert_eq!(polled.len(), 1);
        let ack = Ack {
            changes: polled.iter().map(|r| r.id).collect(),
            dead_letters: Vec::new(),
        };
        source.ack(&ack).await.unwrap();
        let polled = poll_during(
            &source,
            Duration::from_secs(5),
            Duration::from_millis(120),
            "INSERT INTO hashtags (name) VALUES (md5(random()::text))",
        )
        .await;
        assert_eq!(polled.unwrap().len(), 1);
        source
            .ack(&Ack {
                changes: source
                    .poll(10, Duration::ZERO)
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| r.id)
                    .collect(),
                dead_letters: Vec::new(),
            })
            .await
            .unwrap();
        assert!(
            started.elapsed() < Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }
    let notified = tokio::time::timeout(Duration::from_millis(300), listener.recv()).await;
    assert!(notified.is_err(), "no notification while changes flow");
}

#[tokio::test]
async fn ack_records_dead_letters_and_the_backlog_reports_them() {
    let source = ready("outbox-backlog").await;
    let empty = source.backlog().await.unwrap();
    assert_eq!(empty.pending, 0);
    assert_eq!(empty.oldest_age, None);
    assert_eq!(empty.last_ack_at, None);

    exec(
        &source,
        "INSERT INTO users (name) SELECT 'u' || g FROM generate_series(1, 25) g",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let backlog = source.backlog().await.unwrap();
    assert_eq!(backlog.pending, 25);
    assert!(
        backlog
            .oldest_age
            .is_some_and(|age| age >= Duration::from_millis(50))
    );

    let records = source.poll(5, Duration::ZERO).await.unwrap();
    let letter = |project: i64, reason: &str| DeadLetter {
        project: ProjectId(project),
        reason: reason.into(),
    };
    source
        .ack(&Ack {
            changes: records.iter().map(|r| r.id).collect(),
            dead_letters: vec![
                letter(1, "mapping"),
                letter(2, "too big"),
                letter(1, "again"),
            ],
        })
        .await
        .unwrap();
    let backlog = source.backlog().await.unwrap();
    assert_eq!(backlog.pending, 20);
    assert_eq!(backlog.dead_letters, 2, "one dead letter per project");
    assert!(backlog.last_ack_at.is_some());
    source
        .ack(&Ack {
            changes: Vec::new(),
            dead_letters: vec![letter(2, "still too big")],
        })
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &source,
            "SELECT attempts::bigint FROM athens.dead_letters WHERE project_id = 2"
        )
        .await,
        2
    );
    let reason: String =
        sqlx::query_scalar("SELECT reason FROM athens.dead_letters WHERE project_id = 1")
            .fetch_one(source.pool())
            .await
            .unwrap();
    assert_eq!(reason, "again");
}

#[tokio::test]
async fn a_large_backlog_is_read_and_measured_quickly() {
    let source = ready("outbox-large").await;
    exec(
        &source,
        "INSERT INTO athens.outbox (source_table, op, project_id)
             SELECT 'projects', 'I', g FROM generate_series(1, 200000) g;
         ANALYZE athens.outbox;",
    )
    .await;
    let started = Instant::now();
    let batch = source.poll(1000, Duration::ZERO).await.unwrap();
    let polled = started.elapsed();
    assert_eq!(batch.len(), 1000);
    let started = Instant::now();
    let backlog = source.backlog().await.unwrap();
    let measured = started.elapsed();
    assert!(
        (150_000..=250_000).contains(&backlog.pending),
        "estimate within reason: {}",
        backlog.pending
    );
    assert!(polled < Duration::from_secs(1), "poll took {polled:?}");
    assert!(
        measured < Duration::from_secs(1),
        "backlog took {measured:?}"
    );
}

/// Issue 12, finding 8: the periodic vacuum of the outbox runs without the pool's statement
/// timeout, so a large outbox is vacuumed even when that takes longer than the timeout.
#[tokio::test]
async fn the_periodic_vacuum_outlasts_the_statement_timeout() {
    let source = ready("outbox-vacuum").await;
    let url = source.config().url.expose().to_string();
    exec(
        &source,
        "ALTER TABLE athens.outbox SET (autovacuum_enabled = false);
         INSERT INTO athens.outbox (source_table, op, project_id)
             SELECT 'projects', 'U', g FROM generate_series(1, 50000) g;
         DO $$ BEGIN
             EXECUTE format('ALTER DATABASE %I SET vacuum_cost_delay = %L', current_database(), '1ms');
             EXECUTE format('ALTER DATABASE %I SET vacuum_cost_limit = 1', current_database());
         END $$;",
    )
    .await;
    let timeout = Duration::from_secs(1);
    let consumer = PgSource::connect(&athens_pg::PgConfig {
        statement_timeout: timeout,
        ..config(&url)
    })
    .await
    .unwrap();
    let first: i64 = scalar(&source, "SELECT min(id) FROM athens.outbox").await;
    for chunk in (first..first + 50_000).collect::<Vec<_>>().chunks(2_000) {
        let ack = Ack {
            changes: chunk.iter().map(|id| athens_core::ChangeId(*id)).collect(),
            dead_letters: Vec::new(),
        };
        consumer.ack(&ack).await.unwrap();
    }
    let started = Instant::now();
    let vacuums =
        "SELECT vacuum_count FROM pg_stat_user_tables WHERE relid = 'athens.outbox'::regclass";
    while scalar(&source, vacuums).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the outbox was never vacuumed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        started.elapsed() > timeout,
        "the vacuum took {:?}: not longer than the statement timeout, so this test shows nothing",
        started.elapsed()
    );
}

/// Polls start at a floor past acknowledged rows (so that a long snapshot, which keeps their dead
/// entries, costs nothing: `athens-pg/src/cursor.rs`). The floor never passes an id whose
/// transaction may still commit, however many batches are acknowledged meanwhile.
#[tokio::test]
async fn the_poll_floor_never_passes_a_transaction_still_open() {
    let source = ready("outbox-floor").await;
    exec(
        &source,
        "INSERT INTO projects (id, name, slug) VALUES (1, 'p', 'p');
         INSERT INTO hashtags (id, name) VALUES (1, 'h');
         INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1)",
    )
    .await;
    take_all(&source).await;
    let url = source.config().url.expose().to_string();
    let mut early = PgConnection::connect(&url).await.unwrap();
    let mut truncating = PgConnection::connect(&url).await.unwrap();
    for statement in ["BEGIN", "INSERT INTO users (id, name) VALUES (1, 'early')"] {
        sqlx::query(statement).execute(&mut early).await.unwrap();
    }
    for statement in ["BEGIN", "TRUNCATE project_hashtags"] {
        sqlx::query(statement)
            .execute(&mut truncating)
            .await
            .unwrap();
    }
    for round in 0..5 {
        exec(
            &source,
            &format!(
                "INSERT INTO users (id, name) VALUES ({}, 'later')",
                10 + round
            ),
        )
        .await;
        assert_eq!(take_all(&source).await.len(), 1);
    }
    sqlx::query("COMMIT").execute(&mut early).await.unwrap();
    sqlx::query("COMMIT")
        .execute(&mut truncating)
        .await
        .unwrap();
    let late = drain(&source).await;
    assert_eq!(
        late,
        vec![
            athens_core::Change::Truncate {
                table: athens_core::Table::ProjectHashtags
            },
            user(1)
        ],
        "both late commits are read, though later ids were acknowledged in five batches"
    );

    // A reinstalled outbox hands out ids from 1 again: the floor starts over.
    source.remove_capture().await.unwrap();
    source.install_capture().await.unwrap();
    exec(&source, "INSERT INTO users (id, name) VALUES (2, 'after')").await;
    assert_eq!(drain(&source).await, vec![user(2)]);
}
