//! What wraps every request: its id, span, metrics and final problem conversion ([`Observe`],
//! outermost), and the limits that protect the process ([`Guard`], innermost).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use poem::PathPattern;
use poem::http::{HeaderValue, header};
use poem::{Endpoint, IntoResponse, Request, Response, Result};
use poem_openapi::OperationId;
use tokio::sync::Semaphore;
use tracing::Instrument;

use crate::config::HttpConfig;
use crate::context::RequestContext;
use crate::error::{ApiError, Limit};
use crate::metrics::{UNMATCHED_ROUTE, record_request};

/// The header that carries the request id, in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
const MAX_REQUEST_ID_LEN: usize = 128;

/// The incoming request id when it is sane (1 to 128 characters among ASCII letters, digits and
/// `-_.:`), else a fresh UUID.
fn request_id(request: &Request) -> Arc<str> {
    let incoming = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID_LEN
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        });
    match incoming {
        Some(id) => id.into(),
        None => uuid::Uuid::new_v4().to_string().into(),
    }
}

/// Turns an error that escaped the endpoints into a problem response, keeping its route.
pub(crate) fn problem_from_error(error: poem::Error) -> Response {
    let pattern = error.data::<PathPattern>().cloned();
    let operation = error.data::<OperationId>().cloned();
    let mut response = ApiError::from_poem(&error).into_response();
    if let Some(pattern) = pattern {
        response.set_data(pattern);
    }
    if let Some(operation) = operation {
        response.set_data(operation);
    }
    response
}

/// The route label of each operation: its path template as in the spec
/// (`/v1/users/{user_id}/projects`), by operation id. poem's own route pattern for it names path
/// parameters `:param0`, ..., so operations are labelled from the spec instead.
#[derive(Debug, Clone, Default)]
pub(crate) struct RouteLabels(Arc<HashMap<String, String>>);

impl RouteLabels {
    /// Reads the operations of an OpenAPI document.
    pub(crate) fn from_spec(spec: &str) -> Self {
        let mut labels = HashMap::new();
        let spec: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        for (path, item) in spec["paths"].as_object().into_iter().flatten() {
            for operation in item.as_object().into_iter().flatten().map(|(_, op)| op) {
                if let Some(id) = operation["operationId"].as_str() {
                    labels.insert(id.to_string(), path.clone());
                }
            }
        }
        Self(Arc::new(labels))
    }

    /// The label of a response: its operation's template, else the route pattern that matched,
    /// else [`UNMATCHED_ROUTE`].
    fn of<'a>(&'a self, response: &'a Response) -> &'a str {
        if let Some(label) = response
            .data::<OperationId>()
            .and_then(|id| self.0.get(id.0))
        {
            return label;
        }
        match response.data::<PathPattern>() {
            Some(pattern) if !pattern.0.is_empty() && &*pattern.0 != "/" => &pattern.0,
            _ => UNMATCHED_ROUTE,
        }
    }
}

/// Outermost layer: gives the request its id (echoed in `x-request-id`), a tracing span and a
/// [`RequestContext`], turns any error into a problem response, records metrics by route template,
/// and logs one line per request.
pub(crate) struct Observe<E> {
    pub(crate) inner: E,
    pub(crate) routes: RouteLabels,
    pub(crate) retry_after_secs: u32,
}

impl<E: Endpoint> Endpoint for Observe<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> Result<Response> {
        let started = Instant::now();
        let id = request_id(&request);
        let method = request.method().clone();
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %method,
            path = %request.uri().path(),
        );
        let context = RequestContext::new(id.clone(), self.retry_after_secs);
        let served = async {
            let mut response = match self.inner.call(request).await {
                Ok(output) => output.into_response(),
                Err(error) => problem_from_error(error),
            };
            let status = response.status();
            let route = self.routes.of(&response);
            let elapsed = started.elapsed();
            record_request(route, &method, status, elapsed);
            tracing::info!(
                status = status.as_u16(),
                route,
                elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                "request served"
            );
            if let Ok(value) = HeaderValue::from_str(&id) {
                response.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            response
        };
        Ok(context.scope(served.instrument(span)).await)
    }
}

/// Innermost layer: refuses oversized requests, caps the requests in flight and their duration, and
/// turns the router's errors into problem responses (so CORS and compression apply to them too).
/// `/healthz` and `/metrics` skip the concurrency limit and the timeout.
pub(crate) struct Guard<E> {
    pub(crate) inner: E,
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) config: HttpConfig,
}

