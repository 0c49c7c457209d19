//! Embedding `athens-core` with your own adapters: this example plugs a hand-written `SearchIndex`
//! (a decorator that counts the documents written, standing in for your own search backend) and the
//! in-memory source from the `testing` feature into a `SyncEngine`, backfills, streams a change, and
//! verifies. Run it with `cargo run -p athens-core --example embed --features testing`.

#![allow(clippy::print_stdout)] // an example reports to its user on stdout

use athens_core::KeysetPage;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use athens_core::testing::{MemoryIndex, MemorySource};
use athens_core::{
    EngineConfig, IndexError, IndexName, IndexOp, ProjectDocument, ProjectId, SearchIndex,
    SyncEngine, WriteOutcome, WriterId, WriterLease,
};
use tokio_util::sync::CancellationToken;

/// Your adapter: any type implementing the port. Here it delegates to an in-memory index and counts.
struct CountingIndex {
    inner: MemoryIndex,
    written: AtomicU64,
}

#[async_trait]
impl SearchIndex for CountingIndex {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        self.inner.live_index().await
    }
    async fn create_index(&self) -> Result<IndexName, IndexError> {
        self.inner.create_index().await
    }
    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        self.inner.finish_bulk_load(index).await
    }
    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        self.inner.publish(index).await
    }
    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        self.inner.claim(writer).await
    }
    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        self.inner.publish_as(index, writer).await
    }
    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        self.inner.mapping_is_current(index).await
    }
    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        self.inner.drop_index(index).await
    }
    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        self.written.fetch_add(ops.len() as u64, Ordering::Relaxed);
        self.inner.write(index, ops).await
    }
    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        self.inner.refresh(index).await
    }
    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        self.inner.get(index, ids).await
    }
    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        self.inner.ids_page(index, page).await
    }
    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        self.inner.count(index).await
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
