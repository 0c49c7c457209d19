//! Seed data: determinism, shape, and adding to tables that hold rows.

use athens_core::{DocumentSource, ProjectId};
use athens_pg::{PgSource, SeedOptions};
use sea_orm::sqlx;

use crate::support::{empty, exec, scalar};

fn options(seed: u64) -> SeedOptions {
    SeedOptions {
        projects: 1_500,
        users: 120,
        hashtags: 80,
        seed,
    }
}

/// Every row of the five tables, as text, in key order.
async fn dump(source: &PgSource) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT format('u %s %s %s', id, name, created_at) FROM users
         UNION ALL SELECT format('h %s %s %s', id, name, created_at) FROM hashtags
         UNION ALL SELECT format('p %s %s %s %s %s', id, name, slug, description, created_at)
             FROM projects
         UNION ALL SELECT format('ph %s %s', project_id, hashtag_id) FROM project_hashtags
         UNION ALL SELECT format('up %s %s', project_id, user_id) FROM user_projects
         ORDER BY 1",
    )
    .fetch_all(source.pool())
    .await
    .unwrap()
}

async fn migrated(test: &str) -> PgSource {
    let (source, _) = empty(test).await;
    source.migrate().await.unwrap();
    source
}

#[tokio::test]
async fn the_same_seed_gives_the_same_rows() {
    let one = migrated("seed-same-a").await;
    let two = migrated("seed-same-b").await;
    let mut calls = Vec::new();
    let report = one
        .seed(&options(9), |done| calls.push(done))
        .await
        .unwrap();
    two.seed(&options(9), |_| {}).await.unwrap();
    assert_eq!(report.projects, 1_500);
    assert_eq!(report.users, 120);
    assert_eq!(report.hashtags, 80);
    assert_eq!(calls.last(), Some(&1_500));
    let rows = dump(&one).await;
    assert_eq!(
        rows.len() as u64,
        120 + 80 + 1_500 + report.project_hashtags + report.user_projects
    );
    assert_eq!(rows, dump(&two).await);

    let three = migrated("seed-same-c").await;
    three.seed(&options(10), |_| {}).await.unwrap();
    assert_ne!(rows, dump(&three).await, "another seed, other rows");
}

#[tokio::test]
async fn seeded_rows_have_a_realistic_shape() {
    let source = migrated("seed-shape").await;
    source.seed(&options(1), |_| {}).await.unwrap();
    let counts = |sql: &'static str| scalar(&source, sql);
    assert_eq!(
        counts(
            "SELECT count(*) FROM (SELECT project_id FROM user_projects GROUP BY 1
                HAVING count(*) NOT BETWEEN 1 AND 3) x"
        )
        .await,
        0,
        "1 to 3 creators"
    );
    assert_eq!(
        counts(
            "SELECT count(*) FROM projects p WHERE NOT EXISTS
                (SELECT 1 FROM user_projects up WHERE up.project_id = p.id)"
        )
        .await,
        0,
        "no project without a creator"
    );
    assert_eq!(
        counts(
            "SELECT coalesce(max(n), 0) FROM (SELECT count(*) AS n FROM project_hashtags
                GROUP BY project_id) x"
        )
        .await,
        6,
        "at most 6 hashtags, and some have 6"
    );
    assert!(
        counts(
            "SELECT count(*) FROM projects p WHERE NOT EXISTS
                (SELECT 1 FROM project_hashtags ph WHERE ph.project_id = p.id)"
        )
        .await
            > 0,
        "some projects have no hashtag"
    );
    let busiest = counts(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM user_projects
                          GROUP BY user_id) x",
    )
    .await;
    let typical = counts(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY n)::bigint
                          FROM (SELECT count(*) AS n FROM user_projects GROUP BY user_id) x",
    )
    .await;
    assert!(
        busiest > 5 * typical,
        "skewed creators: busiest {busiest}, median {typical}"
    );
    let top = counts("SELECT count(*) FROM project_hashtags WHERE hashtag_id = 1").await;
    let tail = counts("SELECT count(*) FROM project_hashtags WHERE hashtag_id = 80").await;
    assert!(
        top > 10 * tail.max(1),
        "popular hashtags: rank 1 {top}, rank 80 {tail}"
    );
    assert!(
        counts("SELECT count(DISTINCT length(description) / 100) FROM projects").await >= 3,
        "descriptions of varied length"
    );

    let demo = source.load(&[ProjectId(1)]).await;
    assert!(demo.is_err(), "capture not installed: no version sequence");
    source.install_capture().await.unwrap();
    let snapshot = source.load(&[ProjectId(1)]).await.unwrap();
    let document = &snapshot.documents[0];
    assert_eq!(document.slug, "elasticsearch-sync");
    assert_eq!(
        document.description,
        "Keeps Elasticsearch in sync with PostgreSQL"
    );
    assert_eq!(document.creators[0].name, "John Smith");
    let tags: Vec<&str> = document.hashtags.iter().map(|h| h.name.as_str()).collect();
    assert!(
        tags.contains(&"rust") && tags.contains(&"search"),
        "{tags:?}"
    );

    exec(&source, "INSERT INTO users (name) VALUES ('after seed')").await;
    exec(
        &source,
        "INSERT INTO projects (name, slug) VALUES ('after', 'after-seed')",
    )
    .await;
}

#[tokio::test]
async fn seeding_again_adds_rows_after_the_existing_ones() {
    let source = migrated("seed-append").await;
    source.seed(&options(3), |_| {}).await.unwrap();
    let report = source.seed(&options(3), |_| {}).await.unwrap();
    assert_eq!(report.projects, 1_500);
    assert_eq!(report.users, 120, "hand-written users are not repeated");
    assert_eq!(report.hashtags, 0, "same names: hashtags reused");
    assert_eq!(
        scalar(&source, "SELECT count(*) FROM projects").await,
        3_000
    );
    assert_eq!(
        scalar(
            &source,
            "SELECT count(*) FROM users WHERE name IN
             ('John Smith', 'Jane Doe', 'Ada Lovelace', 'Grace Hopper', 'Alan Turing')"
        )
        .await,
        5,
        "hand-written users once"
    );
    assert_eq!(
        scalar(
            &source,
            "SELECT count(*) FROM projects WHERE slug = 'elasticsearch-sync'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn seeding_needs_the_schema() {
    let (source, _) = empty("seed-no-schema").await;
    let error = source
        .seed(&options(1), |_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("athens migrate"), "{error}");
}
