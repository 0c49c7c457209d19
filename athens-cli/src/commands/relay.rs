//! The relay of the logical mode with partitions (`athens_pg::Relay`), run by every `athens sync`
//! (and `athens run`) of such a capture: one at a time holds the relay lease and moves the slot's
//! changes into the partitions' outbox, the others wait as its standbys and take over when its
//! session ends (a crash, a shutdown), as a partition's standby does.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use athens_core::{ErrorChain, RetryPolicy, WriterLease};
use athens_pg::{CaptureMode, PgLease, PgSource, Relay};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::Settings;

/// Pause between relay steps while transactions flow.
const QUICK: Duration = Duration::from_millis(20);
/// Pause between relay steps once the slot had nothing: an idle step costs one query.
const IDLE: Duration = Duration::from_millis(100);

/// Starts the relay task when the settings ask for one (logical mode, more than one partition);
/// it runs until `shutdown`.
pub async fn start(
    settings: &Settings,
    source: &Arc<PgSource>,
    shutdown: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<()>>> {
    let capture = &settings.capture;
    if capture.mode != CaptureMode::Logical || capture.partitions.get() <= 1 {
        return Ok(None);
    }
    let relay = source.relay(capture).await?;
    let lease = source
        .relay_lease()
        .await
        .context("cannot open the relay lease connection")?;
    let batch = settings.sync.batch_size.get();
    let standby = settings.sync.standby_interval;
    let retry = settings.sync.retry;
    Ok(Some(tokio::spawn(run(
        relay, lease, batch, standby, retry, shutdown,
    ))))
}

/// Holds the relay lease whenever it can and relays while it holds it.
async fn run(
    relay: Relay,
    lease: PgLease,
    batch: usize,
    standby: Duration,
    retry: RetryPolicy,
    shutdown: CancellationToken,
) {
    let mut waiting = false;
    while !shutdown.is_cancelled() {
        match lease.try_acquire().await {
            Ok(true) => {
                info!(
                    slot = relay.slot(),
                    "holding the relay lease: relaying the slot into the partitions' outbox"
                );
                waiting = false;
                relay_while_held(&relay, &lease, batch, &retry, &shutdown).await;
                if let Err(error) = lease.release().await {
                    warn!(error = %ErrorChain(&error), "could not give the relay lease back");
                }
                continue;
            }
            Ok(false) if !waiting => {
                info!("another process relays the slot: waiting as its standby");
                waiting = true;
            }
            Ok(false) => {}
            Err(error) => warn!(error = %ErrorChain(&error), "could not take the relay lease"),
        }
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(standby) => {}
        }
    }
}

/// Relays until shutdown or until the lease is found lost; a failed step is retried with the
/// engine's backoff (`sync.max_retry_ms`).
async fn relay_while_held(
    relay: &Relay,
    lease: &PgLease,
    batch: usize,
    retry: &RetryPolicy,
    shutdown: &CancellationToken,
) {
    let mut failures = 0u32;
    while !shutdown.is_cancelled() {
        match lease.is_held().await {
            Ok(true) => {}
            Ok(false) => {
                let lost = lease.lost().await;
                warn!(error = %ErrorChain(&lost), "relay lease lost");
                return;
            }
            Err(error) => {
                warn!(error = %ErrorChain(&error), "could not check the relay lease");
                return;
            }
        }
        let pause = match relay.step(batch).await {
            Ok(relayed) => {
                failures = 0;
                if relayed.transactions > 0 || relayed.skipped > 0 {
                    QUICK
                } else {
                    IDLE
                }
            }
            Err(error) => {
                failures += 1;
                warn!(failures, error = %ErrorChain(&error), "relay step failed, retrying");
                retry.delay(failures)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}
