//! An in-memory [`RebuildQueue`]: a map from project to stamp shared by every view of it (one per
//! partition's writer, as the PostgreSQL table is shared), with fault injection. It outlives the
//! engines using it, so a test can drop an engine mid fan-out and start another on the same queue.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;

use super::memory_source::Fault;
use crate::document::ProjectId;
use crate::error::SourceError;
use crate::keyset::KeysetPage;
use crate::partition::Partition;
use crate::rebuild_queue::{QueueStamp, QueuedProject, RebuildQueue};

#[derive(Debug, Default)]
struct Entries {
    stamps: BTreeMap<ProjectId, QueueStamp>,
    last_stamp: i64,
}

/// Failures a [`MemoryQueue`] can be told to inject.
#[derive(Debug, Default)]
pub struct QueueFaults {
    /// Fails `enqueue` with `Unavailable`.
    pub enqueue: Fault,
    /// Fails `done` with `Unavailable`.
    pub done: Fault,
}

/// A rebuild queue in memory; [`partition`](Self::partition) gives one partition's view of it.
#[derive(Debug, Default, Clone)]
pub struct MemoryQueue {
    entries: Arc<Mutex<Entries>>,
    faults: Arc<QueueFaults>,
    scope: Option<Partition>,
}

impl MemoryQueue {
    /// An empty queue, seen whole.
    pub fn new() -> Arc<MemoryQueue> {
        Arc::new(MemoryQueue::default())
    }

    /// The same queue seen by the writer of `partition`.
    pub fn partition(&self, partition: Partition) -> Arc<MemoryQueue> {
        Arc::new(MemoryQueue {
            scope: Some(partition),
            ..self.clone()
        })
    }

    /// Failures to inject (shared by every view).
    pub fn faults(&self) -> &QueueFaults {
        &self.faults
    }

    /// Every queued project (of every partition), ascending.
    pub fn projects(&self) -> Vec<ProjectId> {
        self.entries().stamps.keys().copied().collect()
    }

    fn entries(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn holds(&self, project: ProjectId) -> bool {
        self.scope.is_none_or(|partition| partition.holds(project))
    }
}

fn unavailable() -> SourceError {
    SourceError::unavailable("injected failure").with_source(super::injected_cause())
}

#[async_trait]
impl RebuildQueue for MemoryQueue {
    async fn enqueue(&self, projects: &[ProjectId]) -> Result<(), SourceError> {
        if self.faults.enqueue.fire() {
            return Err(unavailable());
        }
        let mut entries = self.entries();
        entries.last_stamp += 1;
        let stamp = QueueStamp(entries.last_stamp);
        for project in projects {
            entries.stamps.insert(*project, stamp);
        }
        Ok(())
    }

    async fn take(&self, page: KeysetPage) -> Result<Vec<QueuedProject>, SourceError> {
        let entries = self.entries();
        let from = page.after.map_or(Bound::Unbounded, Bound::Excluded);
        Ok(entries
            .stamps
            .range((from, Bound::Unbounded))
            .take_while(|(project, _)| page.holds(**project))
            .filter(|(project, _)| self.holds(**project))
            .take(page.limit)
            .map(|(project, stamp)| QueuedProject {
                project: *project,
                stamp: *stamp,
            })
            .collect())
    }

    async fn done(&self, taken: &[QueuedProject]) -> Result<(), SourceError> {
        if self.faults.done.fire() {
            return Err(unavailable());
        }
        let mut entries = self.entries();
        for queued in taken {
            if entries.stamps.get(&queued.project) == Some(&queued.stamp) {
                entries.stamps.remove(&queued.project);
            }
        }
        Ok(())
    }

    async fn clear(&self) -> Result<(), SourceError> {
        let scope = self.scope;
        self.entries()
            .stamps
            .retain(|project, _| scope.is_some_and(|partition| !partition.holds(*project)));
        Ok(())
    }

    async fn queued(&self) -> Result<u64, SourceError> {
        let entries = self.entries();
        Ok(entries.stamps.keys().filter(|p| self.holds(**p)).count() as u64)
    }
}
