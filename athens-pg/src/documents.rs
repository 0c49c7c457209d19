//! [`DocumentSource`] and [`SourceLookup`] over the five tables: each read is one REPEATABLE READ transaction whose first
//! statement takes the next version from `athens.version`, then two set-based queries (projects;
//! hashtag and creator links in one) assembled by [`build_documents`]: with `BEGIN` and `COMMIT`,
//! five round trips per read.
//!
//! The snapshot of a REPEATABLE READ transaction is taken by its first statement, the one that
//! takes the version. A read that begins after another one ended therefore takes a later value of
//! the sequence, whatever process it runs in: versions are ordered like the states they read.
//! (`nextval` writes, so the transaction cannot be READ ONLY.)
//!
//! The select lists derive from the table specification (`tables`, the entities): the columns read
//! are the columns captured, in the entities' field order, which the row tuples below follow.
//!
//! Ids are read as `bigint` (`id::bigint`), so the queries work whether a database Athens attaches to
//! uses `integer` or `bigint` keys.
//!
//! A database Athens attaches to may hold what our migration forbids: a NULL name, slug,
//! `created_at` or `updated_at`. Such a row must neither fail the read (the batch would be retried forever and the
//! pipeline would stall) nor be skipped (its document would silently go missing): names and slugs
//! read as `''` and a NULL timestamp as the epoch (`1970-01-01T00:00:00Z`), like a NULL
//! description reads as `''`; so does a timestamp outside years 1 to 9999 (`infinity`,
//! `-infinity`, year 20000: PostgreSQL stores them, the client's date type and the engines' date
//! format do not); a link row without a project touches no project.

use athens_core::KeysetPage;
use std::sync::LazyLock;

use async_trait::async_trait;
use athens_core::{
    Creator, CreatorLink, DocumentSource, Hashtag, HashtagId, HashtagLink, ProjectId, ProjectRow,
    Snapshot, SourceError, SourceLookup, Table, UserId, Version, build_documents,
};
use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgConnection};

use crate::error::PgError;
use crate::source::PgSource;
use crate::tables::table;

type ProjectTuple = (
    i64,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    DateTime<Utc>,
);
/// A link row: hashtag (`true`) or creator, project id, then the linked row's id, name, `created_at`.
type LinkTuple = (bool, i64, i64, String, DateTime<Utc>);

/// The projects' select list: id and document columns (see [`tables`](crate::tables)).
fn project_columns() -> String {
    format!(
        "SELECT {} FROM projects",
        table(Table::Projects).select_list("projects")
    )
}
static PROJECTS_BY_ID: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE id = ANY($1::bigint[])", project_columns()));
// `ORDER BY projects.id`, not `ORDER BY id`: a bare name in ORDER BY means the output column first,
// here the cast `id::bigint`, which no index is sorted by, and PostgreSQL would then read and sort
// every row after the key for each page (measured: 280 ms a page at 1,000,000 projects instead of
// 0.3 ms, a backfill quadratic in the table's size).
static PROJECTS_PAGE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{} WHERE id > $1 AND id <= $2 ORDER BY projects.id LIMIT $3",
        project_columns()
    )
});
/// The hashtag links (`true`) and creator links (`false`) of a set of projects, in one query.
static LINKS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT true, ph.project_id::bigint, {} FROM project_hashtags ph \
         JOIN hashtags h ON h.id = ph.hashtag_id WHERE ph.project_id = ANY($1::bigint[]) \
         UNION ALL \
         SELECT false, up.project_id::bigint, {} FROM user_projects up \
         JOIN users u ON u.id = up.user_id WHERE up.project_id = ANY($1::bigint[])",
        table(Table::Hashtags).select_list("h"),
        table(Table::Users).select_list("u")
    )
});

/// Which projects a read is about.
enum Selection<'a> {
    Ids(&'a [ProjectId]),
    Page(KeysetPage),
}

fn project_row((id, name, slug, description, created_at, updated_at): ProjectTuple) -> ProjectRow {
    ProjectRow {
        id: ProjectId(id),
        name,
        slug,
        description,
        created_at,
        updated_at,
    }
}

