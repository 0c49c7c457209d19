//! The pipelined stream against the in-memory fakes with injected latency (load 20 ms, bulk 60 ms
//! per 1,000 documents, 1 ms round trips) on tokio's paused clock, so every figure is deterministic:
//! an unrelated update is searchable while a 10,000-project fan-out drains (also through an index
//! whose write path the fan-out saturates: two workers and a queue), a crash in the middle of a
//! fan-out loses no project, reads of one project never overlap, and batches are acknowledged in
//! order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::test_support::{Call, DocumentHooks, Hooked, HookedDocuments, IndexHooks, Read};
use super::tests::config;
use super::{EngineConfig, SyncEngine};
use crate::change::{Ack, Backlog, Change, ChangeId, ChangeRecord};
use crate::document::{ProjectId, UserId};
use crate::error::{SourceError, SyncError};
use crate::index::SearchIndex;
use crate::source::{ChangeSource, WriterLease};
use crate::testing::{MemoryIndex, MemoryLease, MemorySource};

/// One round trip to a service.
const ROUND_TRIP: Duration = Duration::from_millis(1);

/// `per_thousand` for every 1,000 items, plus a round trip.
fn cost(items: usize, per_thousand: u64) -> Duration {
    ROUND_TRIP + Duration::from_micros(per_thousand * 1000 * items as u64 / 1000)
}

/// What the slow fakes saw: reads in flight per project, the most ever in flight for one project,
/// and every acknowledged change in the order of the acknowledgements.
#[derive(Default)]
struct Observed {
    reading: BTreeMap<ProjectId, usize>,
    most_overlapping: usize,
    acked: Vec<ChangeRecord>,
    /// Acknowledgements made (one per round of poll, load, write and acknowledge, or fewer).
    acks: usize,
    /// Documents loaded.
    loaded: usize,
}

/// The in-memory source and index behind injected latency: loads cost 20 ms and bulk writes 60 ms
/// per 1,000 documents, every other call a round trip.
struct Slow {
    source: Arc<MemorySource>,
    documents: Arc<HookedDocuments<SlowReads>>,
    index: Arc<MemoryIndex>,
    observed: Arc<Mutex<Observed>>,
}

impl Slow {
    fn new(source: &Arc<MemorySource>, index: &Arc<MemoryIndex>) -> Arc<Slow> {
        let observed = Arc::new(Mutex::new(Observed::default()));
        Arc::new(Slow {
            source: source.clone(),
            documents: HookedDocuments::new(
                source,
                SlowReads {
                    observed: observed.clone(),
                },
            ),
            index: index.clone(),
            observed,
        })
    }
}

/// Reads of the slow source: a load costs 20 ms per 1,000 documents plus a round trip, with the
/// reads in flight of each project observed.
struct SlowReads {
    observed: Arc<Mutex<Observed>>,
}

#[async_trait]
impl DocumentHooks for SlowReads {
    async fn before(&self, read: Read<'_>) {
        match read {
            Read::Load(ids) => {
                {
                    let mut observed = self.observed.lock().unwrap();
                    observed.loaded += ids.len();
                    for id in ids {
                        let count = observed.reading.entry(*id).or_default();
                        *count += 1;
                        let count = *count;
                        observed.most_overlapping = observed.most_overlapping.max(count);
                    }
                }
                tokio::time::sleep(cost(ids.len(), 20)).await;
            }
            Read::Page(limit) => tokio::time::sleep(cost(limit, 20)).await,
            Read::Touched => tokio::time::sleep(ROUND_TRIP).await,
        }
    }

    fn loaded(&self, ids: &[ProjectId]) {
        let mut observed = self.observed.lock().unwrap();
        for id in ids {
            if let Some(count) = observed.reading.get_mut(id) {
                *count -= 1;
            }
        }
    }
}

#[async_trait]
impl ChangeSource for Slow {
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        self.source.poll(max, wait).await
    }
    async fn ack(&self, ack: &Ack) -> Result<(), SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        let pending = self.source.poll(usize::MAX, Duration::ZERO).await?;
        self.source.ack(ack).await?;
        let mut observed = self.observed.lock().unwrap();
        observed.acks += 1;
        observed.acked.extend(
            pending
                .into_iter()
                .filter(|record| ack.changes.contains(&record.id)),
        );
        Ok(())
    }
    async fn backlog(&self) -> Result<Backlog, SourceError> {
        self.source.backlog().await
    }
}

/// Bulk writes of the slow index: 60 ms per 1,000 documents plus a round trip.
struct SlowWrites;

