//! Installing and removing capture, migrating, and attaching to tables Athens did not create.

use std::time::Duration;

use athens_core::{ChangeSource, DocumentSource, ProjectId, SourceError, SourceLookup};

use crate::support::{drain, empty, exec, project, ready, scalar, user};

#[tokio::test]
async fn migrate_and_capture_are_idempotent_and_teardown_keeps_the_tables() {
    let (source, _) = empty("setup-idempotent").await;
    assert_eq!(source.migrate().await.unwrap(), 2);
    assert_eq!(source.migrate().await.unwrap(), 0);
    source.check_schema().await.unwrap();
    source.install_capture().await.unwrap();
    source.install_capture().await.unwrap();
    source.check_capture().await.unwrap();
    exec(&source, "INSERT INTO users (id, name) VALUES (1, 'Ada')").await;
    assert_eq!(
        drain(&source).await,
        vec![user(1)],
        "one trigger per event, not two"
    );

    exec(&source, "INSERT INTO users (id, name) VALUES (2, 'Grace')").await;
    source.install_capture().await.unwrap();
    assert_eq!(
        drain(&source).await,
        vec![user(2)],
        "reinstalling keeps pending changes"
    );

    source.remove_capture().await.unwrap();
    source.remove_capture().await.unwrap();
    let error = SourceError::from(source.check_capture().await.unwrap_err());
    assert!(
        matches!(&error, SourceError::Misconfigured { message: m, .. } if m.contains("athens setup")),
        "{error}"
    );
    assert_eq!(scalar(&source, "SELECT count(*) FROM users").await, 2);
    exec(&source, "INSERT INTO users (id, name) VALUES (3, 'Alan')").await;
    assert_eq!(
        scalar(
            &source,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'athens'"
        )
        .await,
        0
    );

    source.install_capture().await.unwrap();
    exec(
        &source,
        "UPDATE users SET name = 'Alan Turing' WHERE id = 3",
    )
    .await;
    assert_eq!(drain(&source).await, vec![user(3)]);
}

#[tokio::test]
async fn a_disabled_trigger_is_reported() {
    let source = ready("setup-disabled").await;
    exec(
        &source,
        "ALTER TABLE projects DISABLE TRIGGER athens_capture_update",
    )
    .await;
    let error = source.check_capture().await.unwrap_err().to_string();
    assert!(error.contains("projects.athens_capture_update"), "{error}");
}

/// Tables written by hand: bigint and serial ids, extra columns, different constraint names.
const PLAIN_SQL: &str = "
    CREATE TABLE users (id bigserial PRIMARY KEY, name text NOT NULL, email text,
        created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE hashtags (id serial PRIMARY KEY, name varchar(64) NOT NULL UNIQUE,
        created_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE projects (id bigserial PRIMARY KEY, name text NOT NULL, slug text NOT NULL UNIQUE,
        description text, created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(), views integer NOT NULL DEFAULT 0);
    CREATE TABLE project_hashtags (
        hashtag_id integer NOT NULL REFERENCES hashtags ON DELETE CASCADE,
        project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
        PRIMARY KEY (hashtag_id, project_id));
    CREATE TABLE user_projects (
        project_id bigint NOT NULL REFERENCES projects ON DELETE CASCADE,
        user_id bigint NOT NULL REFERENCES users ON DELETE CASCADE,
        PRIMARY KEY (user_id, project_id));
";

#[tokio::test]
async fn attaches_to_tables_created_by_plain_sql() {
    let (source, _) = empty("setup-attach").await;
    exec(&source, PLAIN_SQL).await;
    source.check_schema().await.unwrap();
    source.install_capture().await.unwrap();
    source.check_capture().await.unwrap();
    exec(
        &source,
        "INSERT INTO users (name, email) VALUES ('Ada', 'ada@example.com');
         INSERT INTO hashtags (name) VALUES ('rust');
         INSERT INTO projects (name, slug, description) VALUES ('Athens', 'athens', 'sync');
         INSERT INTO project_hashtags (hashtag_id, project_id) VALUES (1, 1);
         INSERT INTO user_projects (project_id, user_id) VALUES (1, 1);",
    )
    .await;
    assert_eq!(drain(&source).await.len(), 5);
    exec(&source, "UPDATE projects SET views = views + 1").await;
    exec(&source, "UPDATE users SET email = 'ada@lovelace.dev'").await;
    assert_eq!(
        drain(&source).await,
        vec![],
        "columns documents do not use are ignored"
    );
    exec(
        &source,
        "UPDATE projects SET description = 'keeps things in sync'",
    )
    .await;
    assert_eq!(drain(&source).await, vec![project(1)]);

    let snapshot = source.load(&[ProjectId(1)]).await.unwrap();
    let document = &snapshot.documents[0];
    assert_eq!(document.hashtags[0].name, "rust");
    assert_eq!(document.creators[0].name, "Ada");
    assert_eq!(source.count().await.unwrap(), 1);

    assert_eq!(
        source.migrate().await.unwrap(),
        2,
        "migrating an attached database adds only what is missing"
    );
    source.check_schema().await.unwrap();
    assert!(source.poll(10, Duration::ZERO).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_table_or_column_is_named() {
    let (source, _) = empty("setup-missing").await;
    let error = SourceError::from(source.check_schema().await.unwrap_err());
    assert!(
        matches!(&error, SourceError::Misconfigured { message: m, .. }
            if m.contains("table users is missing: run `athens migrate`")),
        "{error}"
    );
    exec(&source, PLAIN_SQL).await;
    exec(&source, "ALTER TABLE projects DROP COLUMN slug").await;
    let error = source.check_schema().await.unwrap_err().to_string();
    assert!(error.contains("column projects.slug is missing"), "{error}");
    assert!(
        source.install_capture().await.is_err(),
        "capture needs the tables first"
    );
}
