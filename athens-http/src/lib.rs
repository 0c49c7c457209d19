//! Athens' REST search API over the project index.
//!
//! Three searches, each returning projects with their hashtags and creators, paged by an opaque
//! cursor:
//! - `GET /v1/projects/search?q=&hashtags=&mode=&user_id=&user_name=&size=&cursor=`: every filter
//!   combined (fuzzy full text with highlights, hashtags, creator by id or fuzzy name);
//! - `GET /v1/users/{user_id}/projects`: a user's projects, `404` for an unknown user;
//! - `GET /v1/hashtags/projects?hashtags=rust,search&mode=any|all`;
//!
//! the first also takes `sort`, `created_after`/`created_before` and `facets=hashtags,creators`, and
//! says `did_you_mean` when its text matches nothing. `GET /v1/suggestions?q=` completes names as
//! they are typed.
//!
//! Beside them: a search page for people at `/` (embedded, no build step), `/healthz`, `/readyz`, `/metrics` (Prometheus), the OpenAPI document at
//! `/openapi.json` (committed as `docs/openapi.json`) and Swagger UI at `/docs`. Errors are RFC 9457
//! problems naming the offending parameter.
//!
//! The crate knows no database or search engine: it serves any [`athens_core::ProjectSearch`] and
//! [`athens_core::SourceLookup`] given in an [`AppState`]. It records metrics through the `metrics`
//! facade and installs no recorder: the program does, and hands its rendering to
//! [`AppState::with_metrics`].
//!
//! ```no_run
//! # async fn run(state: athens_http::AppState) -> std::io::Result<()> {
//! let config = athens_http::HttpConfig::default();
//! athens_http::serve(state, &config, async { tokio::signal::ctrl_c().await.ok(); }).await
//! # }
//! ```

mod config;
mod connection;
mod context;
mod dto;
mod error;
mod metrics;
mod middleware;
mod page;
mod parameters;
mod problem;
mod routes;
mod server;
mod state;
mod suggestion;

pub use config::HttpConfig;
pub use dto::{
    CreatorFacet, FacetName, Facets, HashtagFacet, HashtagMatch, Health, Project, ProjectCreator,
    ProjectHashtag, ProjectHit, ProjectPage, SortBy,
};
pub use metrics::{HISTOGRAM_BUCKETS, HTTP_REQUEST_SECONDS, HTTP_REQUESTS, UNMATCHED_ROUTE};
pub use middleware::REQUEST_ID_HEADER;
pub use problem::{InvalidParam, PROBLEM_CONTENT_TYPE, Problem};
pub use server::{DOCS_PATH, SPEC_PATH, api, app, serve, serve_on, spec_json};
pub use state::{AppState, RenderMetrics};
pub use suggestion::{SuggestedProject, SuggestedUser, SuggestionList};

#[cfg(test)]
mod tests;
