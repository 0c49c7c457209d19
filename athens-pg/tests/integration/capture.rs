//! What the triggers record for every table and operation: inserts, updates (including no-ops and
//! key changes), deletes, truncates, bulk statements and cascades.

use athens_core::Table;

use crate::support::{
    credited, drain, exec, hashtag, project, ready, sorted, tagged, truncated, user,
};

/// Three users, three hashtags, two projects, with links; the outbox drained.
async fn populated(test: &str) -> athens_pg::PgSource {
    let source = ready(test).await;
    exec(
        &source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Grace'), (3, 'Alan');
         INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (2, 'search'), (3, 'go');
         INSERT INTO projects (id, name, slug, description) VALUES
             (1, 'Athens', 'athens', 'sync'), (2, 'Sparta', 'sparta', NULL);
         INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1), (1, 2), (2, 2);
         INSERT INTO user_projects (project_id, user_id) VALUES (1, 1), (1, 2), (2, 2);",
    )
    .await;
    drain(&source).await;
    source
}

#[tokio::test]
async fn inserts_of_every_table_are_captured() {
    let source = ready("capture-inserts").await;
    exec(
        &source,
        "INSERT INTO users (id, name) VALUES (7, 'Ada');
         INSERT INTO hashtags (id, name) VALUES (8, 'rust');
         INSERT INTO projects (id, name, slug) VALUES (9, 'Athens', 'athens');
         INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (9, 8);
         INSERT INTO user_projects (project_id, user_id) VALUES (9, 7);",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![
            user(7),
            hashtag(8),
            project(9),
            tagged(9, 8),
            credited(9, 7)
        ])
    );
}

#[tokio::test]
async fn updates_of_document_columns_are_captured_and_no_ops_are_not() {
    let source = populated("capture-updates").await;
    exec(&source, "UPDATE users SET name = 'Ada King' WHERE id = 1").await;
    assert_eq!(drain(&source).await, vec![user(1)]);
    exec(&source, "UPDATE users SET name = 'Ada King' WHERE id = 1").await;
    assert_eq!(
        drain(&source).await,
        vec![],
        "same value: nothing to record"
    );
    exec(
        &source,
        "UPDATE users SET created_at = created_at - interval '1 day' WHERE id = 3",
    )
    .await;
    assert_eq!(drain(&source).await, vec![user(3)]);

    exec(
        &source,
        "UPDATE hashtags SET name = 'rustlang' WHERE id = 1",
    )
    .await;
    assert_eq!(drain(&source).await, vec![hashtag(1)]);
    exec(&source, "UPDATE hashtags SET name = name").await;
    assert_eq!(drain(&source).await, vec![]);

    exec(
        &source,
        "UPDATE projects SET description = 'now described' WHERE id = 2",
    )
    .await;
    assert_eq!(drain(&source).await, vec![project(2)]);
    exec(
        &source,
        "UPDATE projects SET description = NULL WHERE id = 2",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        vec![project(2)],
        "to NULL is a change"
    );
    exec(
        &source,
        "UPDATE projects SET description = NULL WHERE id = 2",
    )
    .await;
    assert_eq!(drain(&source).await, vec![], "NULL to NULL is not");
    exec(
        &source,
        "UPDATE projects SET slug = 'athens-sync', name = 'Athens' WHERE id = 1",
    )
    .await;
    assert_eq!(drain(&source).await, vec![project(1)]);
}

#[tokio::test]
async fn link_updates_record_the_pairs_that_moved() {
    let source = populated("capture-link-updates").await;
    exec(
        &source,
        "UPDATE project_hashtags SET hashtag_id = 3 WHERE project_id = 2",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![tagged(2, 2), tagged(2, 3)])
    );
    exec(&source, "UPDATE user_projects SET user_id = user_id").await;
    assert_eq!(
        drain(&source).await,
        vec![],
        "unchanged pairs record nothing"
    );
    exec(
        &source,
        "UPDATE user_projects SET user_id = 3 WHERE project_id = 2",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![credited(2, 2), credited(2, 3)])
    );
}

#[tokio::test]
async fn a_key_change_records_the_old_and_the_new_key() {
    let source = populated("capture-key-change").await;
    exec(&source, "UPDATE users SET id = 30 WHERE id = 3").await;
    assert_eq!(drain(&source).await, sorted(vec![user(3), user(30)]));
}

#[tokio::test]
async fn deletes_are_captured_with_their_cascades() {
    let source = populated("capture-deletes").await;
    exec(
        &source,
        "DELETE FROM user_projects WHERE project_id = 1 AND user_id = 1",
    )
    .await;
    assert_eq!(drain(&source).await, vec![credited(1, 1)]);

    exec(&source, "DELETE FROM hashtags WHERE id = 2").await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![hashtag(2), tagged(1, 2), tagged(2, 2)]),
        "deleting a hashtag reaches every project that used it"
    );

    exec(&source, "DELETE FROM users WHERE id = 2").await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![user(2), credited(1, 2), credited(2, 2)])
    );

    exec(&source, "DELETE FROM projects WHERE id = 1").await;
    assert_eq!(drain(&source).await, sorted(vec![project(1), tagged(1, 1)]));
    exec(&source, "DELETE FROM project_hashtags").await;
    assert_eq!(drain(&source).await, vec![], "nothing left to delete");
}

#[tokio::test]
async fn truncates_are_captured_for_every_table_truncated() {
    let source = populated("capture-truncates").await;
    exec(&source, "TRUNCATE user_projects").await;
    assert_eq!(drain(&source).await, vec![truncated(Table::UserProjects)]);
    exec(&source, "TRUNCATE hashtags CASCADE").await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![
            truncated(Table::Hashtags),
            truncated(Table::ProjectHashtags)
        ])
    );
    exec(&source, "TRUNCATE users, projects CASCADE").await;
    assert_eq!(
        drain(&source).await,
        sorted(vec![
            truncated(Table::Users),
            truncated(Table::Projects),
            truncated(Table::ProjectHashtags),
            truncated(Table::UserProjects),
        ])
    );
}

#[tokio::test]
async fn bulk_statements_record_every_row() {
    let source = ready("capture-bulk").await;
    exec(
        &source,
        "INSERT INTO projects (id, name, slug)
             SELECT g, 'p' || g, 'p-' || g FROM generate_series(1, 2000) g",
    )
    .await;
    let inserted = drain(&source).await;
    assert_eq!(inserted.len(), 2000);
    assert_eq!(sorted(inserted), sorted((1..=2000).map(project).collect()));
    exec(
        &source,
        "UPDATE projects SET description = 'even' WHERE id % 2 = 0",
    )
    .await;
    assert_eq!(drain(&source).await.len(), 1000);
    exec(&source, "UPDATE projects SET description = 'even'").await;
    assert_eq!(
        drain(&source).await.len(),
        1000,
        "only the rows whose description changed"
    );
    exec(&source, "DELETE FROM projects WHERE id > 500").await;
    assert_eq!(drain(&source).await.len(), 1500);
}

#[tokio::test]
async fn upserts_and_rolled_back_writes() {
    let source = populated("capture-upserts").await;
    exec(
        &source,
        "INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (4, 'zig')
             ON CONFLICT (id) DO UPDATE SET name = excluded.name",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        vec![hashtag(4)],
        "the conflicting row did not change"
    );
    exec(
        &source,
        "BEGIN; INSERT INTO users (id, name) VALUES (99, 'ghost'); ROLLBACK;",
    )
    .await;
    assert_eq!(
        drain(&source).await,
        vec![],
        "a rolled back write records nothing"
    );
}
