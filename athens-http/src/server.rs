//! Assembling the application (API, spec, Swagger UI, metrics, middleware) and serving it.

use std::future::Future;
use std::io;

use poem::http::Method;
use poem::listener::TcpAcceptor;
use poem::middleware::{Compression, Cors};
use poem::web::CompressionLevel;
use poem::{Endpoint, EndpointExt, IntoEndpoint, Response, Route, Server, get};
use poem_openapi::{OpenApi, OpenApiService};

use crate::config::HttpConfig;
use crate::connection::TimeoutAcceptor;
use crate::metrics;
use crate::middleware::{Guard, Observe, REQUEST_ID_HEADER, RouteLabels};
use crate::page;
use crate::routes::{HealthApi, ProjectsApi, SuggestApi};
use crate::state::AppState;

/// Path of the OpenAPI document.
pub const SPEC_PATH: &str = "/openapi.json";
/// Path of Swagger UI.
pub const DOCS_PATH: &str = "/docs";

const DESCRIPTION: &str = "Search projects kept in sync from PostgreSQL: by creator, by hashtags \
and by fuzzy full text, with facet counts, sorting, date filters and \"did you mean\"; and \
as-you-type suggestions. Every result carries the project, its hashtags and its creators. Pages \
hold `size` projects (20 by default, at most 100); pass a page's `next_cursor` as `cursor` to get \
the next one. Errors are `application/problem+json` (RFC 9457) and name the offending parameter \
in `invalid_params`; every response carries an `x-request-id` header.";

/// The OpenAPI service: every operation, with the metadata of the spec. It needs an [`AppState`]
/// in the request data to serve (see [`app`]); its [`spec`](OpenApiService::spec) needs nothing.
pub fn api() -> OpenApiService<impl OpenApi, ()> {
    OpenApiService::new(
        (ProjectsApi, SuggestApi, HealthApi),
        "Athens",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
}

/// The OpenAPI 3 document of the API as pretty JSON, as committed in `docs/openapi.json` and
/// served at [`SPEC_PATH`].
pub fn spec_json() -> String {
    api().spec()
}

/// The whole application: the search page at `/`, the API, [`SPEC_PATH`], Swagger UI at
/// [`DOCS_PATH`] and `/metrics`,
/// behind request ids, metrics, compression, CORS (only when `config.cors_origins` lists origins)
/// and the limits of `config`.
pub fn app(state: AppState, config: &HttpConfig) -> impl Endpoint<Output = Response> + use<> {
    let api = api();
    let routes = RouteLabels::from_spec(&api.spec());
    let spec = api.spec_endpoint();
    let docs = api.swagger_ui();
    let endpoints = Route::new()
        .nest("/", page::WithPage(api.into_endpoint()))
        .at(page::SCRIPT_PATH, get(page::script))
        .at(page::STYLE_PATH, get(page::style))
        .at(SPEC_PATH, spec)
        .nest(DOCS_PATH, docs)
        .at("/metrics", get(metrics::render))
        .data(state);
    let cors = Cors::new()
        .allow_origins(config.cors_origins.iter().map(String::as_str))
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .expose_headers([REQUEST_ID_HEADER, "retry-after"])
        .max_age(600);
    let inner = Guard::new(endpoints, config)
        .with_if(!config.cors_origins.is_empty(), cors)
        // The fastest level: a page of results shrinks about as well, for a fraction of the CPU
        // (which the search engine, on the same hosts in small deployments, would rather have).
        .with(Compression::new().with_quality(CompressionLevel::Fastest));
    Observe {
        inner,
        routes,
        retry_after_secs: config.retry_after_secs,
    }
}

/// Serves the [`app`] of `state` on `config.addr` until `shutdown` completes, then lets the requests
/// in flight finish for up to `config.shutdown_grace_ms`.
pub async fn serve(
    state: AppState,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.addr.as_str()).await?;
    serve_on(listener, state, config, shutdown).await
}

/// Like [`serve`], on a listener already bound (to learn the port of `127.0.0.1:0` first).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    config: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "api listening");
    let acceptor = TimeoutAcceptor {
        inner: TcpAcceptor::from_tokio(listener)?,
        timeout: config.idle_timeout(),
    };
    Server::new_with_acceptor(acceptor)
        .name("athens-http")
        .idle_timeout(config.idle_timeout())
        .run_with_graceful_shutdown(app(state, config), shutdown, Some(config.shutdown_grace()))
        .await?;
    tracing::info!(%addr, "api stopped");
    Ok(())
}
