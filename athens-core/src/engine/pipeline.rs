//! The pipelined stream: changes are polled while earlier ones are loaded and written, several bulk
//! requests are in flight, and batches are acknowledged in the order they were taken, each once the
//! index accepted its work and that of every batch before it.
//!
//! - **Reads never overlap.** One load is in flight at a time (the next one starts while earlier
//!   chunks are written, as in the backfill), so two reads of one project never overlap and a
//!   version taken later always describes a later state.
//! - **Fan-out blocks nothing.** A batch whose users and hashtags resolve to more than one chunk of
//!   projects hands that work to a fan-out queue, read `fanout_chunk_size` projects at a time. A
//!   batch's own (direct) chunks never wait behind it:
//!   - a read chunk waits for a write slot in a ready slot of its kind, so a direct chunk is read
//!     while a fan-out chunk waits for a slot, and a direct chunk waiting to be read is read first;
//!   - fan-out writes take at most `write_concurrency − 1` slots, so a slot is always free for a
//!     direct chunk (with one slot, the direct chunk takes it next);
//!   - the fan-out's work queued in the index is bounded by its small bulks: a direct bulk waits in
//!     the engine's write queue behind at most `(write_concurrency − 1) × fanout_chunk_size`
//!     documents instead of `write_concurrency` full chunks.
//!
//!   So an unrelated change is written within a fan-out read and its queued bulks while a
//!   million-document fan-out drains, and the fan-out still keeps the engine busy. The fan-out's own changes (the user or hashtag changes) stay pending in the
//!   source until every project they resolved to is written (and every batch up to theirs is
//!   acknowledged): a crash in the middle replays them, resolving them again, so nothing is lost
//!   in either capture mode; newer batches are acknowledged meanwhile, since each change's work is
//!   to rebuild documents from the state current when they are read, which owes nothing to the
//!   unfinished fan-out. The outbox deletes acknowledged rows one by one; the logical source keeps
//!   acknowledged changes past an unacknowledged transaction until the slot can move past them
//!   (a crash replays them: harmless, versions). A newer fan-out of the same users and hashtags
//!   supersedes the unread part of an older one (see `supersede_fanouts`).
//! - **Changes gather.** After a poll that took less than a batch, the next one waits the
//!   configured linger, so one round of load, bulk request and acknowledgement serves many changes.
//! - **A truncate** lets the work in flight finish, then rebuilds the whole index and acknowledges
//!   everything taken so far with it.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tracing::{debug, info};

use super::SyncEngine;
use super::metrics;
use super::plan::ChangePlan;
use super::stream::{StepReport, operations};
use super::write::{WriteSummary, retrying};
use crate::change::{Change, ChangeId, ChangeRecord};
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::IndexName;
use crate::source::Snapshot;

/// How long a pipeline runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Until {
    /// Until shutdown, waiting for changes when none is pending, with the periodic checks.
    Shutdown,
    /// Until nothing is pending in the source and nothing is in flight.
    Drained,
    /// Until the first batch taken (and its fan-out) is acknowledged.
    FirstBatch,
}

/// Whose work a chunk is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Batch(u64),
    FanOut(u64),
}

/// Changes taken in one poll, acknowledged together once their chunks are written.
struct Batch {
    seq: u64,
    records: Vec<ChangeRecord>,
    /// Chunks queued or in flight.
    unwritten: usize,
    projects: usize,
    summary: WriteSummary,
    started: Instant,
}

/// The projects a batch's users and hashtags resolved to, written chunk by chunk between newer
/// batches; its changes are acknowledged once they all are.
struct FanOut {
    /// The batch the changes came in.
    seq: u64,
    records: Vec<ChangeRecord>,
    /// Projects not read yet, in ascending order (taken from the front).
    todo: VecDeque<ProjectId>,
    /// Chunks read or written right now.
    in_flight: usize,
    projects: usize,
    summary: WriteSummary,
    started: Instant,
}

/// What a poll brought: changes new to the pipeline, planned, users and hashtags resolved.
struct Intake {
    records: Vec<ChangeRecord>,
    plan: ChangePlan,
    /// Projects of the plan's users and hashtags not named directly.
    resolved: BTreeSet<ProjectId>,
}