impl PgSource {
    async fn read(&self, selection: Selection<'_>) -> Result<Snapshot, PgError> {
        // One statement opens the snapshot's transaction: every statement of a page is a round trip.
        let mut tx = self
            .pool()
            .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ")
            .await?;
        let version: i64 = sqlx::query_scalar("SELECT nextval('athens.version')")
            .fetch_one(&mut *tx)
            .await?;
        let version = u64::try_from(version)
            .map_err(|_| PgError::Invalid(format!("negative version {version}")))?;
        let (rows, missing) = match selection {
            Selection::Ids(ids) => {
                let mut wanted: Vec<i64> = ids.iter().map(|id| id.0).collect();
                wanted.sort_unstable();
                wanted.dedup();
                let rows: Vec<ProjectTuple> = sqlx::query_as(PROJECTS_BY_ID.as_str())
                    .bind(&wanted)
                    .fetch_all(&mut *tx)
                    .await?;
                let mut found: Vec<i64> = rows.iter().map(|row| row.0).collect();
                found.sort_unstable();
                let missing = wanted
                    .into_iter()
                    .filter(|id| found.binary_search(id).is_err())
                    .map(ProjectId)
                    .collect();
                (rows, missing)
            }
            Selection::Page(KeysetPage {
                after,
                until,
                limit,
            }) => {
                let rows: Vec<ProjectTuple> = sqlx::query_as(PROJECTS_PAGE.as_str())
                    .bind(after.map_or(i64::MIN, |id| id.0))
                    .bind(until.map_or(i64::MAX, |id| id.0))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&mut *tx)
                    .await?;
                (rows, Vec::new())
            }
        };
        let ids: Vec<i64> = rows.iter().map(|row| row.0).collect();
        let (hashtags, creators) = if ids.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            links(&mut tx, &ids).await?
        };
        tx.commit().await?;
        Ok(Snapshot {
            version: Version(version),
            documents: build_documents(
                rows.into_iter().map(project_row).collect(),
                hashtags,
                creators,
            ),
            missing,
        })
    }
}

/// The hashtag and creator links of `ids`, read in the caller's transaction.
async fn links(
    conn: &mut PgConnection,
    ids: &[i64],
) -> Result<(Vec<HashtagLink>, Vec<CreatorLink>), PgError> {
    let rows: Vec<LinkTuple> = sqlx::query_as(LINKS.as_str())
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let mut hashtags = Vec::new();
    let mut creators = Vec::new();
    for (is_hashtag, project, id, name, created_at) in rows {
        let project = ProjectId(project);
        if is_hashtag {
            hashtags.push(HashtagLink {
                project,
                hashtag: Hashtag {
                    id: HashtagId(id),
                    name,
                    created_at,
                },
            });
        } else {
            creators.push(CreatorLink {
                project,
                creator: Creator {
                    id: UserId(id),
                    name,
                    created_at,
                },
            });
        }
    }
    Ok((hashtags, creators))
}

#[async_trait]
impl DocumentSource for PgSource {
    async fn load(&self, ids: &[ProjectId]) -> Result<Snapshot, SourceError> {
        Ok(self.read(Selection::Ids(ids)).await?)
    }

    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SourceError> {
        Ok(self.read(Selection::Page(page)).await?)
    }

    async fn id_bounds(&self) -> Result<Option<(ProjectId, ProjectId)>, SourceError> {
        // Two index probes on the primary key, whatever the table holds.
        let (lowest, highest): (Option<i64>, Option<i64>) =
            sqlx::query_as("SELECT min(id)::bigint, max(id)::bigint FROM projects")
                .fetch_one(self.pool())
                .await
                .map_err(PgError::from)?;
        Ok(lowest
            .zip(highest)
            .map(|(lowest, highest)| (ProjectId(lowest), ProjectId(highest))))
    }

    async fn projects_touched(
        &self,
        users: &[UserId],
        hashtags: &[HashtagId],
    ) -> Result<Vec<ProjectId>, SourceError> {
        if users.is_empty() && hashtags.is_empty() {
            return Ok(Vec::new());
        }
        let users: Vec<i64> = users.iter().map(|id| id.0).collect();
        let hashtags: Vec<i64> = hashtags.iter().map(|id| id.0).collect();
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT project_id::bigint FROM user_projects \
               WHERE user_id = ANY($1::bigint[]) AND project_id IS NOT NULL \
             UNION \
             SELECT project_id::bigint FROM project_hashtags \
               WHERE hashtag_id = ANY($2::bigint[]) AND project_id IS NOT NULL \
             ORDER BY 1",
        )
        .bind(&users)
        .bind(&hashtags)
        .fetch_all(self.pool())
        .await
        .map_err(PgError::from)?;
        Ok(ids.into_iter().map(ProjectId).collect())
    }
}

#[async_trait]
impl SourceLookup for PgSource {
    async fn user_exists(&self, user: UserId) -> Result<bool, SourceError> {
        let exists: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)")
            .bind(user.0)
            .fetch_one(self.pool())
            .await
            .map_err(PgError::from)?;
        Ok(exists)
    }

    async fn ping(&self) -> Result<(), SourceError> {
        // Reads no row whatever the table holds, yet fails when it is missing or not readable.
        sqlx::query("SELECT FROM projects LIMIT 0")
            .execute(self.pool())
            .await
            .map_err(PgError::from)?;
        Ok(())
    }

    async fn count(&self) -> Result<u64, SourceError> {
        let count: i64 = sqlx::query_scalar("SELECT count(*) FROM projects")
            .fetch_one(self.pool())
            .await
            .map_err(PgError::from)?;
        Ok(u64::try_from(count).unwrap_or_default())
    }
}