#[async_trait]
impl IndexHooks for SlowWrites {
    const CHECKPOINTS: bool = false;

    async fn before(&self, call: Call) {
        if let Call::Write { ops } = call {
            tokio::time::sleep(cost(ops, 60)).await;
        }
    }
}

/// The shipped batch and chunk sizes (1,000), fan-out chunk size (250) and writes in flight (4).
fn shipped() -> EngineConfig {
    let shipped = EngineConfig::default();
    EngineConfig {
        batch_size: shipped.batch_size,
        chunk_size: shipped.chunk_size,
        write_concurrency: shipped.write_concurrency,
        fanout_chunk_size: shipped.fanout_chunk_size,
        poll_wait: shipped.poll_wait,
        ..config()
    }
}

/// One process: an engine over the slow fakes, with its own lease handle.
struct Process {
    engine: Arc<SyncEngine>,
    lease: Arc<MemoryLease>,
}

impl Process {
    /// Runs the engine until shutdown, in a task of its own.
    fn start(&self) -> JoinHandle<Result<(), SyncError>> {
        let engine = self.engine.clone();
        tokio::spawn(async move { engine.run().await })
    }

    /// Waits until nothing is pending or queued in `source`, then stops the engine `running`.
    async fn stop_when_drained(
        &self,
        source: &MemorySource,
        running: JoinHandle<Result<(), SyncError>>,
    ) {
        until(|| source.pending() == 0 && source.queue().projects().is_empty()).await;
        self.engine.shutdown.cancel();
        running.await.unwrap().unwrap();
    }
}

/// An empty source and index behind the slow fakes, and a process writing with the shipped sizes.
fn slow_rig() -> (Arc<MemorySource>, Arc<Slow>, Process) {
    let source = MemorySource::new();
    let slow = Slow::new(&source, &Arc::new(MemoryIndex::new()));
    let writer = process(&slow);
    (source, slow, writer)
}

fn process(slow: &Arc<Slow>) -> Process {
    process_with(slow, shipped())
}

fn process_with(slow: &Arc<Slow>, config: EngineConfig) -> Process {
    process_on(slow, config, Hooked::new(&slow.index, SlowWrites))
}

/// A process writing through `index` (the slow fakes' in-memory index behind other hooks).
fn process_on(slow: &Arc<Slow>, config: EngineConfig, index: Arc<dyn SearchIndex>) -> Process {
    let lease = Arc::new(slow.source.lease());
    let engine = SyncEngine::new(
        slow.clone(),
        slow.documents.clone(),
        index,
        lease.clone(),
        slow.source.queue(),
        config,
        CancellationToken::new(),
    );
    Process {
        engine: Arc::new(engine),
        lease,
    }
}

/// A user who created `projects` projects, one more project of someone else's, the index built
/// and every change acknowledged; returns the user, their projects and the other project.
async fn creator_of(
    slow: &Arc<Slow>,
    writer: &Process,
    projects: usize,
) -> (UserId, Vec<ProjectId>, ProjectId) {
    let source = &slow.source;
    let user = source.add_user("Ada");
    let theirs = (0..projects)
        .map(|n| {
            let project = source.add_project(&format!("P{n}"), &format!("p-{n}"), "text");
            source.credit(project, user);
            project
        })
        .collect();
    let other = source.add_project("Other", "other", "before");
    assert!(writer.lease.try_acquire().await.unwrap());
    writer.engine.drain().await.unwrap();
    assert_eq!(source.pending(), 0);
    (user, theirs, other)
}

fn named(slow: &Slow, name: &str) -> usize {
    slow.index
        .live_documents()
        .iter()
        .filter(|document| document.creators.iter().any(|c| c.name == name))
        .count()
}

fn described(slow: &Slow, project: ProjectId) -> String {
    slow.index
        .live_documents()
        .into_iter()
        .find(|document| document.id == project)
        .map(|document| document.description)
        .unwrap_or_default()
}

/// Waits, on the paused clock, until `done` holds; returns how long that took.
async fn until(mut done: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never happened"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    started.elapsed()
}

