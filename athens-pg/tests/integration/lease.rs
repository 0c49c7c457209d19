//! The writer lease: mutual exclusion, release, and loss with the holder's connection.

use std::time::{Duration, Instant};

use athens_core::WriterLease;
use athens_pg::{PgLease, PgSource};

use crate::support::{config, empty, scalar};

async fn eventually_acquires(lease: &PgLease) -> Duration {
    let started = Instant::now();
    while !lease.try_acquire().await.unwrap() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "lease never freed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn one_holder_at_a_time_and_release_hands_over() {
    let (source, url) = empty("lease-exclusion").await;
    let other = PgSource::connect(&config(&url)).await.unwrap();
    let first = source.lease().await.unwrap();
    let second = other.lease().await.unwrap();
    assert!(!first.is_held().await.unwrap());
    assert!(first.try_acquire().await.unwrap());
    assert!(
        first.try_acquire().await.unwrap(),
        "idempotent for the holder"
    );
    assert!(first.is_held().await.unwrap());
    assert!(!second.try_acquire().await.unwrap(), "refused while held");
    assert!(!second.is_held().await.unwrap());

    first.release().await.unwrap();
    assert!(!first.is_held().await.unwrap());
    assert!(second.try_acquire().await.unwrap(), "free after release");
    assert!(!first.try_acquire().await.unwrap());
    second.release().await.unwrap();
    first.release().await.unwrap();
    assert!(
        first.try_acquire().await.unwrap(),
        "a released handle can take it again"
    );
}

#[tokio::test]
async fn a_holder_whose_connection_dies_loses_the_lease() {
    let (source, _) = empty("lease-killed").await;
    let holder = source.lease().await.unwrap();
    let standby = source.lease().await.unwrap();
    assert!(holder.try_acquire().await.unwrap());
    let key = source.config().lease_key;
    let terminated = scalar(
        &source,
        &format!(
            "SELECT count(pg_terminate_backend(pid))::bigint FROM pg_locks
             WHERE locktype = 'advisory' AND ((classid::bigint << 32) | objid::bigint) = {key}
               AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ),
    )
    .await;
    assert_eq!(terminated, 1);
    eventually_acquires(&standby).await;
    assert!(
        !holder.is_held().await.unwrap(),
        "the old holder knows it lost the lease"
    );
    assert!(standby.is_held().await.unwrap());
    assert!(
        !holder.try_acquire().await.unwrap(),
        "and cannot take it back while held"
    );
}

#[tokio::test]
async fn dropping_the_holder_frees_the_lease() {
    let (source, _) = empty("lease-dropped").await;
    let holder = source.lease().await.unwrap();
    let standby = source.lease().await.unwrap();
    assert!(holder.try_acquire().await.unwrap());
    drop(holder);
    let waited = eventually_acquires(&standby).await;
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[tokio::test]
async fn leases_on_other_databases_or_keys_do_not_conflict() {
    let (one, _) = empty("lease-db-one").await;
    let (two, url) = empty("lease-db-two").await;
    assert!(one.lease().await.unwrap().try_acquire().await.unwrap());
    let held = two.lease().await.unwrap();
    assert!(held.try_acquire().await.unwrap());
    let mut other_key = config(&url);
    other_key.lease_key = 7;
    let elsewhere = PgSource::connect(&other_key).await.unwrap();
    assert!(
        elsewhere
            .lease()
            .await
            .unwrap()
            .try_acquire()
            .await
            .unwrap()
    );
}
