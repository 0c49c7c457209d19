//! Writing operations to the index until each one is accepted, superseded or refused for good: transient
//! failures are retried with capped exponential backoff and jitter, only the failed operations resent.

use std::time::{Duration, Instant};

use rand::Rng;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::SyncEngine;
use super::metrics;
use crate::change::DeadLetter;
use crate::document::ProjectId;
use crate::error::{ErrorChain, SyncError};
use crate::index::{IndexName, IndexOp, WriteOutcome};

/// How transient failures are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first pause after a failure.
    pub initial: Duration,
    /// The longest pause between two attempts.
    pub max: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1` (the first retry is attempt 1): exponential, capped, with
    /// "full jitter" between half and all of the capped value so that restarted writers spread out.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let capped = self.initial.saturating_mul(factor).min(self.max);
        let half = capped / 2;
        let jitter = rand::rng().random_range(0..=half.as_millis().max(1) as u64);
        half + Duration::from_millis(jitter)
    }

    /// Sleeps before the next attempt; `Err(Cancelled)` if shutdown is requested meanwhile.
    pub(crate) async fn pause(
        &self,
        attempt: u32,
        shutdown: &CancellationToken,
    ) -> Result<(), SyncError> {
        tokio::select! {
            () = shutdown.cancelled() => Err(SyncError::Cancelled),
            () = tokio::time::sleep(self.delay(attempt)) => Ok(()),
        }
    }
}

/// What became of a set of operations once every one was settled.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct WriteSummary {
    /// Operations the index stored.
    pub applied: u64,
    /// Operations the index already held a newer version for.
    pub superseded: u64,
    /// Operations the index refused for good.
    pub dead_letters: Vec<DeadLetter>,
}

impl WriteSummary {
    pub fn merge(&mut self, other: WriteSummary) {
        self.applied += other.applied;
        self.superseded += other.superseded;
        self.dead_letters.extend(other.dead_letters);
    }
}

impl SyncEngine {
    /// Writes `ops` to `target`, retrying transient failures (whole-call or per operation) until
    /// every operation is settled or shutdown is requested. Errors the index will not get over are
    /// returned.
    ///
    /// Every attempt first checks that this process still holds the writer lease: a writer that
    /// lost it stops instead of retrying an old state into the index its successor writes to. And
    /// no state is retried past [`max_write_age`](super::EngineConfig::max_write_age): the work is
    /// dropped unacknowledged and replayed from the source with a fresh state.
    pub(crate) async fn write_settled(
        &self,
        target: &IndexName,
        mut ops: Vec<IndexOp>,
    ) -> Result<WriteSummary, SyncError> {
        let retry = &self.config.retry;
        let started = Instant::now();
        let mut summary = WriteSummary::default();
        let mut attempt = 0u32;
        while !ops.is_empty() {
            if self.shutdown.is_cancelled() {
                return Err(SyncError::Cancelled);
            }
            self.check_lease().await?;
            if attempt > 0 && started.elapsed() > self.config.max_write_age {
                warn!(index = %target, attempt, pending = ops.len(), "writes retried for too long, dropping them to replay a fresh state");
                return Err(SyncError::Expired(self.config.max_write_age));
            }
            let outcomes = match self.index.write(target, &ops).await {
                Ok(outcomes) => outcomes,
                Err(error) if error.is_retryable() => {
                    attempt += 1;
                    warn!(index = %target, attempt, error = %ErrorChain(&error), "index write failed, retrying");
                    metrics::write_failure();
                    retry.pause(attempt, &self.shutdown).await?;
                    continue;
                }
                Err(error) => return Err(error.into()),
            };
            if outcomes.len() != ops.len() {
                return Err(SyncError::OutcomeMismatch {
                    sent: ops.len(),
                    got: outcomes.len(),
                });
            }
            let mut again = Vec::new();
            let mut last_reason = None;
            for (op, outcome) in ops.into_iter().zip(outcomes) {
                match outcome {
                    WriteOutcome::Applied => summary.applied += 1,
                    WriteOutcome::Superseded => summary.superseded += 1,
                    WriteOutcome::Rejected(reason) => {
                        let project: ProjectId = op.project();
                        warn!(project = %project, reason = %reason, "index refused document, dead-lettering it");
                        summary.dead_letters.push(DeadLetter { project, reason });
                    }
                    WriteOutcome::Retryable(reason) => {
                        last_reason = Some(reason);
                        again.push(op);
                    }
                }
            }
            ops = again;
            if let Some(reason) = last_reason {
                attempt += 1;
                warn!(index = %target, attempt, pending = ops.len(), reason = %reason, "index refused some operations for now, retrying them");
                metrics::write_failure();
                retry.pause(attempt, &self.shutdown).await?;
            }
        }
        metrics::documents_written(summary.applied, summary.superseded);
        Ok(summary)
    }
}

/// Retries a fallible source or index call that is not a write, until it succeeds, fails for good or
/// shutdown is requested.
pub(crate) async fn retrying<T, E, F, Fut>(
    what: &'static str,
    retry: &RetryPolicy,
    shutdown: &CancellationToken,
    mut call: F,
) -> Result<T, SyncError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Into<SyncError>,
{
    let mut attempt = 0u32;
    loop {
        if shutdown.is_cancelled() {
            return Err(SyncError::Cancelled);
        }
        match call().await.map_err(Into::into) {
            Ok(value) => return Ok(value),
            Err(error) if error.is_transient() => {
                attempt += 1;
                warn!(what, attempt, error = %ErrorChain(&error), "call failed, retrying");
                retry.pause(attempt, shutdown).await?;
            }
            Err(error) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_grows_exponentially_within_jitter_and_is_capped() {
        let policy = RetryPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        for _ in 0..50 {
            let first = policy.delay(1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let third = policy.delay(3);
            assert!(third >= Duration::from_millis(200) && third <= Duration::from_millis(400));
            let late = policy.delay(30);
            assert!(late >= Duration::from_millis(500) && late <= Duration::from_secs(1));
        }
    }
}
