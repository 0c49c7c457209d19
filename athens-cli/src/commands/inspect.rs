//! `status` and `verify`: how far behind the index is, and whether it says what the database says.
#![allow(clippy::print_stdout)] // command output for the user

use std::sync::Arc;
use std::time::Duration;

use athens_core::partition::Partition;
use athens_core::{
    Backlog, ChangeSource, ErrorChain, IndexName, RebuildQueue, SearchIndex, SourceLookup,
};
use athens_es::StrayIndex;
use athens_pg::{CaptureMode, SlotStatus};
use serde_json::json;

use crate::cli::{StatusArgs, VerifyArgs};
use crate::config::Settings;
use crate::{shutdown, wiring};

pub async fn status(settings: &Settings, args: &StatusArgs) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    // The readiness check of `wiring::changes` refuses a capture that stopped (triggers disabled
    // or dropped): status must report that, not refuse, so it falls back to reading the backlog
    // unchecked, and fails with the check's message only when that cannot be read either.
    let (changes, mut backlog) = match wiring::changes(&source, &settings.capture).await {
        Ok((changes, _)) => {
            let backlog = changes.backlog().await?;
            (changes, backlog)
        }
        Err(refused) => {
            let changes: Arc<dyn ChangeSource> = match settings.capture.mode {
                CaptureMode::Outbox => source.clone(),
                CaptureMode::Logical => Arc::new(source.logical(&settings.capture).await?),
            };
            match changes.backlog().await {
                Ok(backlog) => (changes, backlog),
                Err(_) => return Err(refused),
            }
        }
    };
    let projects = source.count().await?;
    // Projects of fan-outs not rebuilt yet (unknown on a capture installed before the queue).
    let queued = source.queued().await.ok();
    let capture = &settings.capture;
    let partitions = match capture.mode {
        CaptureMode::Outbox => source.capture_partitions().await.ok().flatten(),
        CaptureMode::Logical if capture.partitions.get() > 1 => {
            // Pending: what the relay has not decoded yet, and the partitions' queue.
            let decoded = source.logical(capture).await?.backlog().await?;
            backlog.pending += decoded.pending;
            backlog.oldest_age = backlog.oldest_age.max(decoded.oldest_age);
            source.capture_partitions().await.ok().flatten()
        }
        CaptureMode::Logical => None,
    };
    // Each partition's own backlog: one busy partition lags while the others keep up.
    let mut partition_backlogs = Vec::new();
    if let Some(count) = partitions.filter(|count| count.get() > 1) {
        for partition in Partition::all(count) {
            let backlog = source.partition(partition).backlog().await?;
            partition_backlogs.push((partition, backlog));
        }
    }
    let slot = match capture.mode {
        CaptureMode::Outbox => None,
        CaptureMode::Logical => source.slot_status(capture).await?,
    };
    // A capture that stopped loses every later change silently: say so loudly.
    let capture_error = changes
        .capture_health()
        .await
        .err()
        .map(|error| ErrorChain(&error).to_string());
    let warn_bytes = capture.retained_wal_warning_mb.saturating_mul(1 << 20);
    let slot_warning = slot
        .as_ref()
        .and_then(|slot| slot_warning(slot, warn_bytes));
    // The backlog is worth showing even when the engine is down: that is when it grows.
    let (live, documents, strays, engine_error) = match index_status(settings).await {
        Ok((live, documents, strays)) => (live, documents, strays, None),
        Err(error) => (
            None,
            None,
            Vec::new(),
            Some(ErrorChain(error.as_ref()).to_string()),
        ),
    };
    let lag_of = |backlog: &Backlog| backlog.oldest_age.unwrap_or(Duration::ZERO).as_secs_f64();
    let lag = lag_of(&backlog);
    if args.json {
        let status = json!({
            "pending_changes": backlog.pending,
            "queued_projects": queued,
            "lag_seconds": lag,
            "last_ack_at": backlog.last_ack_at,
            "dead_letters": backlog.dead_letters,
            "projects_in_database": projects,
            "documents_in_index": documents,
            "live_index": live.as_ref().map(ToString::to_string),
            "stray_indexes": strays.iter().map(|stray| json!({
                "name": stray.name.to_string(),
                "kind": stray.kind.as_str(),
            })).collect::<Vec<_>>(),
            "engine_error": engine_error,
            "capture_mode": capture.mode,
            "partitions": partitions.map(std::num::NonZeroU32::get),
            "partition_backlogs": partition_backlogs.iter().map(|(partition, backlog)| json!({
                "partition": partition.index(),
                "pending_changes": backlog.pending,
                "lag_seconds": lag_of(backlog),
            })).collect::<Vec<_>>(),
            "capture_error": capture_error,
            "slot": slot.as_ref().map(|slot| json!({
                "name": slot.name,
                "active": slot.active,
                "wal_status": slot.wal_status,
                "retained_wal_bytes": slot.retained_bytes,
                "lag_bytes": slot.lag_bytes,
                "safe_wal_bytes": slot.safe_wal_bytes,
            })),
            "warning": slot_warning,
        });
        println!("{status:#}");
    } else {
        match &capture_error {
            None => println!("capture             ok"),
            Some(error) => println!("capture             NOT CAPTURING: {error}"),
        }
        println!("pending changes     {}", backlog.pending);
        match queued {
            Some(queued) => println!("queued projects     {queued}"),
            None => println!("queued projects     unknown: run `athens setup`"),
        }
        println!("lag                 {lag:.1} s");
        for (partition, backlog) in &partition_backlogs {
            println!(
                "  partition {:<8} {} pending, lag {:.1} s",
                partition.to_string(),
                backlog.pending,
                lag_of(backlog)
            );
        }
        println!(
            "last change applied {}",
            backlog
                .last_ack_at
                .map_or_else(|| "never".to_string(), |at| at.to_rfc3339())
        );
        println!("dead letters        {}", backlog.dead_letters);
        match &slot {
            Some(slot) => println!(
                "capture             logical{}, slot {} ({}): {} WAL retained, {} behind",
                partitions
                    .filter(|partitions| partitions.get() > 1)
                    .map(|partitions| format!(" relayed to {partitions} partitions"))
                    .unwrap_or_default(),
                slot.name,
                slot.wal_status,
                mebibytes(slot.retained_bytes),
                mebibytes(slot.lag_bytes)
            ),
            None if capture.mode == CaptureMode::Logical => {
                println!(
                    "capture             logical, slot missing (the next sync re-creates it and reindexes)"
                )
            }
            None => match partitions.filter(|partitions| partitions.get() > 1) {
                Some(partitions) => println!("capture             outbox, {partitions} partitions"),
                None => println!("capture             outbox"),
            },
        }
        if let Some(warning) = &slot_warning {
            println!("WARNING             {warning}");
        }
        println!("projects (database) {projects}");
        match (&live, documents, &engine_error) {
            (_, _, Some(error)) => println!("documents (index)   unknown: {error}"),
            (Some(name), Some(count), None) => {
                println!("documents (index)   {count} in {name}");
            }
            _ => {
                println!("documents (index)   no index behind the alias yet: run `athens reindex`")
            }
        }
        for stray in &strays {
            println!(
                "stray index         {}: {}",
                stray.name,
                stray.kind.explanation()
            );
        }
    }
    if let Some(error) = capture_error {
        anyhow::bail!("change capture is missing or disabled: {error}");
    }
    match engine_error {
        Some(error) => anyhow::bail!("{error}"),
        None => Ok(()),
    }
}

