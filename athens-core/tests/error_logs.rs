//! A failed sync step's log line carries the root cause of the failure, not only the top message.

use std::sync::Arc;
use std::time::Duration;

use athens_core::testing::{CapturedLogs, MemoryIndex, MemorySource};
use athens_core::{EngineConfig, RetryPolicy, SyncEngine, WriterLease};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn a_retried_step_logs_the_root_cause() {
    let source = MemorySource::new();
    let project = source.add_project("Athens", "athens", "keeps an index in sync");
    let index = Arc::new(MemoryIndex::new());
    let lease = Arc::new(source.lease());
    let retry = RetryPolicy {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        index.clone(),
        lease.clone(),
        source.queue(),
        EngineConfig {
            poll_wait: Duration::from_millis(10),
            retry,
            ..EngineConfig::default()
        },
        CancellationToken::new(),
    );
    assert!(lease.try_acquire().await.unwrap());
    engine.drain().await.unwrap();

    let (logs, _guard) = CapturedLogs::start();
    source.describe_project(project, "after an outage");
    source.faults.load.arm(1);
    index.faults.write.arm(1);
    engine.drain().await.unwrap();

    for step in ["call failed, retrying", "index write failed, retrying"] {
        let line = logs.line(step);
        let line = line.unwrap_or_else(|| panic!("no {step:?} line in:\n{}", logs.text()));
        assert!(
            line.contains("unavailable: injected failure: injected: connection reset by peer"),
            "{line}"
        );
    }
}

#[tokio::test]
async fn a_lost_lease_is_logged_with_what_is_known_of_the_loss() {
    let source = MemorySource::new();
    source.add_project("Athens", "athens", "keeps an index in sync");
    let lease = Arc::new(source.lease());
    let shutdown = CancellationToken::new();
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        Arc::new(MemoryIndex::new()),
        lease.clone(),
        source.queue(),
        EngineConfig {
            poll_wait: Duration::from_millis(10),
            ..EngineConfig::default()
        },
        shutdown.clone(),
    );
    let (logs, _guard) = CapturedLogs::start();
    let take_over = async {
        while !lease.is_held().await.unwrap() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        lease.expire();
        let standby = source.lease();
        assert!(standby.try_acquire().await.unwrap());
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while logs.line("sync interrupted, resuming").is_none() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await;
        shutdown.cancel();
        waited
    };
    let (ran, waited) = tokio::join!(engine.run(), take_over);
    ran.unwrap();
    assert!(waited.is_ok(), "no lost lease logged in:\n{}", logs.text());
    let line = logs.line("sync interrupted, resuming").unwrap_or_default();
    assert!(
        line.contains("writer lease lost: the memory lease is held by handle"),
        "{line}"
    );
}
