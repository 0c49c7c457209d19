//! Document reads: versions ordered across sources, set-based loads, keyset pages, resolution of
//! users and hashtags to projects.

use athens_core::KeysetPage;
use std::collections::BTreeSet;

use athens_core::{DocumentSource, HashtagId, ProjectId, SourceLookup, UserId, Version};
use athens_pg::PgSource;

use crate::support::{config, exec, ready};

#[tokio::test]
async fn versions_strictly_increase_across_loads_and_sources() {
    let first = ready("versions").await;
    let second = PgSource::connect(&config(first.config().url.expose()))
        .await
        .unwrap();
    exec(
        &first,
        "INSERT INTO projects (id, name, slug) VALUES (1, 'A', 'a')",
    )
    .await;
    let mut last = Version(0);
    for round in 0..20 {
        let source = if round % 2 == 0 { &first } else { &second };
        let snapshot = if round % 3 == 0 {
            source.load_page(KeysetPage::first(10)).await.unwrap()
        } else {
            source.load(&[ProjectId(1)]).await.unwrap()
        };
        assert!(
            snapshot.version > last,
            "{:?} after {last:?}",
            snapshot.version
        );
        last = snapshot.version;
    }
    // Concurrent reads from both sources never share a version.
    let reads = (0..16).map(|n| {
        let source = if n % 2 == 0 {
            first.clone()
        } else {
            second.clone()
        };
        tokio::spawn(async move { source.load(&[ProjectId(1)]).await.unwrap().version })
    });
    let mut versions = BTreeSet::new();
    for read in reads {
        let version = read.await.unwrap();
        assert!(version > last);
        versions.insert(version);
    }
    assert_eq!(versions.len(), 16);
}

#[tokio::test]
async fn versions_keep_growing_after_capture_is_reinstalled() {
    let source = ready("versions-reinstall").await;
    let before = source.load(&[]).await.unwrap().version;
    source.remove_capture().await.unwrap();
    source.install_capture().await.unwrap();
    let after = source.load(&[]).await.unwrap().version;
    assert!(after > before, "{after:?} after {before:?}");
}

#[tokio::test]
async fn loads_assemble_documents_and_report_missing_ids() {
    let source = ready("documents-load").await;
    exec(
        &source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Grace');
         INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (2, 'search');
         INSERT INTO projects (id, name, slug, description) VALUES
             (1, 'Athens', 'athens', 'Keeps indexes in sync'), (2, 'Bare', 'bare', NULL),
             (3, 'Other', 'other', 'x');
         INSERT INTO project_hashtags VALUES (2, 1), (1, 2), (1, 1), (3, 1);
         INSERT INTO user_projects (project_id, user_id) VALUES (1, 2), (1, 1), (3, 2);",
    )
    .await;
    let snapshot = source
        .load(&[ProjectId(2), ProjectId(1), ProjectId(9), ProjectId(1)])
        .await
        .unwrap();
    assert_eq!(snapshot.missing, vec![ProjectId(9)]);
    assert_eq!(snapshot.documents.len(), 2);
    let athens = &snapshot.documents[0];
    assert_eq!(athens.id, ProjectId(1));
    assert_eq!(athens.description, "Keeps indexes in sync");
    assert_eq!(
        athens
            .hashtags
            .iter()
            .map(|h| h.name.as_str())
            .collect::<Vec<_>>(),
        vec!["rust", "search"]
    );
    assert_eq!(
        athens.creators.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![UserId(1), UserId(2)]
    );
    let bare = &snapshot.documents[1];
    assert_eq!(bare.description, "", "NULL description reads as empty");
    assert!(bare.creators.is_empty());

    let empty = source.load(&[]).await.unwrap();
    assert!(empty.documents.is_empty() && empty.missing.is_empty());

    let page = source
        .load_page(KeysetPage::after(Some(ProjectId(1)), 1))
        .await
        .unwrap();
    assert_eq!(
        page.documents.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![ProjectId(2)]
    );
    assert_eq!(source.count().await.unwrap(), 3);

    let touched = source
        .projects_touched(&[UserId(2)], &[HashtagId(2)])
        .await
        .unwrap();
    assert_eq!(touched, vec![ProjectId(1), ProjectId(3)]);
    assert!(source.projects_touched(&[], &[]).await.unwrap().is_empty());
    assert!(source.user_exists(UserId(2)).await.unwrap());
    assert!(!source.user_exists(UserId(3)).await.unwrap());
}

#[tokio::test]
async fn a_load_reads_one_consistent_state() {
    let source = ready("documents-consistent").await;
    exec(
        &source,
        "INSERT INTO users (id, name) VALUES (1, 'Ada');
         INSERT INTO projects (id, name, slug)
             SELECT g, 'p' || g, 'p-' || g FROM generate_series(1, 3000) g;
         INSERT INTO user_projects SELECT g, 1 FROM generate_series(1, 3000) g;",
    )
    .await;
    // A writer renames the user back and forth while loads run: every load sees one name only.
    let writer = source.clone();
    let renames = tokio::spawn(async move {
        for n in 0..40 {
            exec(
                &writer,
                &format!("UPDATE users SET name = 'Ada {n}' WHERE id = 1"),
            )
            .await;
        }
    });
    let ids: Vec<ProjectId> = (1..=3000).map(ProjectId).collect();
    for _ in 0..10 {
        let snapshot = source.load(&ids).await.unwrap();
        let names: BTreeSet<&str> = snapshot
            .documents
            .iter()
            .flat_map(|d| d.creators.iter().map(|c| c.name.as_str()))
            .collect();
        assert_eq!(names.len(), 1, "one snapshot, one name: {names:?}");
    }
    renames.await.unwrap();
}

#[tokio::test]
async fn ping_answers_with_the_tables_and_fails_without_them() {
    let (bare, _) = crate::support::empty("ping-bare").await;
    assert!(
        bare.ping().await.is_err(),
        "no projects table, no readiness"
    );
    let source = ready("ping").await;
    source.ping().await.unwrap();
}
