//! The API's error kinds and the one place that maps each to an HTTP status and a problem body.
//!
//! Port errors ([`SearchError`], [`SourceError`]) and the framework's own errors (parameter parse
//! failures, unknown routes) all become an [`ApiError`]; internal details are logged here, inside the
//! request's span, and never sent to the client.

use athens_core::{ErrorChain, SearchError, SourceError, UserId};
use poem::error::{MethodNotAllowedError, NotFoundError};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};
use poem_openapi::error::{ParseParamError, ParsePathError};

use crate::context::RequestContext;
use crate::parameters::parameter_rule;
use crate::problem::{InvalidParam, Problem, ProblemKind, problem_response};

/// A dependency of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dependency {
    /// The search engine behind [`athens_core::ProjectSearch`].
    Index,
    /// The database behind [`athens_core::SourceLookup`].
    Database,
}

impl Dependency {
    /// The name clients and logs see.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Dependency::Index => "index",
            Dependency::Database => "database",
        }
    }

    /// What it is, in words.
    fn describe(self) -> &'static str {
        match self {
            Dependency::Index => "search index",
            Dependency::Database => "database",
        }
    }
}

/// Which limit a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// Total header size.
    Headers,
    /// Length of the request target.
    Uri,
    /// Body size.
    Body,
}

/// Everything the API answers with a problem instead of a result.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ApiError {
    /// A request parameter is malformed or out of range.
    InvalidParam {
        /// The parameter, as the client spelled it.
        name: String,
        /// Why it is refused.
        reason: String,
    },
    /// The user of `/v1/users/{user_id}/projects` does not exist.
    UserNotFound(UserId),
    /// No route matches the path.
    RouteNotFound,
    /// The route exists but not for this method.
    MethodNotAllowed,
    /// Another client error reported by the framework (unsupported media type, ...).
    Client {
        /// Its 4xx status.
        status: StatusCode,
        /// Its message, which describes the request only.
        detail: String,
    },
    /// The request is larger than a configured limit.
    TooLarge(Limit),
    /// A dependency cannot answer now.
    Unavailable(Dependency),
    /// Too many requests are in flight.
    Busy,
    /// The request took longer than the configured timeout.
    TimedOut,
    /// Readiness checks failed.
    NotReady(Vec<Dependency>),
    /// A bug or an unreadable answer from a dependency: logged where it is converted.
    Internal,
}

