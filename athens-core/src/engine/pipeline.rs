//! The pipelined stream: changes are polled while earlier ones are loaded and written, several bulk
//! requests are in flight, and batches are acknowledged in the order they were taken, each once the
//! index accepted its work and that of every batch before it.
//!
//! - **Reads never overlap.** One load is in flight at a time (the next one starts while earlier
//!   chunks are written, as in the backfill), so two reads of one project never overlap and a
//!   version taken later always describes a later state.
//! - **Fan-out blocks nothing, and survives a crash.** A batch whose users and hashtags resolve
//!   to more than one chunk of projects queues those projects in the [`RebuildQueue`] (durably,
//!   before anything is acknowledged), and the batch is acknowledged like any other once its own
//!   chunks are written: the user's or hashtag's change leaves the source at once (the outbox row,
//!   the slot's position), its work being in the queue. The pipeline drains the queue page by
//!   page, `fanout_chunk_size` projects a read, and a batch's own (direct) chunks never wait
//!   behind it:
//!   - a read chunk waits for a write slot in a ready slot of its kind, so a direct chunk is read
//!     while a queued chunk waits for a slot, and a direct chunk waiting to be read is read first;
//!   - queued chunks' writes take at most `write_concurrency − 1` slots, so a slot is always free
//!     for a direct chunk (with one slot, the direct chunk takes it next);
//!   - the fan-out's work queued in the index is bounded by its small bulks: a direct bulk waits in
//!     the engine's write queue behind at most `(write_concurrency − 1) × fanout_chunk_size`
//!     documents instead of `write_concurrency` full chunks.
//!
//!   So an unrelated change is written within a fan-out read and its queued bulks while a
//!   million-document fan-out drains, and the fan-out still keeps the engine busy. A queued
//!   project is marked done once the index accepted a document read after it was taken; a crash
//!   resumes with the projects still queued. The queue is a set: renames of a user faster than
//!   its fan-out drains re-stamp the queued projects instead of queueing the fan-out again, and a
//!   project queued again while it is read stays queued (its read may predate the new change).
//! - **Changes gather.** After a poll that took less than a batch, the next one waits the
//!   configured linger, so one round of load, bulk request and acknowledgement serves many changes.
//! - **A truncate** lets the work in flight finish, clears the queue, then rebuilds the whole index
//!   (from a snapshot taken after the clear, which covers every project queued before it) and
//!   acknowledges everything taken so far with it.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
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
use crate::change::{ChangeId, ChangeRecord};
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::IndexName;
use crate::keyset::KeysetPage;
use crate::rebuild_queue::{QueueStamp, QueuedProject};
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

/// Whose work a chunk is: a batch's, or queued projects' (as taken).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    Batch(u64),
    Queued(Vec<QueuedProject>),
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

/// Where the pipeline stands in the [`RebuildQueue`]: it takes a page of queued projects at a
/// time, in id order, and goes over the queue again from the start once a pass reached its end
/// and projects were queued since that pass began.
struct Drain {
    /// Projects taken and not read yet, ascending.
    unread: VecDeque<QueuedProject>,
    /// The last project of the pass so far (`None`: the next take starts a pass).
    after: Option<ProjectId>,
    /// Projects may be queued that no pass took yet: set at start and by every enqueue, cleared
    /// when a pass starts.
    dirty: bool,
    /// Projects taken and not done yet (read, written, or waiting for `done`), with the stamp
    /// taken: a later take skips them unless they were queued again meanwhile.
    in_flight: HashMap<ProjectId, QueueStamp>,
    /// Queued projects written, to mark done with the next acknowledgement.
    written: Vec<QueuedProject>,
    /// What their writes did.
    summary: WriteSummary,
}

impl Drain {
    fn new() -> Drain {
        Drain {
            unread: VecDeque::new(),
            after: None,
            dirty: true,
            in_flight: HashMap::new(),
            written: Vec::new(),
            summary: WriteSummary::default(),
        }
    }

