//! Paging by relevance: every hit exactly once, whatever the ties in score and however many
//! shards, and every page of one search read from the same shard copies (`preference`), so that
//! copies scoring a document differently cannot make pages repeat or skip hits.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use athens_core::testing::sample_document;
use athens_core::{
    IndexOp, ProjectSearch, SearchIndex, SearchPage, SearchRequest, Version, WriteOutcome,
};
use athens_es::{EsConfig, EsIndex, EsSearch, bulk_body};
use serde_json::{Value, json};

use crate::support::{FakeEngine, config, on_every_engine};

/// Projects that a search for `tie` matches in exactly the same way.
const TIED: i64 = 40;

fn ids(page: &SearchPage) -> Vec<i64> {
    page.hits.iter().map(|hit| hit.document.id.0).collect()
}

fn tie(size: usize) -> SearchRequest {
    SearchRequest {
        text: Some("tie".into()),
        size,
        ..SearchRequest::default()
    }
}

#[tokio::test]
async fn relevance_pages_hold_every_hit_once_with_ties_across_shards() -> anyhow::Result<()> {
    on_every_engine("paging-ties", |index, engine| async move {
        let sharded = EsIndex::connect(&EsConfig {
            shards: 3,
            ..config(&engine, index.alias())
        })
        .await?;
        let target = sharded.create_index().await?;
        let ops: Vec<IndexOp> = (1..=TIED)
            .map(|id| IndexOp::Upsert {
                document: sample_document(id, &format!("tie-{id:03}")),
                version: Version(1),
            })
            .collect();
        let outcomes = sharded.write(&target, &ops).await?;
        ensure!(outcomes.iter().all(|o| *o == WriteOutcome::Applied));
        sharded.finish_bulk_load(&target).await?;
        sharded.publish(&target).await?;
        let search = sharded.searcher();

        let whole = search.search(&tie(100)).await?;
        ensure!(whole.total == TIED as u64 && whole.hits.len() == TIED as usize);
        let scores: Vec<f64> = whole.hits.iter().filter_map(|hit| hit.score).collect();
        let ties = scores.windows(2).filter(|pair| pair[0] == pair[1]).count();
        ensure!(
            ties >= TIED as usize / 2,
            "the test needs ties in score: {scores:?}"
        );

        for size in [1, 7, 13] {
            let mut request = tie(size);
            let mut paged = Vec::new();
            for _ in 0..=TIED {
                let page = search.search(&request).await?;
                paged.extend(ids(&page));
                match page.next_cursor {
                    Some(cursor) => request.cursor = Some(cursor),
                    None => break,
                }
            }
            let distinct: BTreeSet<i64> = paged.iter().copied().collect();
            ensure!(
                paged.len() == TIED as usize && distinct == (1..=TIED).collect(),
                "pages of {size}: every hit exactly once, got {paged:?}"
            );
            ensure!(
                paged == ids(&whole),
                "pages of {size} follow the one ranking: {paged:?} vs {:?}",
                ids(&whole)
            );
        }
        Ok(())
    })
    .await
}

/// A search answer holding `ids` (all scored 1), as an engine sends it.
fn answer(ids: &[i64]) -> anyhow::Result<(u16, String)> {
    let mut hits = Vec::new();
    for &id in ids {
        let upsert = IndexOp::Upsert {
            document: sample_document(id, "tie"),
            version: Version(1),
        };
        let body = String::from_utf8(bulk_body(&[upsert])?)?;
        let source: Value = serde_json::from_str(body.lines().nth(1).context("no source")?)?;
        hits.push(json!({ "_score": 1.0, "_source": source, "sort": [1.0, id] }));
    }
    let answer = json!({
        "took": 1,
        "timed_out": false,
        "_shards": { "total": 1, "successful": 1, "failed": 0 },
        "hits": { "total": { "value": 3, "relation": "eq" }, "hits": hits },
    });
    Ok((200, answer.to_string()))
}

/// The `preference` of a request line such as `POST /a/_search?preference=x HTTP/1.1`.
fn preference(line: &str) -> Option<String> {
    let target = line.split(' ').nth(1)?;
    let (_, query) = target.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("preference="))
        .map(str::to_owned)
}

#[tokio::test]
async fn every_page_of_a_search_reads_the_same_shard_copies() -> anyhow::Result<()> {
    let fake = FakeEngine::start(vec![answer(&[1, 2])?, answer(&[2, 3])?, answer(&[1])?])?;
    let search = EsSearch::connect(&EsConfig {
        url: fake.url.clone(),
        request_timeout_secs: 5,
        ..EsConfig::default()
    })
    .await?;
    let first = search.search(&tie(1)).await?;
    let cursor = first.next_cursor.context("a next page")?;
    search
        .search(&SearchRequest {
            cursor: Some(cursor),
            size: 2,
            ..tie(1)
        })
        .await?;
    let other = SearchRequest {
        text: Some("other".into()),
        ..tie(1)
    };
    search.search(&other).await?;

    let received = fake.finish();
    let preferences: Vec<Option<String>> = received
        .iter()
        .skip(1)
        .map(|request| preference(&request.line))
        .collect();
    ensure!(preferences.len() == 3, "{received:?}");
    ensure!(
        preferences[0].is_some() && preferences[0] == preferences[1],
        "the pages of one search share a preference: {preferences:?}"
    );
    ensure!(
        preferences[2].is_some() && preferences[2] != preferences[0],
        "another search has its own: {preferences:?}"
    );
    Ok(())
}
