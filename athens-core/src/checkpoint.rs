//! How far a backfill got: the project-id ranges it reads in parallel and, per range, the last id
//! through which every page is in the target index. Stored with the physical index it describes
//! (see [`SearchIndex::save_checkpoint`](crate::SearchIndex::save_checkpoint)), so a backfill that
//! failed or whose process crashed resumes where it stopped instead of starting over, and a new
//! physical index (a reindex, a rebuild after a truncate) starts with none.

use serde::{Deserialize, Serialize};

use crate::document::ProjectId;

/// One range of project ids, `(after, until]`, and how far its pages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeProgress {
    /// The range starts after this id; `None`: at the lowest id there is.
    pub after: Option<ProjectId>,
    /// The range ends at this id, inclusive; `None`: at the highest id there will be.
    pub until: Option<ProjectId>,
    /// Every project of the range up to this id is written; `None`: nothing yet.
    pub done_through: Option<ProjectId>,
    /// Every project of the range is written.
    pub finished: bool,
}

impl RangeProgress {
    /// A range nothing of which is written yet.
    pub fn new(after: Option<ProjectId>, until: Option<ProjectId>) -> RangeProgress {
        RangeProgress {
            after,
            until,
            done_through: None,
            finished: false,
        }
    }

    /// Where reading resumes: after the last id written, or at the start of the range.
    pub fn resume_after(&self) -> Option<ProjectId> {
        self.done_through.or(self.after)
    }
}

/// The progress of one backfill into one physical index.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillCheckpoint {
    /// Disjoint ranges that together cover every project id, ascending.
    pub ranges: Vec<RangeProgress>,
}

impl BackfillCheckpoint {
    /// Splits the ids from `lowest` to `highest` into `count` ranges of about equal width (fewer
    /// when the span is smaller); the first range is open below, the last open above, so together
    /// they cover every id, those inserted beyond either end since included. `None` bounds (an
    /// empty source) give one open range.
    pub fn split(bounds: Option<(ProjectId, ProjectId)>, count: usize) -> BackfillCheckpoint {
        let Some((lowest, highest)) = bounds else {
            return BackfillCheckpoint {
                ranges: vec![RangeProgress::new(None, None)],
            };
        };
        let span = u64::try_from(highest.0.saturating_sub(lowest.0))
            .unwrap_or(0)
            .saturating_add(1);
        let count = (count.max(1) as u64).min(span);
        let width = span.div_ceil(count);
        let mut ranges = Vec::new();
        let mut after: Option<ProjectId> = None;
        for n in 1..=count {
            let until = if n == count {
                None
            } else {
                let offset = i64::try_from(width.saturating_mul(n)).unwrap_or(i64::MAX);
                Some(ProjectId(lowest.0.saturating_add(offset).saturating_sub(1)))
            };
            ranges.push(RangeProgress::new(after, until));
            after = until;
        }
        BackfillCheckpoint { ranges }
    }

    /// Whether every range is finished.
    pub fn is_finished(&self) -> bool {
        self.ranges.iter().all(|range| range.finished)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(checkpoint: &BackfillCheckpoint) -> Vec<(Option<i64>, Option<i64>)> {
        checkpoint
            .ranges
            .iter()
            .map(|range| (range.after.map(|id| id.0), range.until.map(|id| id.0)))
            .collect()
    }

    #[test]
    fn ranges_are_disjoint_cover_everything_and_are_open_at_both_ends() {
        let checkpoint = BackfillCheckpoint::split(Some((ProjectId(1), ProjectId(100))), 4);
        assert_eq!(
            ids(&checkpoint),
            vec![
                (None, Some(25)),
                (Some(25), Some(50)),
                (Some(50), Some(75)),
                (Some(75), None)
            ]
        );
    }

    #[test]
    fn a_narrow_span_gives_fewer_ranges_and_an_empty_source_one() {
        let narrow = BackfillCheckpoint::split(Some((ProjectId(7), ProjectId(8))), 8);
        assert_eq!(ids(&narrow), vec![(None, Some(7)), (Some(7), None)]);
        let empty = BackfillCheckpoint::split(None, 8);
        assert_eq!(ids(&empty), vec![(None, None)]);
        let single = BackfillCheckpoint::split(Some((ProjectId(-5), ProjectId(-5))), 3);
        assert_eq!(ids(&single), vec![(None, None)]);
    }

    #[test]
    fn resumes_after_what_is_written() {
        let mut range = RangeProgress::new(Some(ProjectId(10)), Some(ProjectId(20)));
        assert_eq!(range.resume_after(), Some(ProjectId(10)));
        range.done_through = Some(ProjectId(14));
        assert_eq!(range.resume_after(), Some(ProjectId(14)));
    }
}
