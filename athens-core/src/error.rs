//! Error kinds shared by every adapter of a port: each says whether a retry can help, and none names an
//! adapter's library.

use thiserror::Error;

use crate::document::ProjectId;

/// What went wrong in a [`ChangeSource`](crate::ChangeSource), [`DocumentSource`](crate::DocumentSource)
/// or [`WriterLease`](crate::WriterLease).
#[derive(Debug, Error)]
pub enum SourceError {
    /// The source cannot be reached now (connection refused or lost, timeout, failover).
    #[error("source unavailable: {0}")]
    Unavailable(String),
    /// The source is reachable but not usable as is (missing table or capture objects, wrong password,
    /// insufficient privilege): retrying will not help until an operator acts.
    #[error("source misconfigured: {0}")]
    Misconfigured(String),
    /// The source returned data that breaks the port's contract.
    #[error("source returned invalid data: {0}")]
    Invalid(String),
    /// The source refused a call that needs the writer lease (an acknowledgement) because this
    /// process no longer holds it: another writer may have taken over.
    #[error("source refused a writer that lost its lease: {0}")]
    LeaseLost(String),
}

impl SourceError {
    /// True when the same call may succeed later without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::Unavailable(_))
    }
}

/// What went wrong in a [`SearchIndex`](crate::SearchIndex) call as a whole (per-document outcomes are
/// [`WriteOutcome`](crate::WriteOutcome)s).
#[derive(Debug, Error)]
pub enum IndexError {
    /// The engine cannot be reached now, or is overloaded (connection refused, 429, 5xx, timeout).
    #[error("index unavailable: {0}")]
    Unavailable(String),
    /// The engine refused the request itself (bad mapping, missing privilege, bad settings).
    #[error("index rejected the request: {0}")]
    Rejected(String),
    /// The named index or alias does not exist.
    #[error("index not found: {0}")]
    NotFound(String),
    /// The engine answered something this adapter cannot read.
    #[error("index returned invalid data: {0}")]
    Invalid(String),
    /// Another writer claimed the index since this one did: this writer must stop.
    #[error("index claimed by another writer: {0}")]
    Fenced(String),
}

impl IndexError {
    /// True when the same call may succeed later without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IndexError::Unavailable(_))
    }
}

/// What went wrong in a [`ProjectSearch`](crate::ProjectSearch) call.
#[derive(Debug, Error)]
pub enum SearchError {
    /// A parameter of the request is not acceptable; `field` names it.
    #[error("invalid {field}: {reason}")]
    InvalidRequest {
        /// The offending request parameter.
        field: &'static str,
        /// Why it is refused, in words for the client.
        reason: String,
    },
    /// The engine cannot answer now; the client may retry later.
    #[error("search unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or an engine answer that cannot be read. Not the client's fault.
    #[error("search failed: {0}")]
    Internal(String),
}

impl From<IndexError> for SearchError {
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::Unavailable(reason) | IndexError::NotFound(reason) => {
                SearchError::Unavailable(reason)
            }
            other => SearchError::Internal(other.to_string()),
        }
    }
}

/// Why the sync engine stopped.
#[derive(Debug, Error)]
pub enum SyncError {
    /// The source failed in a way retrying does not fix.
    #[error(transparent)]
    Source(SourceError),
    /// The index failed in a way retrying does not fix.
    #[error(transparent)]
    Index(IndexError),
    /// Another process took the writer lease: this one must stop writing.
    #[error("writer lease lost")]
    LeaseLost,
    /// Work waited longer than the index remembers deletions: its state may be older than a
    /// deletion the index forgot, so it is dropped unacknowledged and replayed from the source.
    #[error("work older than {0:?} dropped, to be replayed from the source")]
    Expired(std::time::Duration),
    /// The index answered a batch with a different number of outcomes than operations.
    #[error("index returned {got} outcomes for {sent} operations")]
    OutcomeMismatch {
        /// Operations sent.
        sent: usize,
        /// Outcomes received.
        got: usize,
    },
    /// The live index was built with another mapping than this release writes, and the engine is
    /// configured to refuse rather than rebuild it.
    #[error(
        "the live index {0} was built with another mapping version than this release writes: \
         run `athens reindex`, or set sync.on_mapping_change = \"reindex\" to rebuild it on start"
    )]
    MappingChanged(crate::index::IndexName),
    /// A document differs between source and index and could not be repaired.
    #[error("project {0} could not be repaired")]
    Unrepaired(ProjectId),
    /// Shutdown was requested: the work in flight was abandoned without acknowledging it.
    #[error("cancelled")]
    Cancelled,
}

impl From<SourceError> for SyncError {
    /// A writer the source fenced has lost its lease, whatever the lease said when it last looked.
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::LeaseLost(_) => SyncError::LeaseLost,
            other => SyncError::Source(other),
        }
    }
}

impl From<IndexError> for SyncError {
    /// A writer the index fenced has lost its lease, whatever the lease said when it last looked.
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::Fenced(_) => SyncError::LeaseLost,
            other => SyncError::Index(other),
        }
    }
}

impl SyncError {
    /// True when the same call may succeed if sent again: the source or the index is unavailable
    /// for now. A lost lease or a fence is not transient: retrying the call cannot help.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Source(error) => error.is_retryable(),
            SyncError::Index(error) => error.is_retryable(),
            _ => false,
        }
    }

    /// True when the same work may succeed later without anyone acting.
    pub fn is_retryable(&self) -> bool {
        match self {
            SyncError::Source(error) => error.is_retryable(),
            SyncError::Index(error) => error.is_retryable(),
            SyncError::LeaseLost | SyncError::Expired(_) => true,
            SyncError::OutcomeMismatch { .. }
            | SyncError::MappingChanged(_)
            | SyncError::Unrepaired(_)
            | SyncError::Cancelled => false,
        }
    }
}
