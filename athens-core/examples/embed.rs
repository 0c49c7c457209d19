//! Embedding `athens-core` with your own adapters: this example plugs a hand-written `SearchIndex`
//! (a decorator that counts the documents written, standing in for your own search backend) and the
//! in-memory source from the `testing` feature into a `SyncEngine`, backfills, streams a change, and
//! verifies. Run it with `cargo run -p athens-core --example embed --features testing`.

#![allow(clippy::print_stdout)] // an example reports to its user on stdout

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use athens_core::testing::{MemoryIndex, MemorySource};
use athens_core::{
    EngineConfig, IndexError, IndexName, IndexOp, SyncEngine, WriteOutcome, WriterLease,
};
use tokio_util::sync::CancellationToken;

/// Your adapter: any type implementing the port. Here it delegates to an in-memory index and counts.
struct CountingIndex {
    inner: MemoryIndex,
    written: AtomicU64,
}

// The port written out as a decorator: the calls named after `pass to` go to `self.inner` as they
// are, `write` is this adapter's own.
athens_core::search_index_decorator! {
    impl SearchIndex for CountingIndex {
        pass to self.inner: live_index, create_index, finish_bulk_load, publish, claim, publish_as,
            mapping_is_current, drop_index, refresh, get, ids_page, count, save_checkpoint,
            unfinished_backfills;

        async fn write(
            &self,
            index: &IndexName,
            ops: &[IndexOp],
        ) -> Result<Vec<WriteOutcome>, IndexError> {
            self.written.fetch_add(ops.len() as u64, Ordering::Relaxed);
            self.inner.write(index, ops).await
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let source = MemorySource::new();
    let ada = source.add_user("Ada Lovelace");
    let rust = source.add_hashtag("rust");
    let project = source.add_project("Athens", "athens-sync", "Keeps a search index in sync");
    source.credit(project, ada);
    source.tag(project, rust);

    let index = Arc::new(CountingIndex {
        inner: MemoryIndex::new(),
        written: AtomicU64::new(0),
    });
    let lease = Arc::new(source.lease());
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        index.clone(),
        lease.clone(),
        source.queue(),
        EngineConfig {
            poll_wait: Duration::from_millis(10),
            ..EngineConfig::default()
        },
        CancellationToken::new(),
    );

    anyhow::ensure!(lease.try_acquire().await?, "the lease is free");
    let changes = engine.drain().await?;
    source.rename_user(ada, "Ada King");
    let renamed = engine.drain().await?;
    let report = engine.verify(false).await?;
    println!(
        "backfilled and streamed {changes} + {renamed} changes, {} documents written, drift {}",
        index.written.load(Ordering::Relaxed),
        report.drift()
    );
    anyhow::ensure!(report.drift() == 0, "the index matches the source");
    Ok(())
}