/// Issue 17, head of line: a rename of a user with 10,000 projects drains (10 chunks, 820 ms of
/// loads and writes back to back), and an update of an unrelated project committed meanwhile must
/// be searchable within a few chunk writes, not after the whole fan-out.
#[tokio::test(start_paused = true)]
async fn an_unrelated_update_is_searchable_while_a_large_fan_out_drains() {
    let (source, slow, writer) = slow_rig();
    let (user, theirs, other) = creator_of(&slow, &writer, 10_000).await;
    let running = writer.start();

    source.rename_user(user, "Ada Lovelace");
    until(|| named(&slow, "Ada Lovelace") > 0).await;
    source.describe_project(other, "after");
    let waited = until(|| described(&slow, other) == "after").await;
    let renamed = named(&slow, "Ada Lovelace");

    assert!(
        waited <= Duration::from_millis(250),
        "the update waited {waited:?} behind the fan-out (bound: 250 ms, four chunk writes)"
    );
    assert!(
        renamed < theirs.len(),
        "the update became searchable only once the fan-out was done"
    );
    until(|| named(&slow, "Ada Lovelace") == theirs.len()).await;
    writer.stop_when_drained(&source, running).await;
    assert_eq!(slow.index.live_documents(), source.expected_documents());
}

/// The write path of an engine that a fan-out saturates: `ENGINE_WORKERS` bulk requests execute at
/// once, each costing a round trip plus `PER_DOCUMENT` per document, and the others wait their turn
/// in the order they came (Elasticsearch's write thread pool has a thread per core and a queue).
/// Two workers at 0.8 ms per document write 2,500 documents/s, about what Elasticsearch 7.10.2
/// writes on the benchmark machine's 2 cores.
struct Saturated {
    workers: Semaphore,
}

const ENGINE_WORKERS: usize = 2;
const PER_DOCUMENT: Duration = Duration::from_micros(800);

impl Saturated {
    fn new() -> Saturated {
        Saturated {
            workers: Semaphore::new(ENGINE_WORKERS),
        }
    }
}

#[async_trait]
impl IndexHooks for Saturated {
    const CHECKPOINTS: bool = false;

    async fn before(&self, call: Call) {
        if let Call::Write { ops } = call {
            let _worker = self.workers.acquire().await.expect("never closed");
            let documents = u32::try_from(ops).expect("a bulk of fewer than 2^32 documents");
            tokio::time::sleep(ROUND_TRIP + PER_DOCUMENT * documents).await;
        }
    }
}

