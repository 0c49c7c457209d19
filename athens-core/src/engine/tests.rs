//! Engine behaviour against the in-memory fakes: backfill, streaming of every kind of change, retries,
//! dead letters, the lease, shutdown, verify, and a property test with random restarts.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use tokio_util::sync::CancellationToken;

use super::{EngineConfig, MappingChange, RetryPolicy, SyncEngine};
use crate::change::Table;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::SyncError;
use crate::index::SearchIndex;
use crate::source::WriterLease;
use crate::testing::{MemoryIndex, MemoryLease, MemorySource};

pub(super) fn config() -> EngineConfig {
    EngineConfig {
        batch_size: NonZeroUsize::new(7).unwrap(),
        chunk_size: NonZeroUsize::new(3).unwrap(),
        write_concurrency: NonZeroUsize::new(2).unwrap(),
        fanout_chunk_size: NonZeroUsize::new(3).unwrap(),
        backfill_readers: NonZeroUsize::new(2).unwrap(),
        checkpoint_interval: Duration::from_millis(1),
        poll_wait: Duration::from_millis(20),
        batch_linger: Duration::ZERO,
        standby_interval: Duration::from_millis(10),
        retry: RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        keep_previous_index: false,
        max_write_age: Duration::from_secs(60),
        on_mapping_change: MappingChange::Reindex,
        capture_check_interval: Duration::from_secs(60),
    }
}

pub(super) struct Rig {
    pub source: Arc<MemorySource>,
    pub index: Arc<MemoryIndex>,
    pub lease: Arc<MemoryLease>,
    pub engine: SyncEngine,
    pub shutdown: CancellationToken,
}

fn rig_on(source: &Arc<MemorySource>, index: &Arc<MemoryIndex>) -> Rig {
    rig_through(source, index, index.clone())
}

/// A rig whose engine writes through `through` (a wrapper of `index` with pause points).
pub(super) fn rig_through(
    source: &Arc<MemorySource>,
    index: &Arc<MemoryIndex>,
    through: Arc<dyn SearchIndex>,
) -> Rig {
    let lease = Arc::new(source.lease());
    let shutdown = CancellationToken::new();
    let engine = SyncEngine::new(
        source.clone(),
        source.clone(),
        through,
        lease.clone(),
        source.queue(),
        config(),
        shutdown.clone(),
    );
    Rig {
        source: source.clone(),
        index: index.clone(),
        lease,
        engine,
        shutdown,
    }
}

pub(super) fn rig() -> Rig {
    rig_on(&MemorySource::new(), &Arc::new(MemoryIndex::new()))
}

impl Rig {
    pub(super) async fn lead(&self) {
        assert!(self.lease.try_acquire().await.unwrap());
    }

    pub(super) async fn sync(&self) {
        self.engine.drain().await.unwrap();
    }

    pub(super) fn assert_converged(&self) {
        assert_eq!(
            self.index.live_documents(),
            self.source.expected_documents()
        );
        assert_eq!(
            self.source.pending(),
            0,
            "every change must be acknowledged"
        );
    }

    pub(super) fn live(&self, id: ProjectId) -> Option<ProjectDocument> {
        self.index.live_documents().into_iter().find(|d| d.id == id)
    }

    /// Two users, three hashtags, four projects with links.
    pub(super) fn seed(&self) -> Vec<ProjectId> {
        let s = &self.source;
        let ada = s.add_user("Ada");
        let bob = s.add_user("Bob");
        let tags: Vec<_> = ["rust", "search", "sql"]
            .iter()
            .map(|name| s.add_hashtag(name))
            .collect();
        (0..4)
            .map(|n| {
                let project = s.add_project(&format!("P{n}"), &format!("p-{n}"), "text");
                s.credit(project, if n % 2 == 0 { ada } else { bob });
                s.tag(project, tags[n % 3]);
                s.tag(project, tags[(n + 1) % 3]);
                project
            })
            .collect()
    }
}

