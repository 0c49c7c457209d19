//! What each capture mode records for every table and operation: inserts, updates (including
//! no-ops and key changes), deletes, truncates, bulk statements and cascades. Every test runs in
//! the outbox mode and in the logical mode; where they differ (the logical mode reports a row
//! rewritten with its own values, see `athens_pg::LogicalSource`), the test says so.

use athens_core::Table;
use athens_pg::CaptureMode;
use sea_orm::sqlx;

use crate::support::{
    Captured, credited, exec, hashtag, project, ready_in, sorted, tagged, truncated, user,
};

/// Runs each named test function in both modes: `name::outbox` and `name::logical`.
macro_rules! in_both_modes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use athens_pg::CaptureMode;

            #[tokio::test]
            async fn outbox() {
                super::$name(CaptureMode::Outbox).await;
            }

            #[tokio::test]
            async fn logical() {
                super::$name(CaptureMode::Logical).await;
            }
        }
    )*};
}

in_both_modes!(
    inserts_of_every_table_are_captured,
    updates_of_document_columns_are_captured_and_no_ops_are_not,
    link_updates_record_the_pairs_that_moved,
    a_key_change_records_the_old_and_the_new_key,
    deletes_are_captured_with_their_cascades,
    truncates_are_captured_for_every_table_truncated,
    bulk_statements_record_every_row,
    upserts_and_rolled_back_writes,
);

/// Three users, three hashtags, two projects, with links; the outbox drained.
async fn populated(test: &str, mode: CaptureMode) -> Captured {
    let captured = ready_in(test, mode).await;
    let source = &captured.source;
    exec(
        source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Alan');
         INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (2, 'search'), (3, 'go');
         INSERT INTO projects (id, name, slug, description) VALUES
             (1, 'Athens', 'athens', 'sync'), (2, 'Sparta', 'sparta', NULL);
         INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1), (1, 2), (2, 2);
         INSERT INTO user_projects (project_id, user_id) VALUES (1, 1), (1, 2), (2, 2);",
    )
    .await;
    captured.drain().await;
    captured
}

async fn inserts_of_every_table_are_captured(mode: CaptureMode) {
    let captured = ready_in("capture-inserts", mode).await;
    let source = &captured.source;
    exec(
        source,
        "INSERT INTO users (id, name) VALUES (7, 'Ada');
         INSERT INTO hashtags (id, name) VALUES (8, 'rust');
         INSERT INTO projects (id, name, slug) VALUES (9, 'Athens', 'athens');
         INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (9, 8);
         INSERT INTO user_projects (project_id, user_id) VALUES (9, 7);",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![
            user(7),
            hashtag(8),
            project(9),
            tagged(9, 8),
            credited(9, 7)
        ])
    );
}

async fn updates_of_document_columns_are_captured_and_no_ops_are_not(mode: CaptureMode) {
    let captured = populated("capture-updates", mode).await;
    let source = &captured.source;
    exec(source, "UPDATE users SET name = 'Ada King' WHERE id = 1").await;
    assert_eq!(captured.drain().await, vec![user(1)]);
    exec(source, "UPDATE users SET name = 'Ada King' WHERE id = 1").await;
    assert_eq!(
        captured.drain().await,
        captured.unchanged(vec![user(1)]),
        "same value: nothing to record (the logical mode cannot tell)"
    );
    exec(
        source,
        "UPDATE users SET created_at = created_at - interval '1 day' WHERE id = 3",
    )
    .await;
    assert_eq!(captured.drain().await, vec![user(3)]);

    exec(source, "UPDATE hashtags SET name = 'rustlang' WHERE id = 1").await;
    assert_eq!(captured.drain().await, vec![hashtag(1)]);
    exec(source, "UPDATE hashtags SET name = name").await;
    assert_eq!(
        captured.drain().await,
        captured.unchanged(vec![hashtag(1), hashtag(2), hashtag(3)])
    );

    exec(
        source,
        "UPDATE projects SET description = 'now described' WHERE id = 2",
    )
    .await;
    assert_eq!(captured.drain().await, vec![project(2)]);
    exec(
        source,
        "UPDATE projects SET description = NULL WHERE id = 2",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        vec![project(2)],
        "to NULL is a change"
    );
    exec(
        source,
        "UPDATE projects SET description = NULL WHERE id = 2",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        captured.unchanged(vec![project(2)]),
        "NULL to NULL is not"
    );
    exec(
        source,
        "UPDATE projects SET slug = 'athens-sync', name = 'Athens' WHERE id = 1",
    )
    .await;
    assert_eq!(captured.drain().await, vec![project(1)]);
}

