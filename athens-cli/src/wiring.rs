//! Connecting the adapters named by the settings, with one clear message when a service cannot be
//! reached or is not set up: what is wrong, and the setting or command that fixes it.

use std::sync::Arc;

use anyhow::{Context, anyhow};
use athens_core::{ChangeSource, EngineConfig, SyncEngine};
use athens_es::{EsError, EsIndex};
use athens_pg::{CaptureConfig, CaptureMode, PgError, PgSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Connects to PostgreSQL.
pub async fn database(settings: &Settings) -> anyhow::Result<Arc<PgSource>> {
    match PgSource::connect(&settings.database).await {
        Ok(source) => Ok(Arc::new(source)),
        // Its message already says what is wrong and which setting fixes it.
        Err(error @ PgError::Connect { .. }) => {
            Err(anyhow!("cannot connect to PostgreSQL: {error}"))
        }
        Err(error) => Err(anyhow::Error::new(error)
            .context("cannot connect to PostgreSQL (database.url / ATHENS_DATABASE_URL)")),
    }
}

/// Connects to the search engine.
pub async fn engine(settings: &Settings) -> anyhow::Result<Arc<EsIndex>> {
    match EsIndex::connect(&settings.engine).await {
        Ok(index) => Ok(Arc::new(index)),
        Err(error) => Err(explain_engine(settings, error)),
    }
}

/// The engine's refusal, with the setting that fixes it.
fn explain_engine(settings: &Settings, error: EsError) -> anyhow::Error {
    let url = engine_address(&settings.engine.url);
    match &error {
        EsError::Unreachable {
            message: reason, ..
        } => anyhow!(
            "cannot connect to the search engine: nothing answers as one at {url} ({reason}): \
             start it there, or set engine.url (ATHENS_ENGINE_URL or --engine-url) to yours"
        ),
        EsError::Unauthorized {
            message: reason, ..
        } if settings.engine.auth.is_none() => anyhow!(
            "cannot connect to the search engine: {url} needs credentials ({reason}): set \
             ATHENS_ENGINE_USERNAME and ATHENS_ENGINE_PASSWORD, or ATHENS_ENGINE_API_KEY \
             (engine.auth in the configuration file)"
        ),
        EsError::Unauthorized {
            message: reason, ..
        } => anyhow!(
            "cannot connect to the search engine: {url} refused the credentials of engine.auth \
             ({reason}): fix ATHENS_ENGINE_USERNAME/ATHENS_ENGINE_PASSWORD or \
             ATHENS_ENGINE_API_KEY, or the user's privileges"
        ),
        _ => anyhow::Error::new(error)
            .context("cannot connect to the search engine (engine.url / ATHENS_ENGINE_URL)"),
    }
}

/// `scheme://host:port` of an engine URL, without any path or credentials, for messages.
pub fn engine_address(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => format!(
            "{}://{}:{}",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default(),
            parsed.port_or_known_default().unwrap_or_default()
        ),
        Err(_) => url.to_string(),
    }
}

/// Binds the API's address now, before anything slow, so a taken port fails at once.
pub async fn listener(settings: &Settings) -> anyhow::Result<TcpListener> {
    let addr = &settings.http.addr;
    TcpListener::bind(addr.as_str()).await.map_err(|error| {
        if error.kind() == std::io::ErrorKind::AddrInUse {
            anyhow!(
                "cannot serve the API: {addr} is taken by another process: stop it, or set \
                 http.addr (ATHENS_HTTP_ADDR, e.g. 127.0.0.1:8081) to a free address"
            )
        } else {
            anyhow!(
                "cannot serve the API on {addr} ({error}): set http.addr (ATHENS_HTTP_ADDR) to \
                 an address of this machine, e.g. 127.0.0.1:8080"
            )
        }
    })
}

/// The change source of the configured capture mode, once its objects are checked: the outbox
/// (the [`PgSource`] itself) or logical decoding.
pub async fn changes(
    source: &Arc<PgSource>,
    capture: &CaptureConfig,
) -> anyhow::Result<Arc<dyn ChangeSource>> {
    Ok(match capture.mode {
        CaptureMode::Outbox => {
            source
                .check_capture()
                .await
                .context("change capture is not ready")?;
            source.clone()
        }
        CaptureMode::Logical => {
            source
                .check_logical_capture(capture)
                .await
                .context("logical change capture is not ready")?;
            Arc::new(source.logical(capture).await?)
        }
    })
}

/// The sync engine over both, with its own writer lease.
pub async fn sync_engine(
    source: &Arc<PgSource>,
    index: &Arc<EsIndex>,
    capture: &CaptureConfig,
    config: EngineConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<SyncEngine> {
    source.check_schema().await?;
    let changes = self::changes(source, capture).await?;
    let lease = source
        .lease()
        .await
        .context("cannot open the writer lease connection")?;
    Ok(SyncEngine::new(
        changes,
        source.clone(),
        index.clone(),
        Arc::new(lease),
        config,
        shutdown,
    ))
}
