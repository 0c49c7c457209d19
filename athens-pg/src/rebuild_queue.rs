//! [`RebuildQueue`] over the table `athens.rebuild_queue`, in both capture modes (it is one of the
//! shared capture objects, see `capture`).
//!
//! # Design
//! - One row per project and writer: the primary key is `(lease_key, project_id)`, the lease key
//!   the writers of one deployment share (`database.lease_key`). Deployments that share a
//!   database in the logical mode, each with its own slot, index and lease key, so keep their
//!   queues apart; in the outbox mode there is one (see `consumer`).
//! - An enqueue is one transaction of `INSERT .. ON CONFLICT DO UPDATE SET stamp`, the stamp
//!   being the transaction's id (`pg_current_xact_id()`, 64 bits, never reused): a new stamp per
//!   enqueue without a sequence, so the runtime role needs no grant beyond the table's.
//! - `done` deletes a row only with the stamp it was taken with, so a project queued again while
//!   it was read stays queued (the contract's race; see `athens_core::testing::contract::queue`).
//! - Partitions (`capture.partitions`, outbox mode): each row carries the partition of its
//!   project, `athens_core::partition::partition_of` (the mixer the capture triggers compute as
//!   `athens.partition_of`; tested equal), and a partition's writer takes, clears and counts its
//!   own rows through the index `rebuild_queue_partition`, created with the partitions' outbox
//!   index. A take checks the installed count like a poll does; an install that changes the count
//!   (either mode: the logical mode's partitions are the relayed outbox's) re-partitions the
//!   queued rows in its transaction.
//! - `done` and `enqueue` are not fenced by the writer lease: a writer that lost its lease may only
//!   queue more work (harmless), and marks done only what the index accepted from a read begun
//!   after the enqueue (the index fences stale writers, versions order the rest). `clear` is
//!   fenced: a stale writer must not drop work that the current writer queued.

use std::num::NonZeroU32;

use async_trait::async_trait;
use athens_core::partition::{Partition, partition_of};
use athens_core::{KeysetPage, ProjectId, QueueStamp, QueuedProject, RebuildQueue, SourceError};
use sea_orm::sqlx;
use tracing::debug;

use crate::changes::check_partitions;
use crate::error::PgError;
use crate::source::{PgSource, Scope};

/// Projects an enqueue sends per statement (all of them in one transaction).
const ENQUEUE_CHUNK: usize = 50_000;

/// Moves every queued project to its partition under a new count of `partitions`, in the
/// transaction of the install that changes the count: queued work is kept, not re-partitioned
/// into a rebuild.
pub(crate) async fn repartition(
    tx: &mut sqlx::PgConnection,
    partitions: NonZeroU32,
) -> Result<(), PgError> {
    sqlx::query("UPDATE athens.rebuild_queue SET partition = athens.partition_of(project_id, $1)")
        .bind(i32::try_from(partitions.get()).unwrap_or(i32::MAX))
        .execute(&mut *tx)
        .await?;
    Ok(())
}

impl PgSource {
    /// The partition column's value for `project` in this source's scope.
    fn queue_partition(&self, project: ProjectId) -> i32 {
        let partition = match self.inner.scope {
            Scope::Whole => 0,
            Scope::Partition(partition) => partition_of(project, partition.count()),
            Scope::Every(count) => partition_of(project, count),
        };
        i32::try_from(partition).unwrap_or_default()
    }

    /// The partition whose rows alone this source takes, clears and counts.
    fn queue_scope(&self) -> Option<Partition> {
        match self.inner.scope {
            Scope::Partition(partition) => Some(partition),
            Scope::Whole | Scope::Every(_) => None,
        }
    }

    async fn enqueue_projects(&self, projects: &[ProjectId]) -> Result<(), PgError> {
        let mut ids: Vec<i64> = projects.iter().map(|project| project.0).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(());
        }
        let lease_key = self.config().lease_key;
        let mut tx = self.pool().begin().await?;
        for chunk in ids.chunks(ENQUEUE_CHUNK) {
            let partitions: Vec<i32> = chunk
                .iter()
                .map(|id| self.queue_partition(ProjectId(*id)))
                .collect();
            sqlx::query(
                "INSERT INTO athens.rebuild_queue (lease_key, project_id, partition, stamp) \
                 SELECT $1, q.project_id, q.partition, pg_current_xact_id()::text::bigint \
                 FROM unnest($2::bigint[], $3::integer[]) AS q(project_id, partition) \
                 ON CONFLICT (lease_key, project_id) \
                 DO UPDATE SET stamp = excluded.stamp, partition = excluded.partition",
            )
            .bind(lease_key)
            .bind(chunk)
            .bind(&partitions)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        debug!(projects = ids.len(), "projects queued for a rebuild");
        Ok(())
    }