/// What to tell an operator about a slot that retains too much WAL or was invalidated.
fn slot_warning(slot: &SlotStatus, warn_bytes: u64) -> Option<String> {
    if slot.wal_status == "lost" {
        return Some(format!(
            "slot {} was invalidated by the server (max_slot_wal_keep_size): the next sync re-creates it and reindexes",
            slot.name
        ));
    }
    let retained = slot.retained_bytes.unwrap_or_default();
    (retained > warn_bytes).then(|| {
        format!(
            "slot {} retains {} of WAL (threshold {}): start `athens sync`, or lower the risk with max_slot_wal_keep_size",
            slot.name,
            mebibytes(Some(retained)),
            mebibytes(Some(warn_bytes))
        )
    })
}

fn mebibytes(bytes: Option<u64>) -> String {
    bytes.map_or_else(
        || "unknown".into(),
        |bytes| format!("{:.1} MiB", bytes as f64 / 1_048_576.0),
    )
}

/// The live index and its document count (`None`s when the alias does not exist yet), and the
/// indexes the alias does not serve.
async fn index_status(
    settings: &Settings,
) -> anyhow::Result<(Option<IndexName>, Option<u64>, Vec<StrayIndex>)> {
    let index = wiring::engine(settings).await?;
    let strays = index.stray_indexes().await?;
    let Some(live) = index.live_index().await? else {
        return Ok((None, None, strays));
    };
    let count = index.count(&live).await?;
    Ok((Some(live), Some(count), strays))
}

pub async fn verify(settings: &Settings, args: &VerifyArgs) -> anyhow::Result<()> {
    let source = wiring::database(settings).await?;
    let index = wiring::engine(settings).await?;
    let engine = wiring::sync_engine(
        &source,
        &index,
        &settings.capture,
        settings.sync.clone(),
        shutdown::on_signal(),
    )
    .await?;
    if args.repair {
        let wait = Duration::from_secs(args.lease_wait_secs);
        let Ok(acquired) = tokio::time::timeout(wait, engine.acquire_lease()).await else {
            anyhow::bail!(
                "another process (a running `athens sync` or `athens run`) holds the writer lease: \
                 a repair writes through the single writer, so stop it and run `athens verify \
                 --repair` again, or raise --lease-wait-secs"
            );
        };
        acquired?;
    }
    let verified = engine.verify(args.repair).await;
    if args.repair {
        engine.release_lease().await?;
    }
    let report = verified?;
    if args.json {
        let report = json!({
            "checked": report.checked,
            "missing": report.missing,
            "stale": report.stale,
            "extra": report.extra,
            "drift": report.drift(),
            "repaired": report.repaired,
            "samples": report.samples.iter().map(|id| id.0).collect::<Vec<_>>(),
        });
        println!("{report:#}");
    } else {
        println!(
            "checked {} projects: {} missing, {} stale, {} extra in the index{}",
            report.checked,
            report.missing,
            report.stale,
            report.extra,
            if args.repair {
                format!("; repaired {}", report.repaired)
            } else {
                String::new()
            }
        );
        if !report.samples.is_empty() {
            let ids: Vec<String> = report.samples.iter().map(ToString::to_string).collect();
            println!("drifted projects (first {}): {}", ids.len(), ids.join(", "));
        }
    }
    if report.drift() > 0 && !args.repair {
        anyhow::bail!("the index differs from the database: run `athens verify --repair`");
    }
    if report.repaired < report.drift() && args.repair {
        anyhow::bail!(
            "{} drifted document(s) could not be repaired: if the database was restored to an \
             earlier point (or failed over losing recent writes), the index holds versions ahead \
             of it; run `athens reindex`",
            report.drift() - report.repaired
        );
    }
    Ok(())
}
