//! A [`SearchIndex`] that accepts every write and keeps nothing: the backfill's reader side
//! measured alone (PostgreSQL's page reads and Athens' document building), with no engine behind.
//!
//! It keeps what the engine's backfill checks: the indexes it created (a write to another one fails
//! with [`IndexError::NotFound`], as the port's contract says), which one the alias points to and
//! which writer claimed it last (a fenced [`publish_as`](SearchIndex::publish_as) fails). It counts
//! the documents it was given, so a run can check that every project was read.

use athens_core::KeysetPage;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use athens_core::{
    IndexError, IndexName, IndexOp, ProjectDocument, ProjectId, SearchIndex, WriteOutcome, WriterId,
};

/// Discards every write; see the module docs.
#[derive(Debug, Default)]
pub struct DiscardIndex {
    state: Mutex<State>,
    written: AtomicU64,
}

#[derive(Debug, Default)]
struct State {
    created: BTreeSet<String>,
    live: Option<IndexName>,
    claimed: Option<String>,
    next: u64,
}

impl DiscardIndex {
    /// Operations accepted so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn known(&self, index: &IndexName) -> Result<(), IndexError> {
        if self.state().created.contains(&index.0) {
            Ok(())
        } else {
            Err(IndexError::not_found(index.0.clone()))
        }
    }
}

#[async_trait]
impl SearchIndex for DiscardIndex {
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError> {
        Ok(self.state().live.clone())
    }

    async fn create_index(&self) -> Result<IndexName, IndexError> {
        let mut state = self.state();
        state.next += 1;
        let name = format!("discard-{}", state.next);
        state.created.insert(name.clone());
        Ok(IndexName(name))
    }

    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError> {
        self.known(index)
    }

    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError> {
        self.known(index)?;
        Ok(self.state().live.replace(index.clone()))
    }

    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError> {
        let mut state = self.state();
        state.claimed = Some(writer.as_str().to_owned());
        Ok(state.live.clone())
    }

    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError> {
        self.known(index)?;
        let mut state = self.state();
        if state.claimed.as_deref() != Some(writer.as_str()) {
            return Err(IndexError::fenced(writer.as_str()));
        }
        Ok(state.live.replace(index.clone()))
    }

    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError> {
        self.known(index)?;
        Ok(true)
    }

    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError> {
        let mut state = self.state();
        state.created.remove(&index.0);
        if state.live.as_ref() == Some(index) {
            state.live = None;
        }
        Ok(())
    }

    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError> {
        self.known(index)?;
        self.written.fetch_add(ops.len() as u64, Ordering::Relaxed);
        Ok(vec![WriteOutcome::Applied; ops.len()])
    }

    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError> {
        self.known(index)
    }

    async fn get(
        &self,
        index: &IndexName,
        _ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError> {
        self.known(index)?;
        Ok(Vec::new())
    }

    async fn ids_page(
        &self,
        index: &IndexName,
        _page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError> {
        self.known(index)?;
        Ok(Vec::new())
    }

    async fn count(&self, index: &IndexName) -> Result<u64, IndexError> {
        self.known(index)?;
        Ok(0)
    }
}

#[cfg(test)]
mod tests {
    use athens_core::{ProjectDocument, Version};

    use super::*;

    fn upsert(id: i64) -> IndexOp {
        let at = chrono::DateTime::UNIX_EPOCH;
        IndexOp::Upsert {
            document: ProjectDocument {
                id: ProjectId(id),
                name: String::new(),
                slug: String::new(),
                description: String::new(),
                created_at: at,
                updated_at: at,
                hashtags: Vec::new(),
                creators: Vec::new(),
            },
            version: Version(1),
        }
    }

    #[tokio::test]
    async fn counts_writes_to_its_indexes_and_refuses_others() {
        let index = DiscardIndex::default();
        let created = index.create_index().await.unwrap();
        let outcomes = index
            .write(&created, &[upsert(1), upsert(2)])
            .await
            .unwrap();
        assert_eq!(outcomes, vec![WriteOutcome::Applied; 2]);
        assert_eq!(index.written(), 2);
        let other = IndexName("elsewhere".into());
        assert!(matches!(
            index.write(&other, &[upsert(3)]).await,
            Err(IndexError::NotFound { .. })
        ));
        index.drop_index(&created).await.unwrap();
        assert!(index.write(&created, &[upsert(4)]).await.is_err());
        assert_eq!(index.written(), 2);
    }

    #[tokio::test]
    async fn only_the_last_claim_publishes() {
        let index = DiscardIndex::default();
        let created = index.create_index().await.unwrap();
        let (first, second) = (WriterId::random(), WriterId::random());
        index.claim(&first).await.unwrap();
        index.claim(&second).await.unwrap();
        assert!(matches!(
            index.publish_as(&created, &first).await,
            Err(IndexError::Fenced { .. })
        ));
        assert_eq!(index.publish_as(&created, &second).await.unwrap(), None);
        assert_eq!(index.live_index().await.unwrap(), Some(created));
    }
}
