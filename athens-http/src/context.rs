//! What code deep in a request needs without threading it through: the request's id and the
//! configured `Retry-After`, set by the outermost middleware for the whole of the request's task and
//! read wherever a problem body is built.

use std::future::Future;
use std::sync::Arc;

tokio::task_local! {
    static CONTEXT: RequestContext;
}

/// The current request's context.
#[derive(Debug, Clone)]
pub(crate) struct RequestContext {
    id: Arc<str>,
    retry_after_secs: u32,
}

impl RequestContext {
    /// The context of request `id` on a server that asks clients to wait `retry_after_secs`.
    pub(crate) fn new(id: Arc<str>, retry_after_secs: u32) -> Self {
        Self {
            id,
            retry_after_secs,
        }
    }

    /// Runs `request` with this context current.
    pub(crate) async fn scope<F: Future>(self, request: F) -> F::Output {
        CONTEXT.scope(self, request).await
    }

    /// The current request's id, when called inside a request.
    pub(crate) fn current_id() -> Option<String> {
        CONTEXT.try_with(|context| context.id.to_string()).ok()
    }

    /// The `Retry-After` seconds configured for this server (1 outside a request).
    pub(crate) fn retry_after_secs() -> u32 {
        CONTEXT
            .try_with(|context| context.retry_after_secs)
            .unwrap_or(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_context_is_current_inside_its_scope_only() {
        assert_eq!(RequestContext::current_id(), None);
        assert_eq!(RequestContext::retry_after_secs(), 1);
        let inside = RequestContext::new("req-1".into(), 7)
            .scope(async {
                (
                    RequestContext::current_id(),
                    RequestContext::retry_after_secs(),
                )
            })
            .await;
        assert_eq!(inside, (Some("req-1".to_string()), 7));
    }
}