/// Issue 17, head of line on a saturated engine: a rename of a user with 10,000 projects drains
/// through an engine that writes 2,500 documents/s (so at least 4 s), and updates of unrelated
/// projects committed at 100/s meanwhile must each be searchable within 500 ms (the linger, a poll,
/// a load and the few fan-out documents queued in the engine ahead of their bulk), while the
/// fan-out keeps the engine busy (done within 1.25 times the engine's own time).
#[tokio::test(start_paused = true)]
async fn updates_are_searchable_on_time_while_a_fan_out_saturates_the_engine() {
    let source = MemorySource::new();
    let slow = Slow::new(&source, &Arc::new(MemoryIndex::new()));
    let writer = process_on(&slow, shipped(), Hooked::new(&slow.index, Saturated::new()));
    let others: Vec<ProjectId> = (0..1_000)
        .map(|n| source.add_project(&format!("O{n}"), &format!("o-{n}"), "before"))
        .collect();
    let (user, theirs, _) = creator_of(&slow, &writer, 10_000).await;
    let running = writer.start();

    source.rename_user(user, "Ada Lovelace");
    let started = Instant::now();
    let mut committed: Vec<(ProjectId, Instant)> = Vec::new();
    let mut latencies = Vec::new();
    let mut next = 0;
    let mut drained = None;
    while drained.is_none() {
        assert!(started.elapsed() < Duration::from_secs(60), "never drained");
        if started.elapsed() >= Duration::from_millis(10 * next as u64) {
            source.describe_project(others[next], "after");
            committed.push((others[next], Instant::now()));
            next += 1;
        }
        let pending: Vec<ProjectId> = committed.iter().map(|(project, _)| *project).collect();
        let live = slow.index.live_name().expect("a live index");
        let after: Vec<ProjectId> = slow
            .index
            .get(&live, &pending)
            .await
            .unwrap()
            .into_iter()
            .filter(|document| document.description == "after")
            .map(|document| document.id)
            .collect();
        committed.retain(|(project, at)| {
            let searchable = after.contains(project);
            if searchable {
                latencies.push(at.elapsed());
            }
            !searchable
        });
        // Counting the renamed documents reads the whole index: every 20 ms is enough.
        if next % 2 == 0 && named(&slow, "Ada Lovelace") == theirs.len() {
            drained = Some(started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let drained = drained.unwrap_or_default();
    writer.stop_when_drained(&source, running).await;
    assert_eq!(slow.index.live_documents(), source.expected_documents());

    let engine_time = PER_DOCUMENT * u32::try_from(theirs.len()).unwrap() / ENGINE_WORKERS as u32;
    assert!(
        latencies.len() >= 300,
        "{} updates became searchable while the fan-out drained in {drained:?}",
        latencies.len()
    );
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        slowest <= Duration::from_millis(500),
        "an update waited {slowest:?} behind the fan-out (bound: 500 ms; {} updates, fan-out drained in {drained:?})",
        latencies.len()
    );
    assert!(
        drained <= engine_time.mul_f64(1.25),
        "the fan-out took {drained:?}, the engine alone {engine_time:?}"
    );
}

/// A crash in the middle of a fan-out: the process dies with part of the projects rewritten and a
/// newer update acknowledged. The rename was acknowledged as soon as its projects were queued; the
/// next writer reads the projects still queued, and only them, and the index ends equal to the
/// source. (Before the queue, the rename stayed pending and the next writer read all 10,000.)
#[tokio::test(start_paused = true)]
async fn a_crash_in_the_middle_of_a_fan_out_resumes_with_the_projects_left() {
    let (source, slow, first) = slow_rig();
    let (user, theirs, other) = creator_of(&slow, &first, 10_000).await;
    let running = first.start();
    source.rename_user(user, "Ada Lovelace");
    until(|| named(&slow, "Ada Lovelace") >= theirs.len() / 2).await;
    source.describe_project(other, "after");
    until(|| described(&slow, other) == "after").await;
    until(|| source.pending() == 0).await;
    assert!(
        named(&slow, "Ada Lovelace") < theirs.len(),
        "the rename is acknowledged while its fan-out drains"
    );

    running.abort();
    first.lease.expire();
    let rewritten = named(&slow, "Ada Lovelace");
    assert!(
        rewritten < theirs.len(),
        "the crash must hit the middle of the fan-out ({rewritten} rewritten)"
    );
    let queued = source.queue().projects();
    let renamed: std::collections::BTreeSet<ProjectId> = slow
        .index
        .live_documents()
        .into_iter()
        .filter(|document| {
            document
                .creators
                .iter()
                .any(|creator| creator.name == "Ada Lovelace")
        })
        .map(|document| document.id)
        .collect();
    assert!(
        theirs
            .iter()
            .all(|project| queued.binary_search(project).is_ok() || renamed.contains(project)),
        "a project left the queue before its rebuilt document was written"
    );
    slow.observed.lock().unwrap().loaded = 0;
    let second = process(&slow);
    assert!(second.lease.try_acquire().await.unwrap());
    second.engine.drain().await.unwrap();
    let loaded = slow.observed.lock().unwrap().loaded;
    eprintln!(
        "crash after {rewritten} of {} rewritten: {} queued, {loaded} read by the restart",
        theirs.len(),
        queued.len()
    );
    assert_eq!(
        loaded,
        queued.len(),
        "the restart reads the projects still queued, and only them"
    );
    assert!(
        queued.len() <= theirs.len() - rewritten + 2_000,
        "{} queued after {rewritten} of {} were rewritten: at most the pages in flight are read again",
        queued.len(),
        theirs.len()
    );
    assert_eq!(named(&slow, "Ada Lovelace"), theirs.len());
    assert!(source.queue().projects().is_empty());
    assert_eq!(slow.index.live_documents(), source.expected_documents());
}

/// Reads of one project never overlap (versions rely on it), and batches are acknowledged in the
/// order they were taken, a fan-out's change with its batch (once its projects are queued).
#[tokio::test(start_paused = true)]
async fn reads_never_overlap_and_batches_are_acknowledged_in_order() {
    let (source, slow, writer) = slow_rig();
    let (user, theirs, other) = creator_of(&slow, &writer, 3_000).await;
    slow.observed.lock().unwrap().acked.clear();
    let running = writer.start();
    source.rename_user(user, "Ada Lovelace");
    for round in 0..40 {
        tokio::time::sleep(Duration::from_millis(7)).await;
        source.describe_project(theirs[round * 61 % theirs.len()], &format!("round {round}"));
        source.describe_project(other, &format!("round {round}"));
    }
    writer.stop_when_drained(&source, running).await;
    assert_eq!(slow.index.live_documents(), source.expected_documents());

    let observed = slow.observed.lock().unwrap();
    assert_eq!(
        observed.most_overlapping, 1,
        "two reads of one project were in flight at once"
    );
    let acked: Vec<ChangeId> = observed.acked.iter().map(|record| record.id).collect();
    assert!(
        acked.windows(2).all(|pair| pair[0] < pair[1]),
        "changes acknowledged out of order: {acked:?}"
    );
    assert_eq!(acked.len(), 81);
    assert!(
        matches!(observed.acked[0].change, Change::User { .. }),
        "the rename is acknowledged first, once its projects are queued"
    );
}

/// A user with 10,000 projects renamed five times, 30 ms apart, while the first rename's fan-out
/// drains: each rename queues the same projects again, which the queue (a set) holds once, so the
/// projects not read yet are read once. Without that, the five fan-outs read 40,000 documents
/// here, and a user renamed more often than a fan-out of theirs takes grows work the stream never
/// drains. A project queued again while its chunk was read or written stays queued: with a queue
/// whose enqueue keeps the old entry and whose done removes it whatever its stamp, 500 projects
/// here kept an older name.
#[tokio::test(start_paused = true)]
async fn renames_of_a_user_whose_fan_out_drains_are_queued_once_and_none_is_lost() {
    let (source, slow, writer) = slow_rig();
    let (user, theirs, _) = creator_of(&slow, &writer, 10_000).await;
    slow.observed.lock().unwrap().loaded = 0;
    let running = writer.start();
    for round in 0..5 {
        source.rename_user(user, &format!("Ada {round}"));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    writer.stop_when_drained(&source, running).await;

    assert_eq!(named(&slow, "Ada 4"), theirs.len());
    assert_eq!(slow.index.live_documents(), source.expected_documents());
    let loaded = slow.observed.lock().unwrap().loaded;
    assert!(
        loaded <= 2 * theirs.len(),
        "five renames read {loaded} documents: each fan-out ran in full"
    );
}

/// What a steady trickle of updates cost the stream: acknowledgements made, and the longest any
/// update took from commit to searchable.
struct Trickle {
    acks: usize,
    slowest: Duration,
}

/// 200 updates of distinct projects at 100/s into a running stream that lingers `linger`.
async fn trickle(linger: Duration) -> Trickle {
    let source = MemorySource::new();
    let slow = Slow::new(&source, &Arc::new(MemoryIndex::new()));
    let writer = process_with(
        &slow,
        EngineConfig {
            batch_linger: linger,
            ..shipped()
        },
    );
    let projects: Vec<ProjectId> = (0..200)
        .map(|n| source.add_project(&format!("P{n}"), &format!("p-{n}"), "before"))
        .collect();
    assert!(writer.lease.try_acquire().await.unwrap());
    writer.engine.drain().await.unwrap();
    slow.observed.lock().unwrap().acks = 0;
    let running = writer.start();
    let mut committed: Vec<(ProjectId, Instant)> = Vec::new();
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    let mut next = 0;
    while next < projects.len() || !committed.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "never drained");
        if next < projects.len() && started.elapsed() >= Duration::from_millis(10 * next as u64) {
            source.describe_project(projects[next], "after");
            committed.push((projects[next], Instant::now()));
            next += 1;
        }
        committed.retain(|(project, at)| {
            let searchable = described(&slow, *project) == "after";
            if searchable {
                slowest = slowest.max(at.elapsed());
            }
            !searchable
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    writer.stop_when_drained(&source, running).await;
    assert_eq!(slow.index.live_documents(), source.expected_documents());
    let acks = slow.observed.lock().unwrap().acks;
    Trickle { acks, slowest }
}

/// Issue 17, Athens' CPU per change: every round of poll, load, bulk request and acknowledgement
/// costs about the same whatever it carries, so a stream taking a trickle of changes as they come
/// pays one round per change. Lingering 100 ms after a poll that was not full gathers the changes
/// of 100 ms into one round, at the price of at most 100 ms more from commit to searchable.
#[tokio::test(start_paused = true)]
async fn a_linger_gathers_a_trickle_of_changes_into_few_rounds() {
    let eager = trickle(Duration::ZERO).await;
    let lingering = trickle(Duration::from_millis(100)).await;

    assert!(
        eager.acks >= 150,
        "without a linger each update is its own round ({} acknowledgements)",
        eager.acks
    );
    assert!(
        lingering.acks <= 25,
        "lingering 100 ms, 2 s of updates take about 20 rounds, not {}",
        lingering.acks
    );
    assert!(
        lingering.slowest <= Duration::from_millis(100) + Duration::from_millis(20),
        "an update waited {:?}: the linger may add 100 ms, the round about 10 ms",
        lingering.slowest
    );
}
