//! As-you-type suggestions (`/v1/suggestions`): project names and slugs, hashtags and user names
//! completed from what was typed so far.

use athens_core::{DEFAULT_SUGGESTIONS, SuggestRequest};
use poem::web::Data;
use poem_openapi::OpenApi;
use poem_openapi::param::Query;
use poem_openapi::payload::Json;

use super::ApiTag;
use crate::error::{ApiError, parse_failure, problem_responses};
use crate::state::AppState;
use crate::suggestion::SuggestionList;

/// The operation that completes names.
pub(crate) struct SuggestApi;

#[OpenApi(tag = "ApiTag::Suggestions")]
impl SuggestApi {
    /// Suggest as you type
    ///
    /// Completes what was typed so far into project names and slugs, hashtags and the names of
    /// users who created projects: each matches from its start or from the start of any of its
    /// words (`smi` finds `John Smith`), case- and accent-insensitively; from four characters
    /// on, one typo is tolerated (two from eight). Built for search boxes: answers in a few
    /// milliseconds.
    #[oai(path = "/v1/suggestions", method = "get", operation_id = "suggest")]
    async fn suggest(
        &self,
        state: Data<&AppState>,
        /// The text typed so far.
        #[oai(example = "example_q", validator(min_length = 1, max_length = 200))]
        q: Query<String>,
        /// Suggestions of each kind, 1 to 10.
        #[oai(
            default = "default_limit",
            validator(minimum(value = "1"), maximum(value = "10"))
        )]
        limit: Query<u32>,
    ) -> SuggestResponse {
        let request = SuggestRequest {
            prefix: q.0,
            size: limit.0 as usize,
        };
        match suggest(&state, &request).await {
            Ok(list) => SuggestResponse::Ok(Json(list)),
            Err(error) => error.into(),
        }
    }
}

/// Validates and runs one completion.
async fn suggest(state: &AppState, request: &SuggestRequest) -> Result<SuggestionList, ApiError> {
    request.validate()?;
    Ok(state.search.suggest(request).await?.into())
}

fn default_limit() -> u32 {
    DEFAULT_SUGGESTIONS as u32
}

fn example_q() -> String {
    "elast".into()
}

search_responses! {
    /// Responses of `GET /v1/suggestions`.
    #[oai(bad_request_handler = "parse_failure")]
    SuggestResponse {
        /// The completions, each kind best first; empty lists when nothing completes the text.
        Ok(SuggestionList),
        /// A parameter is malformed or out of range; `invalid_params` names it.
        BadRequest,
        /// The search engine is unavailable, or the server is busy: retry after `Retry-After` seconds.
        Unavailable,
    }
}
problem_responses!(SuggestResponse { 400 => BadRequest });
