//! The core sync engine over this adapter and the in-memory index: what the index holds after
//! draining equals what PostgreSQL says, through every kind of change.

use athens_core::KeysetPage;
use std::num::NonZeroUsize;

use athens_core::{DocumentSource, EngineConfig};
use athens_pg::{CaptureMode, PgSource, SeedOptions};

use crate::support::{SMALL_SEED, exec, quick_engine, ready_in, seeded_engine};

async fn expected(source: &PgSource) -> Vec<athens_core::ProjectDocument> {
    source
        .load_page(KeysetPage::first(100_000))
        .await
        .unwrap()
        .documents
}

#[tokio::test]
async fn the_engine_keeps_the_index_equal_to_postgres() {
    equal_to_postgres("engine", CaptureMode::Outbox).await;
}

#[tokio::test]
async fn the_engine_keeps_the_index_equal_to_postgres_through_logical_decoding() {
    equal_to_postgres("engine-logical", CaptureMode::Logical).await;
}

async fn equal_to_postgres(test: &str, mode: CaptureMode) {
    let captured = ready_in(test, mode).await;
    let source = captured.source.clone();
    let (engine, index) = seeded_engine(
        &source,
        captured.changes.clone(),
        &SeedOptions {
            projects: 300,
            users: 40,
            hashtags: 30,
            seed: 5,
        },
        EngineConfig {
            batch_size: NonZeroUsize::new(50).unwrap(),
            chunk_size: NonZeroUsize::new(40).unwrap(),
            ..quick_engine()
        },
    )
    .await;
    engine.acquire_lease().await.unwrap();
    engine.drain().await.unwrap();
    assert_eq!(index.live_documents(), expected(&source).await);
    assert_eq!(index.live_documents().len(), 300);

    exec(
        &source,
        "INSERT INTO projects (name, slug, description) VALUES ('New', 'brand-new', 'fresh');
         INSERT INTO user_projects (project_id, user_id)
             SELECT id, 1 FROM projects WHERE slug = 'brand-new';
         INSERT INTO project_hashtags (project_id, hashtag_id)
             SELECT id, 2 FROM projects WHERE slug = 'brand-new';
         UPDATE users SET name = 'John Q. Smith' WHERE id = 1;
         UPDATE hashtags SET name = 'full-text-search' WHERE id = 2;
         DELETE FROM hashtags WHERE id = 3;
         DELETE FROM users WHERE id = 7;
         DELETE FROM projects WHERE id IN (10, 11, 12);
         UPDATE projects SET description = 'rewritten' WHERE id BETWEEN 20 AND 60;",
    )
    .await;
    engine.drain().await.unwrap();
    assert_eq!(index.live_documents(), expected(&source).await);
    let smith = index
        .live_documents()
        .into_iter()
        .find(|d| d.slug == "elasticsearch-sync")
        .unwrap();
    assert_eq!(smith.creators[0].name, "John Q. Smith");

    exec(&source, "TRUNCATE hashtags CASCADE").await;
    engine.drain().await.unwrap();
    let documents = index.live_documents();
    assert_eq!(documents, expected(&source).await);
    assert!(documents.iter().all(|d| d.hashtags.is_empty()));
    let backlog = athens_core::ChangeSource::backlog(captured.changes.as_ref())
        .await
        .unwrap();
    assert_eq!(backlog.pending, 0);
    engine.release_lease().await.unwrap();
}

/// Issue 12, finding 8: truncating an empty link table does not rebuild the index; truncating it
/// once it holds rows does (outbox mode, through the engine).
#[tokio::test]
async fn truncating_an_empty_link_table_does_not_rebuild_the_index() {
    let captured = ready_in("engine-truncate-empty", CaptureMode::Outbox).await;
    let source = captured.source.clone();
    let (engine, index) = seeded_engine(
        &source,
        captured.changes.clone(),
        &SMALL_SEED,
        quick_engine(),
    )
    .await;
    engine.acquire_lease().await.unwrap();
    engine.drain().await.unwrap();
    exec(&source, "DELETE FROM project_hashtags").await;
    engine.drain().await.unwrap();
    let live = index.live_name();
    assert!(live.is_some());

    exec(&source, "TRUNCATE project_hashtags").await;
    exec(&source, "UPDATE projects SET name = 'after' WHERE id = 1").await;
    engine.drain().await.unwrap();
    assert_eq!(index.live_name(), live, "no rebuild: nothing was truncated");
    assert_eq!(index.live_documents(), expected(&source).await);

    exec(
        &source,
        "INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1)",
    )
    .await;
    engine.drain().await.unwrap();
    exec(&source, "TRUNCATE project_hashtags").await;
    engine.drain().await.unwrap();
    assert_ne!(index.live_name(), live, "a table with a row: rebuilt");
    assert_eq!(index.live_documents(), expected(&source).await);
    engine.release_lease().await.unwrap();
}
