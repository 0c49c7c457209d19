//! The five source tables as Athens reads them, derived from the sea-orm entities of
//! [`entity`](crate::entity): the one specification from which the capture triggers (key and
//! document columns), the schema check (the columns required), setup and teardown (the table
//! lists of triggers, grants and the publication) and the document queries (their select lists)
//! all derive.
//!
//! Adding a column that documents use is a field of the entity's `Model` (and a migration creating
//! it): capture then records its updates, the schema check requires it and the document queries
//! read it, in the entity's field order.

use std::sync::LazyLock;

use athens_core::{Change, HashtagId, ProjectId, Table, UserId};
use sea_orm::{ColumnTrait, ColumnType, EntityTrait, IdenStatic, Iterable, PrimaryKeyToColumn};

use crate::entity::{hashtags, project_hashtags, projects, user_projects, users};

/// A key column of a source table and the outbox column it is recorded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Key {
    /// The column of the table.
    pub(crate) column: &'static str,
    /// The column of `athens.outbox` holding its value.
    pub(crate) outbox: &'static str,
}

/// How a document query reads a column, so that a row a database Athens attaches to holds against
/// our migration (a NULL name, a date the client cannot represent) neither fails nor skips the
/// read (see `documents`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Read {
    /// An integer id, read as `bigint` whether the table uses `integer` or `bigint`.
    Id,
    /// Text declared `NOT NULL`: a NULL reads as `''`.
    Text,
    /// A timestamp: NULL and dates outside years 1 to 9999 read as the epoch.
    Timestamp,
    /// Read as stored (nullable text stays `None`).
    AsStored,
}

impl Read {
    fn of(column: &impl ColumnTrait) -> Read {
        let def = column.def();
        match def.get_column_type() {
            ColumnType::Integer | ColumnType::BigInteger => Read::Id,
            ColumnType::String(_) | ColumnType::Text if !def.is_null() => Read::Text,
            ColumnType::TimestampWithTimeZone => Read::Timestamp,
            _ => Read::AsStored,
        }
    }
}

/// A non-key column that documents read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// The column's name.
    pub(crate) name: &'static str,
    /// How it is read.
    pub(crate) read: Read,
}

/// One source table: its keys and the columns documents read.
#[derive(Debug)]
pub(crate) struct SourceTable {
    /// Which table.
    pub(crate) table: Table,
    /// Key columns, the leading one (the id, or the project of a link) first.
    pub(crate) keys: Vec<Key>,
    /// Non-key columns documents read, in the entity's field order; an UPDATE changing none of
    /// them changes no document. Empty for link tables, whose rows are only keys.
    pub(crate) columns: Vec<Column>,
}

impl SourceTable {
    /// The table described by entity `E`, whose primary key columns are recorded in the outbox
    /// columns `outbox`, in order.
    fn of<E: EntityTrait>(table: Table, outbox: &[&'static str]) -> SourceTable {
        let keys: Vec<&'static str> = E::PrimaryKey::iter()
            .map(|key| key.into_column().as_str())
            .collect();
        let columns = E::Column::iter()
            .filter(|column| !keys.contains(&column.as_str()))
            .map(|column| Column {
                name: column.as_str(),
                read: Read::of(&column),
            })
            .collect();
        SourceTable {
            table,
            keys: keys
                .into_iter()
                .zip(outbox)
                .map(|(column, outbox)| Key { column, outbox })
                .collect(),
            columns,
        }
    }

    /// The table's SQL name.
    pub(crate) fn name(&self) -> &'static str {
        self.table.as_str()
    }

    /// Whether this is a link table: its key is the pair of rows it links.
    pub(crate) fn is_link(&self) -> bool {
        self.keys.len() > 1
    }

    /// The change a row of this table names, from the values of its [`keys`](Self::keys) in
    /// order (`None` for NULL or not known). A row without its leading key belongs to no document:
    /// no change. A link row whose other key is NULL (a database Athens attaches to may allow one)
    /// links its project to nothing: a change of the project, whose document is rebuilt from the
    /// current state.
    pub(crate) fn change(&self, keys: &[Option<i64>]) -> Option<Change> {
        let lead = keys.first().copied().flatten()?;
        let other = keys.get(1).copied().flatten();
        Some(match (self.table, other) {
            (Table::Users, _) => Change::User { user: UserId(lead) },
            (Table::Hashtags, _) => Change::Hashtag {
                hashtag: HashtagId(lead),
            },
            (Table::ProjectHashtags, Some(hashtag)) => Change::ProjectHashtag {
                project: ProjectId(lead),
                hashtag: HashtagId(hashtag),
            },
            (Table::UserProjects, Some(user)) => Change::UserProject {
                project: ProjectId(lead),
                user: UserId(user),
            },
            (Table::Projects | Table::ProjectHashtags | Table::UserProjects, _) => {
                Change::Project {
                    project: ProjectId(lead),
                }
            }
        })
    }

    /// Every column Athens reads from the table: keys, then document columns.
    pub(crate) fn column_names(&self) -> Vec<&'static str> {
        self.keys
            .iter()
            .map(|key| key.column)
            .chain(self.columns.iter().map(|column| column.name))
            .collect()
    }

    /// The select list reading the leading key and the document columns of `alias`, in order.
    pub(crate) fn select_list(&self, alias: &str) -> String {
        let lead = self.keys.first().map(|key| Column {
            name: key.column,
            read: Read::Id,
        });
        let listed: Vec<String> = lead
            .iter()
            .chain(&self.columns)
            .map(|column| read_expression(alias, column))
            .collect();
        listed.join(", ")
    }
}

