//! `reindex` and `sync`: the writer side.
#![allow(clippy::print_stdout)] // command output for the user

use athens_core::{SourceLookup, SyncEngine};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio_util::sync::CancellationToken;

use crate::cli::ReindexArgs;
use crate::config::Settings;
use crate::progress::Progress;
use crate::{shutdown, wiring};

pub async fn reindex(settings: &Settings, args: &ReindexArgs) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    let index = wiring::engine(settings).await?;
    let mut config = settings.sync.clone();
    config.keep_previous_index |= args.keep_previous;
    let engine = wiring::sync_engine(
        &source,
        &index,
        &settings.capture,
        config,
        shutdown::on_signal(),
    )
    .await?;
    engine.acquire_lease().await?;
    let total = source.count().await?;
    // Resumes a backfill that a crashed or failed reindex left, if no sync streamed since.
    let backfill = with_progress(&engine, total, engine.resume_backfill()).await;
    engine.release_lease().await?;
    let report = backfill?;
    println!(
        "reindexed {} documents{} into {} in {:.1} s ({:.0} docs/s), {} dead letter(s){}",
        report.documents,
        if report.resumed {
            " (resumed from the checkpoint of an unfinished backfill)"
        } else {
            ""
        },
        report.index,
        report.elapsed.as_secs_f64(),
        report.documents as f64 / report.elapsed.as_secs_f64().max(0.001),
        report.dead_letters,
        report
            .previous
            .map(|old| format!(", replaced {old}"))
            .unwrap_or_default()
    );
    Ok(())
}

pub async fn sync(settings: &Settings, metrics: Option<PrometheusHandle>) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    let index = wiring::engine(settings).await?;
    let config = settings.sync.clone();
    let shutdown = shutdown::on_signal();
    if settings.capture.partitions.get() > 1 {
        let partitioned =
            super::partitioned::Partitioned::new(settings, source, index, shutdown.clone()).await?;
        let reporter = emf_reporter(settings, metrics, shutdown.clone());
        let result = partitioned.run().await;
        shutdown.cancel();
        if let Some(reporter) = reporter {
            let _ = reporter.await;
        }
        return result;
    }
    let engine =
        wiring::sync_engine(&source, &index, &settings.capture, config, shutdown.clone()).await?;
    let reporter = emf_reporter(settings, metrics, shutdown.clone());
    let result = engine.run().await;
    shutdown.cancel();
    if let Some(reporter) = reporter {
        let _ = reporter.await;
    }
    result?;
    Ok(())
}

/// The CloudWatch EMF reporter of `metrics.emf`, running until `shutdown`.
pub fn emf_reporter(
    settings: &Settings,
    metrics: Option<PrometheusHandle>,
    shutdown: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let handle = metrics.filter(|_| settings.metrics.emf)?;
    Some(tokio::spawn(crate::emf::report(
        handle,
        settings.metrics.clone(),
        shutdown,
    )))
}

/// Drives `work` to completion while drawing the progress of the engine's backfill.
pub async fn with_progress<T>(engine: &SyncEngine, total: u64, work: impl Future<Output = T>) -> T {
    let mut updates = engine.backfill_progress();
    let mut progress = Progress::new("documents", total);
    tokio::pin!(work);
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            changed = updates.changed() => match changed {
                Ok(()) => progress.set(*updates.borrow_and_update()),
                Err(_) => break work.await,
            },
        }
    };
    progress.finish();
    result
}