#[tokio::test]
async fn first_sync_backfills_a_fresh_index_and_publishes_it() {
    let rig = rig();
    rig.seed();
    rig.lead().await;
    rig.sync().await;
    assert_eq!(rig.index.live_documents().len(), 4);
    rig.assert_converged();
}

#[tokio::test]
async fn renaming_a_user_rewrites_every_project_of_theirs() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let ada = rig.live(projects[0]).unwrap().creators[0].id;
    rig.source.rename_user(ada, "Ada Lovelace");
    rig.sync().await;
    for project in [projects[0], projects[2]] {
        assert_eq!(rig.live(project).unwrap().creators[0].name, "Ada Lovelace");
    }
    assert_eq!(rig.live(projects[1]).unwrap().creators[0].name, "Bob");
    rig.assert_converged();
}

#[tokio::test]
async fn deleting_a_hashtag_removes_it_everywhere_and_deleting_a_project_removes_its_document() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let rust = rig.live(projects[0]).unwrap().hashtags[0].id;
    rig.source.delete_hashtag(rust);
    rig.source.delete_project(projects[3]);
    rig.sync().await;
    assert!(
        rig.index
            .live_documents()
            .iter()
            .all(|d| d.hashtags.iter().all(|h| h.id != rust))
    );
    assert!(rig.live(projects[3]).is_none());
    rig.assert_converged();
}

#[tokio::test]
async fn unlinking_a_creator_and_deleting_a_user_update_the_documents() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let bob = rig.live(projects[1]).unwrap().creators[0].id;
    let ada = rig.live(projects[0]).unwrap().creators[0].id;
    rig.source.uncredit(projects[0], ada);
    rig.source.delete_user(bob);
    rig.sync().await;
    assert!(rig.live(projects[0]).unwrap().creators.is_empty());
    assert!(rig.live(projects[1]).unwrap().creators.is_empty());
    rig.assert_converged();
}

#[tokio::test]
async fn a_truncate_rebuilds_the_index_behind_the_alias() {
    let rig = rig();
    rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.source.truncate(Table::Hashtags);
    rig.sync().await;
    assert!(
        rig.index
            .live_documents()
            .iter()
            .all(|d| d.hashtags.is_empty())
    );
    assert_eq!(
        rig.index.physical_indexes(),
        1,
        "the replaced index is dropped"
    );
    rig.source.truncate(Table::Projects);
    rig.sync().await;
    assert!(rig.index.live_documents().is_empty());
    rig.assert_converged();
}

#[tokio::test]
async fn an_index_built_with_another_mapping_is_rebuilt_before_streaming() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let old = rig.index.live_name().unwrap();
    rig.index.outdate_live();
    rig.source
        .describe_project(projects[0], "after the upgrade");
    rig.sync().await;
    assert_ne!(
        rig.index.live_name().unwrap(),
        old,
        "a new index is published"
    );
    assert_eq!(rig.index.physical_indexes(), 1, "the old one is dropped");
    rig.assert_converged();
}

#[tokio::test]
async fn an_index_built_with_another_mapping_is_refused_when_configured() {
    let mut rig = rig();
    rig.engine.config.on_mapping_change = MappingChange::Refuse;
    rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.index.outdate_live();
    let error = rig.engine.drain().await.unwrap_err();
    assert!(matches!(error, SyncError::MappingChanged(_)), "{error:?}");
    assert!(error.to_string().contains("athens reindex"), "{error}");
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn transient_index_failures_are_retried_without_losing_changes() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.source.describe_project(projects[0], "after outage");
    rig.index.faults.write.arm(3);
    rig.index.faults.retry_items.arm(2);
    rig.sync().await;
    assert_eq!(rig.live(projects[0]).unwrap().description, "after outage");
    rig.assert_converged();
}

#[tokio::test]
async fn a_failed_ack_replays_the_batch_harmlessly() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.source.describe_project(projects[1], "twice");
    rig.source.faults.ack.arm(2);
    rig.source.faults.poll.arm(1);
    rig.source.faults.load.arm(1);
    rig.sync().await;
    assert_eq!(rig.live(projects[1]).unwrap().description, "twice");
    rig.assert_converged();
}

