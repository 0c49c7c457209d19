//! The [`RebuildQueue`] port: projects whose documents must be rebuilt, kept durably by the
//! source. A user rename or a hashtag delete touches every project linked to it (a fan-out, up to
//! millions of documents); the engine queues those projects and acknowledges the change as soon as
//! they are queued, then drains the queue chunk by chunk between newer changes. A crash in the
//! middle resumes with the projects still queued instead of resolving and rewriting all of them
//! again, and the change's source (an outbox row, a replication slot's position) is released at
//! once instead of for the whole fan-out.

use async_trait::async_trait;

use crate::document::ProjectId;
use crate::error::SourceError;
use crate::keyset::KeysetPage;

/// Which enqueue queued a project last: a value no earlier enqueue of the queue gave. A project
/// queued again gets a new stamp, so that [`RebuildQueue::done`] can tell the entry it took from
/// the one that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct QueueStamp(pub i64);

/// A queued project as [`RebuildQueue::take`] saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QueuedProject {
    /// The project whose document must be rebuilt.
    pub project: ProjectId,
    /// The enqueue that queued it last.
    pub stamp: QueueStamp,
}

/// Projects whose documents must be rebuilt from the current state, kept until a rebuild that
/// began after they were queued is in the index.
///
/// # Contract
/// - **Durable.** [`enqueue`](Self::enqueue) returns once its projects are queued for good: every
///   later [`take`](Self::take), by this process or another one after a crash, returns them until
///   they are done. Only then may the engine acknowledge the change that queued them.
/// - **A set.** A project queued twice is one entry, stamped by the later enqueue.
/// - **Taking removes nothing.** `take` returns queued projects in ascending id order within a
///   [`KeysetPage`], each with its stamp, and leaves them queued.
/// - **Done only for the entry taken.** [`done`](Self::done) removes a project only while it still
///   carries the stamp it was taken with: a project queued again after it was taken stays queued,
///   since the read that rebuilt it may have begun before the change that queued it again. Marking
///   done what is not queued (any more) is not an error.
/// - **Scoped like the writer.** The queue of one partition's writer takes, clears and counts that
///   partition's projects only (see [`partition`](crate::partition)); enqueueing routes each
///   project to its own partition.
#[async_trait]
pub trait RebuildQueue: Send + Sync {
    /// Queues `projects` (in any order, duplicates allowed), stamping each with a new stamp.
    async fn enqueue(&self, projects: &[ProjectId]) -> Result<(), SourceError>;

    /// The queued projects of `page`, ascending, each with its stamp; removes nothing.
    async fn take(&self, page: KeysetPage) -> Result<Vec<QueuedProject>, SourceError>;

    /// Removes the projects taken as `taken` whose stamp did not change since.
    async fn done(&self, taken: &[QueuedProject]) -> Result<(), SourceError>;

    /// Removes every queued project, for a rebuild of the whole index about to read every
    /// project from a snapshot taken after this call. Fenced like an acknowledgement: a writer
    /// that lost its lease clears nothing.
    async fn clear(&self) -> Result<(), SourceError>;

    /// How many projects are queued, for backlog displays.
    async fn queued(&self) -> Result<u64, SourceError>;
}
