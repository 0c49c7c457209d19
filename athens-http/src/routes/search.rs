//! The three searches: by creator (`/v1/users/{user_id}/projects`), by hashtags
//! (`/v1/hashtags/projects`), and the general one that combines every filter
//! (`/v1/projects/search`).

use athens_core::{DEFAULT_PAGE_SIZE, Facet, SearchRequest, UserId};
use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;

use super::ApiTag;
use crate::dto::{FacetName, HashtagMatch, ProjectPage, SortBy};
use crate::error::{ApiError, parse_failure, problem_responses};
use crate::state::AppState;

/// The operations that search projects.
pub(crate) struct ProjectsApi;

#[OpenApi(tag = "ApiTag::Projects")]
impl ProjectsApi {
    /// Search projects
    ///
    /// Every filter given must match: a fuzzy full-text query over slug and description (`q`),
    /// hashtags (`hashtags`, `mode`), the creator, by id (`user_id`) or by fuzzy name
    /// (`user_name`), and the creation date (`created_after`, `created_before`). Without any
    /// filter, lists every project. Each project comes with its hashtags and creators; with `q`,
    /// results carry highlights and are ranked by relevance unless `sort` says otherwise.
    /// `facets=hashtags,creators` counts the most frequent hashtags and creators over every
    /// matching project. When `q` matches nothing, `did_you_mean` suggests a corrected query that
    /// does match.
    #[allow(clippy::too_many_arguments)]
    #[oai(
        path = "/v1/projects/search",
        method = "get",
        operation_id = "searchProjects"
    )]
    async fn search(
        &self,
        state: Data<&AppState>,
        /// Fuzzy full-text query over the project's slug and description: tolerates typos and
        /// partial words, in any order.
        #[oai(example = "example_q", validator(min_length = 1, max_length = 200))]
        q: Query<Option<String>>,
        /// Hashtags the projects must use, comma-separated (`rust,search`) or repeated
        /// (`hashtags=rust&hashtags=search`); case- and `#`-insensitive, at most 20.
        #[oai(default, example = "example_hashtags", validator(max_items = 20,))]
        hashtags: Query<Vec<String>>,
        /// Whether projects must use `any` (default) or `all` of `hashtags`.
        #[oai(default)]
        mode: Query<HashtagMatch>,
        /// Only projects created by the user with this id.
        #[oai(example = "example_user_id", validator(minimum(value = "1")))]
        user_id: Query<Option<i64>>,
        /// Only projects created by a user whose name matches this, fuzzily (`jon smith` finds
        /// `John Smith`).
        #[oai(
            example = "example_user_name",
            validator(min_length = 1, max_length = 200)
        )]
        user_name: Query<Option<String>>,
        /// Projects per page, 1 to 100.
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        size: Query<u32>,
        /// The `next_cursor` of the previous page, to get the page after it; opaque.
        #[oai(validator(max_length = 512))]
        cursor: Query<Option<String>>,
        /// The order of the results: `relevance` (default: best match first with `q`, newest
        /// first without it), `newest` or `oldest` (by creation time).
        #[oai(default)]
        sort: Query<SortBy>,
        /// Only projects created at or after this instant (RFC 3339, compared to the
        /// millisecond).
        #[oai(example = "example_created_after")]
        created_after: Query<Option<DateTime<Utc>>>,
        /// Only projects created before this instant (RFC 3339, compared to the millisecond);
        /// must be later than `created_after`.
        #[oai(example = "example_created_before")]
        created_before: Query<Option<DateTime<Utc>>>,
        /// Facets to count over every matching project, comma-separated: `hashtags`, `creators`.
        /// Each holds its 10 most frequent values with their counts.
        #[oai(
            default,
            explode = false,
            example = "example_facets",
            validator(max_items = 2)
        )]
        facets: Query<Vec<FacetName>>,
    ) -> SearchProjectsResponse {
        let mut facets: Vec<Facet> = facets.0.into_iter().map(Facet::from).collect();
        facets.sort();
        facets.dedup();
        let request = SearchRequest {
            text: q.0,
            hashtags: split_hashtags(hashtags.0),
            hashtag_mode: mode.0.into(),
            user_id: user_id.0.map(UserId),
            user_name: user_name.0,
            created_after: created_after.0,
            created_before: created_before.0,
            sort: sort.0.into(),
            facets,
            size: size.0 as usize,
            cursor: cursor.0,
        };
        match search(&state, &request).await {
            Ok(page) => SearchProjectsResponse::Ok(Json(page)),
            Err(error) => error.into(),
        }
    }

    /// Projects created by a user
    ///
    /// The projects the user with this id created, each with its hashtags and
    /// creators. `404` when no user has this id; an existing user without projects gets an empty
    /// page (the database is asked only then).
    #[oai(
        path = "/v1/users/:user_id/projects",
        method = "get",
        operation_id = "listUserProjects"
    )]
    async fn user_projects(
        &self,
        state: Data<&AppState>,
        /// The user's id.
        #[oai(example = "example_user_id_path", validator(minimum(value = "1")))]
        user_id: Path<i64>,
        /// Projects per page, 1 to 100.
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        size: Query<u32>,
        /// The `next_cursor` of the previous page, to get the page after it; opaque.
        #[oai(validator(max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> UserProjectsResponse {
        let user = UserId(user_id.0);
        let request = SearchRequest {
            user_id: Some(user),
            size: size.0 as usize,
            cursor: cursor.0,
            ..SearchRequest::default()
        };
        let page = match search(&state, &request).await {
            Ok(page) => page,
            Err(error) => return error.into(),
        };
        // Projects credited to the user prove that it exists. Without any, an unknown user and a
        // user who created nothing look the same: only the database tells them apart, so it is
        // asked then (and only then, which keeps it off the common path).
        if page.total == 0 {
            match state.lookup.user_exists(user).await {
                Ok(true) => {}
                Ok(false) => return ApiError::UserNotFound(user).into(),
                Err(error) => return ApiError::from(error).into(),
            }
        }
        UserProjectsResponse::Ok(Json(page))
    }

    /// Projects that use hashtags
    ///
    /// The projects that use any (default) or all of the hashtags, each with its
    /// hashtags and creators. Hashtags compare case- and `#`-insensitively.
    #[oai(
        path = "/v1/hashtags/projects",
        method = "get",
        operation_id = "listHashtagProjects"
    )]
    async fn hashtag_projects(
        &self,
        state: Data<&AppState>,
        /// Hashtags, comma-separated (`rust,search`) or repeated (`hashtags=rust&hashtags=search`);
        /// at least one, at most 20.
        #[oai(
            example = "example_hashtags",
            validator(min_items = 1, max_items = 20,)
        )]
        hashtags: Query<Vec<String>>,
        /// Whether projects must use `any` (default) or `all` of `hashtags`.
        #[oai(default)]
        mode: Query<HashtagMatch>,
        /// Projects per page, 1 to 100.
        #[oai(
            default = "default_size",
            validator(minimum(value = "1"), maximum(value = "100"))
        )]
        size: Query<u32>,
        /// The `next_cursor` of the previous page, to get the page after it; opaque.
        #[oai(validator(max_length = 512))]
        cursor: Query<Option<String>>,
    ) -> HashtagProjectsResponse {
        let hashtags = split_hashtags(hashtags.0);
        if hashtags.is_empty() {
            return ApiError::invalid("hashtags", "at least one hashtag is required").into();
        }
        let request = SearchRequest {
            hashtags,
            hashtag_mode: mode.0.into(),
            size: size.0 as usize,
            cursor: cursor.0,
            ..SearchRequest::default()
        };
        match search(&state, &request).await {
            Ok(page) => HashtagProjectsResponse::Ok(Json(page)),
            Err(error) => error.into(),
        }
    }
}

