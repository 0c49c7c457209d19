//! Keyset pages: how the backfill, verify and their ports read projects in id order, a page at a
//! time, without offsets.

use crate::ProjectId;

/// A page of projects in ascending id order: ids greater than `after`, at most `until` (when set),
/// and at most `limit` of them. Readers of disjoint ranges (a parallel backfill) bound their pages
/// with `until`; a reader of everything leaves it unset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeysetPage {
    /// The last id of the previous page (`None`: from the lowest id).
    pub after: Option<ProjectId>,
    /// The highest id the page may hold (`None`: no upper bound).
    pub until: Option<ProjectId>,
    /// How many ids the page holds at most.
    pub limit: usize,
}

impl KeysetPage {
    /// The first page of everything: the `limit` lowest ids.
    pub fn first(limit: usize) -> Self {
        Self::after(None, limit)
    }

    /// The page of at most `limit` ids following `after`, with no upper bound.
    pub fn after(after: Option<ProjectId>, limit: usize) -> Self {
        Self {
            after,
            until: None,
            limit,
        }
    }

    /// This page, bounded above by `until` (included).
    pub fn until(self, until: Option<ProjectId>) -> Self {
        Self { until, ..self }
    }

    /// Whether `id` lies in the page's range `(after, until]` (the limit aside).
    pub fn holds(&self, id: ProjectId) -> bool {
        self.after.is_none_or(|after| id > after) && self.until.is_none_or(|until| id <= until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_holds_the_ids_after_its_cursor_up_to_its_bound() {
        let page = KeysetPage::after(Some(ProjectId(10)), 5).until(Some(ProjectId(20)));
        assert!(!page.holds(ProjectId(10)));
        assert!(page.holds(ProjectId(11)));
        assert!(page.holds(ProjectId(20)));
        assert!(!page.holds(ProjectId(21)));
        assert!(KeysetPage::first(1).holds(ProjectId(i64::MIN)));
        assert!(KeysetPage::first(1).holds(ProjectId(i64::MAX)));
    }
}
