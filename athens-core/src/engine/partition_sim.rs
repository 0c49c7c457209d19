//! Simulation of partitioned writers (docs/architecture.md, "Partitioned writers"): the real
//! [`SyncEngine`], unchanged, run as `P` writers (each with a standby) over decorators of the
//! in-memory ports: a queue of changes per partition, a document source that resolves users and
//! hashtags to the partition's own projects, a lease per partition, and an index, all with injected
//! latency (a load 20 ms, a bulk 60 ms per 1,000 documents, every other call a 1 ms round trip) on
//! tokio's paused clock. Changes that name a project go to its partition's queue; a change that
//! names a user or a hashtag (the fan-out) goes to every partition's queue, and each partition
//! acknowledges its own copy after writing its own share. Each run hands over every partition once,
//! at a random moment, and ends with the index compared to the source.
//!
//! What it does not model: CPU (paused time makes it free) and the capacity of a shared engine and
//! database (each call's latency is the same whatever runs beside it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::test_support::{Call, DocumentHooks, Hooked, HookedDocuments, IndexHooks, Read};
use super::{EngineConfig, RetryPolicy, SyncEngine};
use crate::change::{Ack, Backlog, Change, ChangeId, ChangeRecord};
use crate::document::{HashtagId, ProjectId, UserId};
use crate::error::SourceError;
use crate::source::{ChangeSource, WriterLease};
use crate::testing::{MemoryIndex, MemorySource};

const ROUND_TRIP: Duration = Duration::from_millis(1);
const LOAD: Duration = Duration::from_millis(20);
const BULK_PER_THOUSAND: Duration = Duration::from_millis(60);

/// The partition of a project: the mixer the capture and `athens sync` use
/// ([`crate::partition::partition_of`]), modulo the partition count.
fn partition_of(project: ProjectId, partitions: usize) -> usize {
    let count = u32::try_from(partitions)
        .ok()
        .and_then(std::num::NonZeroU32::new)
        .expect("a partition count between 1 and 2^32");
    crate::partition::partition_of(project, count) as usize
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The partitioned capture: one queue of pending changes per partition, and who holds each
/// partition's lease.
struct Partitions {
    count: usize,
    queues: Vec<Mutex<BTreeMap<ChangeId, ChangeRecord>>>,
    holders: Vec<Mutex<Option<u64>>>,
}

impl Partitions {
    fn new(count: usize) -> Arc<Partitions> {
        Arc::new(Partitions {
            count,
            queues: (0..count).map(|_| Mutex::default()).collect(),
            holders: (0..count).map(|_| Mutex::default()).collect(),
        })
    }

    /// Moves the source's pending changes into the partitions' queues, as the capture would write
    /// them in the changing transaction: by project, or to every partition for a fan-out.
    async fn route(&self, source: &MemorySource) {
        let records = source
            .poll(usize::MAX, Duration::ZERO)
            .await
            .expect("the memory source polls");
        for record in &records {
            let project = match record.change {
                Change::Project { project }
                | Change::ProjectHashtag { project, .. }
                | Change::UserProject { project, .. } => Some(project),
                Change::User { .. } | Change::Hashtag { .. } | Change::Truncate { .. } => None,
            };
            match project {
                Some(project) => {
                    lock(&self.queues[partition_of(project, self.count)])
                        .insert(record.id, record.clone());
                }
                None => {
                    for queue in &self.queues {
                        lock(queue).insert(record.id, record.clone());
                    }
                }
            }
        }
        let ack = Ack {
            changes: records.iter().map(|record| record.id).collect(),
            dead_letters: Vec::new(),
        };
        source.ack(&ack).await.expect("the memory source acks");
    }

    fn pending(&self) -> usize {
        self.queues.iter().map(|queue| lock(queue).len()).sum()
    }

    /// Takes partition `partition`'s lease from whoever holds it, as a lost connection would.
    fn expire(&self, partition: usize) {
        *lock(&self.holders[partition]) = None;
    }
}

/// One partition's view of the capture: its queue, its lease.
struct PartitionChanges {
    partitions: Arc<Partitions>,
    partition: usize,
}

#[async_trait]
impl ChangeSource for PartitionChanges {
    async fn poll(&self, max: usize, wait: Duration) -> Result<Vec<ChangeRecord>, SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        let taken: Vec<ChangeRecord> = lock(&self.partitions.queues[self.partition])
            .values()
            .take(max)
            .cloned()
            .collect();
        if taken.is_empty() {
            tokio::time::sleep(wait).await;
        }
        Ok(taken)
    }

    async fn ack(&self, ack: &Ack) -> Result<(), SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        assert!(ack.dead_letters.is_empty(), "nothing is refused here");
        let mut queue = lock(&self.partitions.queues[self.partition]);
        for id in &ack.changes {
            queue.remove(id);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, SourceError> {
        Ok(Backlog {
            pending: lock(&self.partitions.queues[self.partition]).len() as u64,
            ..Backlog::default()
        })
    }
}

/// One process's handle on one partition's lease.
struct PartitionLease {
    partitions: Arc<Partitions>,
    partition: usize,
    owner: u64,
}

#[async_trait]
impl WriterLease for PartitionLease {
    async fn try_acquire(&self) -> Result<bool, SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        let mut holder = lock(&self.partitions.holders[self.partition]);
        Ok(*holder.get_or_insert(self.owner) == self.owner)
    }

    async fn is_held(&self) -> Result<bool, SourceError> {
        tokio::time::sleep(ROUND_TRIP).await;
        Ok(*lock(&self.partitions.holders[self.partition]) == Some(self.owner))
    }

    async fn release(&self) -> Result<(), SourceError> {
        let mut holder = lock(&self.partitions.holders[self.partition]);
        if *holder == Some(self.owner) {
            *holder = None;
        }
        Ok(())
    }
}