/// The `bad_request_handler` of `/v1/users/{user_id}/projects`, which names its path parameter.
fn user_projects_parse_failure(error: poem::Error) -> UserProjectsResponse {
    ApiError::from_poem_with_path(&error, &["user_id"]).into()
}

/// Validates and runs one search.
async fn search(state: &AppState, request: &SearchRequest) -> Result<ProjectPage, ApiError> {
    request.validate()?;
    let page = state.search.search(request).await?;
    Ok(page.into())
}

/// Splits comma-separated values, so `hashtags=a,b` and `hashtags=a&hashtags=b` mean the same.
/// Empty pieces are kept: validation refuses them instead of silently dropping a filter.
fn split_hashtags(values: Vec<String>) -> Vec<String> {
    values
        .iter()
        .flat_map(|value| value.split(','))
        .map(|piece| piece.trim().to_string())
        .collect()
}

fn default_size() -> u32 {
    DEFAULT_PAGE_SIZE as u32
}

fn example_q() -> Option<String> {
    Some("elasticsearch sync".into())
}

fn example_hashtags() -> Vec<String> {
    vec!["rust".into(), "search".into()]
}

fn example_user_id() -> Option<i64> {
    Some(3)
}

fn example_user_id_path() -> i64 {
    3
}

fn example_user_name() -> Option<String> {
    Some("jon smith".into())
}

