//! The wire types of as-you-type suggestions.

use athens_core::{ProjectSuggestion, Suggestions, UserSuggestion};
use poem_openapi::Object;
use poem_openapi::types::Example;

/// Completions of what was typed so far, each kind best first.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct SuggestionList {
    /// Projects whose name or slug starts, or has a word that starts, with the text.
    pub projects: Vec<SuggestedProject>,
    /// Hashtags, lowercase without `#`: pass one in `hashtags` to search its projects.
    pub hashtags: Vec<String>,
    /// Users who created projects: pass one's id as `user_id` to search their projects.
    pub users: Vec<SuggestedUser>,
}

impl Example for SuggestionList {
    fn example() -> Self {
        Self {
            projects: vec![SuggestedProject::example()],
            hashtags: vec!["elasticsearch".into()],
            users: vec![SuggestedUser::example()],
        }
    }
}

impl From<Suggestions> for SuggestionList {
    fn from(suggestions: Suggestions) -> Self {
        Self {
            projects: suggestions.projects.into_iter().map(Into::into).collect(),
            hashtags: suggestions.hashtags,
            users: suggestions.users.into_iter().map(Into::into).collect(),
        }
    }
}

/// A suggested project.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct SuggestedProject {
    /// The project's id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its slug.
    pub slug: String,
}

impl Example for SuggestedProject {
    fn example() -> Self {
        Self {
            id: 42,
            name: "Athens".into(),
            slug: "elasticsearch-sync".into(),
        }
    }
}

impl From<ProjectSuggestion> for SuggestedProject {
    fn from(project: ProjectSuggestion) -> Self {
        Self {
            id: project.id.0,
            name: project.name,
            slug: project.slug,
        }
    }
}

/// A suggested user.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct SuggestedUser {
    /// The user's id.
    pub id: i64,
    /// The user's name.
    pub name: String,
}

impl Example for SuggestedUser {
    fn example() -> Self {
        Self {
            id: 3,
            name: "Elena Stark".into(),
        }
    }
}

impl From<UserSuggestion> for SuggestedUser {
    fn from(user: UserSuggestion) -> Self {
        Self {
            id: user.id.0,
            name: user.name,
        }
    }
}
