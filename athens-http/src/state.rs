//! What the handlers share: the ports they call and the metrics they render.

use std::fmt;
use std::sync::Arc;

use athens_core::{DocumentSource, ProjectSearch};
use metrics_exporter_prometheus::PrometheusHandle;

/// The API's dependencies. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub(crate) search: Arc<dyn ProjectSearch>,
    pub(crate) source: Arc<dyn DocumentSource>,
    pub(crate) metrics: Option<PrometheusHandle>,
}

impl AppState {
    /// The API over `search` (the index, for every search and for readiness) and `source` (the
    /// database, to tell an unknown user from one without projects, and for readiness).
    ///
    /// `/metrics` renders `metrics` (a handle or an `Option` of one): pass the handle of the recorder
    /// the process installed (see [`install_metrics_recorder`](crate::install_metrics_recorder)) so
    /// the sync engine's metrics appear beside the API's. Without one, `/metrics` answers `404`.
    pub fn new(
        search: Arc<dyn ProjectSearch>,
        source: Arc<dyn DocumentSource>,
        metrics: impl Into<Option<PrometheusHandle>>,
    ) -> Self {
        Self {
            search,
            source,
            metrics: metrics.into(),
        }
    }
}

impl fmt::Debug for AppState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}
