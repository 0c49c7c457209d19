//! Athens' core: the project document, the ports every adapter implements and the sync engine that
//! keeps a search index equal to what a relational source says.
//!
//! Athens depends on no database or search library here. Plug adapters into the ports:
//! - [`ChangeSource`]: committed changes, pending until acknowledged;
//! - [`DocumentSource`]: current documents, read with a version that orders them;
//! - [`WriterLease`]: one writer at a time;
//! - [`RebuildQueue`]: projects whose documents must be rebuilt (a fan-out), kept durably;
//! - [`SearchIndex`]: versioned writes into physical indexes behind an alias;
//! - [`ProjectSearch`]: the read side the API serves;
//! - [`SourceLookup`]: what the API asks the source beside the index (readiness, whether a user
//!   exists).
//!
//! [`SyncEngine`] drives the first five: a zero-downtime backfill into a fresh index, then streaming
//! of changes with at-least-once delivery and idempotent, versioned writes. [`partition`] runs it as
//! the writer of one partition of the projects, for several writers at once.

mod change;
mod checkpoint;
mod document;
pub mod engine;
mod error;
mod index;
mod keyset;
pub mod partition;
mod rebuild_queue;
mod search;
mod source;
mod suggest;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

/// The attribute [`search_index_decorator!`] puts on the impl it writes.
#[doc(hidden)]
pub use async_trait::async_trait as __async_trait;
pub use change::{Ack, Backlog, Change, ChangeId, ChangeRecord, DeadLetter, Table};
pub use checkpoint::{BackfillCheckpoint, RangeProgress};
pub use document::{
    Creator, CreatorLink, Hashtag, HashtagId, HashtagLink, ProjectDocument, ProjectId, ProjectRow,
    UserId, build_documents,
};
pub use engine::{
    BackfillReport, EngineConfig, MappingChange, RetryPolicy, StepReport, SyncEngine, VerifyReport,
};
pub use error::{Cause, ErrorChain, IndexError, SearchError, SourceError, SyncError};
pub use index::{IndexName, IndexOp, SearchIndex, WriteOutcome, WriterId};
pub use keyset::KeysetPage;
pub use rebuild_queue::{QueueStamp, QueuedProject, RebuildQueue};
pub use search::{
    CreatorCount, DEFAULT_PAGE_SIZE, FACET_SIZE, Facet, FacetCounts, HashtagCount, HashtagMode,
    MAX_CURSOR_BYTES, MAX_HASHTAG_CHARS, MAX_HASHTAGS, MAX_PAGE_SIZE, MAX_TEXT_CHARS,
    ProjectSearch, SearchHit, SearchPage, SearchRequest, SortOrder, normalize_hashtag,
};
pub use source::{ChangeSource, DocumentSource, Snapshot, SourceLookup, Version, WriterLease};
pub use suggest::{
    DEFAULT_SUGGESTIONS, MAX_SUGGESTIONS, ProjectSuggestion, SuggestRequest, Suggestions,
    UserSuggestion,
};
