//! The searchable unit: a project document (the project, its hashtags and its creators), and the pure
//! builder that assembles documents from the rows a source reads.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<i64> for $name {
            fn from(id: i64) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// Primary key of a row of `projects`, and the id of its document in the index.
    ProjectId
);
id_type!(
    /// Primary key of a row of `users`.
    UserId
);
id_type!(
    /// Primary key of a row of `hashtags`.
    HashtagId
);

/// A hashtag as it appears inside a project document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hashtag {
    /// The hashtag's id.
    pub id: HashtagId,
    /// The hashtag's name as stored (without normalisation).
    pub name: String,
    /// When the hashtag was created.
    pub created_at: DateTime<Utc>,
}

/// A user who created a project, as it appears inside a project document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Creator {
    /// The user's id.
    pub id: UserId,
    /// The user's name.
    pub name: String,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// One project with everything a search returns about it: its own columns, its hashtags and its creators.
///
/// Hashtags and creators are kept sorted by id, so two documents built from the same state are equal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectDocument {
    /// The project's id, also the document id in the index.
    pub id: ProjectId,
    /// The project's display name.
    pub name: String,
    /// The project's URL slug (unique).
    pub slug: String,
    /// Free-text description; empty when the column is NULL.
    pub description: String,
    /// When the project was created.
    pub created_at: DateTime<Utc>,
    /// When the project's row last changed (its hashtags and creators aside).
    pub updated_at: DateTime<Utc>,
    /// Hashtags used by the project, sorted by id.
    pub hashtags: Vec<Hashtag>,
    /// Users who created the project, sorted by id.
    pub creators: Vec<Creator>,
}

/// A row of `projects`, as a source reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectRow {
    /// `projects.id`.
    pub id: ProjectId,
    /// `projects.name`.
    pub name: String,
    /// `projects.slug`.
    pub slug: String,
    /// `projects.description`, `None` for NULL.
    pub description: Option<String>,
    /// `projects.created_at`.
    pub created_at: DateTime<Utc>,
    /// `projects.updated_at`.
    pub updated_at: DateTime<Utc>,
}

/// A hashtag joined to one project (`project_hashtags` ⋈ `hashtags`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashtagLink {
    /// The project that uses the hashtag.
    pub project: ProjectId,
    /// The hashtag.
    pub hashtag: Hashtag,
}

/// A creator joined to one project (`user_projects` ⋈ `users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatorLink {
    /// The project the user created.
    pub project: ProjectId,
    /// The user.
    pub creator: Creator,
}

/// Assembles project documents from rows: no I/O, so every source builds documents the same way.
///
/// Links whose project is not among `projects` are ignored (the project was deleted, or is outside the
/// requested set). The result is sorted by project id.
pub fn build_documents(
    projects: Vec<ProjectRow>,
    hashtags: Vec<HashtagLink>,
    creators: Vec<CreatorLink>,
) -> Vec<ProjectDocument> {
    let mut documents: BTreeMap<ProjectId, ProjectDocument> = projects
        .into_iter()
        .map(|row| {
            let document = ProjectDocument {
                id: row.id,
                name: row.name,
                slug: row.slug,
                description: row.description.unwrap_or_default(),
                created_at: row.created_at,
                updated_at: row.updated_at,
                hashtags: Vec::new(),
                creators: Vec::new(),
            };
            (row.id, document)
        })
        .collect();
    for link in hashtags {
        if let Some(document) = documents.get_mut(&link.project) {
            document.hashtags.push(link.hashtag);
        }
    }
    for link in creators {
        if let Some(document) = documents.get_mut(&link.project) {
            document.creators.push(link.creator);
        }
    }
    documents
        .into_values()
        .map(|mut document| {
            document.hashtags.sort_by_key(|hashtag| hashtag.id);
            document.hashtags.dedup_by_key(|hashtag| hashtag.id);
            document.creators.sort_by_key(|creator| creator.id);
            document.creators.dedup_by_key(|creator| creator.id);
            document
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    fn project(id: i64) -> ProjectRow {
        ProjectRow {
            id: ProjectId(id),
            name: format!("Project {id}"),
            slug: format!("project-{id}"),
            description: None,
            created_at: at(id),
            updated_at: at(id + 1),
        }
    }

    fn hashtag(project: i64, id: i64) -> HashtagLink {
        HashtagLink {
            project: ProjectId(project),
            hashtag: Hashtag {
                id: HashtagId(id),
                name: format!("tag{id}"),
                created_at: at(0),
            },
        }
    }

    fn creator(project: i64, id: i64) -> CreatorLink {
        CreatorLink {
            project: ProjectId(project),
            creator: Creator {
                id: UserId(id),
                name: format!("user {id}"),
                created_at: at(0),
            },
        }
    }

    #[test]
    fn groups_links_under_their_project_sorted_by_id() {
        let documents = build_documents(
            vec![project(2), project(1)],
            vec![hashtag(1, 9), hashtag(1, 3), hashtag(2, 3)],
            vec![creator(2, 7), creator(2, 5), creator(1, 5)],
        );
        assert_eq!(documents.len(), 2);
        assert_eq!(documents[0].id, ProjectId(1));
        let tags: Vec<_> = documents[0].hashtags.iter().map(|h| h.id.0).collect();
        assert_eq!(tags, vec![3, 9]);
        let users: Vec<_> = documents[1].creators.iter().map(|c| c.id.0).collect();
        assert_eq!(users, vec![5, 7]);
    }

    #[test]
    fn null_description_becomes_empty_and_orphan_links_are_dropped() {
        let documents = build_documents(vec![project(1)], vec![hashtag(4, 1)], vec![creator(4, 1)]);
        assert_eq!(documents.len(), 1);
        assert_eq!(documents[0].description, "");
        assert!(documents[0].hashtags.is_empty());
        assert!(documents[0].creators.is_empty());
    }

    #[test]
    fn duplicate_links_appear_once() {
        let documents = build_documents(
            vec![project(1)],
            vec![hashtag(1, 2), hashtag(1, 2)],
            vec![creator(1, 3), creator(1, 3)],
        );
        assert_eq!(documents[0].hashtags.len(), 1);
        assert_eq!(documents[0].creators.len(), 1);
    }
}