/// The expression reading `column` of `alias` (see [`Read`]).
fn read_expression(alias: &str, column: &Column) -> String {
    let name = column.name;
    match column.read {
        Read::Id => format!("{alias}.{name}::bigint"),
        Read::Text => format!("coalesce({alias}.{name}, '')"),
        Read::Timestamp => format!(
            "CASE WHEN {alias}.{name} BETWEEN '0001-01-01 00:00:00+00' \
             AND '9999-12-31 23:59:59.999999+00' THEN {alias}.{name} ELSE 'epoch'::timestamptz END"
        ),
        Read::AsStored => format!("{alias}.{name}"),
    }
}

static TABLES: LazyLock<[SourceTable; 5]> = LazyLock::new(|| {
    [
        SourceTable::of::<users::Entity>(Table::Users, &["user_id"]),
        SourceTable::of::<hashtags::Entity>(Table::Hashtags, &["hashtag_id"]),
        SourceTable::of::<projects::Entity>(Table::Projects, &["project_id"]),
        SourceTable::of::<project_hashtags::Entity>(
            Table::ProjectHashtags,
            &["project_id", "hashtag_id"],
        ),
        SourceTable::of::<user_projects::Entity>(Table::UserProjects, &["project_id", "user_id"]),
    ]
});

/// The five source tables, in [`Table::ALL`]'s order.
pub(crate) fn tables() -> &'static [SourceTable; 5] {
    &TABLES
}

/// The source table `table`.
pub(crate) fn table(table: Table) -> &'static SourceTable {
    let [users, hashtags, projects, project_hashtags, user_projects] = tables();
    match table {
        Table::Users => users,
        Table::Hashtags => hashtags,
        Table::Projects => projects,
        Table::ProjectHashtags => project_hashtags,
        Table::UserProjects => user_projects,
    }
}

/// The five table names, comma-separated, for a statement naming them all (`GRANT`, `CREATE
/// PUBLICATION`).
pub(crate) fn table_list() -> String {
    let names: Vec<&str> = tables().iter().map(SourceTable::name).collect();
    names.join(", ")
}

/// The names of the tables `filter` keeps, as a SQL array literal (`ARRAY['users', …]`).
pub(crate) fn name_array(filter: impl Fn(&SourceTable) -> bool) -> String {
    let names: Vec<String> = tables()
        .iter()
        .filter(|table| filter(table))
        .map(|table| format!("'{}'", table.name()))
        .collect();
    format!("ARRAY[{}]", names.join(", "))
}

#[cfg(test)]
mod tests {
    use sea_orm::EntityName;

    use super::*;

    #[test]
    fn the_tables_follow_the_entities_in_tables_order() {
        let names: Vec<&str> = tables().iter().map(SourceTable::name).collect();
        let entities = [
            users::Entity.table_name(),
            hashtags::Entity.table_name(),
            projects::Entity.table_name(),
            project_hashtags::Entity.table_name(),
            user_projects::Entity.table_name(),
        ];
        assert_eq!(names, entities);
        assert_eq!(names, Table::ALL.map(Table::as_str));
        for candidate in Table::ALL {
            assert_eq!(table(candidate).table, candidate);
        }
    }

    #[test]
    fn every_key_has_an_outbox_column() {
        for source in tables() {
            assert!(!source.keys.is_empty(), "{}", source.name());
            let outbox: Vec<&str> = source.keys.iter().map(|key| key.outbox).collect();
            let expected: &[&str] = match source.table {
                Table::Users => &["user_id"],
                Table::Hashtags => &["hashtag_id"],
                Table::Projects => &["project_id"],
                Table::ProjectHashtags => &["project_id", "hashtag_id"],
                Table::UserProjects => &["project_id", "user_id"],
            };
            assert_eq!(outbox, expected, "{}", source.name());
        }
    }

    #[test]
    fn projects_read_their_columns_in_field_order_with_nulls_replaced() {
        let projects = table(Table::Projects);
        assert_eq!(
            projects.column_names(),
            [
                "id",
                "name",
                "slug",
                "description",
                "created_at",
                "updated_at"
            ]
        );
        let list = projects.select_list("p");
        assert!(
            list.starts_with("p.id::bigint, coalesce(p.name, ''), coalesce(p.slug, ''), p.description, CASE WHEN p.created_at BETWEEN"),
            "{list}"
        );
        assert!(table(Table::UserProjects).is_link());
        assert!(table(Table::UserProjects).columns.is_empty());
        assert!(!table(Table::Users).is_link());
    }

    #[test]
    fn name_arrays_split_links_from_the_others() {
        assert_eq!(
            name_array(SourceTable::is_link),
            "ARRAY['project_hashtags', 'user_projects']"
        );
        assert_eq!(
            name_array(|table| !table.is_link()),
            "ARRAY['users', 'hashtags', 'projects']"
        );
        assert_eq!(
            table_list(),
            "users, hashtags, projects, project_hashtags, user_projects"
        );
    }
}