async fn link_updates_record_the_pairs_that_moved(mode: CaptureMode) {
    let captured = populated("capture-link-updates", mode).await;
    let source = &captured.source;
    exec(
        source,
        "UPDATE project_hashtags SET hashtag_id = 3 WHERE project_id = 2",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![tagged(2, 2), tagged(2, 3)])
    );
    exec(source, "UPDATE user_projects SET user_id = user_id").await;
    assert_eq!(
        captured.drain().await,
        vec![],
        "unchanged pairs record nothing"
    );
    exec(
        source,
        "UPDATE user_projects SET user_id = 3 WHERE project_id = 2",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![credited(2, 2), credited(2, 3)])
    );
}

async fn a_key_change_records_the_old_and_the_new_key(mode: CaptureMode) {
    let captured = populated("capture-key-change", mode).await;
    let source = &captured.source;
    exec(source, "UPDATE users SET id = 30 WHERE id = 3").await;
    assert_eq!(captured.drain().await, sorted(vec![user(3), user(30)]));
}

async fn deletes_are_captured_with_their_cascades(mode: CaptureMode) {
    let captured = populated("capture-deletes", mode).await;
    let source = &captured.source;
    exec(
        source,
        "DELETE FROM user_projects WHERE project_id = 1 AND user_id = 1",
    )
    .await;
    assert_eq!(captured.drain().await, vec![credited(1, 1)]);

    exec(source, "DELETE FROM hashtags WHERE id = 2").await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![hashtag(2), tagged(1, 2), tagged(2, 2)]),
        "deleting a hashtag reaches every project that used it"
    );

    exec(source, "DELETE FROM users WHERE id = 2").await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![user(2), credited(1, 2), credited(2, 2)])
    );

    exec(source, "DELETE FROM projects WHERE id = 1").await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![project(1), tagged(1, 1)])
    );
    exec(source, "DELETE FROM project_hashtags").await;
    assert_eq!(captured.drain().await, vec![], "nothing left to delete");
}

async fn truncates_are_captured_for_every_table_truncated(mode: CaptureMode) {
    let captured = populated("capture-truncates", mode).await;
    let source = &captured.source;
    exec(source, "TRUNCATE user_projects").await;
    assert_eq!(captured.drain().await, vec![truncated(Table::UserProjects)]);
    exec(source, "TRUNCATE hashtags CASCADE").await;
    assert_eq!(
        captured.drain().await,
        sorted(vec![
            truncated(Table::Hashtags),
            truncated(Table::ProjectHashtags)
        ])
    );
    exec(source, "TRUNCATE users, projects CASCADE").await;
    let mut expected = vec![truncated(Table::Users), truncated(Table::Projects)];
    if captured.logical() {
        // The link tables, emptied by the truncates above, are cascaded into too: the outbox's
        // triggers see they hold no row, a logical `Truncate` message cannot say.
        expected.extend([
            truncated(Table::ProjectHashtags),
            truncated(Table::UserProjects),
        ]);
    }
    assert_eq!(captured.drain().await, sorted(expected));
}

/// Issue 12, finding 8: truncating a table that holds no row forces no rebuild (outbox mode; a
/// logical-decoding `Truncate` message carries no row count, so that mode still reports one).
#[tokio::test]
async fn truncating_an_empty_table_records_nothing() {
    let captured = populated("capture-truncate-empty", CaptureMode::Outbox).await;
    let source = &captured.source;
    exec(source, "DELETE FROM project_hashtags").await;
    captured.drain().await;
    exec(source, "TRUNCATE project_hashtags").await;
    assert_eq!(captured.drain().await, vec![], "nothing was in it");
    exec(source, "TRUNCATE hashtags CASCADE").await;
    assert_eq!(
        captured.drain().await,
        vec![truncated(Table::Hashtags)],
        "the cascaded link table was empty, hashtags were not"
    );
    exec(
        source,
        "BEGIN; DELETE FROM users; TRUNCATE users CASCADE; COMMIT",
    )
    .await;
    assert_eq!(
        sorted(captured.drain().await),
        sorted(vec![
            user(1),
            user(2),
            user(3),
            credited(1, 1),
            credited(1, 2),
            credited(2, 2),
        ]),
        "rows deleted earlier in the same transaction are captured as deletes, and then nothing \
         is left to truncate"
    );
}

/// A `REPEATABLE READ` transaction's snapshot may predate rows committed before its TRUNCATE
/// took the table: they are truncated too, so the truncate must be recorded although the
/// transaction sees no row.
#[tokio::test]
async fn a_truncate_in_an_older_snapshot_is_recorded_though_it_sees_no_row() {
    let captured = populated("capture-truncate-snapshot", CaptureMode::Outbox).await;
    let source = &captured.source;
    exec(source, "DELETE FROM user_projects").await;
    captured.drain().await;
    exec(source, "VACUUM user_projects").await;
    let mut old = source.pool().acquire().await.unwrap();
    for statement in [
        "BEGIN ISOLATION LEVEL REPEATABLE READ",
        "SELECT count(*) FROM user_projects",
    ] {
        sqlx::query(statement).execute(&mut *old).await.unwrap();
    }
    exec(
        source,
        "INSERT INTO user_projects (project_id, user_id) VALUES (2, 3)",
    )
    .await;
    captured.drain().await;
    for statement in ["TRUNCATE user_projects", "COMMIT"] {
        sqlx::query(statement).execute(&mut *old).await.unwrap();
    }
    assert_eq!(captured.drain().await, vec![truncated(Table::UserProjects)]);
}

