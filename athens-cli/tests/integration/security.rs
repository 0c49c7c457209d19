//! The engine behind TLS and authentication (nginx from `deploy/local/up tls`, in front of the real
//! Elasticsearch): certificate verification with our own CA, basic auth, API keys, plain HTTP to a
//! TLS endpoint refused, and secrets kept out of every message and log.

use std::process::Output;

use crate::support::{World, engines, tls};

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn tls_with_our_ca_and_credentials_works_and_nothing_else_does() {
    let tls = tls();
    let engine = &engines().await[0];
    let world = World::new("security-tls", engine)
        .await
        .unwrap()
        .with_engine_url(tls.url.clone());
    world.ok(&["migrate"]).unwrap();
    world.ok(&["seed", "--projects", "50"]).unwrap();
    world.ok(&["setup"]).unwrap();

    let basic = |command: &mut std::process::Command| {
        command
            .env("ATHENS_ENGINE_CA_CERT", &tls.ca)
            .env("ATHENS_ENGINE_USERNAME", &tls.username)
            .env("ATHENS_ENGINE_PASSWORD", &tls.password)
            .env("ATHENS_LOG", "debug");
    };

    let mut reindex = world.athens(&["reindex"]);
    basic(&mut reindex);
    let output = reindex.output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("reindexed 50 documents"));
    assert!(
        !text(&output).contains(&tls.password),
        "the password never appears in output or debug logs"
    );

    let mut with_key = world.athens(&["status", "--json"]);
    with_key
        .env("ATHENS_ENGINE_CA_CERT", &tls.ca)
        .env("ATHENS_ENGINE_API_KEY", &tls.api_key)
        .env("ATHENS_LOG", "debug");
    let output = with_key.output().unwrap();
    assert!(output.status.success(), "API key: {}", text(&output));
    assert!(
        !text(&output).contains(&tls.api_key),
        "the API key never appears"
    );

    let mut unknown_ca = world.athens(&["status"]);
    unknown_ca
        .env("ATHENS_ENGINE_USERNAME", &tls.username)
        .env("ATHENS_ENGINE_PASSWORD", &tls.password);
    let output = unknown_ca.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "an unknown CA is refused");
    assert!(
        text(&output).to_lowercase().contains("certificate"),
        "{}",
        text(&output)
    );

    let mut wrong_password = world.athens(&["status"]);
    wrong_password
        .env("ATHENS_ENGINE_CA_CERT", &tls.ca)
        .env("ATHENS_ENGINE_USERNAME", &tls.username)
        .env("ATHENS_ENGINE_PASSWORD", "not-the-password");
    let output = wrong_password.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        text(&output).contains("401") || text(&output).to_lowercase().contains("auth"),
        "{}",
        text(&output)
    );
    assert!(!text(&output).contains("not-the-password"));

    let plain = tls.url.replacen("https://", "http://", 1);
    let mut plain_http = world.athens(&["status"]);
    plain_http
        .env("ATHENS_ENGINE_URL", &plain)
        .env("ATHENS_ENGINE_USERNAME", &tls.username)
        .env("ATHENS_ENGINE_PASSWORD", &tls.password);
    let output = plain_http.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "plain HTTP to a TLS endpoint fails"
    );
    assert!(!text(&output).contains(&tls.password));

    let _ = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&tls.ca).unwrap()).unwrap(),
        )
        .build()
        .unwrap()
        .delete(format!("{}/{}-*", tls.url, world.alias))
        .basic_auth(&tls.username, Some(&tls.password))
        .send()
        .await;
}
