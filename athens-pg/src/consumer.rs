//! Which writer consumes the outbox. Every outbox acknowledgement records its lease key in
//! `athens.consumer` (with its time, in the same statement), so that two deployments sharing one outbox with different lease keys are
//! noticed: both would hold their own lease, each would take changes the other never sees, and
//! each index would miss some. An acknowledgement that replaces another key logs a warning;
//! [`check_consumer`](PgSource::check_consumer) (`athens doctor`) fails while another key
//! acknowledged recently.
//!
//! The logical mode records no key: deployments there may each read their own slot.

use std::time::Duration;

use sea_orm::sqlx;
use tracing::warn;

use crate::error::PgError;
use crate::source::PgSource;

/// How recently another key must have acknowledged for [`PgSource::check_consumer`] to fail: a
/// writer that stopped longer ago (a key changed on purpose) is no longer consuming.
const RECENT: Duration = Duration::from_secs(600);

/// Warns when the lease key an acknowledgement replaced (`previous`, read in its transaction) is
/// not this writer's `lease_key`.
pub(crate) fn note(previous: Option<i64>, lease_key: i64) {
    if let Some(other) = previous
        && other != lease_key
    {
        warn!(
            lease_key,
            other_lease_key = other,
            "a writer with another lease key consumed this outbox: two deployments share it, each \
             index misses the changes the other takes; processes syncing one database must share \
             database.lease_key"
        );
    }
}

impl PgSource {
    /// Fails with a `Misconfigured` error when a writer whose lease key differs from this
    /// source's acknowledged outbox changes within the last ten minutes.
    pub async fn check_consumer(&self) -> Result<(), PgError> {
        let last: Option<(Option<i64>, f64)> = sqlx::query_as(
            "SELECT lease_key, extract(epoch FROM now() - last_ack_at)::float8 FROM athens.consumer",
        )
        .fetch_optional(self.pool())
        .await?;
        let mine = self.config().lease_key;
        match last {
            Some((Some(other), seconds)) if other != mine && seconds < RECENT.as_secs_f64() => {
                Err(PgError::Misconfigured(format!(
                    "a writer with lease key {other} consumed this outbox {seconds:.0} s ago, \
                     this one has {mine}: two deployments sharing an outbox split its changes; \
                     give every process syncing this database the same database.lease_key"
                )))
            }
            _ => Ok(()),
        }
    }
}
