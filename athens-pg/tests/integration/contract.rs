//! The core's source contract, run against PostgreSQL.

use athens_core::testing::source_contract;

use crate::support::{SqlFixture, ready};

#[tokio::test]
async fn postgres_source_honours_the_source_contract() {
    let fixture = SqlFixture {
        source: ready("contract").await,
    };
    source_contract(&fixture).await.unwrap();
}
