//! AWS Signature Version 4, checked by an independent implementation: the contract suite runs on
//! both engines through a proxy (`tests/sigv4/proxy.py`) that verifies every request's signature
//! with botocore and refuses bad ones, as Amazon OpenSearch Service would; a wrong key or a wrong
//! region is refused.
//!
//! The proxies are started by `athens-es/tests/sigv4/run`, which passes their URLs and the test
//! credentials in the environment; plain `cargo test` skips these tests (`#[ignore]`).

use athens_core::testing::{sample_document, search_index_contract};
use athens_core::{IndexOp, ProjectSearch, SearchIndex, SearchRequest, Version};
use athens_es::{AwsService, EsAuth, EsConfig, EsIndex};

use crate::support::drop_all;

const WHY: &str = "needs the verifying SigV4 proxies: run athens-es/tests/sigv4/run";

/// The proxies in front of Elasticsearch and OpenSearch, by the distribution behind them.
const PROXIES: [(&str, &str); 2] = [
    ("elasticsearch", "ATHENS_TEST_SIGV4_ES_URL"),
    ("opensearch", "ATHENS_TEST_SIGV4_OPENSEARCH_URL"),
];

/// The region every proxy expects signatures for.
const REGION: &str = "us-east-1";

fn proxy(var: &str) -> anyhow::Result<String> {
    std::env::var(var).map_err(|_| anyhow::anyhow!("{var} is not set: {WHY}"))
}

fn signed(url: String, alias: &str, region: &str) -> EsConfig {
    EsConfig {
        url,
        alias: alias.to_owned(),
        auth: Some(EsAuth::AwsSigV4 {
            region: Some(region.to_owned()),
            service: AwsService::Es,
        }),
        ..EsConfig::default()
    }
}

#[tokio::test]
#[ignore = "needs the verifying SigV4 proxies: run athens-es/tests/sigv4/run"]
async fn sigv4_signed_requests_pass_the_contract_on_both_engines() -> anyhow::Result<()> {
    for (distribution, var) in PROXIES {
        let alias = athens_testkit::unique_name("sigv4");
        let index = EsIndex::connect(&signed(proxy(var)?, &alias, REGION)).await?;
        anyhow::ensure!(
            index.engine().distribution.to_string() == distribution,
            "{var} must lead to {distribution}, got {}",
            index.engine()
        );
        let result = async {
            search_index_contract(&index).await?;
            // The backfill and read sides sign too: create, bulk-load, publish, then readiness
            // and a search through the alias.
            let name = index.create_index().await?;
            let upsert = IndexOp::Upsert {
                document: sample_document(7, "signed-sample"),
                version: Version(1),
            };
            index.write(&name, &[upsert]).await?;
            index.finish_bulk_load(&name).await?;
            index.publish(&name).await?;
            index.searcher().ready().await?;
            let request = SearchRequest {
                text: Some("signed sample".into()),
                size: 10,
                ..SearchRequest::default()
            };
            let page = index.searcher().search(&request).await?;
            anyhow::ensure!(
                page.total == 1,
                "the published document is searchable: {page:?}"
            );
            Ok(())
        }
        .await;
        let cleaned = drop_all(&index).await;
        result.map_err(|error| error.context(format!("through {var}")))?;
        cleaned?;
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the verifying SigV4 proxies: run athens-es/tests/sigv4/run"]
async fn sigv4_a_signature_for_another_region_is_refused() -> anyhow::Result<()> {
    for (_, var) in PROXIES {
        let error = EsIndex::connect(&signed(proxy(var)?, "sigv4-denied", "eu-west-1"))
            .await
            .err()
            .ok_or_else(|| anyhow::anyhow!("{var} accepted a signature for eu-west-1"))?;
        anyhow::ensure!(
            error.to_string().contains("403"),
            "refused with 403: {error}"
        );
    }
    Ok(())
}

#[tokio::test]
#[ignore = "needs the verifying SigV4 proxies: run athens-es/tests/sigv4/run"]
async fn sigv4_a_signature_with_the_wrong_secret_is_refused() -> anyhow::Result<()> {
    // This proxy knows another secret for the access key Athens signs with.
    let url = proxy("ATHENS_TEST_SIGV4_WRONG_KEY_URL")?;
    let error = EsIndex::connect(&signed(url, "sigv4-denied", REGION))
        .await
        .err()
        .ok_or_else(|| anyhow::anyhow!("a signature made with the wrong secret was accepted"))?;
    anyhow::ensure!(
        error.to_string().contains("403"),
        "refused with 403: {error}"
    );
    Ok(())
}
