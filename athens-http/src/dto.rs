//! The API's wire types: its own, so the index or the core can change without changing the API.

use std::collections::BTreeMap;

use athens_core::{
    Creator, CreatorCount, Facet, FacetCounts, Hashtag, HashtagCount, ProjectDocument, SearchHit,
    SearchPage, SortOrder,
};
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
    /// The counts of the facets asked for with `facets`, over every matching project; absent
    /// when none was asked for.
    #[oai(skip_serializing_if_is_none)]
    pub facets: Option<Facets>,
    /// Present when the text query `q` matched nothing: a corrected query that matches something
    /// with the same filters.
    #[oai(skip_serializing_if_is_none)]
    pub did_you_mean: Option<String>,
}

impl Example for ProjectPage {
    fn example() -> Self {
        Self {
            total: 1,
            items: vec![ProjectHit::example()],
            next_cursor: None,
            facets: Some(Facets::example()),
            did_you_mean: None,
        }
    }
}

impl From<SearchPage> for ProjectPage {
    fn from(page: SearchPage) -> Self {
        let FacetCounts { hashtags, creators } = page.facets;
        let facets = (hashtags.is_some() || creators.is_some()).then(|| Facets {
            hashtags: hashtags.map(|counts| counts.into_iter().map(Into::into).collect()),
            creators: creators.map(|counts| counts.into_iter().map(Into::into).collect()),
        });
        Self {
            total: page.total,
            items: page.hits.into_iter().map(ProjectHit::from).collect(),
            next_cursor: page.next_cursor,
            facets,
            did_you_mean: page.did_you_mean,
        }
    }
}

/// Facet counts over every matching project: the most frequent values first (ties in value
/// order), at most 10 per facet.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct Facets {
    /// Hashtags of the matching projects, when `facets` names `hashtags`.
    #[oai(skip_serializing_if_is_none)]
    pub hashtags: Option<Vec<HashtagFacet>>,
    /// Creators of the matching projects, when `facets` names `creators`.
    #[oai(skip_serializing_if_is_none)]
    pub creators: Option<Vec<CreatorFacet>>,
}

impl Example for Facets {
    fn example() -> Self {
        Self {
            hashtags: Some(vec![HashtagFacet::example()]),
            creators: Some(vec![CreatorFacet::example()]),
        }
    }
}

/// How many matching projects use a hashtag.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct HashtagFacet {
    /// The hashtag, lowercase without `#`: pass it in `hashtags` to narrow the search to it.
    pub name: String,
    /// Matching projects that use it.
    pub count: u64,
}

impl Example for HashtagFacet {
    fn example() -> Self {
        Self {
            name: "rust".into(),
            count: 12,
        }
    }
}

impl From<HashtagCount> for HashtagFacet {
    fn from(count: HashtagCount) -> Self {
        Self {
            name: count.name,
            count: count.count,
        }
    }
}

/// How many matching projects a user created.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct CreatorFacet {
    /// The user's id: pass it as `user_id` to narrow the search to the user's projects.
    pub id: i64,
    /// The user's name.
    pub name: String,
    /// Matching projects the user created.
    pub count: u64,
}

impl Example for CreatorFacet {
    fn example() -> Self {
        Self {
            id: 3,
            name: "John Smith".into(),
            count: 4,
        }
    }
}

impl From<CreatorCount> for CreatorFacet {
    fn from(count: CreatorCount) -> Self {
        Self {
            id: count.id.0,
            name: count.name,
            count: count.count,
        }
    }
}

/// The order of the results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum SortBy {
    /// Best match first with `q`; newest first without it.
    #[default]
    Relevance,
    /// Most recently created first.
    Newest,
    /// Least recently created first.
    Oldest,
}

impl From<SortBy> for SortOrder {
    fn from(sort: SortBy) -> Self {
        match sort {
            SortBy::Relevance => SortOrder::Relevance,
            SortBy::Newest => SortOrder::Newest,
            SortBy::Oldest => SortOrder::Oldest,
        }
    }
}

/// A facet to count over the matching projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum FacetName {
    /// The hashtags they use.
    Hashtags,
    /// The users who created them.
    Creators,
}

impl From<FacetName> for Facet {
    fn from(facet: FacetName) -> Self {
        match facet {
            FacetName::Hashtags => Facet::Hashtags,
            FacetName::Creators => Facet::Creators,
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
    /// When the project's row last changed (its name, slug or description; not its hashtags or
    /// creators).
    pub updated_at: DateTime<Utc>,
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
            updated_at: example_time(),
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
            updated_at: document.updated_at,
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
