//! [`PartitionIndex`]: the index as one partition's writer sees it: it writes documents, and never
//! builds or publishes a new physical index, which only a writer holding every partition may do.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::info;

use super::Partition;
use crate::error::IndexError;
use crate::index::{IndexName, SearchIndex, WriterId};

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

crate::search_index_decorator! {
    impl SearchIndex for PartitionIndex {
        pass to self.index: live_index, finish_bulk_load, drop_index, write, refresh, get, ids_page,
            count, save_checkpoint, unfinished_backfills;

        async fn create_index(&self) -> Result<IndexName, IndexError> {
            Err(self.refuse("create an index"))
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
