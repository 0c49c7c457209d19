//! The index-side port: physical indexes behind a public alias, versioned writes and reads for verify.

mod decorator;

use std::fmt;

use async_trait::async_trait;

use crate::checkpoint::BackfillCheckpoint;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::IndexError;
use crate::keyset::KeysetPage;
use crate::source::Version;

/// The name of one physical index (the alias the API reads points at one of them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IndexName(pub String);

impl fmt::Display for IndexName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who writes to an index: one id per engine. An index fences writers by it, so that a writer that
/// lost its lease cannot publish over the index its successor writes to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WriterId(String);

impl WriterId {
    /// A fresh id: 16 lowercase hex digits, usable inside index and alias names.
    pub fn random() -> WriterId {
        WriterId(format!("{:016x}", rand::random::<u64>()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WriterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One write to an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexOp {
    /// Store `document` unless the index already holds a version at least as new.
    Upsert {
        /// The document to store.
        document: ProjectDocument,
        /// The version of the state it was read from.
        version: Version,
    },
    /// Delete the document unless the index already holds a newer version; remember the deletion's
    /// version so a late older upsert cannot bring the document back.
    Delete {
        /// The project whose document goes.
        id: ProjectId,
        /// The version of the state in which the project was found gone.
        version: Version,
    },
}

impl IndexOp {
    /// The project this operation is about.
    pub fn project(&self) -> ProjectId {
        match self {
            IndexOp::Upsert { document, .. } => document.id,
            IndexOp::Delete { id, .. } => *id,
        }
    }
}

/// What became of one [`IndexOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The index accepted and stored the operation.
    Applied,
    /// The index already holds a newer version: nothing to do, and not an error.
    Superseded,
    /// The operation failed for a reason that may pass (429, 5xx, shard unavailable): send it again.
    Retryable(String),
    /// The index refuses this document for good (mapping error, document too large): dead-letter it.
    Rejected(String),
}

/// A search engine index of project documents behind a public alias.
///
/// # Contract
/// - **Versioned, idempotent writes.** Every [`IndexOp`] carries a [`Version`]; the index applies it only
///   when it is greater than the version it holds for that document (deleted documents included), and
///   reports [`WriteOutcome::Superseded`] otherwise. Replaying any write is therefore harmless, in any
///   order.
/// - **Per-operation outcomes.** [`write`](Self::write) returns one outcome per operation, in order. A
///   call that fails as a whole returns an error and applied nothing the caller may count on.
/// - **Durable on success.** An `Applied` or `Superseded` outcome means the write survives a crash of
///   the engine's client; the engine acknowledges changes on that basis.
/// - **Atomic publication.** [`publish`](Self::publish) moves the alias to a new physical index in one
///   step: readers see the old index or the new one, never none.
/// - **Fenced writers.** [`claim`](Self::claim) makes one writer the only one whose
///   [`publish_as`](Self::publish_as) can succeed: every earlier claim is revoked in the same step.
///   A writer that lost its lease and was replaced therefore cannot move the alias away from the
///   index its successor writes to (and acknowledges changes from), however late its publish lands.
/// - **Checkpoints live with their index.** A [`BackfillCheckpoint`] saved for an index survives
///   the engine's process and goes when the index is dropped; an index behind the alias is never
///   reported unfinished.
#[async_trait]
pub trait SearchIndex: Send + Sync {
    /// The physical index the alias points to, `None` when the alias does not exist yet.
    async fn live_index(&self) -> Result<Option<IndexName>, IndexError>;

    /// Creates a new, empty physical index with the current mapping, tuned for a bulk load (no refresh,
    /// no replicas) until [`finish_bulk_load`](Self::finish_bulk_load).
    async fn create_index(&self) -> Result<IndexName, IndexError>;

    /// Restores the serving settings of an index created for a bulk load and makes its writes visible.
    async fn finish_bulk_load(&self, index: &IndexName) -> Result<(), IndexError>;

    /// Points the alias at `index` atomically; returns the index it pointed to before, if any.
    async fn publish(&self, index: &IndexName) -> Result<Option<IndexName>, IndexError>;

    /// Makes `writer` the only writer whose [`publish_as`](Self::publish_as) can succeed, revoking
    /// every other writer's claim, and returns the physical index the alias points to once the
    /// claim took effect (`None` when the alias does not exist yet). Claiming again is harmless.
    async fn claim(&self, writer: &WriterId) -> Result<Option<IndexName>, IndexError>;

    /// [`publish`](Self::publish) for a writer that [claimed](Self::claim): the alias moves only if
    /// `writer`'s claim still stands, checked in the same atomic step; otherwise nothing changes
    /// and the call fails with [`IndexError::Fenced`].
    async fn publish_as(
        &self,
        index: &IndexName,
        writer: &WriterId,
    ) -> Result<Option<IndexName>, IndexError>;

    /// Whether `index` was created with the mapping this adapter writes. An index built by another
    /// release (another mapping version) must be rebuilt before it takes this release's documents.
    async fn mapping_is_current(&self, index: &IndexName) -> Result<bool, IndexError>;

    /// Deletes a physical index. Deleting one that does not exist is not an error.
    async fn drop_index(&self, index: &IndexName) -> Result<(), IndexError>;

    /// Applies `ops` to `index`; one outcome per operation, in order. A write to an index that does
    /// not exist fails with [`IndexError::NotFound`] and never creates it.
    async fn write(
        &self,
        index: &IndexName,
        ops: &[IndexOp],
    ) -> Result<Vec<WriteOutcome>, IndexError>;

    /// Makes every write so far visible to searches of `index`.
    async fn refresh(&self, index: &IndexName) -> Result<(), IndexError>;

    /// The stored documents of `ids` (those that exist), sorted by id.
    async fn get(
        &self,
        index: &IndexName,
        ids: &[ProjectId],
    ) -> Result<Vec<ProjectDocument>, IndexError>;

    /// The ids stored in `index` that `page` holds, ascending.
    async fn ids_page(
        &self,
        index: &IndexName,
        page: KeysetPage,
    ) -> Result<Vec<ProjectId>, IndexError>;

    /// The number of documents in `index`.
    async fn count(&self, index: &IndexName) -> Result<u64, IndexError>;

    /// Stores how far a backfill into `index` got, durably and with the index: dropping the index
    /// drops it. Saving again replaces it. The default stores nothing (a failed backfill then
    /// starts over).
    async fn save_checkpoint(
        &self,
        _index: &IndexName,
        _checkpoint: &BackfillCheckpoint,
    ) -> Result<(), IndexError> {
        Ok(())
    }

    /// The physical indexes of this alias that hold a backfill checkpoint not yet finished, are not
    /// behind the alias and were created with the current mapping: backfills that stopped before
    /// they were done, oldest first.
    async fn unfinished_backfills(
        &self,
    ) -> Result<Vec<(IndexName, BackfillCheckpoint)>, IndexError> {
        Ok(Vec::new())
    }
}
