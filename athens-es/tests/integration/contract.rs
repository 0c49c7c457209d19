//! The `SearchIndex` contract every implementation passes, one test per clause, on every engine.

use std::num::NonZeroUsize;

use athens_core::testing::{ContractResult, checkpoint_contract, writer_fence_contract};
use athens_core::{IndexName, ProjectSearch, SearchIndex};
use athens_es::{Distribution, EsConfig, MAPPING_VERSION};

use crate::support::{on_every_engine, on_every_engine_with};

#[tokio::test]
async fn runs_against_elasticsearch_and_opensearch() -> anyhow::Result<()> {
    let engines = athens_testkit::engines().await?;
    let tested: Vec<String> = engines
        .iter()
        .map(|e| {
            let major = e.version.split('.').next().unwrap_or("?");
            format!("{} {major}", e.distribution)
        })
        .collect();
    // The third engine, when configured, is OpenSearch of another major version (3.x in CI).
    let expected: &[&str] = if std::env::var_os(athens_testkit::OPENSEARCH3_URL_VAR).is_some() {
        &["elasticsearch", "opensearch", "opensearch 3"]
    } else {
        &["elasticsearch", "opensearch"]
    };
    anyhow::ensure!(
        tested.len() == expected.len()
            && tested.iter().zip(expected).all(|(t, e)| t.starts_with(e))
            && (expected.len() < 3 || tested[1] != tested[2]),
        "every engine of the matrix must be tested: expected {expected:?}, got {tested:?}"
    );
    Ok(())
}

/// Runs `clause` on every engine, each time on a fresh alias, through an adapter configured by
/// `configure`.
async fn contract_with(
    test: &str,
    configure: fn(EsConfig) -> EsConfig,
    clause: impl AsyncFn(&dyn SearchIndex) -> ContractResult,
) -> anyhow::Result<()> {
    let clause = &clause;
    on_every_engine_with(test, configure, |index, _| async move {
        clause(&index).await?;
        Ok(())
    })
    .await
}

/// One test per clause of the index contract, each on every engine through an adapter configured
/// by `$configure`.
macro_rules! clauses_with {
    ($configure:expr) => {
        athens_core::search_index_clauses!(|test, clause| {
            contract_with(test, $configure, clause).await
        });
    };
}

/// Small bulk requests, so the large batch of 250 goes out as several concurrent ones.
mod small_bulks {
    use super::*;

    clauses_with!(|config| EsConfig {
        bulk_size: NonZeroUsize::new(40).unwrap(),
        bulk_concurrency: NonZeroUsize::new(3).unwrap(),
        ..config
    });
}

/// Gzip on the wire: compressed bulk bodies must be accepted and compressed answers read, by every
/// engine.
mod gzip {
    use super::*;

    clauses_with!(|config| EsConfig {
        compression: true,
        ..config
    });
}

#[tokio::test]
async fn reports_the_engine_and_names_indexes_after_the_alias() -> anyhow::Result<()> {
    on_every_engine("lifecycle", |index, engine| async move {
        let expected = if engine.distribution == "opensearch" {
            Distribution::OpenSearch
        } else {
            Distribution::Elasticsearch
        };
        anyhow::ensure!(index.engine().distribution == expected);
        anyhow::ensure!(index.engine().version == engine.version);

        let searcher = index.searcher();
        anyhow::ensure!(
            searcher.ready().await.is_err(),
            "an alias that does not exist yet is not ready"
        );
        let created = index.create_index().await?;
        anyhow::ensure!(
            created
                .0
                .starts_with(&format!("{}-v{MAPPING_VERSION}-", index.alias())),
            "unexpected index name {created}"
        );
        index.finish_bulk_load(&created).await?;
        index.publish(&created).await?;
        searcher.ready().await?;
        index.searcher().ready().await?;
        let again = index.publish(&created).await?;
        anyhow::ensure!(
            again.is_none(),
            "publishing the live index again replaces nothing, got {again:?}"
        );
        anyhow::ensure!(index.indexes().await? == vec![created.clone()]);
        anyhow::ensure!(
            index
                .drop_index(&athens_core::IndexName("some-other-index".into()))
                .await
                .is_err(),
            "an index outside the alias' family must never be deleted"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn fences_a_writer_whose_claim_was_revoked() -> anyhow::Result<()> {
    on_every_engine("fence", |index, _| async move {
        writer_fence_contract(&index).await?;
        anyhow::ensure!(
            index.indexes().await?.len() == 1,
            "only the live index is left: {:?}",
            index.indexes().await?
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn mapping_versions_compare_as_numbers_and_an_older_one_is_not_current() -> anyhow::Result<()>
{
    on_every_engine("versions", |index, engine| async move {
        // An alias left pointing at two indexes, as an interrupted swap may leave it: the newest
        // mapping version wins, compared as a number (`v10` after `v9`).
        let http = reqwest::Client::new();
        let alias = index.alias().to_owned();
        let v9 = format!("{alias}-v9-20260101-000000-000000-1");
        let v10 = format!("{alias}-v10-20250101-000000-000000-1");
        for name in [&v9, &v10] {
            http.put(format!("{}/{name}", engine.url))
                .json(&serde_json::json!({ "aliases": { alias.clone(): {} } }))
                .send()
                .await?
                .error_for_status()?;
        }
        let live = index.live_index().await?;
        anyhow::ensure!(
            live.as_ref().map(|name| name.0.as_str()) == Some(v10.as_str()),
            "expected {v10}, got {live:?}"
        );
        let names: Vec<String> = index.indexes().await?.into_iter().map(|n| n.0).collect();
        anyhow::ensure!(names == [v9.clone(), v10.clone()], "{names:?}");
        for name in [&v9, &v10] {
            anyhow::ensure!(
                !index.mapping_is_current(&IndexName(name.clone())).await?,
                "{name} was built with another mapping than version {MAPPING_VERSION}"
            );
        }
        let fresh = index.create_index().await?;
        anyhow::ensure!(index.mapping_is_current(&fresh).await?);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn keeps_backfill_checkpoints_with_their_index() -> anyhow::Result<()> {
    contract_with("checkpoint", |config| config, checkpoint_contract).await
}