impl ApiError {
    /// The refusal of `name` for `reason`.
    pub(crate) fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        ApiError::InvalidParam {
            name: name.into(),
            reason: reason.into(),
        }
    }

    /// The refusal of a parameter the framework could not parse or validate: the reason says what
    /// the parameter must be, in the API's words where it has them.
    fn unparsable(name: &str, framework_reason: &str) -> Self {
        let reason = parameter_rule(name).unwrap_or_else(|| framework_reason.to_string());
        ApiError::invalid(name, reason)
    }

    /// The HTTP status of each kind: the only place that decides it.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParam { .. } => StatusCode::BAD_REQUEST,
            ApiError::UserNotFound(_) | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Client { status, .. } => *status,
            ApiError::TooLarge(Limit::Headers) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ApiError::TooLarge(Limit::Uri) => StatusCode::URI_TOO_LONG,
            ApiError::TooLarge(Limit::Body) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unavailable(_)
            | ApiError::Busy
            | ApiError::TimedOut
            | ApiError::NotReady(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Seconds the client should wait before retrying, for the kinds where retrying helps.
    pub(crate) fn retry_after(&self) -> Option<u32> {
        (self.status() == StatusCode::SERVICE_UNAVAILABLE).then(RequestContext::retry_after_secs)
    }

    fn kind(&self) -> (&'static str, &'static str) {
        match self {
            ApiError::InvalidParam { .. } => ("invalid-parameter", "Invalid request parameter"),
            ApiError::UserNotFound(_) => ("user-not-found", "User not found"),
            ApiError::RouteNotFound => ("not-found", "Not found"),
            ApiError::MethodNotAllowed => ("method-not-allowed", "Method not allowed"),
            ApiError::Client { .. } => ("bad-request", "Bad request"),
            ApiError::TooLarge(_) => ("request-too-large", "Request too large"),
            ApiError::Unavailable(_) => ("unavailable", "Service unavailable"),
            ApiError::Busy => ("busy", "Too many requests in flight"),
            ApiError::TimedOut => ("timeout", "Request timed out"),
            ApiError::NotReady(_) => ("not-ready", "Not ready"),
            ApiError::Internal => ("internal", "Internal error"),
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::InvalidParam { name, reason } => format!("{name}: {reason}"),
            ApiError::UserNotFound(user) => format!("no user has id {user}"),
            ApiError::RouteNotFound => "no resource at this path".into(),
            ApiError::MethodNotAllowed => "this resource does not support the method".into(),
            ApiError::Client { detail, .. } => detail.clone(),
            ApiError::TooLarge(Limit::Headers) => "the request headers are too large".into(),
            ApiError::TooLarge(Limit::Uri) => "the request target is too long".into(),
            ApiError::TooLarge(Limit::Body) => "the request body is too large".into(),
            ApiError::Unavailable(dependency) => {
                format!("the {} is unavailable, retry later", dependency.describe())
            }
            ApiError::Busy => "the server is at its concurrency limit, retry later".into(),
            ApiError::TimedOut => "the request took too long, retry later".into(),
            ApiError::NotReady(failed) => {
                let names: Vec<_> = failed.iter().map(|d| d.describe()).collect();
                format!("not ready: {} unavailable", names.join(", "))
            }
            ApiError::Internal => "an unexpected error occurred; quote the request id when \
                 reporting it"
                .into(),
        }
    }

    /// The problem body for this error, with the current request's id.
    pub(crate) fn to_problem(&self) -> Problem {
        let (kind, title) = self.kind();
        let invalid_params = match self {
            ApiError::InvalidParam { name, reason } => vec![InvalidParam {
                name: name.clone(),
                reason: reason.clone(),
            }],
            _ => Vec::new(),
        };
        let failed_checks = match self {
            ApiError::NotReady(failed) => failed.iter().map(|d| d.name().to_string()).collect(),
            _ => Vec::new(),
        };
        Problem {
            problem_type: format!("urn:athens:problem:{kind}"),
            title: title.into(),
            status: self.status().as_u16(),
            detail: self.detail(),
            request_id: RequestContext::current_id(),
            invalid_params,
            failed_checks,
        }
    }

    /// Classifies an error raised by poem or poem-openapi (parse failures, unknown routes, ...).
    pub(crate) fn from_poem(error: &poem::Error) -> Self {
        Self::from_poem_with_path(error, &[])
    }

    /// Like [`from_poem`](Self::from_poem) for an operation whose path parameters are
    /// `path_params`, in order: poem-openapi reports them as `param0`, `param1`, ...
    pub(crate) fn from_poem_with_path(error: &poem::Error, path_params: &[&str]) -> Self {
        if let Some(error) = error.downcast_ref::<ParseParamError>() {
            return ApiError::unparsable(error.name, &error.reason);
        }
        if let Some(error) = error.downcast_ref::<ParsePathError>() {
            let name = error
                .name
                .strip_prefix("param")
                .and_then(|index| index.parse::<usize>().ok())
                .and_then(|index| path_params.get(index))
                .copied()
                .unwrap_or(error.name);
            return ApiError::unparsable(name, &error.reason);
        }
        if error.is::<NotFoundError>() {
            return ApiError::RouteNotFound;
        }
        if error.is::<MethodNotAllowedError>() {
            return ApiError::MethodNotAllowed;
        }
        let status = error.status();
        if status.is_client_error() {
            return ApiError::Client {
                status,
                detail: error.to_string(),
            };
        }
        tracing::error!(error = %ErrorChain(error), %status, "request failed");
        ApiError::Internal
    }
}

impl From<SearchError> for ApiError {
    fn from(error: SearchError) -> Self {
        match error {
            SearchError::InvalidRequest { field, reason } => ApiError::invalid(field, reason),
            SearchError::Unavailable { .. } => {
                tracing::warn!(error = %ErrorChain(&error), "search engine unavailable");
                ApiError::Unavailable(Dependency::Index)
            }
            SearchError::Internal { .. } => {
                tracing::error!(error = %ErrorChain(&error), "search failed");
                ApiError::Internal
            }
        }
    }
}

