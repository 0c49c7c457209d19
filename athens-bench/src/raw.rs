//! The engine's ceiling: `_bulk` of Athens' own documents, read from the seeded database and encoded
//! as NDJSON before the clock starts, into indexes with Athens' mapping; a sweep of bulk size and
//! concurrency with refresh off (the backfill's setting) and at 1 s (the serving setting); at each
//! point the same documents through Athens' write path ([`EsIndex::write`]), so the adapter's own
//! cost is read against the ceiling; then one document per request, the ceiling of a stream of
//! single changes.

use athens_core::KeysetPage;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use athens_core::{
    DocumentSource, IndexName, IndexOp, ProjectDocument, SearchIndex, Version, WriteOutcome,
};
use athens_es::{EsConfig, EsIndex};
use athens_pg::{PgConfig, PgSource};
use futures::{StreamExt, stream};
use reqwest::Method;
use serde_json::json;

use crate::Bench;
use crate::report::{Table, num, ratio};

const BULK_SIZES: [usize; 3] = [500, 1000, 5000];
const CONCURRENCY: [usize; 3] = [1, 2, 4];
const SINGLE_CONCURRENCY: [usize; 2] = [4, 16];
/// The smoke run's only point of each sweep.
const TINY_BULK_SIZES: [usize; 1] = [1000];
const TINY_CONCURRENCY: [usize; 1] = [2];
const TINY_SINGLE_CONCURRENCY: [usize; 1] = [4];
/// Alias whose indexes the raw runs create (never the one Athens serves).
pub const RAW_ALIAS: &str = "athens-bench-raw";

/// Every project's document, read page by page like a backfill does, `page_size` at a time, each
/// page handed to `each`, until `limit` documents.
pub async fn for_each_page(
    db_url: &str,
    limit: usize,
    page_size: usize,
    mut each: impl FnMut(Vec<ProjectDocument>) -> anyhow::Result<()>,
) -> anyhow::Result<usize> {
    let source = PgSource::connect(&PgConfig::new(db_url)).await?;
    let mut read = 0;
    let mut after = None;
    while read < limit {
        let page = source
            .load_page(KeysetPage::after(after, page_size.min(limit - read)))
            .await?;
        let Some(last) = page.documents.last() else {
            break;
        };
        after = Some(last.id);
        read += page.documents.len();
        each(page.documents)?;
    }
    source.close().await;
    Ok(read)
}

/// Every project's document (at most `limit`), read page by page like a backfill does.
pub async fn documents(db_url: &str, limit: usize) -> anyhow::Result<Vec<ProjectDocument>> {
    let mut documents = Vec::new();
    for_each_page(db_url, limit, 5_000, |page| {
        documents.extend(page);
        Ok(())
    })
    .await?;
    Ok(documents)
}

/// Every document as an upsert at version 1: what the raw bodies hold and what Athens writes.
fn upserts(documents: &[ProjectDocument]) -> Vec<IndexOp> {
    documents
        .iter()
        .map(|document| IndexOp::Upsert {
            document: document.clone(),
            version: Version(1),
        })
        .collect()
}

/// NDJSON bodies of `bulk_size` documents each, with the action line Athens sends.
pub fn bodies(documents: &[ProjectDocument], bulk_size: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    documents
        .chunks(bulk_size)
        .map(|chunk| Ok(athens_es::bulk_body(&upserts(chunk))?))
        .collect()
}

/// Sends one prebuilt `_bulk` body to `index`; fails on an error status or an `errors: true`
/// answer.
pub async fn send(bench: &Bench, index: &IndexName, body: Vec<u8>) -> anyhow::Result<()> {
    let response = bench
        .http
        .post(format!(
            "{}/{index}/_bulk?filter_path=took,errors,items.*.status,items.*.error",
            bench.engine_url
        ))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    let status = response.status();
    let text = response.bytes().await?;
    ensure!(status.is_success(), "bulk answered {status}");
    // Only the flag: the ceiling skips Athens' per-item classification on purpose.
    const NO_ERRORS: &[u8] = b"\"errors\":false";
    ensure!(
        text.windows(NO_ERRORS.len()).any(|w| w == NO_ERRORS),
        "bulk reported errors: {}",
        crate::truncate(&String::from_utf8_lossy(&text), 300)
    );
    Ok(())
}

/// A fresh index with Athens' mapping and bulk-load settings, refresh set to `refresh`.
async fn fresh_index(bench: &Bench, es: &EsIndex, refresh: &str) -> anyhow::Result<IndexName> {
    let index = es.create_index().await?;
    bench
        .engine(
            Method::PUT,
            &format!("{index}/_settings"),
            Some(json!({ "index": { "refresh_interval": refresh } })),
        )
        .await?;
    Ok(index)
}

async fn check_and_drop(
    bench: &Bench,
    es: &EsIndex,
    index: &IndexName,
    expected: usize,
) -> anyhow::Result<()> {
    es.refresh(index).await?;
    let count = es.count(index).await?;
    es.drop_index(index).await?;
    let _ = bench;
    ensure!(
        count == expected as u64,
        "{index} holds {count} documents, expected {expected}"
    );
    Ok(())
}

