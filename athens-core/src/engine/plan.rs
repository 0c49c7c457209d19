//! Turning a batch of changes into the work it causes: which projects to rebuild directly, which users
//! and hashtags to resolve, whether a truncate forces a full rebuild. Pure, no I/O.

use std::collections::BTreeSet;

use crate::change::{Change, ChangeRecord};
use crate::document::{HashtagId, ProjectId, UserId};

/// The work one batch of changes causes, with repeated changes to the same row coalesced.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ChangePlan {
    /// Projects named by the changes themselves.
    pub projects: BTreeSet<ProjectId>,
    /// Users whose projects must be rebuilt.
    pub users: BTreeSet<UserId>,
    /// Hashtags whose projects must be rebuilt.
    pub hashtags: BTreeSet<HashtagId>,
    /// A table was truncated: rebuild everything.
    pub truncate: bool,
}

impl ChangePlan {
    /// Plans the work for `records`.
    pub fn of(records: &[ChangeRecord]) -> ChangePlan {
        let mut plan = ChangePlan::default();
        for record in records {
            match record.change {
                Change::Project { project } => {
                    plan.projects.insert(project);
                }
                Change::User { user } => {
                    plan.users.insert(user);
                }
                Change::Hashtag { hashtag } => {
                    plan.hashtags.insert(hashtag);
                }
                Change::ProjectHashtag { project, .. } | Change::UserProject { project, .. } => {
                    plan.projects.insert(project);
                }
                Change::Truncate { .. } => plan.truncate = true,
            }
        }
        plan
    }

    /// Whether users or hashtags must be resolved to projects through the source.
    pub fn needs_resolution(&self) -> bool {
        !self.users.is_empty() || !self.hashtags.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::change::{ChangeId, Table};

    fn record(id: i64, change: Change) -> ChangeRecord {
        ChangeRecord {
            id: ChangeId(id),
            change,
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn coalesces_repeated_changes_and_splits_by_kind() {
        let plan = ChangePlan::of(&[
            record(
                1,
                Change::Project {
                    project: ProjectId(1),
                },
            ),
            record(
                2,
                Change::Project {
                    project: ProjectId(1),
                },
            ),
            record(
                3,
                Change::UserProject {
                    project: ProjectId(2),
                    user: UserId(7),
                },
            ),
            record(
                4,
                Change::ProjectHashtag {
                    project: ProjectId(3),
                    hashtag: HashtagId(8),
                },
            ),
            record(5, Change::User { user: UserId(7) }),
            record(
                6,
                Change::Hashtag {
                    hashtag: HashtagId(9),
                },
            ),
        ]);
        assert_eq!(
            plan.projects.into_iter().collect::<Vec<_>>(),
            vec![ProjectId(1), ProjectId(2), ProjectId(3)]
        );
        assert_eq!(plan.users.into_iter().collect::<Vec<_>>(), vec![UserId(7)]);
        assert_eq!(
            plan.hashtags.into_iter().collect::<Vec<_>>(),
            vec![HashtagId(9)]
        );
        assert!(!plan.truncate);
    }

    #[test]
    fn a_truncate_anywhere_forces_a_rebuild() {
        let plan = ChangePlan::of(&[
            record(
                1,
                Change::Project {
                    project: ProjectId(1),
                },
            ),
            record(
                2,
                Change::Truncate {
                    table: Table::Hashtags,
                },
            ),
        ]);
        assert!(plan.truncate);
        assert!(!plan.needs_resolution());
    }
}
