//! Routing, parameter parsing and problem bodies, through the whole application.
//!
//! Every request here is refused (or served) before a port is called, so the ports are a stub that
//! fails if called: searches themselves are tested against the real adapters in
//! `tests/integration`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use athens_core::{
    ProjectSearch, SearchError, SearchPage, SearchRequest, SourceError, SourceLookup,
    SuggestRequest, Suggestions, UserId,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
use poem::Endpoint;
use poem::http::StatusCode;
use poem::test::{TestClient, TestResponse};

use crate::{AppState, HttpConfig, PROBLEM_CONTENT_TYPE, REQUEST_ID_HEADER, app, spec_json};

/// A port that must never be reached: it counts calls and answers an error. Only for these
/// routing and parsing tests, where requests are refused before any port is called.
#[derive(Default)]
struct Unreachable {
    calls: AtomicUsize,
}

impl Unreachable {
    fn called(&self) -> SearchError {
        self.calls.fetch_add(1, Ordering::SeqCst);
        SearchError::internal("a port was called")
    }

    fn source_called(&self) -> SourceError {
        self.calls.fetch_add(1, Ordering::SeqCst);
        SourceError::invalid("a port was called")
    }
}

#[async_trait]
impl ProjectSearch for Unreachable {
    async fn search(&self, _: &SearchRequest) -> Result<SearchPage, SearchError> {
        Err(self.called())
    }
    async fn suggest(&self, _: &SuggestRequest) -> Result<Suggestions, SearchError> {
        Err(self.called())
    }
    async fn ready(&self) -> Result<(), SearchError> {
        Err(self.called())
    }
}

#[async_trait]
impl SourceLookup for Unreachable {
    async fn ping(&self) -> Result<(), SourceError> {
        Err(self.source_called())
    }
    async fn user_exists(&self, _: UserId) -> Result<bool, SourceError> {
        Err(self.source_called())
    }
    async fn count(&self) -> Result<u64, SourceError> {
        Err(self.source_called())
    }
}

struct Harness<E> {
    client: TestClient<E>,
    ports: Arc<Unreachable>,
}

fn harness(config: &HttpConfig) -> Harness<impl Endpoint + use<>> {
    let ports = Arc::new(Unreachable::default());
    let state = AppState::new(ports.clone(), ports.clone()).with_metrics(String::new);
    Harness {
        client: TestClient::new(app(state, config)),
        ports,
    }
}

/// Asserts a problem response with `status`, and that the ports were not called; returns its body.
async fn problem<E>(
    harness: &Harness<E>,
    response: TestResponse,
    status: StatusCode,
) -> serde_json::Value {
    response.assert_status(status);
    response.assert_content_type(PROBLEM_CONTENT_TYPE);
    let request_id = response
        .0
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let body: serde_json::Value =
        serde_json::from_str(&response.0.into_body().into_string().await.unwrap()).unwrap();
    assert_eq!(body["status"], status.as_u16());
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .starts_with("urn:athens:problem:")
    );
    assert_eq!(body["request_id"].as_str(), request_id.as_deref());
    assert_eq!(
        harness.ports.calls.load(Ordering::SeqCst),
        0,
        "a port was called"
    );
    body
}

