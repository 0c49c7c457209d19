//! Connecting the adapters named by the settings, with one clear message when a service cannot be
//! reached or is not set up.

use std::sync::Arc;

use anyhow::Context;
use athens_core::{EngineConfig, SyncEngine};
use athens_es::EsIndex;
use athens_pg::PgSource;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// Connects to PostgreSQL.
pub async fn database(settings: &Settings) -> anyhow::Result<Arc<PgSource>> {
    let source = PgSource::connect(&settings.database)
        .await
        .context("cannot connect to PostgreSQL (database.url / ATHENS_DATABASE_URL)")?;
    Ok(Arc::new(source))
}

/// Connects to the search engine.
pub async fn engine(settings: &Settings) -> anyhow::Result<Arc<EsIndex>> {
    let index = EsIndex::connect(&settings.engine)
        .await
        .context("cannot connect to the search engine (engine.url / ATHENS_ENGINE_URL)")?;
    Ok(Arc::new(index))
}

/// The sync engine over both, with its own writer lease.
pub async fn sync_engine(
    source: &Arc<PgSource>,
    index: &Arc<EsIndex>,
    config: EngineConfig,
    shutdown: CancellationToken,
) -> anyhow::Result<SyncEngine> {
    source
        .check_capture()
        .await
        .context("change capture is not ready")?;
    let lease = source
        .lease()
        .await
        .context("cannot open the writer lease connection")?;
    Ok(SyncEngine::new(
        source.clone(),
        source.clone(),
        index.clone(),
        Arc::new(lease),
        config,
        shutdown,
    ))
}
