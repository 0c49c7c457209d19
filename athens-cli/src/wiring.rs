//! Connecting the adapters named by the settings, with one clear message when a service cannot be
//! reached or is not set up: what is wrong, and the setting or command that fixes it.

use std::num::NonZeroU32;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use athens_core::{ChangeSource, EngineConfig, SyncEngine};
use athens_es::{EsError, EsIndex};
use athens_pg::{CaptureConfig, CaptureMode, PgError, PgSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Connects to PostgreSQL.
///
/// With `capture.partitions` > 1, the pool has a connection more per partition: each partition's
/// writer holds one for `LISTEN` while it waits for changes.
pub async fn database(settings: &Settings) -> anyhow::Result<Arc<PgSource>> {
    let mut config = settings.database.clone();
    if settings.capture.partitions.get() > 1 {
        config.max_connections = config
            .max_connections
            .saturating_add(settings.capture.partitions.get());
    }
    match PgSource::connect(&config).await {
        Ok(source) => Ok(Arc::new(source)),
        // Its message already says what is wrong and which setting fixes it; the driver's error
        // stays its cause.
        Err(error @ PgError::Connect { .. }) => {
            Err(anyhow::Error::new(error).context("cannot connect to PostgreSQL"))
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

/// The change source of the configured capture mode, once its objects are checked, and the
/// source whose [`lease`](PgSource::lease) fences its acknowledgements: the outbox (the
/// [`PgSource`] itself, or its view of every partition when `capture.partitions` > 1, whose lease
/// holds every partition's) or logical decoding (with partitions, the outbox the relay fills,
/// viewed as in the outbox mode).
pub async fn changes(
    source: &Arc<PgSource>,
    capture: &CaptureConfig,
) -> anyhow::Result<(Arc<dyn ChangeSource>, PgSource)> {
    Ok(match capture.mode {
        CaptureMode::Outbox => {
            source
                .check_capture()
                .await
                .context("change capture is not ready")?;
            check_partitions(source, capture.partitions).await?;
            let outbox = if capture.partitions.get() > 1 {
                source.every_partition(capture.partitions)
            } else {
                PgSource::clone(source)
            };
            (Arc::new(outbox.clone()), outbox)
        }
        CaptureMode::Logical => {
            source
                .check_logical_capture(capture)
                .await
                .context("logical change capture is not ready")?;
            if capture.partitions.get() > 1 {
                // The relay decodes the slot into the outbox: the partitions consume that.
                check_partitions(source, capture.partitions).await?;
                let outbox = source.relayed(capture).every_partition(capture.partitions);
                (Arc::new(outbox.clone()), outbox)
            } else {
                (
                    Arc::new(source.logical(capture).await?),
                    PgSource::clone(source),
                )
            }
        }
    })
}

/// Fails unless the installed capture writes `partitions` partitions, saying how to agree.
pub async fn check_partitions(source: &PgSource, partitions: NonZeroU32) -> anyhow::Result<()> {
    let installed = source.capture_partitions().await?;
    match installed {
        Some(installed) if installed != partitions => bail!(
            "the change capture writes {installed} partition(s) (athens setup ran with \
             capture.partitions = {installed}), the configuration says {partitions}: set \
             capture.partitions (ATHENS_CAPTURE_PARTITIONS) to {installed}, or run athens setup \
             with {partitions} (pending changes then become one rebuild of the index)"
        ),
        _ => Ok(()),
    }
}

/// The sync engine over both, with its own writer lease (every partition's, when partitioned).
pub async fn sync_engine(
    source: &Arc<PgSource>,
    index: &Arc<EsIndex>,
    capture: &CaptureConfig,
    config: EngineConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<SyncEngine> {
    source.check_schema().await?;
    let (changes, lessor) = self::changes(source, capture).await?;
    let lease = lessor
        .lease()
        .await
        .context("cannot open the writer lease connection")?;
    Ok(SyncEngine::new(
        changes,
        source.clone(),
        index.clone(),
        Arc::new(lease),
        Arc::new(lessor),
        config,
        shutdown,
    ))
}