/// Sends prebuilt bodies with `concurrency` in flight; documents per second and the engine's CPU
/// seconds per 1,000 documents.
async fn bulk_rate(
    bench: &Bench,
    es: &EsIndex,
    bodies: &[Vec<u8>],
    docs: usize,
    concurrency: usize,
    refresh: &str,
) -> anyhow::Result<(f64, f64)> {
    let index = fresh_index(bench, es, refresh).await?;
    let cpu_before = bench.services.cpu();
    let started = Instant::now();
    let results: Vec<anyhow::Result<()>> = stream::iter(bodies.iter().cloned())
        .map(|body| send(bench, &index, body))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (_, engine_cpu, _) = bench.services.cpu().since(&cpu_before);
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    check_and_drop(bench, es, &index, docs).await?;
    Ok((
        docs as f64 / elapsed.as_secs_f64(),
        engine_cpu * 1000.0 / docs as f64,
    ))
}

/// The same upserts through Athens' write path: [`EsIndex::write`] in one call, which encodes them,
/// splits them into requests of `bulk_size`, keeps `concurrency` in flight and classifies every
/// item; into a fresh index, refresh off. Documents per second.
async fn athens_rate(
    bench: &Bench,
    ops: &[IndexOp],
    bulk_size: usize,
    concurrency: usize,
) -> anyhow::Result<f64> {
    let es = connect(bench, bulk_size, concurrency).await?;
    let index = fresh_index(bench, &es, "-1").await?;
    let started = Instant::now();
    let outcomes = es.write(&index, ops).await?;
    let elapsed = started.elapsed();
    ensure!(
        outcomes
            .iter()
            .all(|outcome| *outcome == WriteOutcome::Applied),
        "Athens' write did not apply every document"
    );
    check_and_drop(bench, &es, &index, ops.len()).await?;
    Ok(ops.len() as f64 / elapsed.as_secs_f64())
}

/// One document per `_bulk` request, `concurrency` requests in flight, for `seconds`; requests per
/// second. Documents are overwritten in turn, each time with a higher version, like a stream does.
async fn single_rate(
    bench: &Bench,
    es: &EsIndex,
    sources: &[(i64, Vec<u8>)],
    concurrency: usize,
    seconds: f64,
) -> anyhow::Result<f64> {
    let index = fresh_index(bench, es, "1s").await?;
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let bodies = (1u64..).map(|n| {
        let (id, source) = &sources[(n as usize) % sources.len()];
        let mut body = format!(
            "{{\"index\":{{\"_id\":\"{id}\",\"version\":{n},\"version_type\":\"external\"}}}}\n"
        )
        .into_bytes();
        body.extend_from_slice(source);
        body.push(b'\n');
        body
    });
    let done = stream::iter(bodies)
        .take_while(|_| futures::future::ready(Instant::now() < deadline))
        .map(|body| send(bench, &index, body))
        .buffer_unordered(concurrency)
        .fold((0usize, None), |(ok, error), result| async move {
            match result {
                Ok(()) => (ok + 1, error),
                Err(e) => (ok, Some(e)),
            }
        })
        .await;
    let elapsed = started.elapsed();
    es.drop_index(&index).await?;
    if let (0, Some(error)) = done {
        return Err(error);
    }
    Ok(done.0 as f64 / elapsed.as_secs_f64())
}

/// A client for the raw indexes, writing `bulk_size` documents per request, `concurrency` in flight.
pub async fn connect(
    bench: &Bench,
    bulk_size: usize,
    concurrency: usize,
) -> anyhow::Result<EsIndex> {
    EsIndex::connect(&EsConfig {
        url: bench.engine_url.clone(),
        alias: RAW_ALIAS.into(),
        request_timeout_secs: 300,
        bulk_size: NonZeroUsize::new(bulk_size).context("the bulk size must be at least 1")?,
        bulk_concurrency: NonZeroUsize::new(concurrency)
            .context("the bulk concurrency must be at least 1")?,
        ..EsConfig::default()
    })
    .await
    .context("cannot connect to the engine")
}

/// The documents of the raw runs, read from the seeded database, and a client for the raw indexes.
async fn prepare(bench: &Bench) -> anyhow::Result<(Vec<ProjectDocument>, EsIndex)> {
    let docs = bench.scale.raw_docs.min(bench.projects as usize);
    let documents = documents(&bench.db_url, docs).await?;
    ensure!(!documents.is_empty(), "no documents to send");
    let defaults = EsConfig::default();
    let es = connect(
        bench,
        defaults.bulk_size.get(),
        defaults.bulk_concurrency.get(),
    )
    .await?;
    bench.drop_indexes(RAW_ALIAS).await?;
    Ok((documents, es))
}

