//! What a deployment must get right on the PostgreSQL side: a recent enough server, a session per
//! connection (no pooler in transaction mode), and one lease key for every writer of an outbox.

use athens_core::{Ack, ChangeSource};
use athens_pg::{CaptureMode, MIN_LOGICAL_VERSION, PgError, PgSource};

use crate::support::{config, empty, exec, scalar};

#[tokio::test]
async fn the_server_is_recent_enough_for_both_modes_and_says_its_version() {
    let (source, _) = empty("deployment-version").await;
    let major = scalar(
        &source,
        "SELECT current_setting('server_version_num')::bigint / 10000",
    )
    .await;
    assert!(major >= i64::from(MIN_LOGICAL_VERSION), "{major}");
    for mode in [CaptureMode::Outbox, CaptureMode::Logical] {
        let version = source.check_version(mode).await.unwrap();
        assert!(version.starts_with(&format!("{major}.")), "{version}");
    }
}

#[tokio::test]
async fn a_direct_connection_has_a_session_of_its_own() {
    let (source, _) = empty("deployment-session").await;
    source.check_session().await.unwrap();
}

/// Polls and acknowledges every pending change through `consumer`.
async fn consume(consumer: &PgSource) -> usize {
    let records = consumer
        .poll(1000, std::time::Duration::ZERO)
        .await
        .unwrap();
    let ack = Ack {
        changes: records.iter().map(|record| record.id).collect(),
        dead_letters: Vec::new(),
    };
    consumer.ack(&ack).await.unwrap();
    records.len()
}

fn refused_naming(result: Result<(), PgError>, keys: [i64; 2]) {
    match result {
        Err(PgError::Misconfigured(message)) => {
            for key in keys {
                assert!(message.contains(&key.to_string()), "{key} in {message}");
            }
            assert!(message.contains("database.lease_key"), "{message}");
        }
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
async fn writers_with_other_lease_keys_consuming_one_outbox_are_told_apart() {
    let (one, url) = empty("deployment-keys").await;
    one.migrate().await.unwrap();
    one.install_capture().await.unwrap();
    let mut other_key = config(&url);
    other_key.lease_key = 7;
    let two = PgSource::connect(&other_key).await.unwrap();
    let key = one.config().lease_key;
    one.check_consumer().await.unwrap();
    two.check_consumer().await.unwrap();

    exec(&one, "INSERT INTO users (name) VALUES ('Ada')").await;
    assert_eq!(consume(&one).await, 1);
    one.check_consumer().await.unwrap();
    refused_naming(two.check_consumer().await, [key, 7]);

    exec(&one, "INSERT INTO users (name) VALUES ('Grace')").await;
    assert_eq!(consume(&two).await, 1);
    two.check_consumer().await.unwrap();
    refused_naming(one.check_consumer().await, [7, key]);

    // A writer that stopped long ago (a key changed on purpose) is not consuming any more.
    exec(
        &one,
        "UPDATE athens.consumer SET last_ack_at = now() - interval '1 hour'",
    )
    .await;
    one.check_consumer().await.unwrap();
}
