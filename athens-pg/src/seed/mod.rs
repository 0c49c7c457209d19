//! Seed data: a deterministic generator of realistic rows (see `generate`) loaded with `COPY`, a
//! batch of projects and their links per transaction.
//!
//! Users and hashtags are loaded first, then projects in batches of 10,000, each batch's
//! `projects`, `user_projects` and `project_hashtags` rows in one transaction. Ids are explicit and
//! the identity sequences are moved past them at the end, so later inserts by applications get fresh
//! ids.
//!
//! Into empty tables, the same options always give the same rows, hand-written demo rows first
//! (project 1 is `elasticsearch-sync` by John Smith). Into tables that hold rows, a seed adds new
//! users and projects after the highest ids, reuses hashtags whose names exist, keeps slugs unique,
//! and leaves out the hand-written rows.

mod generate;
mod vocabulary;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_orm::sqlx::{self, PgConnection};
use serde::Deserialize;
use tracing::info;

use crate::error::PgError;
use crate::source::PgSource;
use generate::{Existing, Generator, NamedRow, ProjectRow};

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SeedOptions {
    /// Projects, hand-written ones included.
    pub projects: u64,
    /// Users (at least the 5 hand-written ones).
    pub users: u64,
    /// Hashtags (at least the 10 hand-written ones).
    pub hashtags: u64,
    /// Seed of the random stream: the same options always give the same rows.
    pub seed: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions::scaled(2_000)
    }
}

impl SeedOptions {
    /// `projects` projects with users and hashtags in realistic proportions (one user per five
    /// projects, one hashtag per twenty, at most 20,000 hashtags), seed 42.
    pub fn scaled(projects: u64) -> SeedOptions {
        SeedOptions {
            projects,
            users: (projects / 5).max(50),
            hashtags: (projects / 20).clamp(60, 20_000),
            seed: 42,
        }
    }

    fn total_users(&self) -> usize {
        (self.users as usize).max(generate::HAND_USERS.len())
    }

    fn total_hashtags(&self) -> usize {
        (self.hashtags as usize).max(generate::HAND_HASHTAGS.len())
    }

    fn total_projects(&self) -> usize {
        self.projects as usize
    }
}

/// What a seed loaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Rows of `users`.
    pub users: u64,
    /// Rows of `hashtags`.
    pub hashtags: u64,
    /// Rows of `projects`.
    pub projects: u64,
    /// Rows of `user_projects`.
    pub user_projects: u64,
    /// Rows of `project_hashtags`.
    pub project_hashtags: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Rows per `COPY` for users and hashtags.
const COPY_CHUNK: usize = 50_000;
/// Projects per transaction.
const BATCH: usize = 10_000;

impl PgSource {
    /// Generates and loads seed rows; `progress` is called with the number of projects loaded so
    /// far after each batch.
    pub async fn seed(
        &self,
        options: &SeedOptions,
        mut progress: impl FnMut(u64),
    ) -> Result<SeedReport, PgError> {
        self.check_schema().await?;
        let started = Instant::now();
        let mut conn = self.pool().acquire().await?;
        let existing = existing(&mut conn).await?;
        let known_hashtags = existing.hashtags.clone();
        let mut generator = Generator::new(options, existing);
        let mut report = SeedReport::default();

        let users = generator.users();
        report.users = copy_named(&mut conn, "users", &users).await?;
        let hashtags = generator.hashtags(&known_hashtags);
        report.hashtags = copy_named(&mut conn, "hashtags", &hashtags).await?;
        drop((users, hashtags, known_hashtags));

        let total = options.total_projects();
        while (report.projects as usize) < total {
            let rows = generator.projects(BATCH.min(total - report.projects as usize));
            let (projects, creators, tags) = project_lines(&rows);
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            report.projects += copy(
                &mut tx,
                "projects (id, name, slug, description, created_at)",
                &projects,
            )
            .await?;
            report.user_projects +=
                copy(&mut tx, "user_projects (project_id, user_id)", &creators).await?;
            report.project_hashtags +=
                copy(&mut tx, "project_hashtags (project_id, hashtag_id)", &tags).await?;
            tx.commit().await?;
            progress(report.projects);
        }

        for statement in [
            "SELECT setval(pg_get_serial_sequence('users', 'id'), max(id)) FROM users",
            "SELECT setval(pg_get_serial_sequence('hashtags', 'id'), max(id)) FROM hashtags",
            "SELECT setval(pg_get_serial_sequence('projects', 'id'), max(id)) FROM projects",
            "ANALYZE users, hashtags, projects, project_hashtags, user_projects",
        ] {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        report.elapsed = started.elapsed();
        info!(
            projects = report.projects,
            users = report.users,
            hashtags = report.hashtags,
            user_projects = report.user_projects,
            project_hashtags = report.project_hashtags,
            seconds = report.elapsed.as_secs_f64(),
            "seed loaded"
        );
        Ok(report)
    }
}

/// What the tables hold already: highest ids, hashtag names, slugs.
async fn existing(conn: &mut PgConnection) -> Result<Existing, PgError> {
    let (user_base, hashtag_base, project_base): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT coalesce(max(id), 0)::bigint FROM users), \
                (SELECT coalesce(max(id), 0)::bigint FROM hashtags), \
                (SELECT coalesce(max(id), 0)::bigint FROM projects)",
    )
    .fetch_one(&mut *conn)
    .await?;
    let id = |value: i64| {
        i32::try_from(value).map_err(|_| {
            PgError::Invalid(format!("id {value} is beyond the integer ids seed writes"))
        })
    };
    let mut found = Existing {
        user_base: id(user_base)?,
        hashtag_base: id(hashtag_base)?,
        project_base: id(project_base)?,
        ..Existing::default()
    };
    if hashtag_base > 0 {
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT name, id::bigint FROM hashtags")
            .fetch_all(&mut *conn)
            .await?;
        for (name, hashtag) in rows {
            found.hashtags.insert(name, id(hashtag)?);
        }
    }
    if project_base > 0 {
        found.slugs = sqlx::query_scalar("SELECT slug FROM projects")
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    }
    Ok(found)
}

