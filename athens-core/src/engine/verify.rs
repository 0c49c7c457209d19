//! Verify: compares every document in the live index with one built fresh from the source, and
//! optionally repairs the drift, walking both in id order so memory stays bounded.

use std::collections::{BTreeMap, VecDeque};

use tracing::{info, warn};

use super::SyncEngine;
use super::write::retrying;
use crate::document::{ProjectDocument, ProjectId};
use crate::error::{IndexError, SyncError};
use crate::index::IndexName;
use crate::keyset::KeysetPage;

/// How many drifted ids a report lists by name.
const SAMPLE_LIMIT: usize = 20;

/// What verify found (and repaired).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Projects compared.
    pub checked: u64,
    /// Projects in the source with no document in the index.
    pub missing: u64,
    /// Projects whose document differs from the source.
    pub stale: u64,
    /// Documents in the index whose project no longer exists.
    pub extra: u64,
    /// Drifted documents rewritten or deleted by a repair.
    pub repaired: u64,
    /// The first drifted project ids, for the report.
    pub samples: Vec<ProjectId>,
}

impl VerifyReport {
    /// Documents that differ from the source, of every kind.
    pub fn drift(&self) -> u64 {
        self.missing + self.stale + self.extra
    }

    fn sample(&mut self, ids: &[ProjectId]) {
        let room = SAMPLE_LIMIT.saturating_sub(self.samples.len());
        self.samples.extend(ids.iter().take(room));
    }
}

/// How a document differs from the source.
enum Drift {
    Missing,
    Stale,
    Extra,
}

impl Drift {
    fn count(self, report: &mut VerifyReport) {
        match self {
            Drift::Missing => report.missing += 1,
            Drift::Stale => report.stale += 1,
            Drift::Extra => report.extra += 1,
        }
    }
}

/// The ids stored in the index, read page by page in ascending order.
struct IndexIds {
    buffer: VecDeque<ProjectId>,
    after: Option<ProjectId>,
    exhausted: bool,
}

impl SyncEngine {
    /// Compares the live index with the source. With `repair`, rewrites drifted documents from the
    /// current state and deletes documents of vanished projects. A difference seen once is read
    /// again before it counts, so writes in flight during the walk are not reported as drift.
    ///
    /// A repair writes like the sync does, so it goes through the single writer: the caller must
    /// hold the writer lease (a repair beside a running sync could read a state in a snapshot that
    /// began before the sync's newer one, yet draw a greater version and win). A repaired document
    /// counts only once it is read back equal to the source: a rewrite the index refuses as
    /// superseded (its version is ahead of the source's, as after a restore of the source) is not
    /// a repair.
    pub async fn verify(&self, repair: bool) -> Result<VerifyReport, SyncError> {
        if repair {
            self.check_lease().await?;
        }
        let live = self
            .index
            .live_index()
            .await?
            .ok_or_else(|| IndexError::not_found("no index behind the alias"))?;
        self.index.refresh(&live).await?;
        let mut report = VerifyReport::default();
        let mut index_ids = IndexIds {
            buffer: VecDeque::new(),
            after: None,
            exhausted: false,
        };
        let page_size = self.config.chunk_size.get();
        let mut after = None;
        loop {
            if repair {
                // Once per page, so a long walk with nothing to repair keeps the lease alive.
                self.check_lease().await?;
            }
            let page = retrying("load page", &self.config.retry, &self.shutdown, || {
                self.documents
                    .load_page(KeysetPage::after(after, page_size))
            })
            .await?;
            let Some(last) = page.documents.last().map(|document| document.id) else {
                break;
            };
            report.checked += page.documents.len() as u64;
            let extra = self
                .index_ids_through(&live, &mut index_ids, Some(last), &page.documents)
                .await?;
            self.settle(&live, extra, repair, &mut report).await?;
            let suspects = self.differing(&live, &page.documents).await?;
            self.settle(&live, suspects, repair, &mut report).await?;
            let full = page.documents.len() >= page_size;
            after = Some(last);
            if !full {
                break;
            }
        }
        loop {
            let extra = self
                .index_ids_through(&live, &mut index_ids, None, &[])
                .await?;
            if extra.is_empty() {
                break;
            }
            self.settle(&live, extra, repair, &mut report).await?;
        }
        info!(
            checked = report.checked,
            missing = report.missing,
            stale = report.stale,
            extra = report.extra,
            repaired = report.repaired,
            "verify finished"
        );
        Ok(report)
    }

