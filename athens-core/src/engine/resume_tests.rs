//! Parallel, checkpointed backfills against the in-memory fakes: readers split the ids without
//! missing any, a backfill whose process died resumes from its checkpoint without missing or
//! staling a project, and streaming or a fresh rebuild discards what can no longer be resumed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;

use super::test_support::{Call, Hooked, IndexHooks};
use super::tests::{Rig, rig, rig_through};
use crate::document::ProjectId;
use crate::index::SearchIndex;
use crate::testing::{MemoryIndex, MemorySource};

/// Writes that hang forever once `writes_left` is used up: the process stops there, and dropping
/// its future is a crash (nothing after the hang runs).
struct Hanging {
    writes_left: AtomicI64,
}

#[async_trait]
impl IndexHooks for Hanging {
    async fn before(&self, call: Call) {
        if matches!(call, Call::Write { .. })
            && self.writes_left.fetch_sub(1, Ordering::SeqCst) <= 0
        {
            std::future::pending::<()>().await;
        }
    }
}

/// `count` projects with a creator and a hashtag each; every third id deleted again, so the ids
/// have gaps the ranges must not trip on.
fn seed_many(rig: &Rig, count: usize) -> Vec<ProjectId> {
    let source = &rig.source;
    let user = source.add_user("Ada");
    let tag = source.add_hashtag("rust");
    let mut kept = Vec::new();
    for n in 0..count {
        let project = source.add_project(&format!("P{n}"), &format!("p-{n}"), "text");
        source.credit(project, user);
        source.tag(project, tag);
        if n % 3 == 1 {
            source.delete_project(project);
        } else {
            kept.push(project);
        }
    }
    kept
}

/// A rig whose writes hang after `writes` of them, over `source` and `index`.
fn hanging_rig(source: &Arc<MemorySource>, index: &Arc<MemoryIndex>, writes: i64) -> Rig {
    let hanging = Hooked::new(
        index,
        Hanging {
            writes_left: AtomicI64::new(writes),
        },
    );
    rig_through(source, index, hanging)
}

/// `reindexer` takes the lease from `writer`, dies half-way through a backfill that leaves one
/// unfinished index, and `writer` leads again.
async fn reindex_dies_half_way(writer: &Rig, reindexer: &Rig, index: &MemoryIndex) {
    writer.lease.expire();
    reindexer.lead().await;
    crash_when_hung(reindexer.engine.backfill()).await;
    assert_eq!(index.unfinished_backfills().await.unwrap().len(), 1);
    reindexer.lease.expire();
    writer.lead().await;
}

/// Runs `work` until it hangs, then drops it: a crash of the process running it.
async fn crash_when_hung<T>(work: impl Future<Output = T>) {
    let outcome = tokio::time::timeout(Duration::from_secs(5), work).await;
    assert!(
        outcome.is_err(),
        "the work was meant to hang, not to finish"
    );
}

#[tokio::test]
async fn several_readers_write_every_project_once_whatever_the_gaps() {
    for readers in [1, 2, 3, 5] {
        let mut rig = rig();
        rig.engine.config.backfill_readers = std::num::NonZeroUsize::new(readers).unwrap();
        let kept = seed_many(&rig, 100);
        rig.lead().await;
        let report = rig.engine.backfill().await.unwrap();
        assert_eq!(report.documents, kept.len() as u64, "{readers} readers");
        assert!(!report.resumed);
        rig.sync().await;
        rig.assert_converged();
        assert!(rig.index.unfinished_backfills().await.unwrap().is_empty());
    }
}

#[tokio::test(start_paused = true)]
async fn a_backfill_whose_process_died_resumes_from_its_checkpoint_and_misses_nothing() {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let crashed = hanging_rig(&source, &index, 6);
    let kept = seed_many(&crashed, 120);
    crashed.lead().await;
    crash_when_hung(crashed.engine.ensure_live_index()).await;

    let unfinished = index.unfinished_backfills().await.unwrap();
    assert_eq!(
        unfinished.len(),
        1,
        "the half-built index stays, with its checkpoint"
    );
    let (_, checkpoint) = &unfinished[0];
    assert!(
        checkpoint
            .ranges
            .iter()
            .any(|range| range.done_through.is_some()),
        "some pages were written and checkpointed: {checkpoint:?}"
    );
    assert_eq!(index.live_name(), None);

    // While nobody writes: a project in a range already written changes, one is deleted, one is
    // added past the highest id, one not yet read changes.
    source.describe_project(kept[0], "changed after its page was written");
    source.delete_project(kept[1]);
    source.add_project("late", "late", "added during the outage");
    source.describe_project(*kept.last().unwrap(), "changed before its page was read");

    crashed.lease.expire();
    let successor = super::tests::rig_through(&source, &index, index.clone());
    successor.lead().await;
    let report = successor.engine.resume_backfill().await.unwrap();
    assert!(report.resumed);
    assert!(
        report.documents < kept.len() as u64,
        "a resumed backfill writes only what was left: {} of {}",
        report.documents,
        kept.len()
    );
    assert_eq!(index.physical_indexes(), 1);
    successor.sync().await;
    successor.assert_converged();
}

#[tokio::test(start_paused = true)]
async fn streaming_or_a_fresh_rebuild_discards_an_unfinished_backfill() {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let writer = super::tests::rig_through(&source, &index, index.clone());
    let kept = seed_many(&writer, 60);
    writer.lead().await;
    writer.sync().await;

    // A reindex dies half-way; the writer then streams a change into the live index and
    // acknowledges it: the half-built index, read before that change, must never be published.
    let reindexer = hanging_rig(&source, &index, 4);
    reindex_dies_half_way(&writer, &reindexer, &index).await;
    source.describe_project(kept[0], "acknowledged into the live index");
    writer.sync().await;
    assert!(index.unfinished_backfills().await.unwrap().is_empty());
    assert_eq!(
        index.physical_indexes(),
        1,
        "the unfinished index is dropped"
    );
    let report = writer.engine.resume_backfill().await.unwrap();
    assert!(!report.resumed);
    writer.sync().await;
    writer.assert_converged();

    // A fresh backfill (the rebuild after a truncate) never resumes either.
    reindex_dies_half_way(&writer, &reindexer, &index).await;
    let report = writer.engine.backfill().await.unwrap();
    assert!(!report.resumed);
    assert_eq!(index.physical_indexes(), 1);
    writer.sync().await;
    writer.assert_converged();
}
