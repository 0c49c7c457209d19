//! Shared helpers: a fresh database per test, a `SourceFixture` written in SQL, and change draining.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use athens_core::testing::{FixtureError, MemoryIndex, SourceFixture};
use athens_core::{
    Ack, Change, ChangeRecord, ChangeSource, DocumentSource, EngineConfig, HashtagId, ProjectId,
    RetryPolicy, SourceLookup, SyncEngine, Table, UserId,
};
use athens_pg::{CaptureConfig, CaptureMode, PgConfig, PgSource, SeedOptions};
use sea_orm::sqlx::{self, AssertSqlSafe, Connection};
use tokio_util::sync::CancellationToken;

/// An engine config for tests: 100 ms polls, retries after 10 ms growing to 100 ms.
pub fn quick_engine() -> EngineConfig {
    EngineConfig {
        poll_wait: Duration::from_millis(100),
        retry: RetryPolicy {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(100),
        },
        ..EngineConfig::default()
    }
}

/// A small generated data set: 50 projects, 10 users, 10 hashtags.
pub const SMALL_SEED: SeedOptions = SeedOptions {
    projects: 50,
    users: 10,
    hashtags: 10,
    seed: 3,
};

/// Loads the data `options` generates into `source`, and builds an engine syncing it through
/// `changes` into a fresh in-memory index, under its own lease (not taken yet).
pub async fn seeded_engine(
    source: &PgSource,
    changes: Arc<dyn ChangeSource>,
    options: &SeedOptions,
    config: EngineConfig,
) -> (SyncEngine, Arc<MemoryIndex>) {
    source.seed(options, |_| {}).await.expect("seed");
    let index = Arc::new(MemoryIndex::new());
    let engine = SyncEngine::new(
        changes,
        Arc::new(source.clone()),
        index.clone(),
        Arc::new(source.lease().await.expect("lease")),
        Arc::new(source.clone()),
        config,
        CancellationToken::new(),
    );
    (engine, index)
}

/// A config for tests: small pool, short polling interval.
pub fn config(url: &str) -> PgConfig {
    PgConfig {
        max_connections: 5,
        poll_interval: Duration::from_millis(200),
        connect_timeout: Duration::from_secs(5),
        ..PgConfig::new(url)
    }
}

/// A fresh database with nothing in it, and a source on it.
pub async fn empty(test: &str) -> (PgSource, String) {
    let database = athens_testkit::database(test).await.expect("test database");
    let source = PgSource::connect(&config(&database.url))
        .await
        .expect("connect");
    (source, database.url)
}

/// A fresh database with the schema migrated and capture installed.
pub async fn ready(test: &str) -> PgSource {
    let (source, _) = empty(test).await;
    source.migrate().await.expect("migrate");
    source.install_capture().await.expect("install capture");
    source
}

/// A fresh database with the schema migrated and capture installed in `mode`, and its change
/// source. In the logical mode, dropping it drops the test's replication slot (slots belong to the
/// server: one left behind would retain WAL and block dropping the database).
pub struct Captured {
    /// The document source (and the outbox source in the outbox mode).
    pub source: PgSource,
    /// The change source under test.
    pub changes: Arc<dyn ChangeSource>,
    /// The mode installed.
    pub mode: CaptureMode,
    url: String,
}

/// [`ready`] in either mode.
pub async fn ready_in(test: &str, mode: CaptureMode) -> Captured {
    let (source, url) = empty(test).await;
    source.migrate().await.expect("migrate");
    let changes: Arc<dyn ChangeSource> = match mode {
        CaptureMode::Outbox => {
            source.install_capture().await.expect("install capture");
            Arc::new(source.clone())
        }
        CaptureMode::Logical => {
            let capture = CaptureConfig::logical();
            source
                .install_logical_capture(&capture)
                .await
                .expect("install logical capture");
            Arc::new(source.logical(&capture).await.expect("logical source"))
        }
    };
    Captured {
        source,
        changes,
        mode,
        url,
    }
}

impl Captured {
    /// Whether the logical mode is under test.
    pub fn logical(&self) -> bool {
        self.mode == CaptureMode::Logical
    }

