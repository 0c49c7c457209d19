//! The API's wire types: its own, so the index or the core can change without changing the API.

use std::collections::BTreeMap;

use athens_core::{Creator, Hashtag, ProjectDocument, SearchHit, SearchPage};
use chrono::{DateTime, TimeZone, Utc};
use poem_openapi::types::Example;
use poem_openapi::{Enum, Object};

/// A page of matching projects.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct ProjectPage {
    /// How many projects match in all, across every page.
    pub total: u64,
    /// This page's projects, best first.
    pub items: Vec<ProjectHit>,
    /// Pass it as `cursor` to get the next page; absent on the last page.
    #[oai(skip_serializing_if_is_none)]
    pub next_cursor: Option<String>,
}

impl Example for ProjectPage {
    fn example() -> Self {
        Self {
            total: 1,
            items: vec![ProjectHit::example()],
            next_cursor: None,
        }
    }
}

impl From<SearchPage> for ProjectPage {
    fn from(page: SearchPage) -> Self {
        Self {
            total: page.total,
            items: page.hits.into_iter().map(ProjectHit::from).collect(),
            next_cursor: page.next_cursor,
        }
    }
}

/// One matching project.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct ProjectHit {
    /// The project, its hashtags and its creators.
    pub project: Project,
    /// Relevance score, present when the search ranks by relevance (`q` or `user_name` given).
    #[oai(skip_serializing_if_is_none)]
    pub score: Option<f64>,
    /// Fragments of the matched fields (`slug`, `description`), matches wrapped in `<em>`; empty
    /// without `q`.
    pub highlights: BTreeMap<String, Vec<String>>,
}

impl Example for ProjectHit {
    fn example() -> Self {
        Self {
            project: Project::example(),
            score: Some(7.25),
            highlights: BTreeMap::from([(
                "description".to_string(),
                vec!["Keeps <em>Elasticsearch</em> in sync with PostgreSQL".to_string()],
            )]),
        }
    }
}

impl From<SearchHit> for ProjectHit {
    fn from(hit: SearchHit) -> Self {
        Self {
            project: hit.document.into(),
            score: hit.score,
            highlights: hit.highlights,
        }
    }
}

/// A project with its hashtags and the users who created it.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct Project {
    /// The project's id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// URL slug, unique.
    pub slug: String,
    /// Free-text description; empty when the project has none.
    pub description: String,
    /// When the project was created.
    pub created_at: DateTime<Utc>,
    /// Hashtags the project uses, by id.
    pub hashtags: Vec<ProjectHashtag>,
    /// Users who created the project, by id.
    pub creators: Vec<ProjectCreator>,
}

fn example_time() -> DateTime<Utc> {
    Utc.timestamp_opt(1_735_732_800, 0)
        .single()
        .unwrap_or_default()
}

impl Example for Project {
    fn example() -> Self {
        Self {
            id: 42,
            name: "Athens".into(),
            slug: "athens-search-sync".into(),
            description: "Keeps Elasticsearch in sync with PostgreSQL".into(),
            created_at: example_time(),
            hashtags: vec![ProjectHashtag::example()],
            creators: vec![ProjectCreator::example()],
        }
    }
}

impl From<ProjectDocument> for Project {
    fn from(document: ProjectDocument) -> Self {
        Self {
            id: document.id.0,
            name: document.name,
            slug: document.slug,
            description: document.description,
            created_at: document.created_at,
            hashtags: document.hashtags.into_iter().map(Into::into).collect(),
            creators: document.creators.into_iter().map(Into::into).collect(),
        }
    }
}

/// A hashtag a project uses.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct ProjectHashtag {
    /// The hashtag's id.
    pub id: i64,
    /// The hashtag as stored (matching ignores case and a leading `#`).
    pub name: String,
}

impl Example for ProjectHashtag {
    fn example() -> Self {
        Self {
            id: 7,
            name: "rust".into(),
        }
    }
}

impl From<Hashtag> for ProjectHashtag {
    fn from(hashtag: Hashtag) -> Self {
        Self {
            id: hashtag.id.0,
            name: hashtag.name,
        }
    }
}

/// A user who created a project.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct ProjectCreator {
    /// The user's id.
    pub id: i64,
    /// The user's name.
    pub name: String,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

impl Example for ProjectCreator {
    fn example() -> Self {
        Self {
            id: 3,
            name: "John Smith".into(),
            created_at: example_time(),
        }
    }
}

impl From<Creator> for ProjectCreator {
    fn from(creator: Creator) -> Self {
        Self {
            id: creator.id.0,
            name: creator.name,
            created_at: creator.created_at,
        }
    }
}

/// How several hashtags combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum HashtagMatch {
    /// Projects that use at least one of the hashtags.
    #[default]
    Any,
    /// Projects that use every one of the hashtags.
    All,
}

impl From<HashtagMatch> for athens_core::HashtagMode {
    fn from(mode: HashtagMatch) -> Self {
        match mode {
            HashtagMatch::Any => athens_core::HashtagMode::Any,
            HashtagMatch::All => athens_core::HashtagMode::All,
        }
    }
}

/// The answer of `/healthz` and of a ready `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct Health {
    /// `ok` from `/healthz`, `ready` from `/readyz`.
    pub status: String,
    /// The checks that passed (`database`, `index`); empty for `/healthz`.
    pub checks: Vec<String>,
}

impl Example for Health {
    fn example() -> Self {
        Self {
            status: "ready".into(),
            checks: vec!["database".into(), "index".into()],
        }
    }
}
