//! The source-side ports: where changes come from ([`ChangeSource`]), where documents are built from
//! ([`DocumentSource`]), who may write to the index ([`WriterLease`]), and what the API looks up
//! beside the index ([`SourceLookup`]).

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::change::{Ack, Backlog, ChangeRecord};
use crate::document::{HashtagId, ProjectDocument, ProjectId, UserId};
use crate::error::SourceError;
use crate::keyset::KeysetPage;

/// A feed of committed changes that stay pending until acknowledged.
///
/// # Contract
/// - **Only committed changes.** A change is returned only once the transaction that made it committed.
/// - **At least once.** A change is returned by every [`poll`](Self::poll) until it is acknowledged, so a
///   crash between a poll and its [`ack`](Self::ack) replays it. Consumers must tolerate duplicates; the
///   engine does, because a change names a row, not a state.
/// - **Nothing skipped.** `poll` returns the oldest pending changes. It never relies on a "last id seen"
///   high-water mark: a change whose id was assigned early but which committed late is still returned.
/// - **Acknowledge after durability.** The engine acknowledges a change only after the index accepted
///   all the work it caused. `ack` is atomic: its changes leave the source and its dead letters are
///   recorded together, or neither. Acknowledging an id that is no longer pending is not an error.
/// - **One consumer.** Concurrent consumers are prevented by the [`WriterLease`], not by this port.
#[async_trait]
pub trait ChangeSource: Send + Sync {
    /// The oldest pending changes, at most `max`, oldest first. When none is pending, waits up to `wait`
    /// for one to commit (by notification or polling) and returns an empty batch if none does.
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError>;

    /// Removes acknowledged changes and records dead letters, atomically.
    async fn ack(&self, ack: &Ack) -> Result<(), SourceError>;

    /// How much is pending and how old the oldest pending change is.
    async fn backlog(&self) -> Result<Backlog, SourceError>;

    /// Whether changes are still being captured: fails with `Misconfigured` naming what is missing
    /// or disabled (a capture trigger dropped or disabled behind Athens' back). The engine calls it
    /// periodically while streaming and raises an alarm on failure, since a capture that stopped
    /// loses every later change silently. Sources whose capture cannot stop that way keep the
    /// default, which reports it healthy.
    async fn capture_health(&self) -> Result<(), SourceError> {
        Ok(())
    }
}

/// A version of the source's state, strictly increasing across every [`DocumentSource`] read, across
/// processes and restarts. The index keeps, per document, the highest version written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Version(pub u64);

/// Documents read from one consistent state of the source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Version of the state read: greater than that of every snapshot read before this one began.
    pub version: Version,
    /// The documents that exist, sorted by id.
    pub documents: Vec<ProjectDocument>,
    /// Requested ids that no longer exist (their documents must be deleted), sorted.
    pub missing: Vec<ProjectId>,
}

/// Reads current project documents from the source of truth.
///
/// # Contract
/// - Each read sees one consistent state and carries its [`Version`]. Versions are ordered like the
///   states they were read from: a snapshot that began after another one ended has a greater version,
///   whichever process read it. A write that uses the version can therefore never let an older state
///   overwrite a newer one.
/// - Reads are set-based: loading many ids costs a few queries, not one per project.
#[async_trait]
pub trait DocumentSource: Send + Sync {
    /// The current documents of `ids`, and which of them no longer exist.
    async fn load(&self, ids: &[ProjectId]) -> Result<Snapshot, SourceError>;

    /// The projects of `page`, ascending, for backfills (which read disjoint ranges in parallel,
    /// each bounded by `page.until`) and verify. `missing` is always empty.
    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SourceError>;

    /// The lowest and highest project ids (`None` when there is no project), for splitting a
    /// backfill into ranges. The default says `None`: such a source is backfilled as one range,
    /// by one reader.
    async fn id_bounds(&self) -> Result<Option<(ProjectId, ProjectId)>, SourceError> {
        Ok(None)
    }

    /// The projects that any of `users` created or that use any of `hashtags`, in the current state.
    async fn projects_touched(
        &self,
        users: &[UserId],
        hashtags: &[HashtagId],
    ) -> Result<Vec<ProjectId>, SourceError>;
}

/// What the API and the operator's commands ask the source of truth beside the sync: whether it
/// answers, whether a user exists (which the index cannot tell when the user has no project), and
/// how many projects it holds.
///
/// # Contract
/// - [`ping`](Self::ping) stays cheap whatever the tables hold: readiness probes call it every few
///   seconds on every API server. It fails when the source cannot serve reads (unreachable, tables
///   missing or not readable).
/// - [`user_exists`](Self::user_exists) and [`count`](Self::count) read the current state.
#[async_trait]
pub trait SourceLookup: Send + Sync {
    /// Answers when the source can serve reads, with a round trip that reads no rows.
    async fn ping(&self) -> Result<(), SourceError>;

    /// Whether a user with this id exists now.
    async fn user_exists(&self, user: UserId) -> Result<bool, SourceError>;

    /// The number of projects in the source, for progress and status displays.
    async fn count(&self) -> Result<u64, SourceError>;
}

/// The right to write to the index: at most one process holds it at a time, others wait as standbys.
///
/// # Contract
/// - `try_acquire` is idempotent for the holder and never blocks on another holder.
/// - A holder that crashes or loses its connection loses the lease, so a standby can take over.
/// - `is_held` tells a holder, before it acknowledges work, whether it still holds the lease; once
///   it said no, `lost` says which lease and why, as far as the lease knows.
#[async_trait]
pub trait WriterLease: Send + Sync {
    /// Takes the lease if it is free (or already ours). Returns whether this process now holds it.
    async fn try_acquire(&self) -> Result<bool, SourceError>;

    /// Whether this process still holds the lease.
    async fn is_held(&self) -> Result<bool, SourceError>;

    /// Gives the lease up so a standby can take it.
    async fn release(&self) -> Result<(), SourceError>;

    /// Why this process no longer holds the lease, asked once [`is_held`](Self::is_held) said so:
    /// a [`SourceError::LeaseLost`] naming the lease and what is known of the loss (taken by
    /// another holder, lapsed, released), with the error that ended it as its source when there
    /// was one.
    async fn lost(&self) -> SourceError {
        SourceError::lease_lost("this process no longer holds the writer lease")
    }
}
