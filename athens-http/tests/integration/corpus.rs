//! A fixed corpus, written the way production writes it: rows inserted in PostgreSQL (athens-pg's
//! migration, then SQL), documents read back through athens-pg's `DocumentSource`, written to a
//! fresh index with athens-es's `SearchIndex::write` and published behind a fresh alias. Then the
//! application, over athens-es's `ProjectSearch` and athens-pg's `SourceLookup`, behind a
//! `TestClient`.

use athens_core::KeysetPage;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, ensure};
use athens_core::{
    DocumentSource, IndexOp, ProjectSearch, SearchIndex, SourceLookup, UserId, WriteOutcome,
};
use athens_es::{EsConfig, EsIndex};
use athens_http::{AppState, HISTOGRAM_BUCKETS, HttpConfig, app};
use athens_pg::{PgConfig, PgSource};
use athens_testkit::TestEngine;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::http::{HeaderMap, StatusCode};
use poem::test::TestClient;
use poem::{EndpointExt, Response, endpoint::BoxEndpoint};
use sea_orm::sqlx;
use serde_json::Value;

/// The application as the tests call it.
pub type Client = TestClient<BoxEndpoint<'static, Response>>;

/// Users: (key, name). Larry created nothing.
const USERS: &[(&str, &str)] = &[
    ("john", "John Smith"),
    ("jane", "Jane Doe"),
    ("ada", "Ada Lovelace"),
    ("larry", "Larry Lonely"),
];

/// Hashtags as stored: their case and `#` differ from what the tests ask for.
const HASHTAGS: &[&str] = &["Rust", "search", "python", "ML", "bulk"];

/// A project of the corpus.
struct Row {
    slug: &'static str,
    name: &'static str,
    description: &'static str,
    hashtags: &'static [&'static str],
    creators: &'static [&'static str],
}

/// Projects with more than filler content.
const PROJECTS: &[Row] = &[
    Row {
        slug: "elasticsearch-sync",
        name: "Athens",
        description: "Keeps Elasticsearch in sync with PostgreSQL, with fuzzy search",
        hashtags: &["Rust", "search"],
        creators: &["john"],
    },
    Row {
        slug: "fuzzy-finder",
        name: "Fuzzy Finder",
        description: "A fuzzy file finder for the terminal",
        hashtags: &["Rust"],
        creators: &["john", "jane"],
    },
    Row {
        slug: "ml-pipeline",
        name: "ML Pipeline",
        description: "Machine learning pipelines in Python",
        hashtags: &["python", "ML"],
        creators: &["jane"],
    },
    Row {
        slug: "search-ui",
        name: "Search UI",
        description: "A web interface over the project index",
        hashtags: &["search"],
        creators: &["ada"],
    },
];

/// Filler projects `bulk-01` ... tagged `bulk`, created by Ada, for paging.
pub const BULK: usize = 21;

/// The corpus in PostgreSQL, shared by the engines of one test.
pub struct Database {
    source: Arc<PgSource>,
    /// Connection URL of the test's database.
    pub url: String,
    /// User ids by key (`john`, `jane`, `ada`, `larry`).
    pub users: BTreeMap<&'static str, UserId>,
}