/// Asserts that `uri` is refused with a 400 naming `param`.
async fn assert_invalid<E: Endpoint>(harness: &Harness<E>, uri: &str, param: &str) {
    let response = harness.client.get(uri).send().await;
    let body = problem(harness, response, StatusCode::BAD_REQUEST).await;
    assert_eq!(
        body["type"], "urn:athens:problem:invalid-parameter",
        "{uri}"
    );
    assert_eq!(body["invalid_params"][0]["name"], param, "{uri}: {body}");
    assert!(
        !body["invalid_params"][0]["reason"]
            .as_str()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn malformed_parameters_are_problems_naming_the_parameter() {
    let h = harness(&HttpConfig::default());
    let long = "x".repeat(201);
    let cases: Vec<(String, &str)> = vec![
        ("/v1/users/abc/projects".into(), "user_id"),
        ("/v1/users/0/projects".into(), "user_id"),
        ("/v1/users/-4/projects".into(), "user_id"),
        ("/v1/users/99999999999999999999/projects".into(), "user_id"),
        ("/v1/users/1/projects?size=0".into(), "size"),
        ("/v1/users/1/projects?cursor=".into(), "cursor"),
        ("/v1/projects/search?size=0".into(), "size"),
        ("/v1/projects/search?size=101".into(), "size"),
        ("/v1/projects/search?size=ten".into(), "size"),
        ("/v1/projects/search?q=".into(), "q"),
        ("/v1/projects/search?q=%20%20%20".into(), "q"),
        (format!("/v1/projects/search?q={long}"), "q"),
        ("/v1/projects/search?q=a%00b".into(), "q"),
        ("/v1/projects/search?user_name=".into(), "user_name"),
        (format!("/v1/projects/search?user_name={long}"), "user_name"),
        ("/v1/projects/search?user_id=abc".into(), "user_id"),
        ("/v1/projects/search?user_id=0".into(), "user_id"),
        ("/v1/projects/search?mode=sometimes".into(), "mode"),
        ("/v1/projects/search?hashtags=%23".into(), "hashtags"),
        ("/v1/projects/search?hashtags=rust,".into(), "hashtags"),
        (
            format!("/v1/projects/search?cursor={}", "c".repeat(513)),
            "cursor",
        ),
        ("/v1/hashtags/projects".into(), "hashtags"),
        ("/v1/hashtags/projects?hashtags=".into(), "hashtags"),
        (
            "/v1/hashtags/projects?hashtags=rust&mode=ALL!".into(),
            "mode",
        ),
        (
            "/v1/hashtags/projects?hashtags=rust&size=1000".into(),
            "size",
        ),
        (
            format!("/v1/hashtags/projects?hashtags={}", vec!["t"; 21].join(",")),
            "hashtags",
        ),
        (
            format!("/v1/hashtags/projects?hashtags={}", "h".repeat(101)),
            "hashtags",
        ),
    ];
    for (uri, param) in cases {
        assert_invalid(&h, &uri, param).await;
    }
}

#[tokio::test]
async fn bad_sorts_facets_dates_and_suggestions_are_problems_naming_the_parameter() {
    let h = harness(&HttpConfig::default());
    let cases = [
        ("/v1/projects/search?sort=best", "sort"),
        ("/v1/projects/search?sort=", "sort"),
        ("/v1/projects/search?facets=hashtags,colors", "facets"),
        (
            "/v1/projects/search?facets=hashtags,creators,hashtags",
            "facets",
        ),
        (
            "/v1/projects/search?created_after=yesterday",
            "created_after",
        ),
        (
            "/v1/projects/search?created_after=2024-13-01T00:00:00Z",
            "created_after",
        ),
        (
            "/v1/projects/search?created_before=2024-01-01",
            "created_before",
        ),
        (
            "/v1/projects/search?created_after=2024-02-01T00:00:00Z&created_before=2024-01-01T00:00:00Z",
            "created_before",
        ),
        (
            "/v1/projects/search?created_after=2024-01-01T00:00:00Z&created_before=2024-01-01T00:00:00Z",
            "created_before",
        ),
        ("/v1/suggestions", "q"),
        ("/v1/suggestions?q=", "q"),
        ("/v1/suggestions?q=%20", "q"),
        ("/v1/suggestions?q=a%07", "q"),
        ("/v1/suggestions?q=ela&limit=0", "limit"),
        ("/v1/suggestions?q=ela&limit=11", "limit"),
        ("/v1/suggestions?q=ela&limit=five", "limit"),
    ];
    for (uri, param) in cases {
        assert_invalid(&h, uri, param).await;
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let h = harness(&HttpConfig::default());
    let response = h.client.get("/v1/nothing").send().await;
    problem(&h, response, StatusCode::NOT_FOUND).await;
    let response = h.client.post("/v1/projects/search").send().await;
    problem(&h, response, StatusCode::METHOD_NOT_ALLOWED).await;
}

#[tokio::test]
async fn serves_the_committed_spec_and_swagger_ui() {
    let h = harness(&HttpConfig::default());
    let response = h.client.get("/openapi.json").send().await;
    response.assert_status_is_ok();
    let served: serde_json::Value =
        serde_json::from_str(&response.0.into_body().into_string().await.unwrap()).unwrap();
    let generated: serde_json::Value = serde_json::from_str(&spec_json()).unwrap();
    assert_eq!(served, generated);

    let response = h.client.get("/docs").send().await;
    response.assert_status_is_ok();
    let html = response.0.into_body().into_string().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
}

#[tokio::test]
async fn serves_the_search_page_and_its_assets_from_the_binary() {
    let h = harness(&HttpConfig::default());
    for (path, content_type, needle) in [
        (
            "/ui/search.js",
            "text/javascript; charset=utf-8",
            "/v1/projects/search",
        ),
        ("/ui/search.css", "text/css; charset=utf-8", "mark"),
        ("/", "text/html; charset=utf-8", "<title>Athens"),
    ] {
        let response = h.client.get(path).send().await;
        assert_eq!(response.0.status(), StatusCode::OK, "{path}");
        response.assert_content_type(content_type);
        let policy = response
            .0
            .headers()
            .get("content-security-policy")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("connect-src 'self'"), "{path}: {policy}");
        let body = response.0.into_body().into_string().await.unwrap();
        assert!(body.contains(needle), "{path}");
    }
    assert_eq!(
        h.ports.calls.load(Ordering::SeqCst),
        0,
        "the page is static"
    );
    let response = h.client.get("/ui/nothing.js").send().await;
    problem(&h, response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn liveness_answers_without_calling_a_port() {
    let h = harness(&HttpConfig::default());
    let response = h.client.get("/healthz").send().await;
    response.assert_status_is_ok();
    response.assert_header_exist(REQUEST_ID_HEADER);
    assert_eq!(h.ports.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_sane_request_id_is_kept_and_any_other_replaced() {
    let h = harness(&HttpConfig::default());
    let response = h
        .client
        .get("/v1/users/abc/projects")
        .header(REQUEST_ID_HEADER, "trace-42.a:b_c")
        .send()
        .await;
    response.assert_header(REQUEST_ID_HEADER, "trace-42.a:b_c");
    let body = problem(&h, response, StatusCode::BAD_REQUEST).await;
    assert_eq!(body["request_id"], "trace-42.a:b_c");

    for insane in ["has space", "", &"x".repeat(129), "semi;colon"] {
        let response = h
            .client
            .get("/healthz")
            .header(REQUEST_ID_HEADER, insane)
            .send()
            .await;
        let id = response.0.headers().get(REQUEST_ID_HEADER).unwrap();
        assert!(
            uuid::Uuid::parse_str(id.to_str().unwrap()).is_ok(),
            "{id:?}"
        );
    }
}

#[tokio::test]
async fn oversized_requests_are_refused() {
    let config = HttpConfig {
        max_header_bytes: 1024,
        max_uri_bytes: 512,
        ..HttpConfig::default()
    };
    let h = harness(&config);
    let response = h
        .client
        .get("/healthz")
        .header("x-padding", "p".repeat(2048))
        .send()
        .await;
    problem(&h, response, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE).await;
    let uri = format!("/v1/projects/search?q={}", "q".repeat(600));
    let response = h.client.get(uri).send().await;
    problem(&h, response, StatusCode::URI_TOO_LONG).await;
    let response = h
        .client
        .get("/healthz")
        .header("content-length", "1000000")
        .send()
        .await;
    problem(&h, response, StatusCode::PAYLOAD_TOO_LARGE).await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_follows_the_configured_origins() {
    let h = harness(&HttpConfig::default());
    let response = h
        .client
        .get("/healthz")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    response.assert_status_is_ok();
    response.assert_header_is_not_exist("access-control-allow-origin");

    let config = HttpConfig {
        cors_origins: vec!["https://app.example.com".into()],
        ..HttpConfig::default()
    };
    let h = harness(&config);
    let response = h
        .client
        .get("/healthz")
        .header("origin", "https://app.example.com")
        .send()
        .await;
    response.assert_header("access-control-allow-origin", "https://app.example.com");
    let response = h
        .client
        .get("/healthz")
        .header("origin", "https://evil.example.com")
        .send()
        .await;
    response.assert_header_is_not_exist("access-control-allow-origin");
}

#[tokio::test]
async fn responses_are_compressed_on_request() {
    let h = harness(&HttpConfig::default());
    let response = h
        .client
        .get("/openapi.json")
        .header("accept-encoding", "gzip")
        .send()
        .await;
    response.assert_status_is_ok();
    response.assert_header("content-encoding", "gzip");
}

#[tokio::test]
async fn metrics_count_requests_by_route_template() {
    // The process's recorder, as a program embedding the API installs it.
    let mut recorder = PrometheusBuilder::new();
    for (histogram, buckets) in crate::HISTOGRAM_BUCKETS {
        recorder = recorder
            .set_buckets_for_metric(Matcher::Full((*histogram).into()), buckets)
            .unwrap();
    }
    let handle = recorder.install_recorder().unwrap();
    let ports = Arc::new(Unreachable::default());
    let client = TestClient::new(app(
        AppState::new(ports.clone(), ports).with_metrics(move || handle.render()),
        &HttpConfig::default(),
    ));
    client
        .get("/v1/users/abc/projects")
        .send()
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    client
        .get("/v1/users/x/projects")
        .send()
        .await
        .assert_status(StatusCode::BAD_REQUEST);
    client
        .get("/nowhere/123")
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
    client.get("/docs").send().await.assert_status_is_ok();
    let response = client.get("/metrics").send().await;
    response.assert_status_is_ok();
    let text = response.0.into_body().into_string().await.unwrap();
    let users = r#"route="/v1/users/{user_id}/projects",method="GET",status="400""#;
    assert!(
        text.contains(&format!("athens_http_requests_total{{{users}}} ")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "athens_http_request_duration_seconds_bucket{{{users},le=\"0.1\"}}"
        )),
        "{text}"
    );
    assert!(
        text.contains(r#"route="unmatched",method="GET",status="404""#),
        "{text}"
    );
    assert!(
        !text.contains("/nowhere"),
        "raw paths must not become labels: {text}"
    );
}

#[tokio::test]
async fn serves_over_tcp_until_shutdown() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let ports = Arc::new(Unreachable::default());
    let state = AppState::new(ports.clone(), ports);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = HttpConfig {
        shutdown_grace_ms: 1000,
        ..HttpConfig::default()
    };
    let server = tokio::spawn(async move {
        crate::serve_on(listener, state, &config, async {
            stopped.await.ok();
        })
        .await
    });

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("x-request-id"), "{answer}");

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn metrics_answer_404_without_a_recorder() {
    let ports = Arc::new(Unreachable::default());
    let client = TestClient::new(app(
        AppState::new(ports.clone(), ports),
        &HttpConfig::default(),
    ));
    client
        .get("/metrics")
        .send()
        .await
        .assert_status(StatusCode::NOT_FOUND);
}
