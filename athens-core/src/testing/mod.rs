//! Test support for Athens and for anyone writing an adapter: in-memory fakes of every port with fault
//! injection, the contract suites each implementation must pass, and captured logs. Enabled by the
//! `testing` feature.

mod backfill_contract;
pub mod contract;
mod logs;
mod memory_index;
mod memory_queue;
mod memory_source;

use async_trait::async_trait;

pub use backfill_contract::{checkpoint_contract, range_contract};
pub use contract::{
    ContractFailure, ContractResult, FixtureError, SourceFixture, sample_document,
    search_index_contract, writer_fence_contract,
};
pub use logs::CapturedLogs;
pub use memory_index::{IndexFaults, MemoryIndex};
pub use memory_queue::{MemoryQueue, QueueFaults};
pub use memory_source::{Fault, MemoryLease, MemorySource, SourceFaults};

use crate::change::Table;
use crate::document::{HashtagId, ProjectId, UserId};
use crate::source::{ChangeSource, DocumentSource, SourceLookup};

/// The cause of every injected failure: the I/O error a real adapter would keep as its source.
fn injected_cause() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "injected: connection reset by peer",
    )
}

#[async_trait]
impl SourceFixture for MemorySource {
    fn changes(&self) -> &dyn ChangeSource {
        self
    }
    fn documents(&self) -> &dyn DocumentSource {
        self
    }
    fn lookup(&self) -> &dyn SourceLookup {
        self
    }
    async fn add_user(&self, name: &str) -> Result<UserId, FixtureError> {
        Ok(MemorySource::add_user(self, name))
    }
    async fn rename_user(&self, user: UserId, name: &str) -> Result<(), FixtureError> {
        MemorySource::rename_user(self, user, name);
        Ok(())
    }
    async fn add_hashtag(&self, name: &str) -> Result<HashtagId, FixtureError> {
        Ok(MemorySource::add_hashtag(self, name))
    }
    async fn delete_hashtag(&self, hashtag: HashtagId) -> Result<(), FixtureError> {
        MemorySource::delete_hashtag(self, hashtag);
        Ok(())
    }
    async fn add_project(&self, name: &str, slug: &str) -> Result<ProjectId, FixtureError> {
        Ok(MemorySource::add_project(self, name, slug, ""))
    }
    async fn delete_project(&self, project: ProjectId) -> Result<(), FixtureError> {
        MemorySource::delete_project(self, project);
        Ok(())
    }
    async fn tag(&self, project: ProjectId, hashtag: HashtagId) -> Result<(), FixtureError> {
        MemorySource::tag(self, project, hashtag);
        Ok(())
    }
    async fn credit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError> {
        MemorySource::credit(self, project, user);
        Ok(())
    }
    async fn uncredit(&self, project: ProjectId, user: UserId) -> Result<(), FixtureError> {
        MemorySource::uncredit(self, project, user);
        Ok(())
    }
    async fn truncate(&self, table: Table) -> Result<(), FixtureError> {
        MemorySource::truncate(self, table);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The source clauses over a fresh in-memory source each.
    mod memory_source {
        use super::*;

        crate::source_clauses!(|_test, clause| {
            let source = MemorySource::new();
            clause(source.as_ref()).await
        });
    }

    /// The rebuild queue clauses over a fresh in-memory queue each.
    mod memory_queue {
        use super::*;

        crate::rebuild_queue_clauses!(|_test, clause| {
            clause(MemoryQueue::new().as_ref()).await
        });
    }

    #[tokio::test]
    async fn a_partitions_view_of_the_memory_queue_takes_and_clears_its_own_projects() {
        use crate::RebuildQueue;
        use crate::partition::Partition;
        use std::num::NonZeroU32;

        let queue = MemoryQueue::new();
        let ids: Vec<ProjectId> = (1..=40).map(ProjectId).collect();
        queue.enqueue(&ids).await.unwrap();
        let two = NonZeroU32::new(2).unwrap();
        let [first, second] = [0, 1].map(|index| Partition::new(index, two).unwrap());
        let taken = queue
            .partition(first)
            .take(crate::KeysetPage::first(100))
            .await
            .unwrap();
        assert!(!taken.is_empty() && taken.len() < 40);
        assert!(taken.iter().all(|queued| first.holds(queued.project)));
        queue.partition(second).clear().await.unwrap();
        assert_eq!(queue.queued().await.unwrap(), taken.len() as u64);
    }

    /// The index clauses over a fresh in-memory index each.
    mod memory_index {
        use super::*;

        crate::search_index_clauses!(|_test, clause| { clause(&MemoryIndex::new()).await });
    }

    #[tokio::test]
    async fn memory_index_honours_the_whole_index_contract_on_one_alias() {
        search_index_contract(&MemoryIndex::new()).await.unwrap();
    }

    #[tokio::test]
    async fn memory_fakes_honour_the_backfill_clauses() {
        range_contract(MemorySource::new().as_ref()).await.unwrap();
        checkpoint_contract(&MemoryIndex::new()).await.unwrap();
    }

    #[tokio::test]
    async fn memory_index_fences_writers() {
        writer_fence_contract(&MemoryIndex::new()).await.unwrap();
    }
}