#[tokio::test]
async fn a_refused_document_is_dead_lettered_and_the_rest_flows() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.index.faults.reject.lock().unwrap().insert(projects[2]);
    rig.source.describe_project(projects[2], "poison");
    rig.source.describe_project(projects[3], "fine");
    rig.sync().await;
    assert_eq!(rig.live(projects[3]).unwrap().description, "fine");
    assert_eq!(rig.live(projects[2]).unwrap().description, "text");
    let dead = rig.source.dead_letters();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].project, projects[2]);
    assert_eq!(rig.source.pending(), 0);
}

#[tokio::test]
async fn a_lost_lease_stops_the_writer_before_it_acknowledges() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    rig.source.describe_project(projects[0], "late");
    rig.lease.expire();
    let error = rig.engine.drain().await.unwrap_err();
    assert!(matches!(error, SyncError::LeaseLost { .. }), "{error:?}");
    assert!(rig.source.pending() > 0, "nothing may be acknowledged");
}

#[tokio::test]
async fn a_second_engine_waits_as_standby_and_takes_over_after_a_crash() {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let first = Arc::new(rig_on(&source, &index));
    let second = Arc::new(rig_on(&source, &index));
    let projects = first.seed();
    let spawn = |rig: &Arc<Rig>| {
        let rig = rig.clone();
        tokio::spawn(async move { rig.engine.run().await })
    };
    let first_run = spawn(&first);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second_run = spawn(&second);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(first.lease.is_held().await.unwrap());
    assert!(!second.lease.is_held().await.unwrap());
    source.describe_project(projects[0], "from the first");
    tokio::time::sleep(Duration::from_millis(200)).await;
    first.assert_converged();

    // The first engine crashes: its task dies and its lease goes with its connection.
    first_run.abort();
    first.lease.expire();
    source.describe_project(projects[1], "from the standby");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(second.lease.is_held().await.unwrap());
    second.shutdown.cancel();
    second_run.await.unwrap().unwrap();
    second.assert_converged();
}

#[tokio::test]
async fn shutdown_stops_run_cleanly_and_releases_the_lease() {
    let rig = rig();
    rig.seed();
    let rig = Arc::new(rig);
    let running = {
        let rig = rig.clone();
        tokio::spawn(async move { rig.engine.run().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig.shutdown.cancel();
    running.await.unwrap().unwrap();
    assert!(!rig.lease.is_held().await.unwrap());
    rig.assert_converged();
}

#[tokio::test]
async fn verify_finds_and_repairs_drift() {
    let rig = rig();
    let projects = rig.seed();
    rig.lead().await;
    rig.sync().await;
    let clean = rig.engine.verify(false).await.unwrap();
    assert_eq!(clean.drift(), 0);
    assert_eq!(clean.checked, 4);

    let mut tampered = rig.live(projects[0]).unwrap();
    tampered.name = "tampered".into();
    rig.index.tamper(tampered);
    let mut ghost = rig.live(projects[1]).unwrap();
    ghost.id = ProjectId(9_999);
    rig.index.tamper(ghost);
    rig.index.remove(projects[2]);

    let found = rig.engine.verify(false).await.unwrap();
    assert_eq!((found.stale, found.extra, found.missing), (1, 1, 1));
    assert_eq!(found.repaired, 0);

    assert_eq!(found.samples.len(), 3);

    let repaired = rig.engine.verify(true).await.unwrap();
    assert_eq!(repaired.drift(), 3);
    assert_eq!(repaired.repaired, 3);
    assert_eq!(rig.engine.verify(false).await.unwrap().drift(), 0);
    rig.assert_converged();
}

#[derive(Debug, Clone)]
enum Op {
    AddUser,
    RenameUser(usize),
    DeleteUser(usize),
    AddHashtag,
    RenameHashtag(usize),
    DeleteHashtag(usize),
    AddProject,
    DescribeProject(usize),
    DeleteProject(usize),
    Tag(usize, usize),
    Untag(usize, usize),
    Credit(usize, usize),
    Uncredit(usize, usize),
    Truncate(usize),
    Sync,
    Restart,
    IndexOutage,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::AddUser),
        2 => any::<usize>().prop_map(Op::RenameUser),
        1 => any::<usize>().prop_map(Op::DeleteUser),
        2 => Just(Op::AddHashtag),
        1 => any::<usize>().prop_map(Op::RenameHashtag),
        1 => any::<usize>().prop_map(Op::DeleteHashtag),
        4 => Just(Op::AddProject),
        2 => any::<usize>().prop_map(Op::DescribeProject),
        1 => any::<usize>().prop_map(Op::DeleteProject),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(p, h)| Op::Tag(p, h)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, h)| Op::Untag(p, h)),
        4 => (any::<usize>(), any::<usize>()).prop_map(|(p, u)| Op::Credit(p, u)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(p, u)| Op::Uncredit(p, u)),
        1 => (0usize..5).prop_map(Op::Truncate),
        3 => Just(Op::Sync),
        1 => Just(Op::Restart),
        1 => Just(Op::IndexOutage),
    ]
}