/// The documents of one partition: users and hashtags resolve to its own projects only, a load
/// costs `LOAD` and a resolution a round trip.
struct PartitionReads {
    partitions: usize,
    partition: usize,
}

#[async_trait]
impl DocumentHooks for PartitionReads {
    async fn before(&self, read: Read<'_>) {
        match read {
            Read::Load(ids) => {
                assert!(
                    ids.iter()
                        .all(|id| partition_of(*id, self.partitions) == self.partition),
                    "a writer reads only the projects of its partition"
                );
                tokio::time::sleep(LOAD).await;
            }
            Read::Page(_) => tokio::time::sleep(LOAD).await,
            Read::Touched => tokio::time::sleep(ROUND_TRIP).await,
        }
    }

    fn resolves_to(&self, project: ProjectId) -> bool {
        partition_of(project, self.partitions) == self.partition
    }
}

/// The index with a bulk's latency proportional to its size, and documents written counted.
#[derive(Default)]
struct SlowIndex {
    written: AtomicU64,
}

#[async_trait]
impl IndexHooks for SlowIndex {
    async fn before(&self, call: Call) {
        match call {
            Call::LiveIndex | Call::Claim | Call::MappingIsCurrent | Call::UnfinishedBackfills => {
                tokio::time::sleep(ROUND_TRIP).await;
            }
            Call::Write { ops } => {
                let bulk = BULK_PER_THOUSAND.mul_f64(ops as f64 / 1000.0);
                tokio::time::sleep(ROUND_TRIP + bulk).await;
                self.written.fetch_add(ops as u64, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

fn sim_config() -> EngineConfig {
    EngineConfig {
        poll_wait: Duration::from_millis(20),
        standby_interval: Duration::from_millis(50),
        retry: RetryPolicy {
            initial: Duration::from_millis(5),
            max: Duration::from_millis(50),
        },
        ..EngineConfig::default()
    }
}

/// A workload: `projects` projects (each with a creator and a hashtag) indexed beforehand, then
/// `updates` project updates on random projects and `renames` user renames, each user holding
/// about `projects / users` projects.
#[derive(Debug, Clone, Copy)]
struct Workload {
    projects: usize,
    users: usize,
    updates: usize,
    renames: usize,
    seed: u64,
}

/// What one simulated run measured.
#[derive(Debug)]
struct Run {
    /// Simulated time from the first writer's start until every change is acknowledged.
    elapsed: Duration,
    /// Documents the writers wrote (replays after hand-overs included).
    documents: u64,
}

/// The source seeded and indexed, and the workload's changes committed (not yet routed).
async fn prepared(workload: Workload) -> (Arc<MemorySource>, Arc<MemoryIndex>) {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let users: Vec<UserId> = (0..workload.users)
        .map(|n| source.add_user(&format!("user {n}")))
        .collect();
    let tags: Vec<HashtagId> = (0..8)
        .map(|n| source.add_hashtag(&format!("tag{n}")))
        .collect();
    let mut rng = StdRng::seed_from_u64(workload.seed);
    let projects: Vec<ProjectId> = (0..workload.projects)
        .map(|n| {
            let project = source.add_project(&format!("P{n}"), &format!("p-{n}"), "text");
            source.credit(project, users[rng.random_range(0..users.len())]);
            source.tag(project, tags[n % tags.len()]);
            project
        })
        .collect();
    let lease = Arc::new(source.lease());
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        index.clone(),
        lease.clone(),
        source.queue(),
        EngineConfig::default(),
        CancellationToken::new(),
    );
    assert!(lease.try_acquire().await.unwrap());
    engine.drain().await.unwrap();
    lease.release().await.unwrap();

    // Passes over the projects in a random order: a batch rarely names a project twice, so the
    // documents written follow the changes whatever the partition count (a backlog of repeated
    // projects would coalesce more in small partitions and flatter them).
    let mut order = projects.clone();
    order.shuffle(&mut rng);
    let renames_every = (workload.updates / workload.renames.max(1)).max(1);
    let mut renamed = 0;
    for n in 0..workload.updates {
        let project = order[n % order.len()];
        source.describe_project(project, &format!("update {n}"));
        if n % renames_every == 0 && renamed < workload.renames {
            let user = users[rng.random_range(0..users.len())];
            source.rename_user(user, &format!("renamed {n}"));
            renamed += 1;
        }
    }
    (source, index)
}

/// Runs the workload with `partitions` writers (and a standby each), handing every partition over
/// once at a random moment; returns once every change is acknowledged, after checking the index
/// equals the source.
async fn simulate(workload: Workload, partitions: usize) -> Run {
    let (source, index) = prepared(workload).await;
    let shared = Partitions::new(partitions);
    shared.route(&source).await;
    let slow = Hooked::new(&index, SlowIndex::default());
    let shutdown = CancellationToken::new();
    let mut owners = 0u64;
    let mut tasks = Vec::new();
    for partition in 0..partitions {
        for _ in 0..2 {
            owners += 1;
            let engine = SyncEngine::new(
                Arc::new(PartitionChanges {
                    partitions: shared.clone(),
                    partition,
                }),
                HookedDocuments::new(
                    &source,
                    PartitionReads {
                        partitions,
                        partition,
                    },
                ),
                slow.clone(),
                Arc::new(PartitionLease {
                    partitions: shared.clone(),
                    partition,
                    owner: owners,
                }),
                source.queue().partition(
                    crate::partition::Partition::new(
                        u32::try_from(partition).unwrap(),
                        std::num::NonZeroU32::new(u32::try_from(partitions).unwrap()).unwrap(),
                    )
                    .unwrap(),
                ),
                sim_config(),
                shutdown.clone(),
            );
            tasks.push(tokio::spawn(async move { engine.run().await }));
        }
    }
    let started = Instant::now();
    // About 90 ms per 1,000 changes per writer: hand-overs fall inside each partition's work.
    let expected = Duration::from_micros(
        90 * (workload.updates + workload.renames * partitions) as u64 / partitions as u64,
    );
    let mut rng = StdRng::seed_from_u64(workload.seed ^ partitions as u64);
    let mut handovers: Vec<(Duration, usize)> = (0..partitions)
        .map(|partition| (expected.mul_f64(rng.random_range(0.05..0.8)), partition))
        .collect();
    handovers.sort();
    for (at, partition) in handovers {
        tokio::time::sleep_until(started + at).await;
        shared.expire(partition);
    }
    while shared.pending() > 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = started.elapsed();
    shutdown.cancel();
    for task in tasks {
        task.await
            .expect("writer task")
            .expect("writer stops cleanly");
    }
    assert_eq!(source.pending(), 0);
    assert_eq!(
        index.live_documents(),
        source.expected_documents(),
        "drift after {partitions} partitions, seed {}",
        workload.seed
    );
    Run {
        elapsed,
        documents: slow.hooks.written.load(Ordering::Relaxed),
    }
}

#[tokio::test(start_paused = true)]
async fn partitioned_writers_scale_with_the_partitions_and_end_without_drift() {
    let workload = Workload {
        projects: 24_000,
        users: 1_200,
        updates: 96_000,
        renames: 96,
        seed: 17,
    };
    let one = simulate(workload, 1).await;
    for partitions in [2, 4, 8] {
        let run = simulate(workload, partitions).await;
        let speedup = one.elapsed.as_secs_f64() / run.elapsed.as_secs_f64();
        let rate = |run: &Run| run.documents as f64 / run.elapsed.as_secs_f64();
        println!(
            "P = {partitions}: {:.2} s simulated, {} documents ({:.0}/s), against {:.2} s, {} documents ({:.0}/s) for P = 1: {speedup:.2}× the changes/s, {:.2}× the documents/s",
            run.elapsed.as_secs_f64(),
            run.documents,
            rate(&run),
            one.elapsed.as_secs_f64(),
            one.documents,
            rate(&one),
            rate(&run) / rate(&one)
        );
        assert!(
            speedup >= 0.8 * partitions as f64,
            "P = {partitions} gave {speedup:.2}× the throughput of one writer"
        );
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 8, ..Default::default() })]

    #[test]
    fn any_partitioning_with_hand_overs_ends_with_zero_drift(
        seed in 0u64..1_000_000,
        partitions in proptest::sample::select(vec![1usize, 2, 4, 8]),
        updates in 50usize..1_500,
        renames in 0usize..12,
    ) {
        let workload = Workload { projects: 300, users: 12, updates, renames, seed };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .expect("runtime");
        runtime.block_on(simulate(workload, partitions));
    }
}
