//! Error kinds shared by every adapter of a port: each says whether a retry can help, and none names an
//! adapter's library. Each kind carries a message and, when there was one, the adapter's own error as
//! its [`source`](std::error::Error::source), so logs and callers see the whole chain
//! ([`ErrorChain`]).

mod chain;

use thiserror::Error;

use crate::document::ProjectId;

pub use chain::ErrorChain;

/// Writes the constructors of kinds that carry a message and no cause yet, `name => Variant`:
/// `SourceError::unavailable("...")`, then [`with_source`](SourceError::with_source) for the cause.
macro_rules! constructors {
    ($($name:ident => $variant:ident),* $(,)?) => {$(
        #[doc = concat!("[`Self::", stringify!($variant), "`] with `message` and no cause yet.")]
        pub fn $name(message: impl Into<String>) -> Self {
            Self::$variant {
                message: message.into(),
                source: None,
            }
        }
    )*};
}

/// For an enum whose every kind carries a message and an optional cause: its [`constructors!`],
/// `with_source` and `message`.
macro_rules! kinds_with_cause {
    ($($name:ident => $variant:ident),* $(,)?) => {
        constructors!($($name => $variant),*);

        /// The same error, caused by `cause`.
        pub fn with_source(mut self, cause: impl Into<Cause>) -> Self {
            match &mut self {
                $(Self::$variant { source, .. })|* => *source = Some(cause.into()),
            }
            self
        }

        /// The message, without the kind's words before it.
        pub fn message(&self) -> &str {
            match self {
                $(Self::$variant { message, .. })|* => message,
            }
        }
    };
}

/// The error that caused another: an adapter's own error, kept whole so that its chain can be printed
/// and inspected (`downcast_ref`).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a [`ChangeSource`](crate::ChangeSource), [`DocumentSource`](crate::DocumentSource)
/// or [`WriterLease`](crate::WriterLease).
#[derive(Debug, Error)]
pub enum SourceError {
    /// The source cannot be reached now (connection refused or lost, timeout, failover).
    #[error("source unavailable: {message}")]
    Unavailable {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The source is reachable but not usable as is (missing table or capture objects, wrong password,
    /// insufficient privilege): retrying will not help until an operator acts.
    #[error("source misconfigured: {message}")]
    Misconfigured {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The source returned data that breaks the port's contract.
    #[error("source returned invalid data: {message}")]
    Invalid {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// This process no longer holds the writer lease: the source refused a call that needs it (an
    /// acknowledgement), or the lease itself found it lost ([`WriterLease::lost`](crate::WriterLease::lost)).
    /// Another writer may have taken over.
    #[error("writer lease lost: {message}")]
    LeaseLost {
        /// Which lease, and what is known of the loss (taken by another holder, lapsed, released),
        /// in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
}

impl SourceError {
    kinds_with_cause!(
        unavailable => Unavailable,
        misconfigured => Misconfigured,
        invalid => Invalid,
        lease_lost => LeaseLost,
    );

    /// True when the same call may succeed later without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::Unavailable { .. })
    }
}

/// What went wrong in a [`SearchIndex`](crate::SearchIndex) call as a whole (per-document outcomes are
/// [`WriteOutcome`](crate::WriteOutcome)s).
#[derive(Debug, Error)]
pub enum IndexError {
    /// The engine cannot be reached now, or is overloaded (connection refused, 429, 5xx, timeout).
    #[error("index unavailable: {message}")]
    Unavailable {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The engine refused the request itself (bad mapping, missing privilege, bad settings).
    #[error("index rejected the request: {message}")]
    Rejected {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The named index or alias does not exist.
    #[error("index not found: {message}")]
    NotFound {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// The engine answered something this adapter cannot read.
    #[error("index returned invalid data: {message}")]
    Invalid {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// Another writer claimed the index since this one did: this writer must stop.
    #[error("index claimed by another writer: {message}")]
    Fenced {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
}

impl IndexError {
    kinds_with_cause!(
        unavailable => Unavailable,
        rejected => Rejected,
        not_found => NotFound,
        invalid => Invalid,
        fenced => Fenced,
    );

    /// True when the same call may succeed later without anyone acting.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IndexError::Unavailable { .. })
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
    #[error("search unavailable: {message}")]
    Unavailable {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
    /// Anything else: a bug or an engine answer that cannot be read. Not the client's fault.
    #[error("search failed: {message}")]
    Internal {
        /// What went wrong, in words for an operator.
        message: String,
        /// The error that caused it, when there was one.
        #[source]
        source: Option<Cause>,
    },
}

impl SearchError {
    constructors!(
        unavailable => Unavailable,
        internal => Internal,
    );

    /// The same error, caused by `cause` (an [`SearchError::InvalidRequest`] is the client's doing
    /// and has none: it is returned as is).
    pub fn with_source(mut self, cause: impl Into<Cause>) -> Self {
        match &mut self {
            SearchError::Unavailable { source, .. } | SearchError::Internal { source, .. } => {
                *source = Some(cause.into());
            }
            SearchError::InvalidRequest { .. } => {}
        }
        self
    }
}

impl From<IndexError> for SearchError {
    /// An unavailable or missing index makes the search unavailable, with the same message and
    /// cause; anything else is internal, caused by the index error itself.
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::Unavailable { message, source }
            | IndexError::NotFound { message, source } => {
                SearchError::Unavailable { message, source }
            }
            other => SearchError::internal(other.to_string()).with_source(other),
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
    /// This process no longer holds the writer lease (another process took it, or it lapsed), or
    /// the index was claimed by another writer: this one must stop writing.
    #[error("writer lease lost: {message}")]
    LeaseLost {
        /// Which lease, and what is known of the loss (taken by another holder, lapsed, released,
        /// fenced by the index), in words for an operator.
        message: String,
        /// The error that told, when there was one: the source's or the index's.
        #[source]
        source: Option<Cause>,
    },
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
    /// A writer the source fenced has lost its lease, whatever the lease said when it last looked:
    /// the source's message and cause carry over.
    fn from(error: SourceError) -> Self {
        match error {
            SourceError::LeaseLost { message, source } => SyncError::LeaseLost { message, source },
            other => SyncError::Source(other),
        }
    }
}

impl From<IndexError> for SyncError {
    /// A writer the index fenced has lost its lease, whatever the lease said when it last looked:
    /// the index's message and cause carry over.
    fn from(error: IndexError) -> Self {
        match error {
            IndexError::Fenced { message, source } => SyncError::LeaseLost {
                message: format!("index claimed by another writer: {message}"),
                source,
            },
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
            SyncError::LeaseLost { .. } | SyncError::Expired(_) => true,
            SyncError::OutcomeMismatch { .. }
            | SyncError::MappingChanged(_)
            | SyncError::Unrepaired(_)
            | SyncError::Cancelled => false,
        }
    }
}