    async fn take_projects(&self, page: KeysetPage) -> Result<Vec<QueuedProject>, PgError> {
        let from = match page.after {
            None => i64::MIN,
            Some(after) => match after.0.checked_add(1) {
                Some(from) => from,
                None => return Ok(Vec::new()),
            },
        };
        let until = page.until.map_or(i64::MAX, |until| until.0);
        let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
        let lease_key = self.config().lease_key;
        let rows: Vec<(i64, i64)> = match self.queue_scope() {
            None => {
                sqlx::query_as(
                    "SELECT project_id, stamp FROM athens.rebuild_queue \
                     WHERE lease_key = $1 AND project_id BETWEEN $2 AND $3 \
                     ORDER BY project_id LIMIT $4",
                )
                .bind(lease_key)
                .bind(from)
                .bind(until)
                .bind(limit)
                .fetch_all(self.pool())
                .await?
            }
            Some(partition) => {
                // The installed count in the same statement: a writer started for another count
                // would take rows of projects another partition's writer reads.
                let rows: Vec<(i32, Option<i64>, Option<i64>)> = sqlx::query_as(
                    "SELECT athens.partitions(), q.project_id, q.stamp \
                     FROM (SELECT 1) AS one LEFT JOIN LATERAL ( \
                         SELECT project_id, stamp FROM athens.rebuild_queue \
                         WHERE lease_key = $1 AND partition = $5 \
                           AND project_id BETWEEN $2 AND $3 \
                         ORDER BY project_id LIMIT $4) AS q ON true \
                     ORDER BY q.project_id",
                )
                .bind(lease_key)
                .bind(from)
                .bind(until)
                .bind(limit)
                .bind(i32::try_from(partition.index()).unwrap_or_default())
                .fetch_all(self.pool())
                .await?;
                if let Some(&(captured, ..)) = rows.first() {
                    check_partitions(captured, partition.count().get())?;
                }
                rows.into_iter()
                    .filter_map(|(_, project, stamp)| Some((project?, stamp?)))
                    .collect()
            }
        };
        Ok(rows
            .into_iter()
            .map(|(project, stamp)| QueuedProject {
                project: ProjectId(project),
                stamp: QueueStamp(stamp),
            })
            .collect())
    }

    async fn projects_done(&self, taken: &[QueuedProject]) -> Result<(), PgError> {
        if taken.is_empty() {
            return Ok(());
        }
        let (projects, stamps): (Vec<i64>, Vec<i64>) = taken
            .iter()
            .map(|queued| (queued.project.0, queued.stamp.0))
            .unzip();
        let removed = sqlx::query(
            "DELETE FROM athens.rebuild_queue AS q \
             USING unnest($2::bigint[], $3::bigint[]) AS d(project_id, stamp) \
             WHERE q.lease_key = $1 AND q.project_id = d.project_id AND q.stamp = d.stamp",
        )
        .bind(self.config().lease_key)
        .bind(&projects)
        .bind(&stamps)
        .execute(self.pool())
        .await?
        .rows_affected();
        debug!(taken = taken.len(), removed, "queued projects rebuilt");
        Ok(())
    }

    async fn clear_queue(&self) -> Result<(), PgError> {
        let mut tx = self.fenced_transaction().await?;
        let cleared = sqlx::query(
            "DELETE FROM athens.rebuild_queue \
             WHERE lease_key = $1 AND ($2::integer IS NULL OR partition = $2)",
        )
        .bind(self.config().lease_key)
        .bind(self.queue_scope().map(|partition| partition.index() as i32))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        debug!(cleared, "rebuild queue cleared");
        Ok(())
    }

    async fn count_queued(&self) -> Result<u64, PgError> {
        let queued: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM athens.rebuild_queue \
             WHERE lease_key = $1 AND ($2::integer IS NULL OR partition = $2)",
        )
        .bind(self.config().lease_key)
        .bind(self.queue_scope().map(|partition| partition.index() as i32))
        .fetch_one(self.pool())
        .await?;
        Ok(u64::try_from(queued).unwrap_or_default())
    }
}

#[async_trait]
impl RebuildQueue for PgSource {
    async fn enqueue(&self, projects: &[ProjectId]) -> Result<(), SourceError> {
        Ok(self.enqueue_projects(projects).await?)
    }

    async fn take(&self, page: KeysetPage) -> Result<Vec<QueuedProject>, SourceError> {
        Ok(self.take_projects(page).await?)
    }

    async fn done(&self, taken: &[QueuedProject]) -> Result<(), SourceError> {
        Ok(self.projects_done(taken).await?)
    }

    async fn clear(&self) -> Result<(), SourceError> {
        Ok(self.clear_queue().await?)
    }

    async fn queued(&self) -> Result<u64, SourceError> {
        Ok(self.count_queued().await?)
    }
}
