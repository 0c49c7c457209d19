//! The parallel fill of a backfill: several readers take disjoint project-id ranges from a
//! [`Ledger`], page through them while earlier pages are written, and the ledger turns written
//! pages into a [`BackfillCheckpoint`] saved with the target index every `checkpoint_interval`.
//!
//! Reads of one project never overlap: each range is read by one reader at a time, page after
//! page, and the ranges are disjoint. A page counts towards the checkpoint only once it and every
//! page before it in its range are settled in the index, and the dead letters of those pages are
//! recorded in the source before the checkpoint that covers them is saved, so a resumed backfill
//! neither skips a project nor forgets a refused document.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use tokio_util::sync::CancellationToken;

use super::SyncEngine;
use super::metrics;
use super::stream::operations;
use super::write::{WriteSummary, retrying};
use crate::change::{Ack, DeadLetter};
use crate::checkpoint::BackfillCheckpoint;
use crate::document::ProjectId;
use crate::error::SyncError;
use crate::index::IndexName;
use crate::keyset::KeysetPage;
use crate::source::Snapshot;

/// A page read and sent to the index, by the last id it holds.
#[derive(Debug)]
struct Page {
    last: ProjectId,
    written: bool,
}

#[derive(Debug)]
struct LedgerState {
    checkpoint: BackfillCheckpoint,
    /// Ranges not handed to a reader yet.
    queue: VecDeque<usize>,
    /// Per range, the pages sent and not yet counted in the checkpoint, in reading order.
    pages: Vec<VecDeque<Page>>,
    /// Dead letters of settled pages, not yet recorded in the source.
    dead_letters: Vec<DeadLetter>,
    dead_letter_total: usize,
    changed: bool,
}

/// Who reads which range, and how far each range is written.
#[derive(Debug)]
pub(super) struct Ledger(Mutex<LedgerState>);

impl Ledger {
    pub fn new(checkpoint: BackfillCheckpoint) -> Ledger {
        let queue = checkpoint
            .ranges
            .iter()
            .enumerate()
            .filter(|(_, range)| !range.finished)
            .map(|(n, _)| n)
            .collect();
        let pages = checkpoint.ranges.iter().map(|_| VecDeque::new()).collect();
        Ledger(Mutex::new(LedgerState {
            checkpoint,
            queue,
            pages,
            dead_letters: Vec::new(),
            dead_letter_total: 0,
            changed: false,
        }))
    }

    fn state(&self) -> MutexGuard<'_, LedgerState> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next range to read: its index, where reading resumes and its upper bound.
    fn take_range(&self) -> Option<(usize, Option<ProjectId>, Option<ProjectId>)> {
        let mut state = self.state();
        let range = state.queue.pop_front()?;
        let progress = state.checkpoint.ranges[range];
        Some((range, progress.resume_after(), progress.until))
    }

    fn page_sent(&self, range: usize, last: ProjectId) {
        self.state().pages[range].push_back(Page {
            last,
            written: false,
        });
    }

    /// Marks the page ending at `last` settled; moves the range's checkpoint over every settled
    /// page at the front.
    fn page_written(&self, range: usize, last: ProjectId, dead_letters: Vec<DeadLetter>) {
        let mut guard = self.state();
        let state = &mut *guard;
        state.dead_letter_total += dead_letters.len();
        state.dead_letters.extend(dead_letters);
        let pages = &mut state.pages[range];
        if let Some(page) = pages.iter_mut().find(|page| page.last == last) {
            page.written = true;
        }
        while pages.front().is_some_and(|page| page.written) {
            if let Some(page) = pages.pop_front() {
                state.checkpoint.ranges[range].done_through = Some(page.last);
                state.changed = true;
            }
        }
    }

    fn range_finished(&self, range: usize) {
        let mut state = self.state();
        state.checkpoint.ranges[range].finished = true;
        state.changed = true;
    }

    /// What to save when something changed since the last save: the checkpoint and the dead
    /// letters it covers, which must be recorded first.
    fn take_save(&self) -> Option<(BackfillCheckpoint, Vec<DeadLetter>)> {
        let mut state = self.state();
        if !state.changed && state.dead_letters.is_empty() {
            return None;
        }
        state.changed = false;
        let dead_letters = std::mem::take(&mut state.dead_letters);
        Some((state.checkpoint.clone(), dead_letters))
    }

    pub fn dead_letter_total(&self) -> usize {
        self.state().dead_letter_total
    }
}

