//! testcontainers fallback, for machines with a Docker engine and no services configured: one
//! PostgreSQL and one Elasticsearch container per test binary, started on first use.

use std::path::Path;

use anyhow::Context;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, Image};
use testcontainers_modules::elastic_search::ElasticSearch;
use testcontainers_modules::postgres::Postgres;
use tokio::sync::OnceCell;

/// Whether a Docker engine answers on its usual socket (or `DOCKER_HOST` is set).
pub fn docker_available() -> bool {
    std::env::var_os("DOCKER_HOST").is_some() || Path::new("/var/run/docker.sock").exists()
}

static POSTGRES: OnceCell<(ContainerAsync<Postgres>, String)> = OnceCell::const_new();
static ELASTICSEARCH: OnceCell<(ContainerAsync<ElasticSearch>, String)> = OnceCell::const_new();

/// URL of a PostgreSQL container whose role may create databases.
pub async fn postgres_url() -> anyhow::Result<String> {
    started(&POSTGRES, "a PostgreSQL", 5432, |port| {
        format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres")
    })
    .await
}

/// URL of an Elasticsearch container.
pub async fn elasticsearch_url() -> anyhow::Result<String> {
    started(&ELASTICSEARCH, "an Elasticsearch", 9200, |port| {
        format!("http://127.0.0.1:{port}")
    })
    .await
}

/// The URL `url` makes of the host port of `port` in the container of `cell`, started on first use
/// (`what` names it in the error).
async fn started<I: Image + Default>(
    cell: &'static OnceCell<(ContainerAsync<I>, String)>,
    what: &str,
    port: u16,
    url: fn(u16) -> String,
) -> anyhow::Result<String> {
    let (_, url) = cell
        .get_or_try_init(|| async {
            let container = I::default()
                .start()
                .await
                .with_context(|| format!("cannot start {what} container"))?;
            let port = container.get_host_port_ipv4(port).await?;
            anyhow::Ok((container, url(port)))
        })
        .await?;
    Ok(url.clone())
}
