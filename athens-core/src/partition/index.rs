//! [`PartitionIndex`]: the index as one partition's writer sees it: it writes documents, and never
//! builds or publishes a new physical index, which only a writer holding every partition may do.

use crate::KeysetPage;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Partition;
use crate::checkpoint::BackfillCheckpoint;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::IndexError;
use crate::index::{IndexName, IndexOp, SearchIndex, WriteOutcome, WriterId};

/// A [`SearchIndex`] for the writer of one partition. A rebuild of the whole index (the first
/// backfill, a mapping change, a truncate) reads every project, which no partition may do while
/// the others stream. So the calls that lead the engine into one are refused: a
/// [`claim`](SearchIndex::claim) that finds no alias (the engine would backfill; a partition's
/// claim only reads the live index, since it never publishes), a live index
/// whose mapping is not current (it would rebuild, or resume an unfinished backfill),
/// [`create_index`](SearchIndex::create_index) (a truncate's rebuild) and the publications. The
/// refusal cancels `rebuild`, telling the process to stop its partitions' writers and rebuild
/// holding every partition's lease. Every other call goes to the index unchanged, the listing of
/// unfinished backfills included: a partition's writer drops them before it streams, as any
/// writer does (none may be resumed once a change was acknowledged).
pub struct PartitionIndex {
    index: Arc<dyn SearchIndex>,
    partition: Partition,
    rebuild: CancellationToken,
}

impl PartitionIndex {
    /// `index` for the writer of `partition`; a refused rebuild cancels `rebuild`.
    pub fn new(
        index: Arc<dyn SearchIndex>,
        partition: Partition,
        rebuild: CancellationToken,
    ) -> PartitionIndex {
        PartitionIndex {
            index,
            partition,
            rebuild,
        }
    }

    fn refuse(&self, what: &str) -> IndexError {
        info!(partition = %self.partition, what, "the index needs a rebuild by a writer holding every partition");
        self.rebuild.cancel();
        IndexError::rejected(format!(
            "the writer of partition {} may not {what}: a rebuild of the whole index needs every \
             partition's lease",
            self.partition
        ))
    }
}

#[async_trait]
impl SearchIndex for PartitionIndex {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        self.index.live_index().await
    }

    async fn create_index(&self) -> Result<IndexName, IndexError> {
        Err(self.refuse("create an index"))
    }

    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        self.index.finish_bulk_load(index).await
    }

    async fn publish(&self, _index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        Err(self.refuse("publish an index"))
    }

    /// The live index, without claiming: a partition's writer never publishes, so it needs no
    /// claim, and must not revoke the others' (claims of `P` writers at once would race).
    async fn claim(&self, _writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        match self.index.live_index().await? {
            Some(live) => Ok(Some(live)),
            None => Err(self.refuse("backfill the first index")),
        }
    }

    async fn publish_as(
        &self,
        _index: &IndexName,
        _writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        Err(self.refuse("publish an index"))
    }

    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        if self.index.mapping_is_current(index).await? {
            Ok(true)
        } else {
            Err(self.refuse("rebuild an index built with another mapping"))
        }
    }

    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        self.index.drop_index(index).await
    }

    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        self.index.write(index, ops).await
    }

    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        self.index.refresh(index).await
    }

    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        self.index.get(index, ids).await
    }

    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        self.index.ids_page(index, page).await
    }

    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        self.index.count(index).await
    }

    async fn save_checkpoint(
        &self,
        index: &IndexName,
        checkpoint: &BackfillCheckpoint,
    ) -> Result<(), IndexError> {
        self.index.save_checkpoint(index, checkpoint).await
    }

    async fn unfinished_backfills(
        &self,
    ) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
        self.index.unfinished_backfills().await
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;
    use crate::testing::MemoryIndex;

    fn partition() -> Partition {
        Partition::new(1, NonZeroU32::new(2).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn a_partition_never_builds_an_index_and_says_a_rebuild_is_needed() {
        let memory = Arc::new(MemoryIndex::new());
        let rebuild = CancellationToken::new();
        let index = PartitionIndex::new(memory.clone(), partition(), rebuild.clone());
        let writer = WriterId::random();
        let refused = index.claim(&writer).await.unwrap_err();
        assert!(matches!(refused, IndexError::Rejected { .. }), "{refused}");
        assert!(refused.to_string().contains("partition 1/2"), "{refused}");
        assert!(rebuild.is_cancelled(), "no alias yet: the first backfill");
        assert!(memory.live_index().await.unwrap().is_none());

        let live = memory.create_index().await.unwrap();
        memory.publish(&live).await.unwrap();
        let rebuild = CancellationToken::new();
        let index = PartitionIndex::new(memory.clone(), partition(), rebuild.clone());
        assert_eq!(index.claim(&writer).await.unwrap(), Some(live.clone()));
        assert!(index.mapping_is_current(&live).await.unwrap());
        assert!(
            !rebuild.is_cancelled(),
            "streaming into the live index is the partition's own"
        );
        assert!(index.create_index().await.is_err(), "a truncate's rebuild");
        assert!(index.publish_as(&live, &writer).await.is_err());
        assert!(rebuild.is_cancelled());
    }
}