    /// Nothing is taken and undone, and no project may be queued that was not taken.
    fn is_idle(&self) -> bool {
        !self.dirty && self.after.is_none() && self.unread.is_empty() && self.in_flight.is_empty()
    }

    /// Whether the next page should be taken now.
    fn wants_page(&self) -> bool {
        self.unread.is_empty() && (self.dirty || self.after.is_some())
    }

    /// Files a page `limit` asked for: the projects not in flight with the same stamp go to
    /// `unread`; a short page ends the pass.
    fn taken(&mut self, page: Vec<QueuedProject>, limit: usize) {
        self.after = if page.len() < limit {
            None
        } else {
            page.last().map(|queued| queued.project)
        };
        for queued in page {
            if self.in_flight.get(&queued.project) != Some(&queued.stamp) {
                self.in_flight.insert(queued.project, queued.stamp);
                self.unread.push_back(queued);
            }
        }
    }

    /// Projects marked done: no longer in flight (unless taken again since with a new stamp).
    fn done(&mut self, taken: &[QueuedProject]) {
        for queued in taken {
            if self.in_flight.get(&queued.project) == Some(&queued.stamp) {
                self.in_flight.remove(&queued.project);
            }
        }
    }
}

/// What a poll brought: changes new to the pipeline, planned, users and hashtags resolved.
struct Intake {
    records: Vec<ChangeRecord>,
    plan: ChangePlan,
    /// Projects of the plan's users and hashtags not named directly, when they fit in a chunk
    /// (more were queued instead).
    resolved: BTreeSet<ProjectId>,
    /// How many projects the plan's users and hashtags queued.
    queued: usize,
}

/// What an acknowledgement settled: the changes, the queued projects marked done, and what their
/// batches and queued projects' chunks did.
type Acknowledged = (Vec<ChangeId>, Vec<QueuedProject>, StepReport);

/// Something that finished.
enum Event {
    Polled(Result<Intake, SyncError>),
    Taken(Result<Vec<QueuedProject>, SyncError>),
    Loaded(Owner, Result<Snapshot, SyncError>),
    Written(Owner, Result<WriteSummary, SyncError>),
    Acked(Result<Acknowledged, SyncError>),
    Housekept,
    Cancelled,
}