    /// What an UPDATE rewriting rows with their own values reports: nothing in the outbox mode,
    /// which compares old and new rows; the rows' changes in the logical mode, which cannot.
    pub fn unchanged(&self, rewritten: Vec<Change>) -> Vec<Change> {
        if self.logical() {
            sorted(rewritten)
        } else {
            Vec::new()
        }
    }

    /// Every pending change, acknowledged, sorted.
    pub async fn drain(&self) -> Vec<Change> {
        drain(self.changes.as_ref()).await
    }

    /// A fixture writing to this database, for the contract suite.
    pub fn fixture(&self) -> SqlFixture {
        SqlFixture {
            source: self.source.clone(),
            changes: self.changes.clone(),
            logical: self.logical(),
        }
    }
}

impl Drop for Captured {
    fn drop(&mut self) {
        if !self.logical() {
            return;
        }
        let url = self.url.clone();
        // Drop runs inside the test's runtime: a thread with its own runtime may block.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::PgConnection::connect(&url).await?;
                sqlx::query(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                     WHERE database = current_database()",
                )
                .execute(&mut conn)
                .await?;
                anyhow::Ok(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the replication slot of {}", self.url);
        }
    }
}

/// Runs SQL (one or more statements).
pub async fn exec(source: &PgSource, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(source.pool())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"));
}

/// A connection of its own whose open transaction inserted user 1: it commits when the test says.
pub async fn early_transaction(source: &PgSource) -> sqlx::PgConnection {
    let url = source.config().url.expose().to_string();
    let mut early = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut early).await.unwrap();
    sqlx::query("INSERT INTO users (id, name) VALUES (1, 'early')")
        .execute(&mut early)
        .await
        .unwrap();
    early
}

/// Runs a query returning one bigint.
pub async fn scalar(source: &PgSource, sql: &str) -> i64 {
    sqlx::query_scalar(AssertSqlSafe(sql.to_string()))
        .fetch_one(source.pool())
        .await
        .unwrap_or_else(|error| panic!("{sql}: {error}"))
}

/// Every pending change, acknowledged.
pub async fn take_all(source: &dyn ChangeSource) -> Vec<ChangeRecord> {
    let records = source.poll(100_000, Duration::ZERO).await.expect("poll");
    let ack = Ack {
        changes: records.iter().map(|record| record.id).collect(),
        dead_letters: Vec::new(),
    };
    source.ack(&ack).await.expect("ack");
    records
}

/// Acknowledges the second and fourth change of `batch`, twice (a repeated ack changes nothing),
/// and polls again: the first and third lead what is left, the acknowledged ones are gone.
pub async fn ack_second_and_fourth(
    source: &dyn ChangeSource,
    batch: &[ChangeRecord],
) -> Vec<ChangeRecord> {
    let ack = Ack {
        changes: vec![batch[1].id, batch[3].id],
        dead_letters: Vec::new(),
    };
    source.ack(&ack).await.expect("ack");
    source.ack(&ack).await.expect("ack again");
    let rest = source.poll(100, Duration::ZERO).await.expect("poll");
    assert_eq!(rest[0], batch[0]);
    assert_eq!(rest[1], batch[2]);
    rest
}

/// Every pending change, acknowledged, as a sorted list of changes.
pub async fn drain(source: &dyn ChangeSource) -> Vec<Change> {
    let mut changes: Vec<Change> = take_all(source)
        .await
        .into_iter()
        .map(|record| record.change)
        .collect();
    changes.sort_by_key(|change| format!("{change:?}"));
    changes
}

/// Shorthands for expected changes.
pub fn user(id: i64) -> Change {
    Change::User { user: UserId(id) }
}
pub fn hashtag(id: i64) -> Change {
    Change::Hashtag {
        hashtag: HashtagId(id),
    }
}
pub fn project(id: i64) -> Change {
    Change::Project {
        project: ProjectId(id),
    }
}
pub fn tagged(project: i64, hashtag: i64) -> Change {
    Change::ProjectHashtag {
        project: ProjectId(project),
        hashtag: HashtagId(hashtag),
    }
}
pub fn credited(project: i64, user: i64) -> Change {
    Change::UserProject {
        project: ProjectId(project),
        user: UserId(user),
    }
}
pub fn truncated(table: Table) -> Change {
    Change::Truncate { table }
}

/// Sorts expected changes the way [`drain`] does.
pub fn sorted(mut changes: Vec<Change>) -> Vec<Change> {
    changes.sort_by_key(|change| format!("{change:?}"));
    changes
}