async fn bulk_statements_record_every_row(mode: CaptureMode) {
    let captured = ready_in("capture-bulk", mode).await;
    let source = &captured.source;
    exec(
        source,
        "INSERT INTO projects (id, name, slug)
             SELECT g, 'p' || g, 'p-' || g FROM generate_series(1, 2000) g",
    )
    .await;
    let inserted = captured.drain().await;
    assert_eq!(inserted.len(), 2000);
    assert_eq!(sorted(inserted), sorted((1..=2000).map(project).collect()));
    exec(
        source,
        "UPDATE projects SET description = 'even' WHERE id % 2 = 0",
    )
    .await;
    assert_eq!(captured.drain().await.len(), 1000);
    exec(source, "UPDATE projects SET description = 'even'").await;
    assert_eq!(
        captured.drain().await.len(),
        if captured.logical() { 2000 } else { 1000 },
        "only the rows whose description changed (every row rewritten in the logical mode)"
    );
    exec(source, "DELETE FROM projects WHERE id > 500").await;
    assert_eq!(captured.drain().await.len(), 1500);
}

async fn upserts_and_rolled_back_writes(mode: CaptureMode) {
    let captured = populated("capture-upserts", mode).await;
    let source = &captured.source;
    exec(
        source,
        "INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (4, 'zig')
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        sorted(
            captured
                .unchanged(vec![hashtag(1)])
                .into_iter()
                .chain([hashtag(4)])
                .collect()
        ),
        "the conflicting row did not change"
    );
    exec(
        source,
        "BEGIN; INSERT INTO users (id, name) VALUES (99, 'ghost'); ROLLBACK;",
    )
    .await;
    assert_eq!(
        captured.drain().await,
        vec![],
        "a rolled back write records nothing"
    );
}

/// Writes applied as a logical-replication subscriber applies them (`session_replication_role =
/// replica`) fire only triggers that are `ENABLE ALWAYS` (`tgenabled = 'A'`); origin-mode triggers
/// (`'O'`, the default) stay silent there. Setting the role needs a superuser, which the test
/// database user is not, so the test reads the triggers' mode from the catalog.
#[tokio::test]
async fn capture_triggers_fire_always_even_on_a_replication_subscriber() {
    let captured = ready_in("capture-always", CaptureMode::Outbox).await;
    let modes: Vec<(String, String)> = sqlx::query_as(
        "SELECT tgname::text, tgenabled::text FROM pg_trigger \
         WHERE tgname LIKE 'athens\\_capture\\_%' ORDER BY tgrelid, tgname",
    )
    .fetch_all(captured.source.pool())
    .await
    .unwrap();
    assert_eq!(modes.len(), 20, "{modes:?}");
    assert!(
        modes.iter().all(|(_, mode)| mode == "A"),
        "every capture trigger must be ENABLE ALWAYS: {modes:?}"
    );
}

/// A capture trigger switched back to origin-only (it would stop firing on a subscriber) is
/// reported by the capture check, like a missing or disabled one.
#[tokio::test]
async fn an_origin_only_trigger_fails_the_capture_check() {
    let captured = ready_in("capture-origin-only", CaptureMode::Outbox).await;
    let source = &captured.source;
    source
        .check_capture()
        .await
        .expect("capture is complete after setup");
    exec(
        source,
        "ALTER TABLE users ENABLE TRIGGER athens_capture_insert",
    )
    .await;
    let error = source.check_capture().await.unwrap_err().to_string();
    assert!(
        error.contains("users.athens_capture_insert"),
        "the check names the trigger: {error}"
    );
}

/// The change source reports its capture's health to the engine, which checks it periodically
/// while streaming: a trigger disabled behind Athens' back makes it unhealthy.
#[tokio::test]
async fn a_disabled_trigger_makes_the_capture_unhealthy() {
    use athens_core::ChangeSource;
    let captured = ready_in("capture-health", CaptureMode::Outbox).await;
    let source = &captured.source;
    source.capture_health().await.expect("healthy after setup");
    exec(
        source,
        "ALTER TABLE projects DISABLE TRIGGER athens_capture_update",
    )
    .await;
    let error = source.capture_health().await.unwrap_err();
    assert!(!error.is_retryable());
    assert!(
        error.to_string().contains("projects.athens_capture_update"),
        "{error}"
    );
}