impl SyncEngine {
    /// Fills `target` with every range of `ledger` still to do, `backfill_readers` ranges at a time,
    /// saving the checkpoint every `checkpoint_interval` and once at the end. Dead letters are
    /// recorded with each save, so the returned summary holds none.
    pub(super) async fn fill(
        &self,
        target: &IndexName,
        ledger: &Ledger,
    ) -> Result<WriteSummary, SyncError> {
        let readers = self.config.backfill_readers.get();
        let finished = CancellationToken::new();
        let reading = async {
            let read = futures::future::try_join_all(
                (0..readers).map(|_| self.read_ranges(target, ledger)),
            )
            .await;
            finished.cancel();
            read
        };
        let saving = async {
            loop {
                tokio::select! {
                    biased;
                    () = finished.cancelled() => return Ok::<(), SyncError>(()),
                    () = tokio::time::sleep(self.config.checkpoint_interval) => {
                        self.save_checkpoint(target, ledger).await?;
                    }
                }
            }
        };
        let (summaries, ()) = tokio::try_join!(reading, saving)?;
        self.save_checkpoint(target, ledger).await?;
        let mut total = WriteSummary::default();
        for summary in summaries {
            total.merge(summary);
        }
        Ok(total)
    }

    /// Records the dead letters of settled pages, then saves the checkpoint that covers them.
    async fn save_checkpoint(&self, target: &IndexName, ledger: &Ledger) -> Result<(), SyncError> {
        let Some((checkpoint, dead_letters)) = ledger.take_save() else {
            return Ok(());
        };
        if !dead_letters.is_empty() {
            metrics::dead_letters(dead_letters.len());
            let ack = Ack {
                changes: Vec::new(),
                dead_letters,
            };
            retrying(
                "record dead letters",
                &self.config.retry,
                &self.shutdown,
                || self.changes.ack(&ack),
            )
            .await?;
        }
        retrying(
            "save checkpoint",
            &self.config.retry,
            &self.shutdown,
            || self.index.save_checkpoint(target, &checkpoint),
        )
        .await
    }

    /// One reader: takes ranges from the ledger until none is left.
    async fn read_ranges(
        &self,
        target: &IndexName,
        ledger: &Ledger,
    ) -> Result<WriteSummary, SyncError> {
        let mut total = WriteSummary::default();
        while let Some((range, after, until)) = ledger.take_range() {
            total.merge(self.fill_range(target, ledger, range, after, until).await?);
            ledger.range_finished(range);
        }
        Ok(total)
    }

    /// Streams the pages of one range into `target`: pages are read one after the other (keyset
    /// paging needs the previous page's last id), and each read overlaps the writes of up to
    /// `write_concurrency` earlier pages, so the source and the index work at the same time. Memory
    /// stays bounded by `chunk_size × (write_concurrency + 1)` documents per reader.
    async fn fill_range(
        &self,
        target: &IndexName,
        ledger: &Ledger,
        range: usize,
        after: Option<ProjectId>,
        until: Option<ProjectId>,
    ) -> Result<WriteSummary, SyncError> {
        let page_size = self.config.chunk_size.get();
        let concurrency = self.config.write_concurrency.get();
        let mut writes = FuturesUnordered::new();
        let mut total = WriteSummary::default();
        // The read in progress, the page it returned while every write slot was busy, and whether
        // a short page said there is nothing after it.
        let mut reading = Some(
            self.load_page(KeysetPage::after(after, page_size).until(until))
                .boxed(),
        );
        let mut ready: Option<Snapshot> = None;
        let mut done = false;
        loop {
            if writes.len() < concurrency
                && let Some(snapshot) = ready.take()
                && let Some(last) = snapshot.documents.last().map(|document| document.id)
            {
                ledger.page_sent(range, last);
                let write = self.write_settled(target, operations(snapshot));
                writes.push(write.map(move |written| (last, written)).boxed());
                if !done {
                    reading = Some(
                        self.load_page(KeysetPage::after(Some(last), page_size).until(until))
                            .boxed(),
                    );
                }
            }
            // Past this point a read is running or a write is in flight (a waiting page means every
            // write slot is taken), so a branch of the select is always enabled.
            if reading.is_none() && ready.is_none() && writes.is_empty() {
                return Ok(total);
            }
            tokio::select! {
                loaded = async {
                    match reading.as_mut() {
                        Some(read) => read.await,
                        None => std::future::pending().await,
                    }
                }, if reading.is_some() => {
                    reading = None;
                    let snapshot = loaded?;
                    done = snapshot.documents.len() < page_size;
                    if !snapshot.documents.is_empty() {
                        ready = Some(snapshot);
                    }
                }
                Some((last, written)) = writes.next(), if !writes.is_empty() => {
                    let mut summary = written?;
                    let count = summary.applied + summary.superseded;
                    metrics::backfilled(count);
                    self.progress.send_modify(|done| *done += count);
                    ledger.page_written(range, last, std::mem::take(&mut summary.dead_letters));
                    total.merge(summary);
                }
            }
        }
    }

    /// One page of a range, retried like every source read.
    async fn load_page(&self, page: KeysetPage) -> Result<Snapshot, SyncError> {
        retrying("load page", &self.config.retry, &self.shutdown, || {
            self.documents.load_page(page)
        })
        .await
    }
}
