//! Readiness, outages and metrics: `/readyz` names what is missing, an unreachable engine is a 503
//! with `Retry-After`, and `/metrics` holds the request histogram by route template.

use std::sync::Arc;
use std::time::Duration;

use athens_es::EsSearch;
use athens_pg::{PgConfig, PgSource};
use athens_testkit::Proxy;
use poem::http::StatusCode;

use crate::corpus::{Database, client, drop_index, engine_config, get, index, on_first_engine};

#[tokio::test]
async fn readiness_needs_the_alias() -> anyhow::Result<()> {
    let test = "http-readiness";
    let database = Database::create(test).await?;
    for engine in athens_testkit::engines().await? {
        let index = index(&database, &engine_config(&engine, test)).await?;
        let ready = client(Arc::new(index.searcher()), database.source());
        let answer = get(&ready, "/readyz").await;
        assert_eq!(answer.status, StatusCode::OK, "{engine}: {}", answer.body);
        assert_eq!(answer.body["status"], "ready");

        // The same engine, an alias no backfill has published.
        let unpublished = EsSearch::connect(&engine_config(&engine, "http-no-alias")).await?;
        let unready = client(Arc::new(unpublished), database.source());
        let answer = get(&unready, "/readyz").await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{engine}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["failed_checks"],
            serde_json::json!(["index"]),
            "{engine}"
        );
        assert!(answer.headers.contains_key("retry-after"), "{engine}");
        let answer = get(&unready, "/v1/projects/search?q=athens").await;
        assert_eq!(
            answer.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{engine}: {}",
            answer.body
        );

        // Liveness does not depend on anything.
        assert_eq!(get(&unready, "/healthz").await.status, StatusCode::OK);
        drop_index(&index).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_engine_is_a_503_with_retry_after() -> anyhow::Result<()> {
    let test = "http-engine-down";
    let database = Database::create(test).await?;
    for engine in athens_testkit::engines().await? {
        let config = engine_config(&engine, test);
        let index = index(&database, &config).await?;
        let target = engine
            .url
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let proxy = Proxy::start(target).await?;
        let mut through_proxy = config.clone();
        through_proxy.url = format!("http://{}", proxy.addr());
        let search = EsSearch::connect(&through_proxy).await?;
        let client = client(Arc::new(search), database.source());
        let answer = get(&client, "/v1/projects/search?q=athens").await;
        assert_eq!(answer.status, StatusCode::OK, "{engine}: {}", answer.body);

        proxy.down().await;
        for uri in [
            "/v1/projects/search?q=athens",
            "/v1/hashtags/projects?hashtags=rust",
        ] {
            let answer = get(&client, uri).await;
            assert_eq!(
                answer.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{engine}: {}",
                answer.body
            );
            assert_eq!(answer.headers.get("retry-after").unwrap(), "1", "{engine}");
            assert_eq!(
                answer.body["type"], "urn:athens:problem:unavailable",
                "{engine}"
            );
            let detail = answer.body["detail"].as_str().unwrap();
            assert!(
                !detail.contains("127.0.0.1"),
                "{engine}: internals leaked: {detail}"
            );
        }
        let answer = get(&client, "/readyz").await;
        assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE, "{engine}");
        assert_eq!(
            answer.body["failed_checks"],
            serde_json::json!(["index"]),
            "{engine}"
        );

        proxy.up().await?;
        let answer = get(&client, "/v1/projects/search?q=athens").await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{engine}: recovers: {}",
            answer.body
        );
        drop_index(&index).await?;
    }
    Ok(())
}

#[tokio::test]
async fn an_unreachable_database_is_a_503_naming_it() -> anyhow::Result<()> {
    let (database, _, index) = on_first_engine("http-database-down").await?;
    let url = url::Url::parse(&database.url)?;
    let target = format!(
        "{}:{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(&target).await?;
    let mut through_proxy = url.clone();
    through_proxy.set_port(Some(proxy.addr().port())).ok();
    let config = PgConfig {
        connect_timeout: Duration::from_secs(1),
        ..PgConfig::new(through_proxy.to_string())
    };
    let source = Arc::new(PgSource::connect(&config).await?);
    let client = client(Arc::new(index.searcher()), source);
    // Larry created nothing: only the database tells him from an unknown user.
    let larry = database.user("larry");
    let uri = format!("/v1/users/{larry}/projects");
    assert_eq!(get(&client, &uri).await.status, StatusCode::OK);

    proxy.down().await;
    let answer = get(&client, &uri).await;
    answer.assert_problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "database",
        "database down",
    );
    assert!(answer.headers.contains_key("retry-after"));
    let answer = get(&client, "/readyz").await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.body
    );
    assert_eq!(
        answer.body["failed_checks"],
        serde_json::json!(["database"])
    );
    // Searches that need no database still answer, and so do the projects of a user who has
    // some: they prove the user exists.
    assert_eq!(
        get(&client, "/v1/projects/search?q=athens").await.status,
        StatusCode::OK
    );
    let john = database.user("john");
    let answer = get(&client, &format!("/v1/users/{john}/projects")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    drop_index(&index).await?;
    Ok(())
}

#[tokio::test]
async fn metrics_hold_the_request_histogram_by_route() -> anyhow::Result<()> {
    let (database, _, index) = on_first_engine("http-metrics").await?;
    let client = client(Arc::new(index.searcher()), database.source());
    let john = database.user("john");
    assert_eq!(
        get(&client, &format!("/v1/users/{john}/projects"))
            .await
            .status,
        StatusCode::OK
    );
    let response = client.get("/metrics").send().await;
    response.assert_status_is_ok();
    let text = response.0.into_body().into_string().await?;
    drop_index(&index).await?;
    let series = r#"route="/v1/users/{user_id}/projects",method="GET",status="200""#;
    assert!(
        text.contains(&format!(
            "athens_http_request_duration_seconds_bucket{{{series},le="
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!("athens_http_requests_total{{{series}}}")),
        "{text}"
    );
    assert!(
        !text.contains(&format!("/v1/users/{john}/")),
        "raw path as a label: {text}"
    );
    Ok(())
}
