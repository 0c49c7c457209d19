//! What the handlers share: the ports they call and the metrics they render.

use std::fmt;
use std::sync::Arc;

use athens_core::{ProjectSearch, SourceLookup};

/// Renders every metric the process records, in the Prometheus text format, for `/metrics`.
pub type RenderMetrics = Arc<dyn Fn() -> String + Send + Sync>;

/// The API's dependencies. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) search: Arc<dyn ProjectSearch>,
    pub(crate) lookup: Arc<dyn SourceLookup>,
    pub(crate) metrics: Option<RenderMetrics>,
}

impl AppState {
    /// The API over `search` (the index, for every search and for readiness) and `lookup` (the
    /// database, to tell an unknown user from one without projects, and for readiness).
    /// `/metrics` answers `404` until [`with_metrics`](Self::with_metrics) gives it something to
    /// render.
    pub fn new(search: Arc<dyn ProjectSearch>, lookup: Arc<dyn SourceLookup>) -> Self {
        Self {
            search,
            lookup,
            metrics: None,
        }
    }

    /// Serves `render` at `/metrics`: the rendering of the recorder the process installed, so the
    /// sync engine's metrics appear beside the API's (see [`HISTOGRAM_BUCKETS`](crate::HISTOGRAM_BUCKETS)
    /// for the API's histograms).
    #[must_use]
    pub fn with_metrics(mut self, render: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.metrics = Some(Arc::new(render));
        self
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState")
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}