impl<E> Guard<E> {
    pub(crate) fn new(inner: E, config: &HttpConfig) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(config.max_concurrency.get())),
            config: config.clone(),
        }
    }

    fn check_size(&self, request: &Request) -> Result<(), ApiError> {
        let target = request
            .uri()
            .path_and_query()
            .map_or(0, |pq| pq.as_str().len());
        if target > self.config.max_uri_bytes {
            return Err(ApiError::TooLarge(Limit::Uri));
        }
        let headers: usize = request
            .headers()
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        if headers > self.config.max_header_bytes {
            return Err(ApiError::TooLarge(Limit::Headers));
        }
        let body = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        if body > self.config.max_body_bytes {
            return Err(ApiError::TooLarge(Limit::Body));
        }
        Ok(())
    }
}

impl<E: Endpoint> Endpoint for Guard<E> {
    type Output = Response;

    async fn call(&self, request: Request) -> Result<Response> {
        if let Err(error) = self.check_size(&request) {
            return Ok(error.into_response());
        }
        let exempt = matches!(request.uri().path(), "/healthz" | "/metrics");
        let result = if exempt {
            self.inner.call(request).await
        } else {
            let Ok(_permit) = self.permits.clone().try_acquire_owned() else {
                tracing::warn!("concurrency limit reached");
                return Ok(ApiError::Busy.into_response());
            };
            let timeout = self.config.request_timeout();
            match tokio::time::timeout(timeout, self.inner.call(request)).await {
                Ok(result) => result,
                Err(_) => {
                    tracing::warn!(timeout_ms = timeout.as_millis() as u64, "request timed out");
                    return Ok(ApiError::TimedOut.into_response());
                }
            }
        };
        Ok(match result {
            Ok(output) => output.into_response(),
            Err(error) => problem_from_error(error),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use poem::endpoint::make;
    use poem::http::StatusCode;
    use poem::test::{TestClient, TestResponse};
    use tokio::sync::Notify;

    use super::*;

    fn guarded(
        config: &HttpConfig,
        release: Arc<Notify>,
    ) -> impl Endpoint<Output = Response> + use<> {
        let slow = make(move |_| {
            let release = release.clone();
            async move {
                release.notified().await;
                "done"
            }
        });
        Observe {
            inner: Guard::new(slow, config),
            routes: RouteLabels::default(),
            retry_after_secs: 7,
        }
    }

    /// Asserts a `503` with the guard's `Retry-After` and the problem type of `kind`.
    async fn refused(response: TestResponse, kind: &str) {
        response.assert_status(StatusCode::SERVICE_UNAVAILABLE);
        response.assert_header("retry-after", "7");
        let body = response.json().await;
        body.value()
            .object()
            .get("type")
            .assert_string(&format!("urn:athens:problem:{kind}"));
    }

    #[tokio::test]
    async fn a_request_past_the_timeout_is_a_503_with_retry_after() {
        let config = HttpConfig {
            request_timeout_ms: 50,
            ..HttpConfig::default()
        };
        let client = TestClient::new(guarded(&config, Arc::new(Notify::new())));
        refused(client.get("/v1/projects/search").send().await, "timeout").await;
    }

    /// Sends `GET uri` to `endpoint` from a task of its own, and gives it 50 ms to get in.
    async fn in_flight<E: Endpoint + 'static>(
        endpoint: &Arc<E>,
        uri: &'static str,
    ) -> tokio::task::JoinHandle<Response> {
        let endpoint = endpoint.clone();
        let request = tokio::spawn(async move {
            endpoint
                .get_response(Request::builder().uri_str(uri).finish())
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        request
    }

    #[tokio::test]
    async fn requests_beyond_the_concurrency_limit_are_refused_at_once() {
        let config = HttpConfig {
            max_concurrency: std::num::NonZeroUsize::MIN,
            ..HttpConfig::default()
        };
        let release = Arc::new(Notify::new());
        let endpoint = Arc::new(guarded(&config, release.clone()));
        let first = in_flight(&endpoint, "/a").await;

        let client = TestClient::new(endpoint.clone());
        refused(client.get("/b").send().await, "busy").await;

        // Liveness is exempt: it waits for its own release instead of being refused.
        let healthz = in_flight(&endpoint, "/healthz").await;
        release.notify_waiters();
        assert_eq!(first.await.unwrap().status(), StatusCode::OK);
        assert_eq!(healthz.await.unwrap().status(), StatusCode::OK);
    }
}
