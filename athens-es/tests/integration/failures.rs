//! Failures: documents the engine refuses for good, an engine that cannot be reached, whole-request
//! error statuses, oversized requests, and the headers sent (which every engine must accept).

use std::num::NonZeroUsize;

use athens_core::KeysetPage;
use athens_core::testing::sample_document;
use athens_core::{
    ErrorChain, Hashtag, HashtagId, IndexError, IndexName, IndexOp, ProjectId, ProjectSearch,
    SearchError, SearchIndex, SearchRequest, Version, WriteOutcome,
};
use athens_es::{EsConfig, EsError, EsIndex};
use chrono::Utc;
use serde_json::json;

use crate::support::{FakeEngine, on_every_engine};

fn upsert(document: athens_core::ProjectDocument) -> IndexOp {
    IndexOp::Upsert {
        document,
        version: Version(1),
    }
}

#[tokio::test]
async fn documents_the_engine_cannot_store_are_rejected_one_by_one() -> anyhow::Result<()> {
    on_every_engine("rejected", |index, _| async move {
        let target = index.create_index().await?;
        // A hashtag beyond Lucene's 32766-byte term limit: it comes from the source as it is, and no
        // retry will make the engine store it. Its neighbours in the same request are stored.
        let mut immense = sample_document(2, "immense-hashtag");
        immense.hashtags.push(Hashtag {
            id: HashtagId(3),
            name: "x".repeat(40_000),
            created_at: Utc::now(),
        });
        let outcomes = index
            .write(
                &target,
                &[
                    upsert(sample_document(1, "fine")),
                    upsert(immense),
                    upsert(sample_document(3, "fine-too")),
                ],
            )
            .await?;
        anyhow::ensure!(outcomes[0] == WriteOutcome::Applied, "{outcomes:?}");
        anyhow::ensure!(
            matches!(&outcomes[1], WriteOutcome::Rejected(reason) if reason.contains("immense term")),
            "{outcomes:?}"
        );
        anyhow::ensure!(outcomes[2] == WriteOutcome::Applied, "{outcomes:?}");
        index.refresh(&target).await?;
        anyhow::ensure!(index.count(&target).await? == 2);
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_closed_index_refuses_for_now_not_for_good() -> anyhow::Result<()> {
    on_every_engine("closed", |index, engine| async move {
        let target = index.create_index().await?;
        // An operator closes the index for maintenance: the engine answers each item with
        // `index_closed_exception` (400). Dead-lettering would acknowledge the change and lose it.
        let http = reqwest::Client::new();
        http.post(format!("{}/{}/_close", engine.url, target))
            .send()
            .await?
            .error_for_status()?;
        let outcomes = index
            .write(&target, &[upsert(sample_document(1, "closed"))])
            .await?;
        anyhow::ensure!(
            matches!(&outcomes[0], WriteOutcome::Retryable(reason) if reason.contains("index_closed_exception")),
            "{outcomes:?}"
        );
        http.post(format!("{}/{}/_open", engine.url, target))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    })
    .await
}

#[tokio::test]
async fn a_dropped_index_is_not_found() -> anyhow::Result<()> {
    on_every_engine("dropped", |index, _| async move {
        let target = index.create_index().await?;
        index.drop_index(&target).await?;
        index.drop_index(&target).await?;
        for result in [
            index.refresh(&target).await.map(|_| ()),
            index.count(&target).await.map(|_| ()),
            index.get(&target, &[ProjectId(1)]).await.map(|_| ()),
            index
                .ids_page(&target, KeysetPage::first(10))
                .await
                .map(|_| ()),
            index.finish_bulk_load(&target).await,
            index.publish(&target).await.map(|_| ()),
        ] {
            anyhow::ensure!(
                matches!(result, Err(IndexError::NotFound { .. })),
                "expected NotFound, got {result:?}"
            );
        }
        Ok(())
    })
    .await
}

/// Finding 1 of issue 12: a writer still holding the name of an index that a reindex dropped must
/// not bring it back through the engine's automatic index creation (a delete with an external
/// version creates the index too), or it acknowledges changes nobody will ever search.
#[tokio::test]
async fn a_write_to_a_dropped_index_fails_instead_of_re_creating_it() -> anyhow::Result<()> {
    on_every_engine("dropped-write", |index, engine| async move {
        let target = index.create_index().await?;
        index.drop_index(&target).await?;
        let delete = IndexOp::Delete {
            id: ProjectId(2),
            version: Version(5),
        };
        for ops in [
            vec![upsert(sample_document(1, "late"))],
            vec![delete.clone()],
            vec![upsert(sample_document(1, "late")), delete],
        ] {
            let written = index.write(&target, &ops).await;
            anyhow::ensure!(
                matches!(written, Err(IndexError::NotFound { .. })),
                "a write of {} op(s) to a dropped index must fail, got {written:?}",
                ops.len()
            );
        }
        let status = reqwest::Client::new()
            .head(format!("{}/{target}", engine.url))
            .send()
            .await?
            .status();
        anyhow::ensure!(
            status == 404,
            "{target} was re-created (HEAD answered {status})"
        );
        anyhow::ensure!(
            index.indexes().await?.is_empty(),
            "no index of the alias is left"
        );
        Ok(())
    })
    .await
}

/// An index created by an earlier release has no write alias: the first write adds it, since only
/// an existing index can take an alias.
#[tokio::test]
async fn an_index_without_its_write_alias_gets_it_on_the_first_write() -> anyhow::Result<()> {
    on_every_engine("legacy-write", |index, engine| async move {
        let target = index.create_index().await?;
        let http = reqwest::Client::new();
        let aliases: serde_json::Value = http
            .get(format!("{}/{target}/_alias", engine.url))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        for alias in aliases[&target.0]["aliases"]
            .as_object()
            .map(|aliases| aliases.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            http.delete(format!("{}/{target}/_alias/{alias}", engine.url))
                .send()
                .await?
                .error_for_status()?;
        }
        let outcomes = index
            .write(&target, &[upsert(sample_document(1, "legacy"))])
            .await?;
        anyhow::ensure!(outcomes == vec![WriteOutcome::Applied], "{outcomes:?}");
        index.refresh(&target).await?;
        anyhow::ensure!(index.count(&target).await? == 1);
        Ok(())
    })
    .await
}

/// An index on an engine that answered the connection check and then went away.
async fn gone_engine() -> anyhow::Result<EsIndex> {
    let fake = FakeEngine::start(Vec::new())?;
    let index = EsIndex::connect(&EsConfig {
        url: fake.url.clone(),
        request_timeout_secs: 5,
        ..EsConfig::default()
    })
    .await?;
    fake.finish();
    Ok(index)
}

#[tokio::test]
async fn an_unreachable_engine_is_unavailable() -> anyhow::Result<()> {
    let refused = EsIndex::connect(&EsConfig {
        url: "http://127.0.0.1:1".into(),
        request_timeout_secs: 5,
        ..EsConfig::default()
    })
    .await;
    anyhow::ensure!(
        matches!(&refused, Err(error @ EsError::Unreachable { .. }) if error.is_retryable()),
        "{refused:?}"
    );

    let index = gone_engine().await?;
    let target = IndexName("athens-projects-v1-x".into());
    let written = index
        .write(&target, &[upsert(sample_document(1, "a"))])
        .await;
    anyhow::ensure!(
        matches!(&written, Err(error @ IndexError::Unavailable { .. }) if error.is_retryable()),
        "{written:?}"
    );
    let live = index.live_index().await;
    anyhow::ensure!(
        matches!(live, Err(IndexError::Unavailable { .. })),
        "{live:?}"
    );
    let searched = index.searcher().search(&request()).await;
    anyhow::ensure!(
        matches!(searched, Err(SearchError::Unavailable { .. })),
        "{searched:?}"
    );
    Ok(())
}

fn request() -> SearchRequest {
    SearchRequest {
        text: Some("sync".into()),
        size: 10,
        ..SearchRequest::default()
    }
}

fn error_body(status: u16, kind: &str) -> (u16, String) {
    (
        status,
        json!({"error": {"type": kind, "reason": "scripted"}, "status": status}).to_string(),
    )
}

#[tokio::test]
async fn whole_request_failures_map_to_error_kinds() -> anyhow::Result<()> {
    let fake = FakeEngine::start(vec![
        error_body(429, "es_rejected_execution_exception"),
        error_body(503, "cluster_block_exception"),
        error_body(400, "illegal_argument_exception"),
        error_body(404, "index_not_found_exception"),
        // The index itself is gone too: giving it its write alias fails.
        error_body(404, "index_not_found_exception"),
        error_body(401, "security_exception"),
        (200, "not json".into()),
    ])?;
    let index = EsIndex::connect(&EsConfig {
        url: fake.url.clone(),
        ..EsConfig::default()
    })
    .await?;
    let target = IndexName("athens-projects-v1-x".into());
    let ops = [upsert(sample_document(1, "a"))];
    let mut results = Vec::new();
    for _ in 0..6 {
        results.push(index.write(&target, &ops).await);
    }
    fake.finish();
    let kinds: Vec<&str> = results
        .iter()
        .map(|result| match result {
            Err(IndexError::Unavailable { .. }) => "unavailable",
            Err(IndexError::Rejected { .. }) => "rejected",
            Err(IndexError::NotFound { .. }) => "not found",
            Err(IndexError::Invalid { .. }) => "invalid",
            _ => "something else",
        })
        .collect();
    anyhow::ensure!(
        kinds
            == [
                "unavailable",
                "unavailable",
                "rejected",
                "not found",
                "rejected",
                "invalid"
            ],
        "{kinds:?}: {results:?}"
    );
    Ok(())
}

fn created(ids: &[i64]) -> (u16, String) {
    let mut items: Vec<_> = ids
        .iter()
        .map(|id| json!({"index": {"_id": id.to_string(), "status": 201, "result": "created"}}))
        .collect();
    // The answer to the trailing update that fences every bulk request to an existing index.
    items.push(json!({"update": {"_id": "athens-fence", "status": 404,
        "error": {"type": "document_missing_exception", "reason": "document missing"}}}));
    (
        200,
        json!({"took": 1, "errors": false, "items": items}).to_string(),
    )
}

#[tokio::test]
async fn an_oversized_bulk_request_is_split_until_it_fits() -> anyhow::Result<()> {
    let too_large = (413, String::new());
    let fake = FakeEngine::start(vec![
        too_large.clone(),
        created(&[1]),
        too_large.clone(),
        created(&[2]),
        too_large,
    ])?;
    let index = EsIndex::connect(&EsConfig {
        url: fake.url.clone(),
        bulk_concurrency: NonZeroUsize::MIN,
        ..EsConfig::default()
    })
    .await?;
    let target = IndexName("athens-projects-v1-x".into());
    let ops: Vec<IndexOp> = (1..=3).map(|id| upsert(sample_document(id, "a"))).collect();
    // [1,2,3] → 413 → [1] ok, [2,3] → 413 → [2] ok, [3] → 413 → refused for good.
    let outcomes = index.write(&target, &ops).await?;
    let received = fake.finish();
    anyhow::ensure!(outcomes[0] == WriteOutcome::Applied, "{outcomes:?}");
    anyhow::ensure!(outcomes[1] == WriteOutcome::Applied, "{outcomes:?}");
    anyhow::ensure!(
        matches!(&outcomes[2], WriteOutcome::Rejected(reason) if reason.contains("413")),
        "{outcomes:?}"
    );
    anyhow::ensure!(
        received.len() == 6,
        "banner and five bulk requests, got {received:?}"
    );
    Ok(())
}

#[tokio::test]
async fn sends_only_headers_every_engine_accepts() -> anyhow::Result<()> {
    let fake = FakeEngine::start(vec![
        created(&[1]),
        (
            200,
            json!({"took": 1, "timed_out": false, "_shards": {"total": 1, "successful": 1, "failed": 0},
                   "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []}})
            .to_string(),
        ),
        // A text that matched nothing: the search asks for a correction.
        (
            200,
            json!({"took": 1, "timed_out": false, "_shards": {"total": 1, "successful": 1, "failed": 0},
                   "hits": {"total": {"value": 0, "relation": "eq"}, "hits": []},
                   "suggest": {"did_you_mean": [
                       {"text": "sync", "offset": 0, "length": 4, "options": []}]}})
            .to_string(),
        ),
    ])?;
    let config = EsConfig {
        url: fake.url.clone(),
        auth: Some(athens_es::EsAuth::Basic {
            username: "athens".into(),
            password: "secret".into(),
        }),
        ..EsConfig::default()
    };
    let index = EsIndex::connect(&config).await?;
    let target = IndexName("athens-projects-v1-x".into());
    index
        .write(&target, &[upsert(sample_document(1, "a"))])
        .await?;
    let page = index.searcher().search(&request()).await?;
    anyhow::ensure!(page.total == 0 && page.next_cursor.is_none() && page.did_you_mean.is_none());
    let received = fake.finish();
    anyhow::ensure!(received.len() == 4, "{received:?}");
    for request in &received {
        let accept = request.header("accept").unwrap_or_default();
        anyhow::ensure!(
            accept == "application/json",
            "{} sent accept {accept:?}: compatible-with media types break Elasticsearch 7 and OpenSearch",
            request.line
        );
        anyhow::ensure!(
            request.header("accept-encoding") == Some("identity"),
            "{} sent accept-encoding {:?}: without `compression` the engine must not spend CPU on gzip",
            request.line,
            request.header("accept-encoding")
        );
        anyhow::ensure!(
            request.header("x-elastic-client-meta").is_none(),
            "{} sent the Elastic client meta header",
            request.line
        );
        anyhow::ensure!(
            request
                .header("authorization")
                .is_some_and(|value| value.starts_with("Basic ")),
            "{} sent no credentials",
            request.line
        );
    }
    let bulk = &received[1];
    anyhow::ensure!(
        bulk.line
            .starts_with("POST /athens-projects-writes-v1-x/_bulk")
            && bulk.line.contains("require_alias=true"),
        "{}",
        bulk.line
    );
    anyhow::ensure!(
        bulk.header("content-type") == Some("application/x-ndjson"),
        "{:?}",
        bulk.header("content-type")
    );
    anyhow::ensure!(bulk.body.ends_with(b"\n"), "NDJSON must end with a newline");
    let search = &received[2];
    anyhow::ensure!(
        search.line.starts_with("POST /athens-projects/_search"),
        "{}",
        search.line
    );
    anyhow::ensure!(search.header("content-type") == Some("application/json"));
    Ok(())
}

#[tokio::test]
async fn an_unreadable_ca_certificate_is_a_configuration_error() -> anyhow::Result<()> {
    let garbage = std::env::temp_dir().join(format!("athens-es-ca-{}.pem", std::process::id()));
    std::fs::write(&garbage, "not a certificate")?;
    for path in [garbage.clone(), garbage.with_extension("missing")] {
        let result = EsIndex::connect(&EsConfig {
            url: "https://127.0.0.1:1".into(),
            ca_certificate: Some(path.clone()),
            ..EsConfig::default()
        })
        .await;
        anyhow::ensure!(
            matches!(&result, Err(EsError::Config { message: reason, .. }) if reason.contains("ca_certificate")),
            "{path:?}: {result:?}"
        );
    }
    std::fs::remove_file(&garbage)?;
    Ok(())
}

#[tokio::test]
async fn an_unreachable_engine_keeps_the_transport_error_as_cause() -> anyhow::Result<()> {
    let index = gone_engine().await?;
    let written = index
        .write(
            &IndexName("athens-projects-v1-x".into()),
            &[upsert(sample_document(1, "a"))],
        )
        .await;
    let Err(error) = written else {
        anyhow::bail!("a write to a stopped engine succeeded");
    };
    let chain = ErrorChain(&error).to_string();
    let mut levels = Vec::new();
    let mut cause = std::error::Error::source(&error);
    while let Some(level) = cause {
        levels.push(level);
        cause = level.source();
    }
    anyhow::ensure!(
        levels
            .iter()
            .any(|level| level.downcast_ref::<elasticsearch::Error>().is_some()),
        "the client's error is not in the chain: {error:?}"
    );
    let root = levels.last().map(ToString::to_string).unwrap_or_default();
    anyhow::ensure!(
        levels.len() >= 2 && chain.matches(&root).count() == 1,
        "the root cause {root:?} is not printed once in {chain:?}"
    );
    for level in &levels {
        anyhow::ensure!(
            chain.contains(&level.to_string()),
            "{level} missing in {chain}"
        );
    }
    Ok(())
}
