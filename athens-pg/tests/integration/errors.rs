//! Error classification: what a caller sees when PostgreSQL refuses, cannot be reached, or is not
//! set up.

use std::time::{Duration, Instant};

use athens_core::{ChangeSource, DocumentSource, ErrorChain, ProjectId, SourceError, SourceLookup};
use athens_pg::{PgConfig, PgError, PgSource};

use crate::support::{config, empty};

fn kind(error: PgError) -> SourceError {
    SourceError::from(error)
}

#[tokio::test]
async fn a_wrong_password_is_misconfigured() {
    let (_, url) = empty("errors-password").await;
    let wrong = url.replacen(":athens@", ":not-the-password@", 1);
    assert_ne!(wrong, url, "the test URL carries the password 'athens'");
    let error = kind(PgSource::connect(&config(&wrong)).await.unwrap_err());
    assert!(
        matches!(&error, SourceError::Misconfigured { message: m, .. }
            if m.contains("refused user athens") && m.contains("password in database.url")),
        "{error}"
    );
    assert!(!error.to_string().contains("not-the-password"));
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let mut unreachable = PgConfig::new("postgres://athens:athens@127.0.0.1:9/athens");
    unreachable.connect_timeout = Duration::from_millis(800);
    let started = Instant::now();
    let error = kind(PgSource::connect(&unreachable).await.unwrap_err());
    assert!(matches!(error, SourceError::Unavailable { .. }), "{error}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_missing_database_or_bad_url_is_misconfigured() {
    let (_, url) = empty("errors-database").await;
    let (base, _) = url.rsplit_once('/').unwrap();
    let missing = format!("{base}/no_such_database_here");
    let error = kind(PgSource::connect(&config(&missing)).await.unwrap_err());
    assert!(
        matches!(error, SourceError::Misconfigured { .. }),
        "{error}"
    );
    let error = kind(
        PgSource::connect(&config("mysql://nope"))
            .await
            .unwrap_err(),
    );
    assert!(
        matches!(error, SourceError::Misconfigured { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn missing_capture_says_to_run_setup_and_missing_tables_to_migrate() {
    let (source, _) = empty("errors-not-set-up").await;
    let error = source.count().await.unwrap_err();
    assert!(
        matches!(&error, SourceError::Misconfigured { message: m, .. } if m.contains("athens migrate")),
        "{error}"
    );
    source.migrate().await.unwrap();
    for error in [
        source.poll(10, Duration::ZERO).await.unwrap_err(),
        source.backlog().await.unwrap_err(),
        source.load(&[ProjectId(1)]).await.unwrap_err(),
    ] {
        assert!(
            matches!(&error, SourceError::Misconfigured { message: m, .. }
                if m.contains("capture is not installed: run `athens setup`")),
            "{error}"
        );
    }
    // With nothing installed, the one thing to do, not the 30 objects it would create.
    let error = source.check_capture().await.unwrap_err().to_string();
    assert!(
        error.contains("athens setup") && error.contains("nothing of it is in this database"),
        "{error}"
    );
}

#[tokio::test]
async fn a_closed_source_is_unavailable() {
    let (source, _) = empty("errors-closed").await;
    source.close().await;
    let error = source.count().await.unwrap_err();
    assert!(error.is_retryable(), "{error}");
}

#[tokio::test]
async fn a_database_error_reaches_the_port_error_with_its_chain() {
    let (source, _) = empty("errors-chain").await;
    let error = source.count().await.unwrap_err();
    let adapter =
        std::error::Error::source(&error).and_then(|cause| cause.downcast_ref::<PgError>());
    assert_eq!(
        adapter.and_then(PgError::sqlstate).as_deref(),
        Some("42P01"),
        "{error:?}"
    );
    let mut root: &(dyn std::error::Error + 'static) = &error;
    while let Some(cause) = root.source() {
        root = cause;
    }
    let missing = r#"relation "projects" does not exist"#;
    assert!(root.to_string().contains(missing), "{root:?}");
    let chain = ErrorChain(&error).to_string();
    assert!(chain.starts_with("source misconfigured: "), "{chain}");
    assert_eq!(chain.matches(missing).count(), 1, "{chain}");
}
