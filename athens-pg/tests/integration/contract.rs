//! The core's source contract, run against PostgreSQL in both capture modes.

use athens_core::testing::source_contract;
use athens_pg::CaptureMode;

use crate::support::ready_in;

#[tokio::test]
async fn postgres_source_honours_the_source_contract() {
    let captured = ready_in("contract", CaptureMode::Outbox).await;
    source_contract(&captured.fixture()).await.unwrap();
}

#[tokio::test]
async fn logical_source_honours_the_source_contract() {
    let captured = ready_in("contract-logical", CaptureMode::Logical).await;
    source_contract(&captured.fixture()).await.unwrap();
}