/// What an acknowledgement settled: the changes, and what their batches and fan-outs did.
type Acknowledged = (Vec<ChangeId>, StepReport);

/// Something that finished.
enum Event {
    Polled(Result<Intake, SyncError>),
    Loaded(Owner, Result<Snapshot, SyncError>),
    Written(Owner, Result<WriteSummary, SyncError>),
    Acked(Result<Acknowledged, SyncError>),
    Cancelled,
}

/// The state of one run of the pipelined stream.
pub(super) struct Pipeline<'a> {
    engine: &'a SyncEngine,
    until: Until,
    /// The index written to; a truncate replaces it.
    pub live: IndexName,
    batches: VecDeque<Batch>,
    fanouts: VecDeque<FanOut>,
    /// Direct chunks not read yet, oldest batch first.
    direct: VecDeque<(u64, Vec<ProjectId>)>,
    /// Every change taken and not yet acknowledged: a poll returns them again until then.
    known: HashSet<ChangeId>,
    next_seq: u64,
    /// The last batch acknowledged (`None` before the first).
    acked_through: Option<u64>,
    /// Changes of a truncate, waiting for the work in flight to finish.
    truncate: Option<Vec<ChangeRecord>>,
    polling: Option<BoxFuture<'a, Result<Intake, SyncError>>>,
    reading: Option<BoxFuture<'a, (Owner, Result<Snapshot, SyncError>)>>,
    /// A batch's chunk read, waiting for a write slot.
    ready_direct: Option<(Owner, Snapshot)>,
    /// A fan-out's chunk read, waiting for a write slot of those fan-out may take.
    ready_fanout: Option<(Owner, Snapshot)>,
    writes: FuturesUnordered<BoxFuture<'a, (Owner, Result<WriteSummary, SyncError>)>>,
    /// Fan-out chunks among `writes`.
    fanout_writes: usize,
    acking: Option<BoxFuture<'a, Result<Acknowledged, SyncError>>>,
    /// Changes acknowledged while the poll in flight ran: it may have returned them.
    acked_while_polling: HashSet<ChangeId>,
    /// A poll may start while work is in flight (set when one is likely to find new changes).
    may_poll: bool,
    /// The last poll found nothing new.
    quiet: bool,
    polls: u64,
    /// No poll starts before then: the last one took fewer changes than a batch holds, so
    /// changes gather for `batch_linger` (see [`EngineConfig`](super::EngineConfig)).
    linger_until: Option<tokio::time::Instant>,
    /// What was acknowledged so far.
    pub report: StepReport,
}