fn example_created_after() -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(1_704_067_200, 0)
}

fn example_created_before() -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(1_767_225_600, 0)
}

fn example_facets() -> Vec<FacetName> {
    vec![FacetName::Hashtags, FacetName::Creators]
}

search_responses! {
    /// Responses of `GET /v1/projects/search`.
    #[oai(bad_request_handler = "parse_failure")]
    SearchProjectsResponse {
        /// A page of matching projects.
        Ok(ProjectPage),
        /// A parameter is malformed or out of range; `invalid_params` names it.
        BadRequest,
        /// The search engine is unavailable, or the server is busy: retry after `Retry-After` seconds.
        Unavailable,
    }
}
problem_responses!(SearchProjectsResponse { 400 => BadRequest });

search_responses! {
    /// Responses of `GET /v1/users/{user_id}/projects`.
    #[oai(bad_request_handler = "user_projects_parse_failure")]
    UserProjectsResponse {
        /// A page of the user's projects.
        Ok(ProjectPage),
        /// A parameter is malformed or out of range (`user_id` not a positive integer, ...);
        /// `invalid_params` names it.
        BadRequest,
        /// The search engine or the database is unavailable, or the server is busy: retry after
        /// `Retry-After` seconds.
        Unavailable,
        /// No user has this id.
        NotFound(UserNotFound) = 404,
    }
}
problem_responses!(UserProjectsResponse { 400 => BadRequest, 404 => NotFound });

search_responses! {
    /// Responses of `GET /v1/hashtags/projects`.
    #[oai(bad_request_handler = "parse_failure")]
    HashtagProjectsResponse {
        /// A page of the projects that use the hashtags.
        Ok(ProjectPage),
        /// A parameter is malformed or out of range (no hashtag, unknown `mode`, ...);
        /// `invalid_params` names it.
        BadRequest,
        /// The search engine is unavailable, or the server is busy: retry after `Retry-After` seconds.
        Unavailable,
    }
}
problem_responses!(HashtagProjectsResponse { 400 => BadRequest });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comma_separated_and_repeated_hashtags_mean_the_same() {
        assert_eq!(
            split_hashtags(vec!["rust, #Search".into(), "ml".into()]),
            vec!["rust", "#Search", "ml"]
        );
        assert_eq!(split_hashtags(vec!["rust,".into()]), vec!["rust", ""]);
        assert!(split_hashtags(Vec::new()).is_empty());
    }
}
