//! The source schema: sea-orm migrations that create the five tables, and a check that a database
//! Athens attaches to has what it reads.
//!
//! Assumptions beyond the task's diagram (see `SCHEMA.md`): identity `integer` ids, `NOT NULL` names,
//! unique project slugs and hashtag names, `created_at timestamptz NOT NULL DEFAULT now()`, composite
//! primary keys on the link tables led by `project_id`, `ON DELETE CASCADE` from link rows to both
//! parents, and a reverse index on each link table's second key (`user_projects(user_id)`,
//! `project_hashtags(hashtag_id)`) for the cascades and for resolving a user or hashtag to projects.
//!
//! `projects.updated_at timestamptz NOT NULL DEFAULT now()` is kept by the database, not by Athens
//! or the applications: the DEFAULT sets it on insert (a loader may give its own value), and the
//! `projects_updated_at` trigger (`BEFORE UPDATE`, only when the row changed) sets it to `now()` on
//! update. Athens only reads the tables, and every application writing them would otherwise have to
//! remember it; the capture triggers (`AFTER`, statement level) see the value the trigger set.
//!
//! Every statement uses `IF NOT EXISTS`, so migrating a database whose tables were created by hand
//! adds only the missing pieces. Migrations are tracked in `athens_migrations`.

use sea_orm::{TransactionTrait, sqlx};
use sea_orm_migration::prelude::*;
use tracing::info;

use crate::error::PgError;
use crate::source::PgSource;
use crate::tables::tables;

impl PgSource {
    /// Applies pending schema migrations; returns how many were applied now (0 when the schema is
    /// up to date).
    ///
    /// Runs in one transaction without statement timeout (creating an index on a large table may
    /// take a while) but with a 10 s lock timeout, so it never stalls writers for long.
    pub async fn migrate(&self) -> Result<usize, PgError> {
        let txn = self.db().begin().await?;
        txn.execute_unprepared("SET LOCAL lock_timeout = '10s'; SET LOCAL statement_timeout = 0")
            .await?;
        let pending: Vec<String> = Migrator::get_pending_migrations(&txn)
            .await?
            .iter()
            .map(|migration| migration.name().to_string())
            .collect();
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        for name in &pending {
            info!(migration = %name, "migration applied");
        }
        Ok(pending.len())
    }

    /// Fails with a `Misconfigured` error naming the first missing table or column Athens reads
    /// (tables are looked up in the connection's `search_path`).
    pub async fn check_schema(&self) -> Result<(), PgError> {
        check_schema(self).await
    }
}

async fn check_schema(source: &PgSource) -> Result<(), PgError> {
    // The columns Athens reads, per table: those of the table specification.
    let (tables, columns): (Vec<&str>, Vec<&str>) = tables()
        .iter()
        .flat_map(|table| {
            table
                .column_names()
                .into_iter()
                .map(|column| (table.name(), column))
        })
        .unzip();
    let rows: Vec<(String, String, bool, bool)> = sqlx::query_as(
        "SELECT r.tbl, r.col, to_regclass(r.tbl) IS NOT NULL, a.attname IS NOT NULL \
         FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS r(tbl, col, n) \
         LEFT JOIN pg_attribute a ON a.attrelid = to_regclass(r.tbl) AND a.attname = r.col \
           AND a.attnum > 0 AND NOT a.attisdropped \
         ORDER BY r.n",
    )
    .bind(&tables)
    .bind(&columns)
    .fetch_all(source.pool())
    .await?;
    for (table, column, table_exists, column_exists) in rows {
        if !table_exists {
            return Err(PgError::Misconfigured(format!(
                "table {table} is missing: run `athens migrate` to create the five tables, or point \
                 database.url at the database that holds them"
            )));
        }
        if !column_exists {
            return Err(PgError::Misconfigured(format!(
                "column {table}.{column} is missing: the table does not have the shape Athens reads \
                 (see athens-pg/SCHEMA.md)"
            )));
        }
    }
    Ok(())
}

