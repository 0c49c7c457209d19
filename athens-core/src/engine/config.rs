//! The engine's tuning, [`EngineConfig`]: one type for embedders and for the `[sync]` section of the
//! command's configuration file, which deserializes straight into it.

use std::num::NonZeroUsize;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use super::RetryPolicy;

/// What the engine does when the live index was built with another mapping than the index adapter
/// writes now (after an upgrade that changed the mapping).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MappingChange {
    /// Rebuild it with a zero-downtime reindex before streaming: the old index serves meanwhile.
    #[default]
    Reindex,
    /// Refuse to start, with a message saying to run `athens reindex`.
    Refuse,
}

/// Tuning of the engine; the defaults suit a small deployment.
///
/// Deserializes from the keys of the `[sync]` section (durations in milliseconds, as `poll_wait_ms`
/// and `max_retry_ms`); a missing key keeps its default, an unknown one is refused. The timings
/// meant for tests and embedders only (`standby_interval`, `max_write_age`, the first retry pause)
/// are not read from there.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// Most changes taken from the source in one streaming batch.
    pub batch_size: NonZeroUsize,
    /// Most documents loaded from the source and written to the index in one request.
    pub chunk_size: NonZeroUsize,
    /// Index write requests in flight at once: per reader in a backfill, and in the stream (where
    /// a fan-out's writes take all but one of them, kept for the changes that name projects).
    pub write_concurrency: NonZeroUsize,
    /// Most documents of a fan-out (the projects of a renamed user or a deleted hashtag) loaded
    /// and written in one request by the stream. Smaller than `chunk_size` so that the fan-out's
    /// bulks queued in the engine, at most `(write_concurrency − 1) × fanout_chunk_size`
    /// documents, delay an unrelated change's bulk queued behind them by little.
    pub fanout_chunk_size: NonZeroUsize,
    /// Readers of a backfill, each paging through its own ranges of project ids.
    pub backfill_readers: NonZeroUsize,
    /// How often a backfill saves its checkpoint (with the index), from which a failed or crashed
    /// backfill resumes.
    #[serde(rename = "checkpoint_interval_ms", deserialize_with = "millis")]
    pub checkpoint_interval: Duration,
    /// How long a poll waits for a change when none is pending.
    #[serde(rename = "poll_wait_ms", deserialize_with = "millis")]
    pub poll_wait: Duration,
    /// How long the stream lets changes gather after a poll that took fewer than `batch_size`:
    /// the next poll starts no sooner, so one load, bulk request and acknowledgement serve every
    /// change committed meanwhile instead of one each. It adds at most this much to commit →
    /// searchable; a full batch (a backlog) polls again at once, and a change arriving at an idle
    /// stream is taken at once. Zero polls as soon as the pipeline has room.
    #[serde(rename = "batch_linger_ms", deserialize_with = "millis")]
    pub batch_linger: Duration,
    /// How often a standby checks whether the writer lease became free.
    #[serde(skip)]
    pub standby_interval: Duration,
    /// Retry of transient source and index failures; the file sets its longest pause
    /// (`max_retry_ms`).
    #[serde(rename = "max_retry_ms", deserialize_with = "retry_capped_at")]
    pub retry: RetryPolicy,
    /// Keep the previous physical index after a reindex instead of deleting it.
    pub keep_previous_index: bool,
    /// The longest a write of one state may be retried. Past it the work is dropped unacknowledged
    /// and replayed from the source with a fresh state: the index forgets deletions after
    /// `gc_deletes` (one hour), and a retry of an older state landing after that could bring back
    /// a project a newer write deleted. Keep it well under `gc_deletes`.
    #[serde(skip)]
    pub max_write_age: Duration,
    /// What to do when the live index was built with another mapping version.
    pub on_mapping_change: MappingChange,
    /// How often the streaming writer checks that the source still captures changes, alarming
    /// (error log, `athens_capture_healthy` at 0) when not.
    #[serde(rename = "capture_check_interval_ms", deserialize_with = "millis")]
    pub capture_check_interval: Duration,
}

const THOUSAND: NonZeroUsize = non_zero(1000);
const FOUR: NonZeroUsize = non_zero(4);
const FANOUT_CHUNK: NonZeroUsize = non_zero(250);
const TWO: NonZeroUsize = non_zero(2);

/// `n` as a [`NonZeroUsize`], for constants: a zero fails the build.
const fn non_zero(n: usize) -> NonZeroUsize {
    match NonZeroUsize::new(n) {
        Some(n) => n,
        None => panic!("zero where a positive number is needed"),
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: THOUSAND,
            chunk_size: THOUSAND,
            write_concurrency: FOUR,
            fanout_chunk_size: FANOUT_CHUNK,
            backfill_readers: TWO,
            checkpoint_interval: Duration::from_secs(10),
            poll_wait: Duration::from_secs(1),
            batch_linger: Duration::from_millis(100),
            standby_interval: Duration::from_secs(2),
            retry: RetryPolicy::default(),
            keep_previous_index: false,
            max_write_age: Duration::from_secs(30 * 60),
            on_mapping_change: MappingChange::default(),
            capture_check_interval: Duration::from_secs(60),
        }
    }
}

/// A duration given in milliseconds.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

/// The default retry policy with its longest pause given in milliseconds.
fn retry_capped_at<'de, D: Deserializer<'de>>(deserializer: D) -> Result<RetryPolicy, D::Error> {
    Ok(RetryPolicy {
        max: millis(deserializer)?,
        ..RetryPolicy::default()
    })
}
