//! Interleavings of two writers, a reindex and a repair that the happy path never meets, made
//! deterministic with pause points in a wrapper of the in-memory index: each test stops one process
//! at the worst moment, lets the other act, then lets the first go on.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use tokio::sync::oneshot;

use super::test_support::{Call, Hooked, IndexHooks};
use super::tests::{Rig, rig_through};
use crate::error::SyncError;
use crate::testing::{MemoryIndex, MemorySource};

/// A pause point: armed by the test, it stops the next call that reaches it, tells the test, and
/// lets the call go on when the test says so.
#[derive(Default)]
struct Gate(Mutex<Option<(oneshot::Sender<()>, oneshot::Receiver<()>)>>);

impl Gate {
    /// Arms the gate: returns "a call arrived" and "let it go".
    fn arm(&self) -> (oneshot::Receiver<()>, oneshot::Sender<()>) {
        let (arrived_tx, arrived_rx) = oneshot::channel();
        let (release_tx, release_rx) = oneshot::channel();
        *self.0.lock().unwrap() = Some((arrived_tx, release_rx));
        (arrived_rx, release_tx)
    }

    async fn pass(&self) {
        let armed = self.0.lock().unwrap().take();
        if let Some((arrived, release)) = armed {
            let _ = arrived.send(());
            let _ = release.await;
        }
    }
}

/// The in-memory index with pause points before a publish and after a write.
/// Publishes pause at `before_publish`, writes at `after_write` once they landed.
#[derive(Default)]
struct Paused {
    before_publish: Gate,
    after_write: Gate,
}

#[async_trait]
impl IndexHooks for Paused {
    const CHECKPOINTS: bool = false;

    async fn before(&self, call: Call) {
        if matches!(call, Call::Publish | Call::PublishAs) {
            self.before_publish.pass().await;
        }
    }

    async fn after(&self, call: Call) {
        if matches!(call, Call::Write { .. }) {
            self.after_write.pass().await;
        }
    }
}

/// Two processes (each with its own lease handle and engine) over one source and one index.
fn two_writers() -> (Arc<Hooked<Paused>>, Arc<Rig>, Arc<Rig>) {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let paused = Hooked::new(&index, Paused::default());
    let first = Arc::new(rig_through(&source, &index, paused.clone()));
    let second = Arc::new(rig_through(&source, &index, paused.clone()));
    (paused, first, second)
}

/// Finding 1: a reindex passes its last lease check, loses the lease before its publish lands, and
/// a standby streams (and acknowledges) changes into the old index meanwhile. The publish must not
/// replace the index those acknowledged changes live in.
#[tokio::test]
async fn a_reindex_that_lost_its_lease_cannot_publish_over_the_new_writers_index() {
    let (paused, reindexer, standby) = two_writers();
    let projects = reindexer.seed();
    reindexer.lead().await;
    reindexer.sync().await;

    let (arrived, release) = paused.hooks.before_publish.arm();
    let reindex = {
        let reindexer = reindexer.clone();
        tokio::spawn(async move { reindexer.engine.backfill().await })
    };
    arrived.await.unwrap();
    reindexer.lease.expire();
    standby.lead().await;
    standby
        .source
        .describe_project(projects[0], "acknowledged by the standby");
    standby.sync().await;
    assert_eq!(standby.source.pending(), 0);

    release.send(()).unwrap();
    let published = reindex.await.unwrap();
    assert_eq!(
        standby.live(projects[0]).unwrap().description,
        "acknowledged by the standby",
        "a change the standby acknowledged is missing from the live index"
    );
    assert!(
        matches!(published, Err(SyncError::LeaseLost { .. })),
        "a fenced reindex reports the lost lease: {published:?}"
    );
    assert_eq!(
        standby.index.physical_indexes(),
        1,
        "the fenced reindex drops the index it could not publish"
    );
    standby.sync().await;
    standby.assert_converged();
}

/// Finding 3: a writer whose write failed transiently loses its lease while it waits to retry; a
/// new writer deletes the project, and the engine forgets the deletion (`gc_deletes`). The old
/// writer's retry must not land and bring the project back.
#[tokio::test]
async fn a_writer_that_lost_its_lease_does_not_retry_an_old_state() {
    let (paused, old, new) = two_writers();
    let projects = old.seed();
    old.lead().await;
    old.sync().await;

    old.source.describe_project(projects[1], "old state");
    old.index.faults.retry_items.arm(1);
    let (arrived, release) = paused.hooks.after_write.arm();
    let retrying = {
        let old = old.clone();
        tokio::spawn(async move { old.engine.drain().await })
    };
    arrived.await.unwrap();
    old.lease.expire();
    new.lead().await;
    new.source.delete_project(projects[1]);
    new.sync().await;
    assert!(new.live(projects[1]).is_none());
    new.index.forget_deletions();

    release.send(()).unwrap();
    let result = retrying.await.unwrap();
    assert!(
        matches!(result, Err(SyncError::LeaseLost { .. })),
        "the old writer stops: {result:?}"
    );
    assert!(
        new.live(projects[1]).is_none(),
        "the old writer's retry brought a deleted project back"
    );
    new.assert_converged();
}

/// Finding 3, second half: no state is retried past `max_write_age` (kept under the engine's
/// `gc_deletes`); the work is dropped unacknowledged and a later step replays it with fresh state.
#[tokio::test]
async fn writes_retried_too_long_are_dropped_and_replayed_fresh() {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let mut rig = rig_through(&source, &index, index.clone());
    rig.engine.config.max_write_age = std::time::Duration::from_millis(30);
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.source
        .describe_project(projects[2], "after a long outage");
    rig.index.faults.write.arm(u64::MAX);
    let result = rig.engine.drain().await;
    assert!(
        matches!(result, Err(SyncError::Expired(_))),
        "old work is dropped: {result:?}"
    );
    assert!(rig.source.pending() > 0, "nothing dropped is acknowledged");
    rig.index.faults.write.arm(0);
    rig.sync().await;
    assert_eq!(
        rig.live(projects[2]).unwrap().description,
        "after a long outage"
    );
    rig.assert_converged();
}

/// Finding 2: a repair writes documents like the writer does. Without the lease it could load a
/// state in a snapshot that began before the writer's newer one yet draw a greater version, and
/// win; so repairs go through the single writer: the caller must hold the lease.
#[tokio::test]
async fn a_repair_needs_the_writer_lease() {
    let (_, writer, repairer) = two_writers();
    let projects = writer.seed();
    writer.lead().await;
    writer.sync().await;
    writer.index.remove(projects[0]);
    let refused = repairer.engine.verify(true).await;
    assert!(
        matches!(refused, Err(SyncError::LeaseLost { .. })),
        "a repair without the lease must not write: {refused:?}"
    );
    assert!(writer.live(projects[0]).is_none());
    let report = writer.engine.verify(true).await.unwrap();
    assert_eq!((report.missing, report.repaired), (1, 1));
    writer.assert_converged();
}

/// Finding 4: after a point-in-time restore of the source its versions restart below the index's,
/// so a rewrite is refused as superseded. A repair must not count it as repaired.
#[tokio::test]
async fn a_repair_counts_only_documents_that_now_match() {
    let (_, rig, _) = two_writers();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let mut ahead = rig.live(projects[1]).unwrap();
    ahead.name = "written before the restore".into();
    rig.index.tamper_ahead(ahead);
    let report = rig.engine.verify(true).await.unwrap();
    assert_eq!(report.stale, 1);
    assert_eq!(
        report.repaired, 0,
        "a rewrite the index refused as superseded is not a repair"
    );
}