/// Writes to the tables with plain SQL, as an application would.
pub struct SqlFixture {
    pub source: PgSource,
    pub changes: Arc<dyn ChangeSource>,
    pub logical: bool,
}

impl SqlFixture {
    async fn returning_id(&self, sql: &'static str, binds: &[&str]) -> Result<i64, FixtureError> {
        let mut query = sqlx::query_scalar::<_, i64>(sql);
        for bind in binds {
            query = query.bind(*bind);
        }
        Ok(query.fetch_one(self.source.pool()).await?)
    }

    async fn run(&self, sql: &'static str, ids: &[i64]) -> Result<(), FixtureError> {
        let mut query = sqlx::query(sql);
        for id in ids {
            query = query.bind(*id);
        }
        query.execute(self.source.pool()).await?;
        Ok(())
    }
}

#[async_trait]
impl SourceFixture for SqlFixture {
    fn changes(&self) -> &dyn ChangeSource {
        self.changes.as_ref()
    }
    fn reports_unchanged_updates(&self) -> bool {
        self.logical
    }
    fn documents(&self) -> &dyn DocumentSource {
        &self.source
    }
    fn lookup(&self) -> &dyn SourceLookup {
        &self.source
    }
    async fn add_user(&self, name: &str) -> Result<UserId, FixtureError> {
        self.returning_id(
            "INSERT INTO users (name) VALUES ($1) RETURNING id::bigint",
            &[name],
        )
        .await
        .map(UserId)
    }
    async fn rename_user(&self, user: UserId, name: &str) -> Result<(), FixtureError> {
        sqlx::query("UPDATE users SET name = $2 WHERE id = $1")
            .bind(user.0)
            .bind(name)
            .execute(self.source.pool())
            .await?;
        Ok(())
    }
    async fn add_hashtag(&self, name: &str) -> Result<HashtagId, FixtureError> {
        self.returning_id(
            "INSERT INTO hashtags (name) VALUES ($1) RETURNING id::bigint",
            &[name],
        )
        .await
        .map(HashtagId)
    }
    async fn delete_hashtag(&self, hashtag: HashtagId) -> Result<(), FixtureError> {
        self.run("DELETE FROM hashtags WHERE id = $1", &[hashtag.0])
            .await
    }
    async fn add_project(&self, name: &str, slug: &str) -> Result<ProjectId, FixtureError> {
        self.returning_id(
            "INSERT INTO projects (name, slug) VALUES ($1, $2) RETURNING id::bigint",
            &[name, slug],
        )
        .await
        .map(ProjectId)
    }
    async fn delete_project(&self, project: ProjectId) -> Result<(), FixtureError> {
        self.run("DELETE FROM projects WHERE id = $1", &[project.0])
            .await
    }
    async fn tag(&self, project: ProjectId, hashtag: HashtagId) -> Result<(), FixtureError> {
        self.run(
            "INSERT INTO project_hashtags (project_id, hashtag_id) VALUES ($1, $2)",
            &[project.0, hashtag.0],
        )
        .await
    }
    async fn credit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError> {
        self.run(
            "INSERT INTO user_projects (project_id, user_id) VALUES ($1, $2)",
            &[project.0, user.0],
        )
        .await
    }
    async fn uncredit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError> {
        self.run(
            "DELETE FROM user_projects WHERE project_id = $1 AND user_id = $2",
            &[project.0, user.0],
        )
        .await
    }
    async fn truncate(&self, table: Table) -> Result<(), FixtureError> {
        let sql = format!("TRUNCATE {} CASCADE", table.as_str());
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(self.source.pool())
            .await?;
        Ok(())
    }
}

/// Everything pending (up to 10,000 changes), without waiting.
pub async fn poll(changes: &dyn ChangeSource) -> Vec<ChangeRecord> {
    changes.poll(10_000, Duration::ZERO).await.unwrap()
}

/// Acknowledges `records`, with no dead letter.
pub async fn ack(changes: &dyn ChangeSource, records: &[ChangeRecord]) {
    let ack = Ack {
        changes: records.iter().map(|record| record.id).collect(),
        dead_letters: Vec::new(),
    };
    changes.ack(&ack).await.unwrap();
}
