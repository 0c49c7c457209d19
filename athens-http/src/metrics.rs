//! Request metrics, recorded through the `metrics` facade, and `/metrics`, which renders everything
//! the process's Prometheus recorder holds: the API's metrics and the sync engine's `athens_sync_*`.

use std::sync::Mutex;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
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

/// Histogram buckets of request latency, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Histogram buckets of the sync engine's latencies, in seconds.
const SYNC_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

static INSTALLED: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// Installs a Prometheus recorder as the process's `metrics` recorder, with histogram buckets for
/// the API's and the sync engine's latencies, and returns its handle for [`AppState::new`].
///
/// Idempotent: later calls return the same handle. Fails when another recorder was installed by
/// other means.
pub fn install_metrics_recorder() -> Result<PrometheusHandle, BuildError> {
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(handle) = installed.as_ref() {
        return Ok(handle.clone());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Prefix("athens_http_".into()), HTTP_BUCKETS)?
        .set_buckets_for_metric(Matcher::Prefix("athens_sync_".into()), SYNC_BUCKETS)?
        .install_recorder()?;
    *installed = Some(handle.clone());
    Ok(handle)
}

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
        Some(handle) => handle
            .render()
            .with_content_type("text/plain; version=0.0.4; charset=utf-8")
            .into_response(),
        None => ApiError::RouteNotFound.into_response(),
    }
}
