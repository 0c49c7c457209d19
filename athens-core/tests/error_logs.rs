//! A failed sync step's log line carries the root cause of the failure, not only the top message.

use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use athens_core::testing::{MemoryIndex, MemorySource};
use athens_core::{EngineConfig, RetryPolicy, SyncEngine, WriterLease};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::fmt::MakeWriter;

/// Everything logged while it is the default subscriber, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

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
        EngineConfig {
            poll_wait: Duration::from_millis(10),
            retry,
            ..EngineConfig::default()
        },
        CancellationToken::new(),
    );
    assert!(lease.try_acquire().await.unwrap());
    engine.drain().await.unwrap();

    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _default = tracing::subscriber::set_default(subscriber);
    source.describe_project(project, "after an outage");
    source.faults.load.arm(1);
    index.faults.write.arm(1);
    engine.drain().await.unwrap();

    let text = logs.text();
    for step in ["call failed, retrying", "index write failed, retrying"] {
        let line = text.lines().find(|line| line.contains(step));
        let line = line.unwrap_or_else(|| panic!("no {step:?} line in:\n{text}"));
        assert!(
            line.contains("unavailable: injected failure: injected: connection reset by peer"),
            "{line}"
        );
    }
}
