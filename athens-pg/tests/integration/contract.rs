//! The core's source contract, one test per clause, run against PostgreSQL in both capture modes.

/// The outbox mode (triggers, outbox table, LISTEN/NOTIFY).
mod outbox {
    use athens_pg::CaptureMode;

    use crate::support::ready_in;

    athens_core::source_clauses!(|test, clause| {
        let captured = ready_in(test, CaptureMode::Outbox).await;
        clause(&captured.fixture()).await
    });
}

/// The logical mode (a replication slot decoding `pgoutput`).
mod logical {
    use athens_pg::CaptureMode;

    use crate::support::ready_in;

    athens_core::source_clauses!(|test, clause| {
        let captured = ready_in(test, CaptureMode::Logical).await;
        clause(&captured.fixture()).await
    });
}

/// The ranges a parallel backfill reads (`load_page` bounded by `until`, `id_bounds`).
#[tokio::test]
async fn postgres_source_reads_ranges_of_project_ids() {
    let captured =
        crate::support::ready_in("contract-ranges", athens_pg::CaptureMode::Outbox).await;
    athens_core::testing::range_contract(&captured.fixture())
        .await
        .unwrap();
}