fn pick<T: Copy>(items: &[T], n: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[n % items.len()])
}

async fn run_script(ops: Vec<Op>) {
    let source = MemorySource::new();
    let index = Arc::new(MemoryIndex::new());
    let mut rig = rig_on(&source, &index);
    let (mut users, mut hashtags, mut projects) = (Vec::new(), Vec::new(), Vec::new());
    for (n, op) in ops.into_iter().enumerate() {
        match op {
            Op::AddUser => users.push(source.add_user(&format!("user {n}"))),
            Op::RenameUser(i) => pick(&users, i)
                .into_iter()
                .for_each(|u| source.rename_user(u, &format!("renamed {n}"))),
            Op::DeleteUser(i) => pick(&users, i)
                .into_iter()
                .for_each(|u| source.delete_user(u)),
            Op::AddHashtag => hashtags.push(source.add_hashtag(&format!("tag{n}"))),
            Op::RenameHashtag(i) => pick(&hashtags, i)
                .into_iter()
                .for_each(|h| source.rename_hashtag(h, &format!("t{n}"))),
            Op::DeleteHashtag(i) => pick(&hashtags, i)
                .into_iter()
                .for_each(|h| source.delete_hashtag(h)),
            Op::AddProject => {
                projects.push(source.add_project(&format!("P{n}"), &format!("p-{n}"), "d"))
            }
            Op::DescribeProject(i) => pick(&projects, i)
                .into_iter()
                .for_each(|p| source.describe_project(p, &format!("d{n}"))),
            Op::DeleteProject(i) => pick(&projects, i)
                .into_iter()
                .for_each(|p| source.delete_project(p)),
            Op::Tag(p, h) => {
                if let (Some(p), Some(h)) = (pick(&projects, p), pick(&hashtags, h)) {
                    source.tag(p, h)
                }
            }
            Op::Untag(p, h) => {
                if let (Some(p), Some(h)) = (pick(&projects, p), pick(&hashtags, h)) {
                    source.untag(p, h)
                }
            }
            Op::Credit(p, u) => {
                if let (Some(p), Some(u)) = (pick(&projects, p), pick(&users, u)) {
                    source.credit(p, u)
                }
            }
            Op::Uncredit(p, u) => {
                if let (Some(p), Some(u)) = (pick(&projects, p), pick(&users, u)) {
                    source.uncredit(p, u)
                }
            }
            Op::Truncate(t) => source.truncate(Table::ALL[t]),
            Op::Sync => {
                if rig.lease.try_acquire().await.unwrap() {
                    rig.engine.step().await.unwrap();
                }
            }
            Op::Restart => {
                rig.lease.expire();
                rig = rig_on(&source, &index);
            }
            Op::IndexOutage => index.faults.write.arm(2),
        }
    }
    rig.lead().await;
    rig.sync().await;
    rig.assert_converged();
    assert_eq!(rig.engine.verify(false).await.unwrap().drift(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_crud_with_restarts_converges(ops in proptest::collection::vec(op(), 1..200)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(run_script(ops));
    }
}