impl<'a> Pipeline<'a> {
    pub(super) fn new(engine: &'a SyncEngine, live: IndexName, until: Until) -> Pipeline<'a> {
        Pipeline {
            engine,
            until,
            live,
            batches: VecDeque::new(),
            fanouts: VecDeque::new(),
            direct: VecDeque::new(),
            known: HashSet::new(),
            next_seq: 0,
            acked_through: None,
            truncate: None,
            polling: None,
            reading: None,
            ready_direct: None,
            ready_fanout: None,
            writes: FuturesUnordered::new(),
            fanout_writes: 0,
            acking: None,
            acked_while_polling: HashSet::new(),
            may_poll: true,
            quiet: false,
            polls: 0,
            linger_until: None,
            report: StepReport::default(),
        }
    }

    fn chunk_size(&self) -> usize {
        self.engine.config.chunk_size.get()
    }

    fn concurrency(&self) -> usize {
        self.engine.config.write_concurrency.get()
    }

    /// Write slots fan-out chunks may take: all but one, kept for batches (the only one, when
    /// there is one).
    fn fanout_concurrency(&self) -> usize {
        self.concurrency().saturating_sub(1).max(1)
    }

    /// Nothing taken is unacknowledged and nothing is in flight.
    fn idle(&self) -> bool {
        self.batches.is_empty()
            && self.fanouts.is_empty()
            && self.truncate.is_none()
            && self.in_flight_is_empty()
            && self.polling.is_none()
    }

    fn in_flight_is_empty(&self) -> bool {
        self.reading.is_none()
            && self.ready_direct.is_none()
            && self.ready_fanout.is_none()
            && self.writes.is_empty()
            && self.acking.is_none()
    }

    /// Runs until the pipeline's end condition, or an error (work not acknowledged stays pending
    /// in the source and is replayed).
    pub(super) async fn run(&mut self) -> Result<(), SyncError> {
        let mut housekeeping = Housekeeping::default();
        loop {
            if self.truncate.is_some() && self.in_flight_is_empty() {
                self.rebuild_everything().await?;
            }
            self.schedule();
            if self.idle() {
                match self.until {
                    Until::Drained if self.quiet => return Ok(()),
                    Until::FirstBatch if self.polls > 0 => return Ok(()),
                    _ => self.schedule_poll(),
                }
            }
            let event = self.next_event().await;
            let idle_poll = self.until == Until::Shutdown
                && matches!(event, Event::Polled(_))
                && self.batches.is_empty();
            self.handle(event)?;
            if idle_poll && self.quiet && self.idle() {
                // Work checks the lease before every write and acknowledgement; an idle poll did
                // not. Checking after each keeps the lease alive while the stream runs, and only
                // then: a source may let a lease lapse whose holder stopped asking (a hung process).
                self.engine.check_lease().await?;
            }
            if self.until == Until::Shutdown {
                housekeeping.run_due(self.engine).await;
            }
        }
    }

    async fn next_event(&mut self) -> Event {
        tokio::select! {
            () = self.engine.shutdown.cancelled() => Event::Cancelled,
            acked = async {
                match self.acking.as_mut() {
                    Some(ack) => ack.await,
                    None => std::future::pending().await,
                }
            }, if self.acking.is_some() => Event::Acked(acked),
            Some((owner, written)) = self.writes.next(), if !self.writes.is_empty() => {
                Event::Written(owner, written)
            }
            (owner, loaded) = async {
                match self.reading.as_mut() {
                    Some(read) => read.await,
                    None => std::future::pending().await,
                }
            }, if self.reading.is_some() => Event::Loaded(owner, loaded),
            polled = async {
                match self.polling.as_mut() {
                    Some(poll) => poll.await,
                    None => std::future::pending().await,
                }
            }, if self.polling.is_some() => Event::Polled(polled),
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), SyncError> {
        match event {
            Event::Cancelled => return Err(SyncError::Cancelled),
            Event::Polled(intake) => {
                self.polling = None;
                self.take_in(intake?);
            }
            Event::Loaded(owner, snapshot) => {
                self.reading = None;
                let ready = match owner {
                    Owner::Batch(_) => &mut self.ready_direct,
                    Owner::FanOut(_) => &mut self.ready_fanout,
                };
                *ready = Some((owner, snapshot?));
            }
            Event::Written(owner, summary) => {
                self.written(owner, summary?);
                // More work waits in flight or in the fan-out: changes that arrived meanwhile
                // should join it instead of waiting for all of it.
                self.may_poll |= !self.writes.is_empty()
                    || self.reading.is_some()
                    || !self.direct.is_empty()
                    || !self.fanouts.is_empty();
            }
            Event::Acked(acked) => {
                self.acking = None;
                let (ids, report) = acked?;
                self.report.merge(report);
                for id in ids {
                    self.known.remove(&id);
                    if self.polling.is_some() {
                        self.acked_while_polling.insert(id);
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts whatever may start now: writes of the chunks read (a batch's first), the next read,
    /// a poll, an ack.
    fn schedule(&mut self) {
        if self.writes.len() < self.concurrency()
            && let Some(ready) = self.ready_direct.take()
        {
            self.start_write(ready);
        }
        if self.writes.len() < self.concurrency()
            && self.fanout_writes < self.fanout_concurrency()
            && let Some(ready) = self.ready_fanout.take()
        {
            self.fanout_writes += 1;
            self.start_write(ready);
        }
        if self.reading.is_none()
            && self.truncate.is_none()
            && let Some((owner, ids)) = self.next_chunk()
        {
            let engine = self.engine;
            self.reading = Some(
                async move {
                    let loaded = retrying(
                        "load documents",
                        &engine.config.retry,
                        &engine.shutdown,
                        || engine.documents.load(&ids),
                    )
                    .await;
                    (owner, loaded)
                }
                .boxed(),
            );
        }
        if !self.idle() && self.may_poll {
            self.schedule_poll();
        }
        if self.acking.is_none() {
            self.schedule_ack();
        }
    }

    fn start_write(&mut self, (owner, snapshot): (Owner, Snapshot)) {
        let engine = self.engine;
        let target = self.live.clone();
        let ops = operations(snapshot);
        self.writes
            .push(async move { (owner, engine.write_settled(&target, ops).await) }.boxed());
    }

    /// Starts a poll if the pipeline has room for another batch. An idle pipeline waits for a
    /// change (when it runs until shutdown); a busy one only looks at what is pending.
    fn schedule_poll(&mut self) {
        let room = self.batches.len() <= self.concurrency() && self.direct.is_empty();
        let allowed = match self.until {
            Until::FirstBatch => self.polls == 0,
            Until::Shutdown | Until::Drained => true,
        };
        if self.polling.is_some() || self.truncate.is_some() || !room || !allowed {
            return;
        }
        let wait = if self.idle() && self.until != Until::Drained {
            self.engine.config.poll_wait
        } else {
            Duration::ZERO
        };
        self.may_poll = false;
        self.polls += 1;
        let engine = self.engine;
        let known = self.known.clone();
        let max = engine.config.batch_size.get() + known.len();
        // Only a stream that runs until shutdown lingers: draining and single steps take what is
        // pending at once.
        let linger = self
            .linger_until
            .take()
            .filter(|_| self.until == Until::Shutdown);
        self.polling = Some(
            async move {
                if let Some(at) = linger {
                    tokio::time::sleep_until(at).await;
                }
                intake(engine, max, wait, known).await
            }
            .boxed(),
        );
    }

    /// The next chunk to read, into a free ready slot: a batch's first, then a fan-out's
    /// (`fanout_chunk_size` projects). A fan-out is read whenever no batch chunk waits to be read,
    /// and polls stop while one does, so each poll's chunks delay it by a few reads at most.
    fn next_chunk(&mut self) -> Option<(Owner, Vec<ProjectId>)> {
        if self.ready_direct.is_none()
            && let Some((seq, ids)) = self.direct.pop_front()
        {
            return Some((Owner::Batch(seq), ids));
        }
        if self.ready_fanout.is_some() {
            return None;
        }
        let chunk_size = self.engine.config.fanout_chunk_size.get();
        let fanout = self.fanouts.iter_mut().find(|f| !f.todo.is_empty())?;
        let count = chunk_size.min(fanout.todo.len());
        let ids: Vec<ProjectId> = fanout.todo.drain(..count).collect();
        fanout.in_flight += 1;
        Some((Owner::FanOut(fanout.seq), ids))
    }

    /// Files the changes a poll brought as a batch (and a fan-out when they resolve to more
    /// than a chunk), or notes the truncate among them.
    fn take_in(&mut self, intake: Intake) {
        let Intake {
            records,
            plan,
            resolved,
        } = intake;
        // Changes acknowledged while the poll ran may have come back: they are done.
        let acked = std::mem::take(&mut self.acked_while_polling);
        let records: Vec<ChangeRecord> = records
            .into_iter()
            .filter(|record| !acked.contains(&record.id))
            .collect();
        self.quiet = records.is_empty();
        if records.is_empty() {
            return;
        }
        metrics::changes_read(records.len());
        // A full batch: more is likely pending, take it while this one is written. Otherwise let
        // the next changes gather before polling again.
        let full = records.len() >= self.engine.config.batch_size.get();
        self.may_poll |= full;
        let linger = self.engine.config.batch_linger;
        self.linger_until =
            (!full && !linger.is_zero()).then(|| tokio::time::Instant::now() + linger);
        self.known.extend(records.iter().map(|record| record.id));
        if plan.truncate {
            info!(
                changes = records.len(),
                "a table was truncated, rebuilding the whole index"
            );
            self.truncate = Some(records);
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        let started = Instant::now();
        let chunk_size = self.chunk_size();
        let (projects, records) = if resolved.len() > chunk_size {
            let (fanned, direct): (Vec<_>, Vec<_>) = records
                .into_iter()
                .partition(|record| resolves(&record.change));
            debug!(
                changes = fanned.len(),
                projects = resolved.len(),
                "fanning out"
            );
            let fanned = self.supersede_fanouts(&plan, fanned);
            self.fanouts.push_back(FanOut {
                seq,
                records: fanned,
                projects: resolved.len(),
                todo: resolved.into_iter().collect(),
                in_flight: 0,
                summary: WriteSummary::default(),
                started,
            });
            (plan.projects, direct)
        } else {
            let mut projects = plan.projects;
            projects.extend(resolved);
            (projects, records)
        };
        let ids: Vec<ProjectId> = projects.into_iter().collect();
        let mut unwritten = 0;
        for chunk in ids.chunks(chunk_size) {
            self.direct.push_back((seq, chunk.to_vec()));
            unwritten += 1;
        }
        self.batches.push_back(Batch {
            seq,
            records,
            unwritten,
            projects: ids.len(),
            summary: WriteSummary::default(),
            started,
        });
    }

    /// A new fan-out resolved the users and hashtags of `plan` again: older fan-outs whose every
    /// change is about one of them stop reading, and their changes join `records`, acknowledged
    /// once the new fan-out is written. Their unread projects are among the new fan-out's (it
    /// resolved the same users and hashtags later), except those unlinked meanwhile, whose link
    /// change rebuilds them. Without this, a user renamed every few seconds while a fan-out of
    /// theirs drains would queue one full fan-out per rename, more work than the stream can do.
    fn supersede_fanouts(
        &mut self,
        plan: &ChangePlan,
        mut records: Vec<ChangeRecord>,
    ) -> Vec<ChangeRecord> {
        let covered = |change: &Change| match change {
            Change::User { user } => plan.users.contains(user),
            Change::Hashtag { hashtag } => plan.hashtags.contains(hashtag),
            _ => false,
        };
        for older in &mut self.fanouts {
            if !older.todo.is_empty() && older.records.iter().all(|r| covered(&r.change)) {
                debug!(
                    changes = older.records.len(),
                    unread = older.todo.len(),
                    "fan-out superseded by a newer one"
                );
                older.todo.clear();
                records.append(&mut older.records);
            }
        }
        records
    }

    fn written(&mut self, owner: Owner, summary: WriteSummary) {
        match owner {
            Owner::Batch(seq) => {
                if let Some(batch) = self.batches.iter_mut().find(|b| b.seq == seq) {
                    batch.unwritten -= 1;
                    batch.summary.merge(summary);
                }
            }
            Owner::FanOut(seq) => {
                self.fanout_writes -= 1;
                if let Some(fanout) = self.fanouts.iter_mut().find(|f| f.seq == seq) {
                    fanout.in_flight -= 1;
                    fanout.summary.merge(summary);
                }
            }
        }
    }

    /// Acknowledges, in one call, the written batches at the front (in order) and the fan-outs
    /// done whose batch is acknowledged by then.
    fn schedule_ack(&mut self) {
        if self.truncate.is_some() {
            return;
        }
        let mut done = Vec::new();
        while self.batches.front().is_some_and(|b| b.unwritten == 0) {
            if let Some(batch) = self.batches.pop_front() {
                self.acked_through = Some(batch.seq);
                done.push((batch.records, batch.projects, batch.summary, batch.started));
            }
        }
        let through = self.acked_through;
        while let Some(at) = self.fanouts.iter().position(|f| {
            f.todo.is_empty() && f.in_flight == 0 && through.is_some_and(|seq| f.seq <= seq)
        }) {
            if let Some(fanout) = self.fanouts.remove(at) {
                debug!(
                    projects = fanout.projects,
                    seconds = fanout.started.elapsed().as_secs_f64(),
                    "fan-out written"
                );
                done.push((
                    fanout.records,
                    fanout.projects,
                    fanout.summary,
                    fanout.started,
                ));
            }
        }
        if done.is_empty() {
            return;
        }
        let mut records = Vec::new();
        let mut dead_letters = Vec::new();
        let mut report = StepReport::default();
        let mut latencies = Vec::new();
        for (batch, projects, summary, started) in done {
            report.changes += batch.len();
            report.projects += projects;
            report.applied += summary.applied;
            report.superseded += summary.superseded;
            report.dead_letters += summary.dead_letters.len();
            dead_letters.extend(summary.dead_letters);
            latencies.push((records.len()..records.len() + batch.len(), started));
            records.extend(batch);
        }
        if records.is_empty() && dead_letters.is_empty() {
            self.report.merge(report);
            return;
        }
        let engine = self.engine;
        self.acking = Some(
            async move {
                engine.acknowledge(&records, dead_letters).await?;
                for (range, started) in latencies {
                    metrics::acknowledged(&records[range], started.elapsed());
                }
                debug!(
                    changes = report.changes,
                    projects = report.projects,
                    applied = report.applied,
                    superseded = report.superseded,
                    "acknowledged"
                );
                let ids = records.iter().map(|record| record.id).collect();
                Ok((ids, report))
            }
            .boxed(),
        );
    }

    /// A truncate: everything in flight is finished; rebuild the whole index and acknowledge
    /// every change taken so far, whose work the rebuild covers.
    async fn rebuild_everything(&mut self) -> Result<(), SyncError> {
        let Some(truncate) = self.truncate.take() else {
            return Ok(());
        };
        let backfill = self.engine.backfill().await?;
        let mut records = truncate;
        let mut dead_letters = Vec::new();
        for batch in self.batches.drain(..) {
            records.extend(batch.records);
            dead_letters.extend(batch.summary.dead_letters);
        }
        for fanout in self.fanouts.drain(..) {
            records.extend(fanout.records);
            dead_letters.extend(fanout.summary.dead_letters);
        }
        self.direct.clear();
        self.engine.acknowledge(&records, dead_letters).await?;
        for record in &records {
            self.known.remove(&record.id);
        }
        self.acked_through = self.next_seq.checked_sub(1);
        self.report.merge(StepReport {
            changes: records.len(),
            projects: backfill.documents as usize,
            applied: backfill.documents,
            superseded: 0,
            dead_letters: backfill.dead_letters,
            reindexed: Some(backfill.index.clone()),
        });
        self.live = backfill.index;
        Ok(())
    }
}

/// Whether a change's projects are found by resolving it (a user or a hashtag).
fn resolves(change: &Change) -> bool {
    matches!(change, Change::User { .. } | Change::Hashtag { .. })
}

/// Polls the source, keeps the changes the pipeline does not hold yet, plans them and resolves
/// their users and hashtags to projects.
async fn intake(
    engine: &SyncEngine,
    max: usize,
    wait: Duration,
    known: HashSet<ChangeId>,
) -> Result<Intake, SyncError> {
    let polled = retrying(
        "poll changes",
        &engine.config.retry,
        &engine.shutdown,
        || engine.changes.poll(max, wait),
    )
    .await?;
    let records: Vec<ChangeRecord> = polled
        .into_iter()
        .filter(|record| !known.contains(&record.id))
        .collect();
    let plan = ChangePlan::of(&records);
    let mut resolved = BTreeSet::new();
    if !plan.truncate && plan.needs_resolution() {
        let users: Vec<_> = plan.users.iter().copied().collect();
        let hashtags: Vec<_> = plan.hashtags.iter().copied().collect();
        let touched = retrying(
            "resolve changes",
            &engine.config.retry,
            &engine.shutdown,
            || engine.documents.projects_touched(&users, &hashtags),
        )
        .await?;
        resolved.extend(
            touched
                .into_iter()
                .filter(|project| !plan.projects.contains(project)),
        );
    }
    Ok(Intake {
        records,
        plan,
        resolved,
    })
}

/// When the streaming loop last published the backlog and checked the capture.
#[derive(Default)]
struct Housekeeping {
    backlog: Option<Instant>,
    capture: Option<Instant>,
}

impl Housekeeping {
    async fn run_due(&mut self, engine: &SyncEngine) {
        if self
            .backlog
            .is_none_or(|at| at.elapsed() >= super::BACKLOG_INTERVAL)
        {
            engine.publish_backlog().await;
            self.backlog = Some(Instant::now());
        }
        if self
            .capture
            .is_none_or(|at| at.elapsed() >= engine.config.capture_check_interval)
        {
            engine.check_capture().await;
            self.capture = Some(Instant::now());
        }
    }
}
