//! The table specification (the entities of `athens_pg::entity`) against what PostgreSQL does:
//! the triggers capture updates of exactly its columns, the schema check requires exactly its
//! columns, and the document queries read exactly its columns (column privileges prove it).
//! Adding a field to an entity without capturing or reading it, or the reverse, fails here.

use athens_core::KeysetPage;
use athens_core::{Change, DocumentSource, ProjectId};
use athens_pg::entity::{hashtags, project_hashtags, projects, user_projects, users};
use athens_pg::{PgError, PgSource};
use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable};

use crate::support::{config, drain, exec, hashtag, project, ready, user};

/// A source table as the entity describes it: its name and every column, keys included.
struct Spec {
    table: &'static str,
    columns: Vec<(&'static str, ColumnType)>,
}

fn spec<E: EntityTrait + Default>() -> Spec {
    Spec {
        table: E::default().table_name(),
        columns: E::Column::iter()
            .map(|column| (column.as_str(), column.def().get_column_type().clone()))
            .collect(),
    }
}

fn specs() -> [Spec; 5] {
    [
        spec::<users::Entity>(),
        spec::<hashtags::Entity>(),
        spec::<projects::Entity>(),
        spec::<project_hashtags::Entity>(),
        spec::<user_projects::Entity>(),
    ]
}

/// One user, hashtag and project (id 1 each), linked.
const ROWS: &str = "INSERT INTO users (id, name) VALUES (1, 'Ada');
     INSERT INTO hashtags (id, name) VALUES (1, 'rust');
     INSERT INTO projects (id, name, slug) VALUES (1, 'Athens', 'athens');
     INSERT INTO project_hashtags VALUES (1, 1);
     INSERT INTO user_projects VALUES (1, 1);";

#[tokio::test]
async fn updates_of_exactly_the_entity_columns_are_captured() {
    let source = ready("tables-captured").await;
    exec(&source, ROWS).await;
    drain(&source).await;
    for spec in specs() {
        let change = match spec.table {
            "users" => user(1),
            "hashtags" => hashtag(1),
            "projects" => project(1),
            // Link rows are only keys: their updates move pairs, tested in `capture`.
            _ => continue,
        };
        for (column, kind) in &spec.columns {
            if *column == "id" {
                continue;
            }
            let changed = match kind {
                ColumnType::String(_) | ColumnType::Text => {
                    format!("coalesce({column}, '') || '+'")
                }
                ColumnType::TimestampWithTimeZone => format!("{column} + interval '1 second'"),
                other => panic!("no new value for {}.{column} of type {other:?}", spec.table),
            };
            exec(
                &source,
                &format!(
                    "UPDATE {} SET {column} = {changed} WHERE id = 1",
                    spec.table
                ),
            )
            .await;
            assert_eq!(
                drain(&source).await,
                vec![change],
                "an update of {}.{column} is captured",
                spec.table
            );
        }
        exec(
            &source,
            &format!("ALTER TABLE {} ADD COLUMN unread text", spec.table),
        )
        .await;
        if spec.table == "projects" {
            // The `projects_updated_at` trigger stamps `updated_at`, a document column, on any
            // change of the row: such an update changes the document.
            exec(
                &source,
                "UPDATE projects SET unread = 'stamped' WHERE id = 1",
            )
            .await;
            assert_eq!(
                drain(&source).await,
                vec![change],
                "the trigger's updated_at is captured"
            );
            exec(
                &source,
                "ALTER TABLE projects DISABLE TRIGGER projects_updated_at",
            )
            .await;
        }
        exec(
            &source,
            &format!("UPDATE {} SET unread = 'x' WHERE id = 1", spec.table),
        )
        .await;
        assert_eq!(
            drain(&source).await,
            Vec::<Change>::new(),
            "an update of a column no entity names changes no document ({})",
            spec.table
        );
    }
}

#[tokio::test]
async fn the_schema_check_requires_exactly_the_entity_columns() {
    let source = ready("tables-required").await;
    for spec in specs() {
        for (column, _) in &spec.columns {
            let table = spec.table;
            exec(
                &source,
                &format!("ALTER TABLE {table} RENAME COLUMN {column} TO renamed"),
            )
            .await;
            let error = source.check_schema().await.unwrap_err();
            assert!(
                matches!(&error, PgError::Misconfigured(m) if m.contains(&format!("column {table}.{column} is missing"))),
                "{error}"
            );
            exec(
                &source,
                &format!("ALTER TABLE {table} RENAME COLUMN renamed TO {column}"),
            )
            .await;
        }
        exec(
            &source,
            &format!("ALTER TABLE {} ADD COLUMN unread text", spec.table),
        )
        .await;
    }
    source.check_schema().await.unwrap();
}

/// A role that may read exactly the entity columns (and take a version), logged in as it.
struct Reader {
    name: String,
    source: PgSource,
}

impl Reader {
    async fn new(owner: &PgSource) -> Reader {
        let database: String = sea_orm::sqlx::query_scalar("SELECT current_database()")
            .fetch_one(owner.pool())
            .await
            .unwrap();
        let name = format!("reader_{}", &database[database.len() - 8..]);
        let mut grants = format!(
            "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN PASSWORD '{name}';
             GRANT USAGE ON SCHEMA athens TO {name};
             GRANT USAGE ON SEQUENCE athens.version TO {name};"
        );
        for spec in specs() {
            let columns: Vec<&str> = spec.columns.iter().map(|(column, _)| *column).collect();
            grants.push_str(&format!(
                "GRANT SELECT ({}) ON {} TO {name};",
                columns.join(", "),
                spec.table
            ));
        }
        exec(owner, &grants).await;
        let url = &owner.config().url;
        let url = url.expose();
        let (scheme, rest) = url.split_once("://").unwrap();
        let (_, host) = rest.rsplit_once('@').unwrap();
        let source = PgSource::connect(&config(&format!("{scheme}://{name}:{name}@{host}")))
            .await
            .unwrap();
        Reader { name, source }
    }