    /// Index ids up to `through` (all remaining, one page at a time, when `None`) that are not among
    /// `documents`: documents whose project is not in the source page.
    async fn index_ids_through(
        &self,
        live: &IndexName,
        ids: &mut IndexIds,
        through: Option<ProjectId>,
        documents: &[ProjectDocument],
    ) -> Result<Vec<ProjectId>, SyncError> {
        let page_size = self.config.chunk_size.get();
        let mut extra = Vec::new();
        loop {
            while let Some(&id) = ids.buffer.front() {
                if through.is_some_and(|through| id > through) {
                    return Ok(extra);
                }
                ids.buffer.pop_front();
                if documents
                    .binary_search_by_key(&id, |document| document.id)
                    .is_err()
                {
                    extra.push(id);
                }
            }
            if ids.exhausted || (through.is_none() && !extra.is_empty()) {
                return Ok(extra);
            }
            let page = self
                .index
                .ids_page(live, KeysetPage::after(ids.after, page_size))
                .await?;
            ids.exhausted = page.len() < page_size;
            ids.after = page.last().copied().or(ids.after);
            ids.buffer.extend(page);
        }
    }

    /// Ids of `documents` whose indexed copy is absent or different.
    async fn differing(
        &self,
        live: &IndexName,
        documents: &[ProjectDocument],
    ) -> Result<Vec<ProjectId>, SyncError> {
        let ids: Vec<ProjectId> = documents.iter().map(|document| document.id).collect();
        let indexed: BTreeMap<ProjectId, ProjectDocument> = self
            .index
            .get(live, &ids)
            .await?
            .into_iter()
            .map(|document| (document.id, document))
            .collect();
        Ok(documents
            .iter()
            .filter(|document| indexed.get(&document.id) != Some(*document))
            .map(|document| document.id)
            .collect())
    }

    /// Reads suspects again from both sides, counts those that still differ, and repairs them if asked.
    async fn settle(
        &self,
        live: &IndexName,
        suspects: Vec<ProjectId>,
        repair: bool,
        report: &mut VerifyReport,
    ) -> Result<(), SyncError> {
        if suspects.is_empty() {
            return Ok(());
        }
        let drifted = self.drifted(live, &suspects, Some(report)).await?;
        report.sample(&drifted);
        if repair && !drifted.is_empty() {
            let written = self.rebuild(live, &drifted).await?;
            let left = self.drifted(live, &drifted, None).await?;
            let repaired = drifted.len() - left.len();
            report.repaired += repaired as u64;
            if written.superseded > 0 && !left.is_empty() {
                warn!(
                    superseded = written.superseded,
                    unrepaired = left.len(),
                    samples = ?left.iter().take(SAMPLE_LIMIT).collect::<Vec<_>>(),
                    "the index refused rewrites as superseded: it holds versions ahead of the source (was the database restored?): run `athens reindex`"
                );
            }
        }
        Ok(())
    }

    /// Reads `ids` again from both sides and returns those that differ, counting each kind of
    /// difference into `report` when given.
    async fn drifted(
        &self,
        live: &IndexName,
        ids: &[ProjectId],
        mut report: Option<&mut VerifyReport>,
    ) -> Result<Vec<ProjectId>, SyncError> {
        self.index.refresh(live).await?;
        let fresh = retrying("load documents", &self.config.retry, &self.shutdown, || {
            self.documents.load(ids)
        })
        .await?;
        let indexed: BTreeMap<ProjectId, ProjectDocument> = self
            .index
            .get(live, ids)
            .await?
            .into_iter()
            .map(|document| (document.id, document))
            .collect();
        let mut drifted = Vec::new();
        for document in &fresh.documents {
            let kind = match indexed.get(&document.id) {
                None => Drift::Missing,
                Some(stored) if stored != document => Drift::Stale,
                Some(_) => continue,
            };
            if let Some(report) = report.as_deref_mut() {
                kind.count(report);
            }
            drifted.push(document.id);
        }
        for id in &fresh.missing {
            if indexed.contains_key(id) {
                if let Some(report) = report.as_deref_mut() {
                    Drift::Extra.count(report);
                }
                drifted.push(*id);
            }
        }
        drifted.sort();
        Ok(drifted)
    }
}
