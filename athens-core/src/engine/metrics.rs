//! The pipeline's metrics, recorded through the `metrics` facade: whichever exporter the embedding
//! program installs (Prometheus in `athens`) publishes them; without one they cost nothing.

use std::time::Duration;

use chrono::Utc;

use crate::change::{Backlog, ChangeRecord};
use crate::partition::Partition;

/// Changes read from the source.
pub const CHANGES_READ: &str = "athens_sync_changes_read_total";
/// Changes acknowledged to the source after the index accepted their work.
pub const CHANGES_ACKED: &str = "athens_sync_changes_acked_total";
/// Documents written (upserted or deleted) by outcome: `applied` or `superseded`.
pub const DOCUMENTS_WRITTEN: &str = "athens_sync_documents_written_total";
/// Documents the index refused for good and that went to the dead-letter table.
pub const DEAD_LETTERS: &str = "athens_sync_dead_letters_total";
/// Failed index write attempts (each is retried).
pub const WRITE_FAILURES: &str = "athens_sync_write_failures_total";
/// Seconds from a change's transaction to its acknowledgement.
pub const CHANGE_LATENCY: &str = "athens_sync_change_latency_seconds";
/// Seconds one streaming batch took, from poll to acknowledgement.
pub const BATCH_SECONDS: &str = "athens_sync_batch_seconds";
/// Seconds the oldest pending change has waited (0 when nothing is pending); labelled `partition`
/// (its number) for a partition's writer.
pub const LAG_SECONDS: &str = "athens_sync_lag_seconds";
/// Changes pending in the source; labelled `partition` (its number) for a partition's writer.
pub const BACKLOG: &str = "athens_sync_backlog_changes";
/// Projects queued for a rebuild (the fan-outs of user and hashtag changes not drained yet);
/// labelled `partition` (its number) for a partition's writer.
pub const QUEUED: &str = "athens_sync_queued_projects";
/// 1 while the source's change capture is complete and enabled, 0 when it is not.
pub const CAPTURE_HEALTHY: &str = "athens_capture_healthy";
/// Documents written by the running or last backfill.
pub const BACKFILL_DOCUMENTS: &str = "athens_backfill_documents_total";

/// Buckets of the engine's latency histograms, in seconds: from a fast batch to a slow backfill
/// page or a change that waited for a restart.
const LATENCY_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The engine's histograms and their buckets (in seconds), for the recorder the embedding program
/// installs: without buckets a Prometheus recorder renders histograms as summaries.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[
    (CHANGE_LATENCY, LATENCY_BUCKETS),
    (BATCH_SECONDS, LATENCY_BUCKETS),
];

pub(crate) fn changes_read(count: usize) {
    metrics::counter!(CHANGES_READ).increment(count as u64);
}

pub(crate) fn acknowledged(records: &[ChangeRecord], batch: Duration) {
    metrics::counter!(CHANGES_ACKED).increment(records.len() as u64);
    let now = Utc::now();
    let histogram = metrics::histogram!(CHANGE_LATENCY);
    for record in records {
        let seconds = (now - record.recorded_at).num_milliseconds().max(0) as f64 / 1000.0;
        histogram.record(seconds);
    }
    metrics::histogram!(BATCH_SECONDS).record(batch.as_secs_f64());
}

pub(crate) fn documents_written(applied: u64, superseded: u64) {
    metrics::counter!(DOCUMENTS_WRITTEN, "outcome" => "applied").increment(applied);
    metrics::counter!(DOCUMENTS_WRITTEN, "outcome" => "superseded").increment(superseded);
}

pub(crate) fn dead_letters(count: usize) {
    metrics::counter!(DEAD_LETTERS).increment(count as u64);
}

pub(crate) fn write_failure() {
    metrics::counter!(WRITE_FAILURES).increment(1);
}

pub(crate) fn backfilled(count: u64) {
    metrics::counter!(BACKFILL_DOCUMENTS).increment(count);
}

pub(crate) fn capture_healthy(healthy: bool) {
    metrics::gauge!(CAPTURE_HEALTHY).set(if healthy { 1.0 } else { 0.0 });
}

/// The label of a partition's gauges (none for the writer of every partition).
fn partition_labels(partition: Option<Partition>) -> Vec<metrics::Label> {
    partition
        .map(|partition| metrics::Label::new("partition", partition.index().to_string()))
        .into_iter()
        .collect()
}

/// Publishes how many projects are queued for a rebuild, labelled like the backlog.
pub fn queued(queued: u64, partition: Option<Partition>) {
    metrics::gauge!(QUEUED, partition_labels(partition)).set(queued as f64);
}

/// Publishes the backlog as gauges, labelled with its partition when it is one partition's.
pub fn backlog(backlog: &Backlog) {
    let labels = partition_labels(backlog.partition);
    metrics::gauge!(BACKLOG, labels.clone()).set(backlog.pending as f64);
    let lag = backlog.oldest_age.map_or(0.0, |age| age.as_secs_f64());
    metrics::gauge!(LAG_SECONDS, labels).set(lag);
}