impl From<SourceError> for ApiError {
    fn from(error: SourceError) -> Self {
        if error.is_retryable() {
            tracing::warn!(error = %ErrorChain(&error), "database unavailable");
            ApiError::Unavailable(Dependency::Database)
        } else {
            tracing::error!(error = %ErrorChain(&error), "database query failed");
            ApiError::Internal
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = problem_response(&self.to_problem());
        if let Some(seconds) = self.retry_after() {
            response
                .headers_mut()
                .insert(poem::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Implements `From<ApiError>` for an operation's response enum. Every such enum has
/// `Internal(ProblemJson)` and `Unavailable(ProblemJson, u32)`; the other problem variants are
/// listed by status: `problem_responses!(Response { 400 => BadRequest, 404 => NotFound })`. The
/// variant follows [`ApiError::status`], the one mapping of kinds to statuses.
macro_rules! problem_responses {
    ($response:ident { $($status:literal => $variant:ident),* $(,)? }) => {
        impl From<$crate::error::ApiError> for $response {
            fn from(error: $crate::error::ApiError) -> Self {
                use $crate::problem::ProblemJson;
                let problem = error.to_problem();
                match problem.status {
                    $($status => Self::$variant(ProblemJson::new(problem)),)*
                    503 => Self::Unavailable(ProblemJson::new(problem), error.retry_after().unwrap_or(1)),
                    500 => Self::Internal(ProblemJson::new(problem)),
                    status => {
                        ::tracing::error!(status, "operation has no response for this status");
                        Self::Internal(ProblemJson::new($crate::error::ApiError::Internal.to_problem()))
                    }
                }
            }
        }
    };
}
pub(crate) use problem_responses;

/// The example problems of the spec, one kind per response status.
pub(crate) mod kinds {
    use athens_core::UserId;

    use super::{ApiError, Dependency, Problem, ProblemKind};
    use crate::parameters::parameter_rule;

    fn example(error: ApiError) -> Problem {
        Problem {
            request_id: Some("3f8c1e0a-6b1d-4b7e-9a53-0c6f1e2d4a5b".into()),
            ..error.to_problem()
        }
    }

    /// `400`: a refused parameter.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct BadRequest;
    impl ProblemKind for BadRequest {
        fn example() -> Problem {
            example(ApiError::invalid(
                "size",
                parameter_rule("size").unwrap_or_default(),
            ))
        }
    }

    /// `404`: an unknown user.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct UserNotFound;
    impl ProblemKind for UserNotFound {
        fn example() -> Problem {
            example(ApiError::UserNotFound(UserId(42)))
        }
    }

    /// `500`: a bug or an unreadable answer.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Internal;
    impl ProblemKind for Internal {
        fn example() -> Problem {
            example(ApiError::Internal)
        }
    }

    /// `503` from a search: a dependency is down or the server is busy.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct Unavailable;
    impl ProblemKind for Unavailable {
        fn example() -> Problem {
            example(ApiError::Unavailable(Dependency::Index))
        }
    }

    /// `503` from `/readyz`: the failed checks.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) struct NotReady;
    impl ProblemKind for NotReady {
        fn example() -> Problem {
            example(ApiError::NotReady(vec![Dependency::Index]))
        }
    }
}

/// The `bad_request_handler` of every operation: a parameter poem-openapi could not parse becomes
/// the operation's own 400 problem naming the parameter.
pub(crate) fn parse_failure<R: From<ApiError>>(error: poem::Error) -> R {
    R::from(ApiError::from_poem(&error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_errors_map_to_statuses() {
        let invalid = SearchError::InvalidRequest {
            field: "cursor",
            reason: "bad".into(),
        };
        let error = ApiError::from(invalid);
        assert_eq!(error.status(), StatusCode::BAD_REQUEST);
        assert_eq!(error.to_problem().invalid_params[0].name, "cursor");

        let error = ApiError::from(SearchError::unavailable("connection refused"));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(error.retry_after().is_some());
        assert!(!error.to_problem().detail.contains("refused"));

        let error = ApiError::from(SearchError::internal("secret stack trace"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.to_problem().detail.contains("secret"));
        assert!(error.retry_after().is_none());
    }

    #[test]
    fn source_errors_map_to_statuses() {
        let error = ApiError::from(SourceError::unavailable("down"));
        assert_eq!(error.status(), StatusCode::SERVICE_UNAVAILABLE);
        let error = ApiError::from(SourceError::misconfigured("password"));
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.to_problem().detail.contains("password"));
    }

    #[test]
    fn internal_errors_log_their_whole_chain_and_answer_a_generic_body() {
        let (logs, _guard) = athens_core::testing::CapturedLogs::start();
        let root = std::io::Error::other("tls handshake eof from db.internal:5432");
        let error = ApiError::from(SourceError::misconfigured("cannot count").with_source(root));
        let body = format!("{:?}", error.to_problem());
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            !body.contains("db.internal") && !body.contains("count"),
            "{body}"
        );
        let line = logs.line("database query failed").unwrap_or_default();
        assert!(
            line.contains("source misconfigured: cannot count: tls handshake eof from db.internal"),
            "{}",
            logs.text()
        );

        let root = std::io::Error::other("shard [3] failed: circuit breaker");
        // Other tests of this binary hit the same callsite on their threads, with no subscriber:
        // recompute its interest now that this thread has one.
        tracing::callsite::rebuild_interest_cache();
        let error = ApiError::from(SearchError::internal("bad answer").with_source(root));
        assert!(!format!("{:?}", error.to_problem()).contains("circuit"));
        let line = logs.line("search failed").unwrap_or_default();
        assert!(
            line.contains("bad answer: shard [3] failed: circuit breaker"),
            "{}",
            logs.text()
        );
    }

    #[test]
    fn framework_errors_map_to_statuses() {
        let error = poem::Error::from(ParseParamError {
            name: "size",
            reason: "not a number".into(),
        });
        assert_eq!(
            ApiError::from_poem(&error),
            ApiError::invalid("size", "must be an integer from 1 to 100")
        );
        let error = poem::Error::from(ParsePathError {
            name: "param0",
            reason: "not a number".into(),
        });
        assert_eq!(
            ApiError::from_poem_with_path(&error, &["user_id"]),
            ApiError::invalid("user_id", "must be a positive integer")
        );
        let error = poem::Error::from(NotFoundError);
        assert_eq!(ApiError::from_poem(&error), ApiError::RouteNotFound);
        let error = poem::Error::from_status(StatusCode::BAD_GATEWAY);
        assert_eq!(ApiError::from_poem(&error), ApiError::Internal);
    }
}