/// Streams `data` (COPY text format) into `target`; returns the rows copied.
async fn copy(conn: &mut PgConnection, target: &str, data: &str) -> Result<u64, PgError> {
    if data.is_empty() {
        return Ok(0);
    }
    let mut sink = conn
        .copy_in_raw(&format!("COPY {target} FROM STDIN"))
        .await?;
    if let Err(error) = sink.send(data.as_bytes()).await {
        sink.abort("seed aborted").await.ok();
        return Err(error.into());
    }
    Ok(sink.finish().await?)
}

/// Escapes a value for COPY's text format.
fn escape(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

fn timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339()
}

/// Streams users or hashtags into `table`, [`COPY_CHUNK`] rows per COPY; returns the rows copied.
async fn copy_named(
    conn: &mut PgConnection,
    table: &str,
    rows: &[NamedRow],
) -> Result<u64, PgError> {
    let target = format!("{table} (id, name, created_at)");
    let mut copied = 0;
    for chunk in rows.chunks(COPY_CHUNK) {
        copied += copy(conn, &target, &named_lines(chunk)).await?;
    }
    Ok(copied)
}

/// COPY data of users or hashtags.
fn named_lines(rows: &[NamedRow]) -> String {
    let mut out = String::with_capacity(rows.len() * 48);
    for row in rows {
        let _ = write!(out, "{}\t", row.id);
        escape(&row.name, &mut out);
        let _ = writeln!(out, "\t{}", timestamp(&row.created_at));
    }
    out
}

/// COPY data of a batch: projects, creator links, hashtag links.
fn project_lines(rows: &[ProjectRow]) -> (String, String, String) {
    let mut projects = String::with_capacity(rows.len() * 200);
    let mut creators = String::with_capacity(rows.len() * 24);
    let mut tags = String::with_capacity(rows.len() * 40);
    for row in rows {
        let _ = write!(projects, "{}\t", row.id);
        escape(&row.name, &mut projects);
        projects.push('\t');
        escape(&row.slug, &mut projects);
        projects.push('\t');
        match &row.description {
            Some(description) => escape(description, &mut projects),
            None => projects.push_str("\\N"),
        }
        let _ = writeln!(projects, "\t{}", timestamp(&row.created_at));
        for user in &row.creators {
            let _ = writeln!(creators, "{}\t{user}", row.id);
        }
        for hashtag in &row.hashtags {
            let _ = writeln!(tags, "{}\t{hashtag}", row.id);
        }
    }
    (projects, creators, tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_separators_and_nulls() {
        let mut out = String::new();
        escape("a\tb\\c\nd", &mut out);
        assert_eq!(out, "a\\tb\\\\c\\nd");
        let row = ProjectRow {
            id: 3,
            name: "N".into(),
            slug: "n".into(),
            description: None,
            created_at: DateTime::<Utc>::default(),
            creators: vec![1, 2],
            hashtags: vec![],
        };
        let (projects, creators, tags) = project_lines(&[row]);
        assert_eq!(projects, "3\tN\tn\t\\N\t1970-01-01T00:00:00+00:00\n");
        assert_eq!(creators, "3\t1\n3\t2\n");
        assert!(tags.is_empty());
    }
}
