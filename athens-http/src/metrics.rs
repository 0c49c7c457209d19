//! Request metrics, recorded through the `metrics` facade, and `/metrics`, which serves the
//! rendering the embedding program hands over (everything its recorder holds, the sync engine's
//! metrics included).

use std::time::Duration;

use poem::http::{Method, StatusCode};
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

use crate::error::ApiError;
use crate::state::AppState;

/// Requests served, by `route` (the route template, never the raw path), `method` and `status`.
pub const HTTP_REQUESTS: &str = "athens_http_requests_total";
/// Seconds from receiving a request to its response, by `route`, `method` and `status`.
pub const HTTP_REQUEST_SECONDS: &str = "athens_http_request_duration_seconds";
/// The `route` label of requests that matched no route (or were refused before routing).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Buckets of the request latency histogram, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The API's histograms and their buckets (in seconds), for the recorder the embedding program
/// installs: the API records through the `metrics` facade and installs no recorder itself.
pub const HISTOGRAM_BUCKETS: &[(&str, &[f64])] = &[(HTTP_REQUEST_SECONDS, HTTP_BUCKETS)];

/// Records one served request.
pub(crate) fn record_request(route: &str, method: &Method, status: StatusCode, elapsed: Duration) {
    let labels = [
        ("route", route.to_string()),
        ("method", method.as_str().to_string()),
        ("status", status.as_str().to_string()),
    ];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_SECONDS, &labels).record(elapsed.as_secs_f64());
}

/// `GET /metrics`: the Prometheus text exposition of every metric the recorder holds; `404` when
/// the application was given no recorder.
#[handler]
pub(crate) fn render(state: Data<&AppState>) -> Response {
    match &state.metrics {
        Some(render) => render()
            .with_content_type("text/plain; version=0.0.4; charset=utf-8")
            .into_response(),
        None => ApiError::RouteNotFound.into_response(),
    }
}