impl Database {
    /// A fresh database for `test`, migrated and filled with the corpus.
    pub async fn create(test: &str) -> anyhow::Result<Database> {
        let database = athens_testkit::database(test).await?;
        let source = PgSource::connect(&PgConfig::new(database.url.clone()))
            .await
            .context("connect athens-pg")?;
        source.migrate().await.context("migrate")?;
        source.install_capture().await.context("install capture")?;
        let pool = source.pool();
        let mut users = BTreeMap::new();
        for (key, name) in USERS {
            let (id,): (i32,) = sqlx::query_as("INSERT INTO users (name) VALUES ($1) RETURNING id")
                .bind(name)
                .fetch_one(pool)
                .await?;
            users.insert(*key, UserId(id.into()));
        }
        let mut hashtags = BTreeMap::new();
        for name in HASHTAGS {
            let (id,): (i32,) =
                sqlx::query_as("INSERT INTO hashtags (name) VALUES ($1) RETURNING id")
                    .bind(name)
                    .fetch_one(pool)
                    .await?;
            hashtags.insert(*name, id);
        }
        let bulk: Vec<(String, String, String)> = (1..=BULK)
            .map(|n| {
                (
                    format!("bulk-{n:02}"),
                    format!("Bulk {n}"),
                    format!("Filler project number {n}"),
                )
            })
            .collect();
        let projects = PROJECTS
            .iter()
            .map(|row| {
                (
                    row.slug.to_string(),
                    row.name.to_string(),
                    row.description.to_string(),
                    row.hashtags.to_vec(),
                    row.creators.to_vec(),
                )
            })
            .chain(bulk.into_iter().map(|(slug, name, description)| {
                (slug, name, description, vec!["bulk"], vec!["ada"])
            }));
        for (slug, name, description, tags, creators) in projects {
            let (project,): (i32,) = sqlx::query_as(
                "INSERT INTO projects (name, slug, description) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(&name)
            .bind(&slug)
            .bind(&description)
            .fetch_one(pool)
            .await?;
            for tag in tags {
                sqlx::query(
                    "INSERT INTO project_hashtags (project_id, hashtag_id) VALUES ($1, $2)",
                )
                .bind(project)
                .bind(hashtags[tag])
                .execute(pool)
                .await?;
            }
            for creator in creators {
                sqlx::query("INSERT INTO user_projects (project_id, user_id) VALUES ($1, $2)")
                    .bind(project)
                    .bind(users[creator].0 as i32)
                    .execute(pool)
                    .await?;
            }
        }
        Ok(Database {
            source: Arc::new(source),
            url: database.url,
            users,
        })
    }

    /// The database as the API reads it.
    pub fn source(&self) -> Arc<PgSource> {
        self.source.clone()
    }

    /// The id of user `key`.
    pub fn user(&self, key: &str) -> UserId {
        self.users[key]
    }
}

/// An engine's settings for an alias of this test's own.
pub fn engine_config(engine: &TestEngine, test: &str) -> EsConfig {
    EsConfig {
        url: engine.url.clone(),
        alias: athens_testkit::unique_name(test),
        ..EsConfig::default()
    }
}

/// Indexes every project of `database` into a fresh index of `config.alias` and publishes it.
pub async fn index(database: &Database, config: &EsConfig) -> anyhow::Result<Arc<EsIndex>> {
    let index = EsIndex::connect(config)
        .await
        .context("connect athens-es")?;
    let snapshot = database.source.load_page(KeysetPage::first(10_000)).await?;
    ensure!(
        snapshot.documents.len() == PROJECTS.len() + BULK,
        "corpus not read back whole"
    );
    let ops: Vec<IndexOp> = snapshot
        .documents
        .into_iter()
        .map(|document| IndexOp::Upsert {
            document,
            version: snapshot.version,
        })
        .collect();
    let name = index.create_index().await?;
    let outcomes = index.write(&name, &ops).await?;
    ensure!(
        outcomes
            .iter()
            .all(|outcome| *outcome == WriteOutcome::Applied),
        "corpus not written: {outcomes:?}"
    );
    index.finish_bulk_load(&name).await?;
    index.publish(&name).await?;
    Ok(Arc::new(index))
}

/// Deletes the index behind the alias of `index` (and so the alias), so test runs do not pile up
/// shards on the shared engine.
pub async fn drop_index(index: &EsIndex) -> anyhow::Result<()> {
    if let Some(name) = index.live_index().await? {
        index.drop_index(&name).await?;
    }
    Ok(())
}

/// A database of test `test`'s own, and its corpus indexed on the first engine of the matrix.
pub async fn on_first_engine(test: &str) -> anyhow::Result<(Database, TestEngine, Arc<EsIndex>)> {
    let database = Database::create(test).await?;
    let engine = athens_testkit::engines().await?.remove(0);
    let index = index(&database, &engine_config(&engine, test)).await?;
    Ok((database, engine, index))
}

/// Runs `check` against the application over each engine, with `database`'s corpus written to a
/// fresh index (dropped afterwards).
pub async fn each_engine<F>(database: &Database, test: &str, check: F) -> anyhow::Result<()>
where
    F: AsyncFn(&Client, &Database, &str),
{
    for engine in athens_testkit::engines().await? {
        let index = index(database, &engine_config(&engine, test)).await?;
        let client = client(Arc::new(index.searcher()), database.source());
        check(&client, database, &engine.to_string()).await;
        drop_index(&index).await?;
    }
    Ok(())
}

/// The process's metrics recorder, installed once with the API's histogram buckets, as a program
/// embedding the API installs it.
#[allow(clippy::expect_used)] // a helper of tests, which fail if it cannot
fn recorder() -> &'static PrometheusHandle {
    static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();
    RECORDER.get_or_init(|| {
        let mut recorder = PrometheusBuilder::new();
        for (histogram, buckets) in HISTOGRAM_BUCKETS {
            recorder = recorder
                .set_buckets_for_metric(Matcher::Full((*histogram).into()), buckets)
                .expect("valid buckets");
        }
        recorder.install_recorder().expect("the only recorder")
    })
}

/// The application over `search` and `database`.
pub fn client(search: Arc<dyn ProjectSearch>, source: Arc<dyn SourceLookup>) -> Client {
    let metrics = recorder();
    let state = AppState::new(search, source).with_metrics(|| metrics.render());
    TestClient::new(app(state, &HttpConfig::default()).boxed())
}

/// A response, read whole.
pub struct Answer {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body as JSON (`Null` when it is not JSON).
    pub body: Value,
}

impl Answer {
    /// The slugs of a page's projects, in order.
    pub fn slugs(&self) -> Vec<String> {
        self.body["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item["project"]["slug"].as_str().map(str::to_string))
            .collect()
    }

    /// Asserts a 400 whose problem names `param` first among its invalid parameters; `context` goes
    /// into the failure messages.
    pub fn assert_invalid(&self, param: &str, context: &str) {
        assert_eq!(
            self.status,
            StatusCode::BAD_REQUEST,
            "{context}: {}",
            self.body
        );
        assert_eq!(self.body["invalid_params"][0]["name"], param, "{context}");
    }

    /// Asserts a problem of `status` with the type `urn:athens:problem:{kind}` whose detail
    /// mentions `mentions`; `context` goes into the failure messages.
    pub fn assert_problem(&self, status: StatusCode, kind: &str, mentions: &str, context: &str) {
        assert_eq!(self.status, status, "{context}: {}", self.body);
        assert_eq!(
            self.body["type"],
            format!("urn:athens:problem:{kind}"),
            "{context}"
        );
        let detail = self.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(mentions), "{context}: {detail}");
    }

    /// The item of the project `slug`.
    pub fn item(&self, slug: &str) -> Option<&Value> {
        self.body["items"]
            .as_array()?
            .iter()
            .find(|item| item["project"]["slug"] == slug)
    }
}

/// `GET uri`.
pub async fn get(client: &Client, uri: &str) -> Answer {
    let response = client.get(uri).send().await.0;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.into_body().into_string().await.unwrap_or_default();
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}
