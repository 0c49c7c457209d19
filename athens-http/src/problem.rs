//! RFC 9457 problem details: the body of every error response, served as `application/problem+json`.

use poem::http::{HeaderValue, StatusCode, header};
use poem::{IntoResponse, Response};
use poem_openapi::Object;
use poem_openapi::payload::Payload;
use std::marker::PhantomData;

use poem_openapi::registry::{MetaSchema, MetaSchemaRef, Registry};
use poem_openapi::types::{Example, ToJSON, Type};

/// The media type of problem details.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// What went wrong, in the shape of RFC 9457 problem details.
#[derive(Debug, Clone, PartialEq, Object)]
#[oai(example)]
pub struct Problem {
    /// A URI that identifies the kind of problem (`urn:athens:problem:invalid-parameter`, ...);
    /// clients branch on it.
    #[oai(rename = "type")]
    pub problem_type: String,
    /// A short summary of the kind of problem, the same for every occurrence.
    pub title: String,
    /// The HTTP status code of this response.
    pub status: u16,
    /// What went wrong in this occurrence, in words for a person.
    pub detail: String,
    /// The id of the request (also in the `x-request-id` response header): quote it when reporting
    /// a problem.
    #[oai(skip_serializing_if_is_none)]
    pub request_id: Option<String>,
    /// The request parameters that were refused, and why (400 only).
    #[oai(default, skip_serializing_if_is_empty)]
    pub invalid_params: Vec<InvalidParam>,
    /// The readiness checks that failed: `database`, `index` (`/readyz` only).
    #[oai(default, skip_serializing_if_is_empty)]
    pub failed_checks: Vec<String>,
}

impl Example for Problem {
    fn example() -> Self {
        Self {
            problem_type: "urn:athens:problem:invalid-parameter".into(),
            title: "Invalid request parameter".into(),
            status: 400,
            detail: "size: must be an integer from 1 to 100".into(),
            request_id: Some("3f8c1e0a-6b1d-4b7e-9a53-0c6f1e2d4a5b".into()),
            invalid_params: vec![InvalidParam::example()],
            failed_checks: Vec::new(),
        }
    }
}

/// One refused request parameter.
#[derive(Debug, Clone, PartialEq, Eq, Object)]
#[oai(example)]
pub struct InvalidParam {
    /// The parameter's name, as in the request (`q`, `size`, `user_id`, ...).
    pub name: String,
    /// Why it was refused.
    pub reason: String,
}

impl Example for InvalidParam {
    fn example() -> Self {
        Self {
            name: "size".into(),
            reason: "must be an integer from 1 to 100".into(),
        }
    }
}

/// Which problems a response carries, for its example in the spec: each status of each operation
/// shows an example of its own kind rather than the one example of the [`Problem`] schema.
pub(crate) trait ProblemKind: Send + 'static {
    /// A typical problem of this kind.
    fn example() -> Problem;
}

/// A [`Problem`] as a response payload: JSON with the `application/problem+json` media type,
/// documented with the example of its kind `K`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ProblemJson<K>(pub(crate) Problem, PhantomData<K>);

impl<K> ProblemJson<K> {
    /// The payload of `problem`.
    pub(crate) fn new(problem: Problem) -> Self {
        Self(problem, PhantomData)
    }
}

impl<K: ProblemKind> Payload for ProblemJson<K> {
    const CONTENT_TYPE: &'static str = PROBLEM_CONTENT_TYPE;

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            all_of: vec![Problem::schema_ref()],
            example: K::example().to_json(),
            ..MetaSchema::ANY
        }))
    }

    fn register(registry: &mut Registry) {
        Problem::register(registry);
    }
}

impl<K: Send> IntoResponse for ProblemJson<K> {
    fn into_response(self) -> Response {
        problem_response(&self.0)
    }
}

/// `problem` as a response with its status.
pub(crate) fn problem_response(problem: &Problem) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = problem.to_json().unwrap_or_default().to_string();
    Response::builder()
        .status(status)
        .header(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
        )
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn serializes_as_problem_json_with_its_status() {
        let response = problem_response(&Problem::example());
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE).unwrap(),
            PROBLEM_CONTENT_TYPE
        );
        let body: serde_json::Value =
            serde_json::from_slice(&response.into_body().into_vec().await.unwrap()).unwrap();
        assert_eq!(body["type"], "urn:athens:problem:invalid-parameter");
        assert_eq!(body["invalid_params"][0]["name"], "size");
        assert!(body.get("failed_checks").is_none());
    }
}
