//! The API's operations, grouped by tag: each operation has its own response enum, whose doc
//! comments become the spec's descriptions.

mod health;
mod search;
mod suggest;

use poem_openapi::Tags;

pub(crate) use health::HealthApi;
pub(crate) use search::ProjectsApi;
pub(crate) use suggest::SuggestApi;

/// The spec's tags.
#[derive(Debug, Tags)]
pub(crate) enum ApiTag {
    /// Searching projects: by creator, by hashtags, by full text, or all of these at once.
    Projects,
    /// Completing names as they are typed: projects, hashtags, users.
    Suggestions,
    /// Liveness and readiness probes.
    Health,
}
