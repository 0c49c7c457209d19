//! Test harness for Athens' integration tests: real PostgreSQL and real Elasticsearch/OpenSearch.
//!
//! Services come from environment variables (`deploy/local/up` starts them, `deploy/local/env`
//! prints the variables):
//! - `ATHENS_TEST_DATABASE_URL`: a PostgreSQL URL whose role may `CREATE DATABASE` (and `CREATE
//!   ROLE`, for the least-privilege tests);
//! - `ATHENS_TEST_ES_URL`: an Elasticsearch node (7.10 to 9.x);
//! - `ATHENS_TEST_OPENSEARCH_URL`: an OpenSearch node (2.x, 3.x);
//! - `ATHENS_TEST_OPENSEARCH3_URL` (optional): a further OpenSearch node, for a second major version
//!   in the same run (`deploy/local/up` starts OpenSearch 3 there; CI requires it).
//!
//! Where a variable is unset and a Docker engine is reachable, the service is started with
//! testcontainers instead. Where neither, the test fails with a message saying how to start services:
//! an integration test never skips silently. Every test gets its own database and index prefix, so
//! tests run in parallel.

mod containers;
pub mod debian;
mod proxy;
pub mod relevance;

use std::time::Duration;

use anyhow::{Context, bail};
use sea_orm::{ConnectionTrait, Database};

pub use containers::docker_available;
pub use proxy::Proxy;

/// Environment variable naming the PostgreSQL server for tests.
pub const DATABASE_URL_VAR: &str = "ATHENS_TEST_DATABASE_URL";
/// Environment variable naming the Elasticsearch node for tests.
pub const ES_URL_VAR: &str = "ATHENS_TEST_ES_URL";
/// Environment variable naming the OpenSearch node for tests.
pub const OPENSEARCH_URL_VAR: &str = "ATHENS_TEST_OPENSEARCH_URL";
/// Environment variable naming a further OpenSearch node (another major version) for tests; the
/// engine-matrix tests include it when it is set.
pub const OPENSEARCH3_URL_VAR: &str = "ATHENS_TEST_OPENSEARCH3_URL";

const HOW_TO_START: &str = "start the services with `deploy/local/up` and export the variables \
     with `eval \"$(deploy/local/env)\"`, or make a Docker engine reachable for testcontainers";

/// A fresh, empty PostgreSQL database owned by this test.
#[derive(Debug)]
pub struct TestDatabase {
    /// Connection URL of the test's own database.
    pub url: String,
    /// The database's name.
    pub name: String,
}

/// Creates a fresh database named after `test` on the test PostgreSQL server.
pub async fn database(test: &str) -> anyhow::Result<TestDatabase> {
    let server = match std::env::var(DATABASE_URL_VAR) {
        Ok(url) => url,
        Err(_) if docker_available() => containers::postgres_url().await?,
        Err(_) => {
            bail!("{DATABASE_URL_VAR} is not set and no Docker engine is reachable: {HOW_TO_START}")
        }
    };
    let name = unique_name(test).replace('-', "_");
    let admin = Database::connect(&server).await.with_context(|| {
        format!("cannot connect to the test PostgreSQL at {server}: {HOW_TO_START}")
    })?;
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .with_context(|| format!("cannot create database {name}"))?;
    admin.close().await.ok();
    let mut url = url::Url::parse(&server).context("ATHENS_TEST_DATABASE_URL is not a URL")?;
    url.set_path(&name);
    Ok(TestDatabase {
        url: url.to_string(),
        name,
    })
}

/// A search engine the integration tests run against.
#[derive(Debug, Clone)]
pub struct TestEngine {
    /// `elasticsearch` or `opensearch`.
    pub distribution: String,
    /// The engine's version number, as it reports it.
    pub version: String,
    /// Base URL.
    pub url: String,
}

impl std::fmt::Display for TestEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} at {}", self.distribution, self.version, self.url)
    }
}

/// Every engine the tests must pass against: Elasticsearch and OpenSearch, and the further OpenSearch
/// of `ATHENS_TEST_OPENSEARCH3_URL` when that is set. Fails when one is not configured or does not
/// answer.
pub async fn engines() -> anyhow::Result<Vec<TestEngine>> {
    let mut engines = Vec::new();
    for var in [ES_URL_VAR, OPENSEARCH_URL_VAR, OPENSEARCH3_URL_VAR] {
        let url = match std::env::var(var) {
            Ok(url) => url,
            Err(_) if docker_available() && var == ES_URL_VAR => {
                containers::elasticsearch_url().await?
            }
            Err(_) if var == OPENSEARCH3_URL_VAR => continue,
            Err(_) => bail!("{var} is not set: {HOW_TO_START}"),
        };
        engines.push(
            describe(&url)
                .await
                .with_context(|| format!("{var}={url}"))?,
        );
    }
    Ok(engines)
}

async fn describe(url: &str) -> anyhow::Result<TestEngine> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let banner: serde_json::Value = client
        .get(url)
        .send()
        .await
        .with_context(|| format!("engine does not answer: {HOW_TO_START}"))?
        .error_for_status()?
        .json()
        .await?;
    let version = &banner["version"];
    Ok(TestEngine {
        distribution: version["distribution"]
            .as_str()
            .unwrap_or("elasticsearch")
            .to_string(),
        version: version["number"].as_str().unwrap_or("unknown").to_string(),
        url: url.trim_end_matches('/').to_string(),
    })
}

/// A name unique to this run of `test`, lowercase, usable as a database name or index prefix.
pub fn unique_name(test: &str) -> String {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let test: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .take(30)
        .collect();
    format!("athens-t-{test}-{}", &suffix[..8])
}