/// Athens' schema migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![Box::new(CreateSourceTables), Box::new(AddProjectsUpdatedAt)]
    }

    fn migration_table_name() -> DynIden {
        "athens_migrations".into_iden()
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Users {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Hashtags {
    Table,
    Id,
    Name,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Projects {
    Table,
    Id,
    Name,
    Slug,
    Description,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum ProjectHashtags {
    Table,
    ProjectId,
    HashtagId,
}

#[derive(DeriveIden, Clone, Copy)]
enum UserProjects {
    Table,
    ProjectId,
    UserId,
}

/// Creates the five source tables, their keys and lookup indexes.
struct CreateSourceTables;

impl MigrationName for CreateSourceTables {
    fn name(&self) -> &str {
        "m20250601_000001_create_source_tables"
    }
}

/// A table of entities (users, hashtags, projects) with its identity key `id`; the other columns
/// follow.
fn entity_table(table: impl IntoIden, id: impl IntoIden) -> TableCreateStatement {
    Table::create()
        .table(table)
        .if_not_exists()
        .col(identity(id))
        .to_owned()
}

fn identity(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .integer()
        .not_null()
        .extra("GENERATED BY DEFAULT AS IDENTITY")
        .primary_key()
        .to_owned()
}

fn created_at(column: impl IntoIden) -> ColumnDef {
    ColumnDef::new(column)
        .timestamp_with_time_zone()
        .not_null()
        .default(Expr::current_timestamp())
        .to_owned()
}

/// A link table: two `NOT NULL` integer keys, a composite primary key (first, second) and a
/// cascading foreign key to each parent.
fn link_table(
    table: impl IntoIden + Copy,
    first: (
        impl IntoIden + Copy,
        impl IntoIden + Copy,
        impl IntoIden + Copy,
    ),
    second: (
        impl IntoIden + Copy,
        impl IntoIden + Copy,
        impl IntoIden + Copy,
    ),
) -> TableCreateStatement {
    let (first_column, first_parent, first_key) = first;
    let (second_column, second_parent, second_key) = second;
    Table::create()
        .table(table)
        .if_not_exists()
        .col(ColumnDef::new(first_column).integer().not_null())
        .col(ColumnDef::new(second_column).integer().not_null())
        .primary_key(Index::create().col(first_column).col(second_column))
        .foreign_key(&mut cascading(
            table,
            first_column,
            (first_parent, first_key),
        ))
        .foreign_key(&mut cascading(
            table,
            second_column,
            (second_parent, second_key),
        ))
        .to_owned()
}

/// A foreign key from `column` of `table` to `parent`'s `key`, deleting the row with its parent.
fn cascading(
    table: impl IntoIden,
    column: impl IntoIden,
    (parent, key): (impl IntoIden, impl IntoIden),
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(parent, key)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for CreateSourceTables {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            entity_table(Users::Table, Users::Id)
                .col(ColumnDef::new(Users::Name).string().not_null())
                .col(created_at(Users::CreatedAt))
                .to_owned(),
            entity_table(Hashtags::Table, Hashtags::Id)
                .col(
                    ColumnDef::new(Hashtags::Name)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(created_at(Hashtags::CreatedAt))
                .to_owned(),
            entity_table(Projects::Table, Projects::Id)
                .col(ColumnDef::new(Projects::Name).string().not_null())
                .col(
                    ColumnDef::new(Projects::Slug)
                        .string()
                        .not_null()
                        .unique_key(),
                )
                .col(ColumnDef::new(Projects::Description).text().null())
                .col(created_at(Projects::CreatedAt))
                .to_owned(),
            link_table(
                ProjectHashtags::Table,
                (ProjectHashtags::ProjectId, Projects::Table, Projects::Id),
                (ProjectHashtags::HashtagId, Hashtags::Table, Hashtags::Id),
            ),
            link_table(
                UserProjects::Table,
                (UserProjects::ProjectId, Projects::Table, Projects::Id),
                (UserProjects::UserId, Users::Table, Users::Id),
            ),
        ];
        for table in tables {
            manager.create_table(table).await?;
        }
        // The link tables' keys lead with the project: the way from a hashtag or a user to its
        // projects needs an index of its own.
        for (name, table, column) in [
            (
                "project_hashtags_hashtag_id_idx",
                ProjectHashtags::Table.into_iden(),
                ProjectHashtags::HashtagId.into_iden(),
            ),
            (
                "user_projects_user_id_idx",
                UserProjects::Table.into_iden(),
                UserProjects::UserId.into_iden(),
            ),
        ] {
            let index = Index::create()
                .if_not_exists()
                .name(name)
                .table(table)
                .col(column)
                .to_owned();
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            UserProjects::Table.into_iden(),
            ProjectHashtags::Table.into_iden(),
            Projects::Table.into_iden(),
            Hashtags::Table.into_iden(),
            Users::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Adds `projects.updated_at` and the trigger keeping it (see the module doc).
struct AddProjectsUpdatedAt;

impl MigrationName for AddProjectsUpdatedAt {
    fn name(&self) -> &str {
        "m20261129_000002_add_projects_updated_at"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for AddProjectsUpdatedAt {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Existing rows take the time of the migration: their last change is unknown.
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE projects ADD COLUMN IF NOT EXISTS updated_at timestamptz NOT NULL \
                   DEFAULT now();
                 CREATE OR REPLACE FUNCTION projects_set_updated_at() RETURNS trigger \
                   LANGUAGE plpgsql AS $$ BEGIN NEW.updated_at := now(); RETURN NEW; END $$;
                 DROP TRIGGER IF EXISTS projects_updated_at ON projects;
                 CREATE TRIGGER projects_updated_at BEFORE UPDATE ON projects FOR EACH ROW \
                   WHEN (OLD.* IS DISTINCT FROM NEW.*) EXECUTE FUNCTION projects_set_updated_at();",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "DROP TRIGGER IF EXISTS projects_updated_at ON projects;
                 DROP FUNCTION IF EXISTS projects_set_updated_at();
                 ALTER TABLE IF EXISTS projects DROP COLUMN IF EXISTS updated_at;",
            )
            .await?;
        Ok(())
    }
}
