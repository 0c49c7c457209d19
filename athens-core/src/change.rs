//! Changes captured from the source tables, and what the engine hands back when it acknowledges them.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::document::{HashtagId, ProjectId, UserId};
use crate::partition::Partition;

/// The source tables a change can come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Table {
    /// `users`
    Users,
    /// `hashtags`
    Hashtags,
    /// `projects`
    Projects,
    /// `project_hashtags`
    ProjectHashtags,
    /// `user_projects`
    UserProjects,
}

impl Table {
    /// Every table, in a stable order.
    pub const ALL: [Table; 5] = [
        Table::Users,
        Table::Hashtags,
        Table::Projects,
        Table::ProjectHashtags,
        Table::UserProjects,
    ];

    /// The table's SQL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Table::Users => "users",
            Table::Hashtags => "hashtags",
            Table::Projects => "projects",
            Table::ProjectHashtags => "project_hashtags",
            Table::UserProjects => "user_projects",
        }
    }

    /// The table with this SQL name, if it is one of ours.
    pub fn from_name(name: &str) -> Option<Table> {
        Table::ALL.into_iter().find(|table| table.as_str() == name)
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What changed: the key of a row that was inserted, updated or deleted, or a whole table truncated.
///
/// A change says which row moved, not what it became: the engine always rebuilds documents from the
/// current state, so replaying a change, or seeing it twice, is harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// A row of `projects` changed.
    Project {
        /// The project.
        project: ProjectId,
    },
    /// A row of `users` changed: every project the user created is touched.
    User {
        /// The user.
        user: UserId,
    },
    /// A row of `hashtags` changed: every project using it is touched.
    Hashtag {
        /// The hashtag.
        hashtag: HashtagId,
    },
    /// A row of `project_hashtags` was added or removed.
    ProjectHashtag {
        /// The project.
        project: ProjectId,
        /// The hashtag.
        hashtag: HashtagId,
    },
    /// A row of `user_projects` was added or removed.
    UserProject {
        /// The project.
        project: ProjectId,
        /// The user.
        user: UserId,
    },
    /// A table was truncated: every document may be affected.
    Truncate {
        /// The table.
        table: Table,
    },
}

/// Identity of a pending change in its source, used to acknowledge it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChangeId(pub i64);

/// A change as the source holds it until it is acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRecord {
    /// Identity used to acknowledge the change.
    pub id: ChangeId,
    /// What changed.
    pub change: Change,
    /// When the transaction that made the change started (the source's clock).
    pub recorded_at: DateTime<Utc>,
}

/// A document the index refused for good: recorded with its reason instead of stalling the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The project whose document was refused.
    pub project: ProjectId,
    /// Why the index refused it.
    pub reason: String,
}

/// What the engine acknowledges in one step: changes whose work the index accepted, and documents the
/// index refused for good. A source applies both atomically.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ack {
    /// Changes to remove from the source.
    pub changes: Vec<ChangeId>,
    /// Documents to record as dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

impl Ack {
    /// True when there is nothing to acknowledge.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.dead_letters.is_empty()
    }
}

/// How far the index is behind the source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Backlog {
    /// Changes captured and not yet acknowledged.
    pub pending: u64,
    /// Age of the oldest pending change, `None` when nothing is pending.
    pub oldest_age: Option<Duration>,
    /// Dead letters recorded so far.
    pub dead_letters: u64,
    /// When changes were last acknowledged, `None` if never.
    pub last_ack_at: Option<DateTime<Utc>>,
    /// The partition whose changes these are, for the source of one partition's writer; `None`
    /// for a source of every change.
    pub partition: Option<Partition>,
}
