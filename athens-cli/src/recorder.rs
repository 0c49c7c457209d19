//! The process's metrics recorder: Prometheus, with the buckets of every histogram the sync engine
//! and the API record (each crate lists its own). The API serves its rendering at `/metrics`, the
//! EMF reporter reads it.

use athens_core::ErrorChain;
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// Installs the recorder as the process's; returns the handle that renders it.
pub fn install() -> Option<PrometheusHandle> {
    builder()
        .and_then(PrometheusBuilder::install_recorder)
        .map_err(|error| tracing::warn!(error = %ErrorChain(&error), "metrics disabled"))
        .ok()
}

/// A Prometheus recorder with the engine's and the API's histogram buckets.
fn builder() -> Result<PrometheusBuilder, BuildError> {
    let histograms = athens_core::engine::metrics::HISTOGRAM_BUCKETS
        .iter()
        .chain(athens_http::HISTOGRAM_BUCKETS);
    let mut builder = PrometheusBuilder::new();
    for (histogram, buckets) in histograms {
        builder = builder.set_buckets_for_metric(Matcher::Full((*histogram).into()), buckets)?;
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use athens_core::engine::metrics::{BATCH_SECONDS, CHANGE_LATENCY};
    use athens_http::HTTP_REQUEST_SECONDS;

    use super::*;

    #[test]
    fn the_engines_and_the_apis_histograms_have_their_buckets() {
        let recorder = builder().unwrap().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            metrics::histogram!(CHANGE_LATENCY).record(42.0);
            metrics::histogram!(BATCH_SECONDS).record(0.2);
            metrics::histogram!(HTTP_REQUEST_SECONDS).record(0.002);
        });
        let text = handle.render();
        for bucket in [
            format!("{CHANGE_LATENCY}_bucket{{le=\"300\"}} 1"),
            format!("{CHANGE_LATENCY}_bucket{{le=\"30\"}} 0"),
            format!("{BATCH_SECONDS}_bucket{{le=\"0.25\"}} 1"),
            format!("{HTTP_REQUEST_SECONDS}_bucket{{le=\"0.0025\"}} 1"),
        ] {
            assert!(text.contains(&bucket), "{bucket} in {text}");
        }
    }
}
