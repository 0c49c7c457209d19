//! `serve` (the API alone) and `run` (sync and API in one process: the main job).
#![allow(clippy::print_stdout)] // command output for the user

use std::sync::Arc;

use anyhow::Context;
use athens_core::{ProjectSearch, SearchIndex, SourceLookup};
use athens_es::EsIndex;
use athens_pg::PgSource;
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::sync::with_progress;
use crate::config::Settings;
use crate::{shutdown, wiring};

pub async fn serve(settings: &Settings, metrics: Option<PrometheusHandle>) -> anyhow::Result<()> {
    let listener = wiring::listener(settings).await?;
    let source = wiring::database(settings).await?;
    let index = wiring::engine(settings).await?;
    warn_without_alias(&index).await;
    let shutdown = shutdown::on_signal();
    let server = api(listener, settings, &source, &index, metrics, &shutdown);
    println!("Swagger UI: {}", docs_url(&settings.http.addr));
    server.await
}

pub async fn run(settings: &Settings, metrics: Option<PrometheusHandle>) -> anyhow::Result<()> {
    // Bound first: a taken port fails at once, not after the backfill.
    let listener = wiring::listener(settings).await?;
    let source = wiring::database(settings).await?;
    let index = wiring::engine(settings).await?;
    let shutdown = shutdown::on_signal();
    let engine = wiring::sync_engine(
        &source,
        &index,
        &settings.capture,
        settings.sync.clone(),
        shutdown.clone(),
    )
    .await?;
    let reporter = super::sync::emf_reporter(settings, metrics.clone(), shutdown.clone());
    // The logical mode with partitions: this one writer of every partition streams the outbox
    // the relay fills.
    let relay = super::relay::start(settings, &source, shutdown.clone()).await?;
    let server = api(listener, settings, &source, &index, metrics, &shutdown);

    let sync = async {
        engine.acquire_lease().await?;
        let total = source.count().await?;
        let live = with_progress(&engine, total, engine.ensure_live_index()).await?;
        println!(
            "ready: {} projects searchable in {live}; Swagger UI: {}",
            total,
            docs_url(&settings.http.addr)
        );
        let result = engine.run().await;
        // Whatever ended the sync (shutdown or a failure it cannot get over) ends the API too.
        shutdown.cancel();
        result
    };
    let (served, synced) = tokio::join!(server, sync);
    if let Some(reporter) = reporter {
        let _ = reporter.await;
    }
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    synced?;
    served
}

/// Says, without stopping, that searches fail until a writer creates the alias: `serve` may well
/// start before the first `sync` or `reindex` of a deployment.
async fn warn_without_alias(index: &EsIndex) {
    if let Ok(None) = index.live_index().await {
        tracing::warn!(
            alias = index.alias(),
            "the alias does not exist yet, so searches fail until `athens sync` or `athens \
             reindex` creates it (or set engine.alias / ATHENS_INDEX to the alias you use)"
        );
    }
}

/// The API server on `listener`, until `shutdown`; when it fails it cancels `shutdown`, so the
/// rest of the process stops with it.
async fn api(
    listener: TcpListener,
    settings: &Settings,
    source: &Arc<PgSource>,
    index: &Arc<EsIndex>,
    metrics: Option<PrometheusHandle>,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let search: Arc<dyn ProjectSearch> = Arc::new(index.searcher());
    let lookup: Arc<dyn SourceLookup> = source.clone();
    let mut state = athens_http::AppState::new(search, lookup);
    if let Some(handle) = metrics {
        state = state.with_metrics(move || handle.render());
    }
    let result = athens_http::serve_on(
        listener,
        state,
        &settings.http,
        shutdown.clone().cancelled_owned(),
    )
    .await
    .context("the API server failed");
    if result.is_err() {
        shutdown.cancel();
    }
    result
}

/// Where a person opens Swagger UI for a server listening on `addr`.
fn docs_url(addr: &str) -> String {
    let local = addr
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    format!("http://{local}/docs")
}
