//! testcontainers fallback, for machines with a Docker engine and no services configured: one
//! PostgreSQL and one Elasticsearch container per test binary, started on first use.

use std::path::Path;

use anyhow::Context;
use testcontainers::ContainerAsync;
use testcontainers::runners::AsyncRunner;
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
    let (_, url) = POSTGRES
        .get_or_try_init(|| async {
            let container = Postgres::default()
                .start()
                .await
                .context("cannot start a PostgreSQL container")?;
            let port = container.get_host_port_ipv4(5432).await?;
            let url = format!("postgres://postgres:postgres@127.0.0.1:{port}/postgres");
            anyhow::Ok((container, url))
        })
        .await?;
    Ok(url.clone())
}

/// URL of an Elasticsearch container.
pub async fn elasticsearch_url() -> anyhow::Result<String> {
    let (_, url) = ELASTICSEARCH
        .get_or_try_init(|| async {
            let container = ElasticSearch::default()
                .start()
                .await
                .context("cannot start an Elasticsearch container")?;
            let port = container.get_host_port_ipv4(9200).await?;
            anyhow::Ok((container, format!("http://127.0.0.1:{port}")))
        })
        .await?;
    Ok(url.clone())
}
