//! Probes: `/healthz` says the process serves, `/readyz` that its dependencies answer.

use athens_core::ErrorChain;
use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, OpenApi};

use super::ApiTag;
use crate::dto::Health;
use crate::error::{ApiError, Dependency, kinds, problem_responses};
use crate::problem::ProblemJson;
use crate::state::AppState;

/// The probe operations.
pub(crate) struct HealthApi;

#[OpenApi(tag = "ApiTag::Health")]
impl HealthApi {
    /// Liveness
    ///
    /// Always `200` while the process serves requests; checks no dependency, and is exempt from
    /// the concurrency limit.
    #[oai(path = "/healthz", method = "get", operation_id = "healthz")]
    async fn healthz(&self) -> HealthzResponse {
        HealthzResponse::Ok(Json(Health {
            status: "ok".into(),
            checks: Vec::new(),
        }))
    }

    /// Readiness
    ///
    /// `200` when the database answers and the search index answers with its alias present;
    /// otherwise `503`, with `failed_checks` naming what failed. Cheap enough for a load balancer
    /// to probe every few seconds: one row-less query and one alias lookup.
    #[oai(path = "/readyz", method = "get", operation_id = "readyz")]
    async fn readyz(&self, state: Data<&AppState>) -> ReadyzResponse {
        let (database, index) = tokio::join!(state.lookup.ping(), state.search.ready());
        let mut failed = Vec::new();
        if let Err(error) = database {
            tracing::warn!(error = %ErrorChain(&error), "readiness: database check failed");
            failed.push(Dependency::Database);
        }
        if let Err(error) = index {
            tracing::warn!(error = %ErrorChain(&error), "readiness: index check failed");
            failed.push(Dependency::Index);
        }
        if failed.is_empty() {
            ReadyzResponse::Ok(Json(Health {
                status: "ready".into(),
                checks: vec![
                    Dependency::Database.name().into(),
                    Dependency::Index.name().into(),
                ],
            }))
        } else {
            ApiError::NotReady(failed).into()
        }
    }
}

/// Responses of `GET /healthz`.
#[derive(ApiResponse)]
pub(crate) enum HealthzResponse {
    /// The process serves requests.
    #[oai(status = 200)]
    Ok(Json<Health>),
}

/// Responses of `GET /readyz`.
#[derive(ApiResponse)]
pub(crate) enum ReadyzResponse {
    /// The database and the search index answer.
    #[oai(status = 200)]
    Ok(Json<Health>),
    /// An unexpected error; quote `request_id` when reporting it.
    #[oai(status = 500)]
    Internal(ProblemJson<kinds::Internal>),
    /// A dependency does not answer (`failed_checks` names it), or the server is busy.
    #[oai(status = 503)]
    Unavailable(
        ProblemJson<kinds::NotReady>,
        /// Seconds to wait before retrying.
        #[oai(header = "Retry-After")]
        u32,
    ),
}
problem_responses!(ReadyzResponse {});