/// The `_bulk` ceiling again at the sweep's best bulk size and concurrency (refresh off), so that
/// a later measurement is compared with a ceiling taken right before it; `None` when the raw
/// section did not run.
pub async fn ceiling_again(bench: &Bench) -> anyhow::Result<Option<f64>> {
    let Some((bulk_size, concurrency)) = bench.bulk_best else {
        return Ok(None);
    };
    let (documents, es) = prepare(bench).await?;
    let prepared = bodies(&documents, bulk_size)?;
    let (rate, _) = bulk_rate(bench, &es, &prepared, documents.len(), concurrency, "-1").await?;
    Ok(Some(rate))
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let (documents, es) = prepare(bench).await?;
    let docs = documents.len();
    let ops = upserts(&documents);
    let encoding = Instant::now();
    let one = bodies(&documents, docs)?;
    let encoding = encoding.elapsed();
    let total_bytes = one.iter().map(Vec::len).sum::<usize>();
    let bytes = total_bytes / docs;

    // Warm-up: the JVM compiles the indexing path before the first measured run.
    let warm = bodies(&documents[..docs.min(10_000)], 1000)?;
    bulk_rate(bench, &es, &warm, docs.min(10_000), 2, "-1").await?;

    let mut table = Table::new(
        &format!("Raw `_bulk` ceiling ({docs} of Athens' documents, {bytes} bytes of NDJSON each)"),
        &[
            "bulk size",
            "concurrency",
            "docs/s refresh off",
            "docs/s refresh 1 s",
            "Athens' write path docs/s refresh off",
            "Athens / raw",
        ],
    );
    // (docs/s, bulk size, concurrency, engine CPU s per 1k docs)
    let mut best_off: (f64, usize, usize, f64) = (0.0, 0, 0, 0.0);
    let mut best_on: f64 = 0.0;
    let mut worst_athens: f64 = f64::INFINITY;
    let (sizes, concurrencies, singles_in_flight): (&[usize], &[usize], &[usize]) = if bench.tiny {
        (
            &TINY_BULK_SIZES,
            &TINY_CONCURRENCY,
            &TINY_SINGLE_CONCURRENCY,
        )
    } else {
        (&BULK_SIZES, &CONCURRENCY, &SINGLE_CONCURRENCY)
    };
    for &bulk_size in sizes {
        let prepared = bodies(&documents, bulk_size)?;
        for &concurrency in concurrencies {
            let (off, off_cpu) = bulk_rate(bench, &es, &prepared, docs, concurrency, "-1").await?;
            let (on, _) = bulk_rate(bench, &es, &prepared, docs, concurrency, "1s").await?;
            let athens = athens_rate(bench, &ops, bulk_size, concurrency).await?;
            println!(
                "raw bulk {bulk_size} × {concurrency}: {off:.0} docs/s refresh off, {on:.0} refresh 1 s; Athens' write path {athens:.0}"
            );
            worst_athens = worst_athens.min(athens / off);
            if off > best_off.0 {
                best_off = (off, bulk_size, concurrency, off_cpu);
            }
            best_on = best_on.max(on);
            table.row(vec![
                bulk_size.to_string(),
                concurrency.to_string(),
                num(off, 0),
                num(on, 0),
                num(athens, 0),
                ratio(athens / off),
            ]);
        }
    }
    table.note(format!(
        "ceiling (best, refresh off): {:.0} docs/s at bulk {} × {} in flight, the engine using {:.3} CPU s per 1k docs; refresh 1 s: {:.0} docs/s",
        best_off.0, best_off.1, best_off.2, best_off.3, best_on
    ));
    table.note(format!(
        "Athens' write path: the same documents through `EsIndex::write` in one call (encoding, splitting into requests of the bulk size, that many in flight, every item's outcome classified); worst point {} of the raw rate; encoding the NDJSON alone, client side: {:.0} docs/s ({:.0} MB/s)",
        ratio(worst_athens),
        docs as f64 / encoding.as_secs_f64(),
        total_bytes as f64 / encoding.as_secs_f64() / 1e6
    ));
    bench.bulk_ceiling = Some(best_off.0);
    bench.bulk_best = Some((best_off.1, best_off.2));

    let singles = documents
        .iter()
        .map(|document| Ok((document.id.0, serde_json::to_vec(document)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut best_single: f64 = 0.0;
    for &concurrency in singles_in_flight {
        let rate = single_rate(
            bench,
            &es,
            &singles,
            concurrency,
            bench.scale.single_seconds,
        )
        .await?;
        println!("raw single-document requests × {concurrency}: {rate:.0}/s");
        best_single = best_single.max(rate);
        table.note(format!(
            "one document per request, {concurrency} in flight, refresh 1 s: {rate:.0} docs/s"
        ));
    }
    bench.single_ceiling = Some(best_single);
    bench.report.tables.push(table);
    bench.report.headline(
        "raw `_bulk` ceiling (refresh off), docs/s",
        num(best_off.0, 0),
        "reference",
        None,
    );
    bench.report.headline(
        "raw single-document ceiling (refresh 1 s), docs/s",
        num(best_single, 0),
        "reference",
        None,
    );
    Ok(())
}
