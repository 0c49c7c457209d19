//! The writer lease: mutual exclusion, release, and loss with the holder's connection.

use std::time::{Duration, Instant};

use athens_core::{Ack, ChangeSource, ErrorChain, SourceError, WriterLease};
use athens_pg::{PgConfig, PgLease, PgSource};

use crate::support::{config, empty, exec, ready, scalar};

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

/// A fresh database and two leases on it, the first holding.
async fn holding(test: &str) -> (PgSource, PgLease, PgLease) {
    let (source, _) = empty(test).await;
    let holder = source.lease().await.unwrap();
    let standby = source.lease().await.unwrap();
    assert!(holder.try_acquire().await.unwrap());
    (source, holder, standby)
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
    let (source, holder, standby) = holding("lease-killed").await;
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
    let lost = holder.lost().await;
    let said = ErrorChain(&lost).to_string();
    assert!(
        said.starts_with(&format!(
            "writer lease lost: the writer lease (advisory lock {key}) is no longer held by this \
             process: its session failed"
        )),
        "{said}"
    );
    assert!(
        std::error::Error::source(&lost)
            .and_then(std::error::Error::source)
            .is_some(),
        "the session's own error is kept: {said}"
    );
    assert!(standby.is_held().await.unwrap());
    assert!(
        !holder.try_acquire().await.unwrap(),
        "and cannot take it back while held"
    );
}

#[tokio::test]
async fn dropping_the_holder_frees_the_lease() {
    let (_source, holder, standby) = holding("lease-dropped").await;
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

/// Issue 12, finding 8: a holder that hangs with its connection up (a stopped process still answers
/// TCP keepalives from its kernel; a stuck event loop too) loses the lease after `lease_timeout`, a
/// standby takes over, and the hung holder, once awake, acknowledges nothing. A holder that keeps
/// working keeps the lease.
#[tokio::test]
async fn a_hung_holder_loses_the_lease_and_acknowledges_nothing_when_it_wakes() {
    let lease_timeout = Duration::from_secs(2);
    let url = ready("lease-hung").await.config().url.expose().to_string();
    let short = PgConfig {
        lease_timeout,
        ..config(&url)
    };
    let holder_source = PgSource::connect(&short).await.unwrap();
    let standby_source = PgSource::connect(&short).await.unwrap();
    let holder = holder_source.lease().await.unwrap();
    let standby = standby_source.lease().await.unwrap();
    assert!(holder.try_acquire().await.unwrap());

    // Working: the holder uses its lease session at every step, for longer than the timeout.
    let working = Instant::now();
    while working.elapsed() < lease_timeout * 2 {
        assert!(holder.is_held().await.unwrap());
        assert!(
            !standby.try_acquire().await.unwrap(),
            "a working holder keeps the lease"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    exec(
        &holder_source,
        "INSERT INTO users (name) VALUES ('pending')",
    )
    .await;
    let batch = holder_source.poll(10, Duration::ZERO).await.unwrap();
    assert_eq!(batch.len(), 1);
    assert!(
        holder.is_held().await.unwrap(),
        "the holder checks its lease before acknowledging…"
    );
    // …and hangs right there, its connection up.
    let waited = eventually_acquires(&standby).await;
    assert!(
        waited < lease_timeout + Duration::from_secs(3),
        "the standby took over after {waited:?}"
    );

    // The hung holder wakes up and acknowledges what it wrote before it hung.
    let ack = Ack {
        changes: batch.iter().map(|record| record.id).collect(),
        dead_letters: Vec::new(),
    };
    let refused = holder_source.ack(&ack).await;
    assert!(
        matches!(refused, Err(SourceError::LeaseLost { .. })),
        "a holder whose lease lapsed must not acknowledge: {refused:?}"
    );
    let standby_pid = scalar(
        &standby_source,
        &format!(
            "SELECT pid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted \
               AND ((classid::bigint << 32) | objid::bigint) = {}",
            short.lease_key
        ),
    )
    .await;
    let said = refused
        .as_ref()
        .map_err(|error| ErrorChain(error).to_string());
    let said = said.err().unwrap_or_default();
    assert!(
        said.contains("is no longer held by this process: the session of server process")
            && said.ends_with(&format!(
                "no longer holds it; the session of server process {standby_pid} holds it now"
            )),
        "the refusal says who holds the lease now: {said}"
    );
    assert_eq!(
        scalar(&holder_source, "SELECT count(*) FROM athens.outbox").await,
        1,
        "nothing acknowledged"
    );
    assert!(!holder.is_held().await.unwrap());
    assert!(
        !holder.try_acquire().await.unwrap(),
        "and it cannot take the lease back"
    );
    let refused = holder_source.ack(&ack).await;
    assert!(
        matches!(refused, Err(SourceError::LeaseLost { .. })),
        "nor acknowledge later: {refused:?}"
    );

    standby_source.ack(&ack).await.unwrap();
    assert_eq!(
        scalar(&standby_source, "SELECT count(*) FROM athens.outbox").await,
        0,
        "the new holder acknowledges"
    );
}