    /// Whether every document read works: by id and by page.
    async fn reads(&self) -> bool {
        let by_id = self.source.load(&[ProjectId(1)]).await;
        let by_page = self.source.load_page(KeysetPage::first(10)).await;
        match (by_id, by_page) {
            (Ok(by_id), Ok(by_page)) => {
                assert_eq!(by_id.documents.len(), 1);
                assert_eq!(by_page.documents, by_id.documents);
                true
            }
            _ => false,
        }
    }

    async fn drop(self, owner: &PgSource) {
        self.source.close().await;
        exec(
            owner,
            &format!(
                "REVOKE ALL ON {1} FROM {0}; REVOKE ALL ON SEQUENCE athens.version FROM {0};
                 REVOKE ALL ON SCHEMA athens FROM {0}; DROP ROLE {0}",
                self.name,
                specs().map(|spec| spec.table).join(", ")
            ),
        )
        .await;
    }
}

#[tokio::test]
async fn the_document_queries_read_exactly_the_entity_columns() {
    let owner = ready("tables-read").await;
    exec(&owner, ROWS).await;
    let reader = Reader::new(&owner).await;
    assert!(
        reader.reads().await,
        "the entity columns are all the document queries read"
    );
    for spec in specs() {
        for (column, _) in &spec.columns {
            let (table, role) = (spec.table, &reader.name);
            exec(
                &owner,
                &format!("REVOKE SELECT ({column}) ON {table} FROM {role}"),
            )
            .await;
            assert!(
                !reader.reads().await,
                "the document queries read {table}.{column}"
            );
            exec(
                &owner,
                &format!("GRANT SELECT ({column}) ON {table} TO {role}"),
            )
            .await;
        }
    }
    assert!(reader.reads().await);
    reader.drop(&owner).await;
}