/// The state of one run of the pipelined stream.
pub(super) struct Pipeline<'a> {
    engine: &'a SyncEngine,
    until: Until,
    /// The index written to; a truncate replaces it.
    pub live: IndexName,
    batches: VecDeque<Batch>,
    /// The queued projects being drained.
    drain: Drain,
    /// A take of a page of queued projects in flight.
    taking: Option<BoxFuture<'a, Result<Vec<QueuedProject>, SyncError>>>,
    /// Direct chunks not read yet, oldest batch first.
    direct: VecDeque<(u64, Vec<ProjectId>)>,
    /// Every change taken and not yet acknowledged: a poll returns them again until then.
    known: HashSet<ChangeId>,
    next_seq: u64,
    /// Changes of a truncate, waiting for the work in flight to finish.
    truncate: Option<Vec<ChangeRecord>>,
    polling: Option<BoxFuture<'a, Result<Intake, SyncError>>>,
    reading: Option<BoxFuture<'a, (Owner, Result<Snapshot, SyncError>)>>,
    /// A batch's chunk read, waiting for a write slot.
    ready_direct: Option<(Owner, Snapshot)>,
    /// Queued projects' chunk read, waiting for a write slot of those they may take.
    ready_queued: Option<(Owner, Snapshot)>,
    writes: FuturesUnordered<BoxFuture<'a, (Owner, Result<WriteSummary, SyncError>)>>,
    /// Queued projects' chunks among `writes`.
    queued_writes: usize,
    acking: Option<BoxFuture<'a, Result<Acknowledged, SyncError>>>,
    /// A round of housekeeping (backlog gauges, capture check), polled with the other work and
    /// never awaited alone: a source's backlog may wait for a lock that a poll in flight holds
    /// (the logical source's cursor), and that poll moves only while the pipeline polls it.
    housekeeping: Option<BoxFuture<'a, ()>>,
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
            drain: Drain::new(),
            taking: None,
            direct: VecDeque::new(),
            known: HashSet::new(),
            next_seq: 0,
            truncate: None,
            polling: None,
            reading: None,
            ready_direct: None,
            ready_queued: None,
            writes: FuturesUnordered::new(),
            queued_writes: 0,
            acking: None,
            housekeeping: None,
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

    /// Write slots queued projects' chunks may take: all but one, kept for batches (the only
    /// one, when there is one).
    fn queued_concurrency(&self) -> usize {
        self.concurrency().saturating_sub(1).max(1)
    }

    /// Projects of the queue read at a time.
    fn queued_chunk_size(&self) -> usize {
        self.engine.config.fanout_chunk_size.get()
    }

    /// How many queued projects a take asks for: a few reads' worth, so that a page keeps the
    /// writes busy while the next one is taken.
    fn page_size(&self) -> usize {
        self.queued_chunk_size() * (self.concurrency() + 1)
    }

    /// Nothing taken is unacknowledged, nothing is in flight, and the queue is drained.
    fn idle(&self) -> bool {
        self.batches.is_empty()
            && self.drain.is_idle()
            && self.taking.is_none()
            && self.truncate.is_none()
            && self.in_flight_is_empty()
            && self.polling.is_none()
    }

    fn in_flight_is_empty(&self) -> bool {
        self.reading.is_none()
            && self.ready_direct.is_none()
            && self.ready_queued.is_none()
            && self.writes.is_empty()
            && self.acking.is_none()
    }

    /// Runs until the pipeline's end condition, or an error (work not acknowledged stays pending
    /// in the source and is replayed).
    pub(super) async fn run(&mut self) -> Result<(), SyncError> {
        let mut housekeeping = Housekeeping::default();
        loop {
            if self.truncate.is_some() && self.in_flight_is_empty() {
                // Not awaited meanwhile, a housekeeping round could hold what the rebuild's
                // acknowledgement waits for; it runs again when due.
                self.housekeeping = None;
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
            if self.until == Until::Shutdown && self.housekeeping.is_none() {
                self.housekeeping = housekeeping.due(self.engine);
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
            taken = async {
                match self.taking.as_mut() {
                    Some(take) => take.await,
                    None => std::future::pending().await,
                }
            }, if self.taking.is_some() => Event::Taken(taken),
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
            () = async {
                match self.housekeeping.as_mut() {
                    Some(round) => round.await,
                    None => std::future::pending().await,
                }
            }, if self.housekeeping.is_some() => Event::Housekept,
        }
    }

    fn handle(&mut self, event: Event) -> Result<(), SyncError> {
        match event {
            Event::Cancelled => return Err(SyncError::Cancelled),
            Event::Housekept => self.housekeeping = None,
            Event::Polled(intake) => {
                self.polling = None;
                self.take_in(intake?);
            }
            Event::Taken(page) => {
                self.taking = None;
                self.drain.taken(page?, self.page_size());
            }
            Event::Loaded(owner, snapshot) => {
                self.reading = None;
                let ready = match owner {
                    Owner::Batch(_) => &mut self.ready_direct,
                    Owner::Queued(_) => &mut self.ready_queued,
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
                    || !self.drain.unread.is_empty();
            }
            Event::Acked(acked) => {
                self.acking = None;
                let (ids, done, report) = acked?;
                self.drain.done(&done);
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

    /// Starts whatever may start now: writes of the chunks read (a batch's first), a take of
    /// queued projects, the next read, a poll, an ack.
    fn schedule(&mut self) {
        if self.writes.len() < self.concurrency()
            && let Some(ready) = self.ready_direct.take()
        {
            self.start_write(ready);
        }
        if self.writes.len() < self.concurrency()
            && self.queued_writes < self.queued_concurrency()
            && let Some(ready) = self.ready_queued.take()
        {
            self.queued_writes += 1;
            self.start_write(ready);
        }
        if self.taking.is_none() && self.truncate.is_none() && self.drain.wants_page() {
            self.schedule_take();
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

    /// Takes the next page of queued projects: a few chunks' worth, so that a page is read while
    /// the next one is taken.
    fn schedule_take(&mut self) {
        let page = KeysetPage::after(self.drain.after, self.page_size());
        if self.drain.after.is_none() {
            // A new pass: whatever is queued from now on is taken by it or a later one.
            self.drain.dirty = false;
        }
        let engine = self.engine;
        self.taking = Some(
            async move {
                retrying(
                    "take queued projects",
                    &engine.config.retry,
                    &engine.shutdown,
                    || engine.queue.take(page),
                )
                .await
            }
            .boxed(),
        );
    }

    /// The next chunk to read, into a free ready slot: a batch's first, then queued projects'
    /// (`fanout_chunk_size` of them). Queued projects are read whenever no batch chunk waits to be
    /// read, and polls stop while one does, so each poll's chunks delay it by a few reads at most.
    fn next_chunk(&mut self) -> Option<(Owner, Vec<ProjectId>)> {
        if self.ready_direct.is_none()
            && let Some((seq, ids)) = self.direct.pop_front()
        {
            return Some((Owner::Batch(seq), ids));
        }
        if self.ready_queued.is_some() || self.drain.unread.is_empty() {
            return None;
        }
        let count = self.queued_chunk_size().min(self.drain.unread.len());
        let taken: Vec<QueuedProject> = self.drain.unread.drain(..count).collect();
        let ids = taken.iter().map(|queued| queued.project).collect();
        Some((Owner::Queued(taken), ids))
    }

    /// Files the changes a poll brought as a batch, or notes the truncate among them.
    fn take_in(&mut self, intake: Intake) {
        let Intake {
            records,
            plan,
            resolved,
            queued,
        } = intake;
        // Changes acknowledged while the poll ran may have come back: they are done.
        let acked = std::mem::take(&mut self.acked_while_polling);
        let records: Vec<ChangeRecord> = records
            .into_iter()
            .filter(|record| !acked.contains(&record.id))
            .collect();
        self.quiet = records.is_empty();
        if queued > 0 {
            // Even when every change came back acknowledged: the enqueue happened.
            self.drain.dirty = true;
        }
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
        let mut projects = plan.projects;
        projects.extend(resolved);
        let ids: Vec<ProjectId> = projects.into_iter().collect();
        let mut unwritten = 0;
        for chunk in ids.chunks(self.chunk_size()) {
            self.direct.push_back((seq, chunk.to_vec()));
            unwritten += 1;
        }
        self.batches.push_back(Batch {
            seq,
            records,
            unwritten,
            projects: ids.len(),
            summary: WriteSummary::default(),
            started: Instant::now(),
        });
    }

    fn written(&mut self, owner: Owner, summary: WriteSummary) {
        match owner {
            Owner::Batch(seq) => {
                if let Some(batch) = self.batches.iter_mut().find(|b| b.seq == seq) {
                    batch.unwritten -= 1;
                    batch.summary.merge(summary);
                }
            }
            Owner::Queued(taken) => {
                self.queued_writes -= 1;
                self.drain.written.extend(taken);
                self.drain.summary.merge(summary);
            }
        }
    }

    /// Acknowledges, in one call, the written batches at the front (in order) with the dead
    /// letters of the queued projects written since the last acknowledgement, then marks those
    /// projects done.
    fn schedule_ack(&mut self) {
        if self.truncate.is_some() {
            return;
        }
        let mut done = Vec::new();
        while self.batches.front().is_some_and(|b| b.unwritten == 0) {
            if let Some(batch) = self.batches.pop_front() {
                done.push((batch.records, batch.projects, batch.summary, batch.started));
            }
        }
        let rebuilt = std::mem::take(&mut self.drain.written);
        if done.is_empty() && rebuilt.is_empty() {
            return;
        }
        let queued = std::mem::take(&mut self.drain.summary);
        let mut report = StepReport {
            projects: rebuilt.len(),
            applied: queued.applied,
            superseded: queued.superseded,
            dead_letters: queued.dead_letters.len(),
            ..StepReport::default()
        };
        let mut records = Vec::new();
        let mut dead_letters = queued.dead_letters;
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
        let engine = self.engine;
        self.acking = Some(
            async move {
                if !records.is_empty() || !dead_letters.is_empty() {
                    engine.acknowledge(&records, dead_letters).await?;
                }
                for (range, started) in latencies {
                    metrics::acknowledged(&records[range], started.elapsed());
                }
                if !rebuilt.is_empty() {
                    retrying(
                        "mark queued projects done",
                        &engine.config.retry,
                        &engine.shutdown,
                        || engine.queue.done(&rebuilt),
                    )
                    .await?;
                }
                debug!(
                    changes = report.changes,
                    projects = report.projects,
                    queued = rebuilt.len(),
                    applied = report.applied,
                    superseded = report.superseded,
                    "acknowledged"
                );
                let ids = records.iter().map(|record| record.id).collect();
                Ok((ids, rebuilt, report))
            }
            .boxed(),
        );
    }

    /// A truncate: everything in flight is finished; clear the queue, rebuild the whole index
    /// and acknowledge every change taken so far, whose work the rebuild covers.
    ///
    /// The queue is cleared before the backfill begins: every project queued by then is read by
    /// the backfill's later snapshot, and a project queued after the clear (by a poll that was in
    /// flight) stays queued. Leaving the queue as it is would be correct too, but a million
    /// queued projects would then be read again right after the rebuild read them.
    async fn rebuild_everything(&mut self) -> Result<(), SyncError> {
        let Some(truncate) = self.truncate.take() else {
            return Ok(());
        };
        retrying(
            "clear the rebuild queue",
            &self.engine.config.retry,
            &self.engine.shutdown,
            || self.engine.queue.clear(),
        )
        .await?;
        self.taking = None;
        self.drain = Drain::new();
        let backfill = self.engine.backfill().await?;
        let mut records = truncate;
        let mut dead_letters = Vec::new();
        for batch in self.batches.drain(..) {
            records.extend(batch.records);
            dead_letters.extend(batch.summary.dead_letters);
        }
        self.direct.clear();
        self.engine.acknowledge(&records, dead_letters).await?;
        for record in &records {
            self.known.remove(&record.id);
        }
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

/// Polls the source, keeps the changes the pipeline does not hold yet, plans them and resolves
/// their users and hashtags to projects: up to a chunk of them joins the batch's own projects, more
/// (a fan-out) are queued in the [`RebuildQueue`](crate::RebuildQueue) before this returns, so
/// that acknowledging the batch cannot lose them.
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
    let mut queued = 0;
    if resolved.len() > engine.config.chunk_size.get() {
        let projects: Vec<ProjectId> = std::mem::take(&mut resolved).into_iter().collect();
        retrying(
            "queue projects",
            &engine.config.retry,
            &engine.shutdown,
            || engine.queue.enqueue(&projects),
        )
        .await?;
        debug!(projects = projects.len(), "fan-out queued");
        queued = projects.len();
    }
    Ok(Intake {
        records,
        plan,
        resolved,
        queued,
    })
}

/// When the streaming loop last published the backlog and checked the capture.
#[derive(Default)]
struct Housekeeping {
    backlog: Option<Instant>,
    capture: Option<Instant>,
}

impl Housekeeping {
    /// The round of what is due now, if anything is.
    fn due<'a>(&mut self, engine: &'a SyncEngine) -> Option<BoxFuture<'a, ()>> {
        let due =
            |last: Option<Instant>, every: Duration| last.is_none_or(|at| at.elapsed() >= every);
        let backlog = due(self.backlog, super::BACKLOG_INTERVAL);
        let capture = due(self.capture, engine.config.capture_check_interval);
        if backlog {
            self.backlog = Some(Instant::now());
        }
        if capture {
            self.capture = Some(Instant::now());
        }
        (backlog || capture).then(|| {
            async move {
                if backlog {
                    engine.publish_backlog().await;
                }
                if capture {
                    engine.check_capture().await;
                }
            }
            .boxed()
        })
    }
}
