//! Shared fixtures of the engine tests: the in-memory index and the in-memory document source,
//! each wrapped so a test can act around their calls (inject latency, hang, pause at a gate, count,
//! narrow what a resolution returns) without forwarding every port method itself.

use crate::KeysetPage;
use std::sync::Arc;

use async_trait::async_trait;

use crate::checkpoint::BackfillCheckpoint;
use crate::document::{HashtagId, UserId};
use crate::document::{ProjectDocument, ProjectId};
use crate::error::{IndexError, SourceError};
use crate::index::{IndexName, IndexOp, SearchIndex, WriteOutcome, WriterId};
use crate::source::{DocumentSource, Snapshot};
use crate::testing::{MemoryIndex, MemorySource};

/// Which port method the engine called (a write with how many operations).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    LiveIndex,
    CreateIndex,
    FinishBulkLoad,
    Publish,
    Claim,
    PublishAs,
    MappingIsCurrent,
    DropIndex,
    Write { ops: usize },
    Refresh,
    Get,
    IdsPage,
    Count,
    SaveCheckpoint,
    UnfinishedBackfills,
}

/// What a test does around the calls of a [`Hooked`] index; every hook defaults to nothing.
#[async_trait]
pub(super) trait IndexHooks: Send + Sync {
    /// Whether backfill checkpoints reach the in-memory index; without, the port's defaults apply
    /// (nothing stored, nothing unfinished).
    const CHECKPOINTS: bool = true;

    /// Runs before the in-memory index is called.
    async fn before(&self, _call: Call) {}

    /// Runs after the in-memory index answered, before the engine sees the answer.
    async fn after(&self, _call: Call) {}
}

/// The in-memory index with `hooks` run around each call.
pub(super) struct Hooked<H> {
    pub(super) inner: Arc<MemoryIndex>,
    pub(super) hooks: H,
}

impl<H: IndexHooks> Hooked<H> {
    /// `index` behind `hooks`.
    pub(super) fn new(index: &Arc<MemoryIndex>, hooks: H) -> Arc<Hooked<H>> {
        Arc::new(Hooked {
            inner: index.clone(),
            hooks,
        })
    }

    async fn around<T>(&self, call: Call, work: impl Future<Output = T>) -> T {
        self.hooks.before(call).await;
        let answer = work.await;
        self.hooks.after(call).await;
        answer
    }
}

#[async_trait]
impl<H: IndexHooks> SearchIndex for Hooked<H> {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        self.around(Call::LiveIndex, self.inner.live_index()).await
    }
    async fn create_index(&self) -> Result<IndexName, IndexError> {
        self.around(Call::CreateIndex, self.inner.create_index())
            .await
    }
    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        self.around(Call::FinishBulkLoad, self.inner.finish_bulk_load(index))
            .await
    }
    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        self.around(Call::Publish, self.inner.publish(index)).await
    }
    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        self.around(Call::Claim, self.inner.claim(writer)).await
    }
    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        self.around(Call::PublishAs, self.inner.publish_as(index, writer))
            .await
    }
    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        self.around(Call::MappingIsCurrent, self.inner.mapping_is_current(index))
            .await
    }
    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        self.around(Call::DropIndex, self.inner.drop_index(index))
            .await
    }
    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        let call = Call::Write { ops: ops.len() };
        self.around(call, self.inner.write(index, ops)).await
    }
    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        self.around(Call::Refresh, self.inner.refresh(index)).await
    }
    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        self.around(Call::Get, self.inner.get(index, ids)).await
    }
    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        self.around(Call::IdsPage, self.inner.ids_page(index, page))
            .await
    }
    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        self.around(Call::Count, self.inner.count(index)).await
    }
    async fn save_checkpoint(
        &self,
        index: &IndexName,
        checkpoint: &BackfillCheckpoint,
    ) -> Result<(), IndexError> {
        if !H::CHECKPOINTS {
            return Ok(());
        }
        self.around(
            Call::SaveCheckpoint,
            self.inner.save_checkpoint(index, checkpoint),
        )
        .await
    }
    async fn unfinished_backfills(
        &self,
    ) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
        if !H::CHECKPOINTS {
            return Ok(Vec::new());
        }
        self.around(Call::UnfinishedBackfills, self.inner.unfinished_backfills())
            .await
    }
}

/// Which read of the document source the engine made.
#[derive(Clone, Copy, Debug)]
pub(super) enum Read<'a> {
    /// `load` of these projects.
    Load(&'a [ProjectId]),
    /// `load_page` of at most this many projects.
    Page(usize),
    /// `projects_touched`.
    Touched,
}

/// What a test does around the reads of a [`HookedDocuments`] source; every hook defaults to
/// nothing.
#[async_trait]
pub(super) trait DocumentHooks: Send + Sync {
    /// Runs before the in-memory source is read.
    async fn before(&self, _read: Read<'_>) {}

    /// Runs after the in-memory source answered a `load` of `ids`.
    fn loaded(&self, _ids: &[ProjectId]) {}

    /// Whether a resolution of users and hashtags returns `project` (every one by default).
    fn resolves_to(&self, _project: ProjectId) -> bool {
        true
    }
}

/// The in-memory document source with `hooks` run around each read.
pub(super) struct HookedDocuments<H> {
    pub(super) inner: Arc<MemorySource>,
    pub(super) hooks: H,
}

impl<H: DocumentHooks> HookedDocuments<H> {
    /// `source` behind `hooks`.
    pub(super) fn new(source: &Arc<MemorySource>, hooks: H) -> Arc<HookedDocuments<H>> {
        Arc::new(HookedDocuments {
            inner: source.clone(),
            hooks,
        })
    }
}

#[async_trait]
impl<H: DocumentHooks> DocumentSource for HookedDocuments<H> {
    async fn load(&self, ids: &[ProjectId]) -> Result<Snapshot, SourceError> {
        self.hooks.before(Read::Load(ids)).await;
        let loaded = self.inner.load(ids).await;
        self.hooks.loaded(ids);
        loaded
    }
    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SourceError> {
        self.hooks.before(Read::Page(page.limit)).await;
        self.inner.load_page(page).await
    }
    async fn projects_touched(
        &self,
        users: &[UserId],
        hashtags: &[HashtagId],
    ) -> Result<Vec<ProjectId>, SourceError> {
        self.hooks.before(Read::Touched).await;
        let mut touched = self.inner.projects_touched(users, hashtags).await?;
        touched.retain(|project| self.hooks.resolves_to(*project));
        Ok(touched)
    }
}
