//! Bulk throughput: the raw `_bulk` ceiling against Athens' write path, on one engine.
//!
//! ```text
//! cargo run --release -p athens-es --example bulk_bench -- [URL] [DOCS]
//! ```
//!
//! For each bulk size (500, 1000, 5000) and concurrency (1, 2, 4), in a fresh index with Athens'
//! mapping and bulk-load settings (refresh off, no replicas):
//! - **raw**: NDJSON of the documents built before the clock starts (same action lines, external
//!   versions), sent with the `elasticsearch` crate; only the status and the `errors` flag are read;
//! - **athens**: the same documents through [`EsIndex::write`] in one call, which encodes them, splits
//!   them into requests of the bulk size, keeps that many in flight and classifies every item.
//!
//! Prints documents per second and the ratio athens/raw. URL defaults to `ATHENS_ENGINE_URL` or
//! `http://127.0.0.1:9200`, DOCS to 100000.
#![allow(clippy::print_stdout)] // a benchmark program prints its figures

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use athens_core::{
    Creator, Hashtag, HashtagId, IndexName, IndexOp, ProjectDocument, ProjectId, SearchIndex,
    UserId, Version, WriteOutcome,
};
use athens_es::{EsConfig, EsIndex};
use chrono::DateTime;
use elasticsearch::Elasticsearch;
use elasticsearch::http::Method;
use elasticsearch::http::headers::{CONTENT_TYPE, HeaderMap, HeaderValue};
use elasticsearch::http::transport::Transport;
use futures::{StreamExt, stream};

const BULK_SIZES: [usize; 3] = [500, 1000, 5000];
const CONCURRENCY: [usize; 3] = [1, 2, 4];

const WORDS: &[&str] = &[
    "sync",
    "search",
    "index",
    "postgres",
    "elastic",
    "stream",
    "queue",
    "cache",
    "graph",
    "vector",
    "rust",
    "server",
    "client",
    "pipeline",
    "batch",
    "event",
    "schema",
    "engine",
    "proxy",
    "shard",
    "replica",
    "ledger",
    "metrics",
    "tracing",
    "gateway",
    "cluster",
    "storage",
    "backup",
    "query",
    "planner",
    "compiler",
    "runtime",
    "scheduler",
    "worker",
    "webhook",
    "payment",
    "invoice",
];
const NAMES: &[&str] = &[
    "Ada Lovelace",
    "Grace Hopper",
    "John Smith",
    "Linus Torvalds",
    "Jane Doe",
    "Alan Turing",
    "Barbara Liskov",
    "Donald Knuth",
    "Edsger Dijkstra",
    "Margaret Hamilton",
    "Zoë Ünal",
];
const TAGS: &[&str] = &[
    "Rust",
    "Go",
    "Python",
    "Search",
    "PostgreSQL",
    "Kafka",
    "AWS",
    "DevOps",
    "ML",
    "Web",
    "CDC",
];

/// A deterministic pseudo-random sequence (SplitMix64), so every run indexes the same documents.
struct Sequence(u64);

impl Sequence {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn documents(count: usize) -> Vec<ProjectDocument> {
    let mut random = Sequence(42);
    let at = |micros: i64| DateTime::from_timestamp_micros(micros).unwrap_or_default();
    (1..=count as i64)
        .map(|id| {
            let slug = format!("{}-{}-{id}", random.pick(WORDS), random.pick(WORDS));
            let words = 15 + random.below(30);
            let description = (0..words)
                .map(|_| random.pick(WORDS))
                .collect::<Vec<_>>()
                .join(" ");
            let hashtags = (0..1 + random.below(4))
                .map(|n| {
                    let tag = (random.below(TAGS.len()) + n) % TAGS.len();
                    let hashtag = Hashtag {
                        id: HashtagId(tag as i64 + 1),
                        name: TAGS[tag].into(),
                        created_at: at(1_500_000_000_000_000),
                    };
                    (tag, hashtag)
                })
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_values()
                .collect();
            let creators = (0..1 + random.below(3))
                .map(|_| {
                    let user = random.below(NAMES.len());
                    (
                        user,
                        Creator {
                            id: UserId(user as i64 + 1),
                            name: NAMES[user].into(),
                            created_at: at(1_500_000_000_000_000),
                        },
                    )
                })
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_values()
                .collect();
            ProjectDocument {
                id: ProjectId(id),
                name: slug.replace('-', " "),
                slug,
                description,
                created_at: at(1_600_000_000_000_000 + id * 1_000_003),
                hashtags,
                creators,
            }
        })
        .collect()
}

/// The NDJSON bodies of `documents`, `bulk_size` documents each: what the raw run sends.
fn raw_bodies(documents: &[ProjectDocument], bulk_size: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    documents
        .chunks(bulk_size)
        .map(|chunk| {
            let ops: Vec<IndexOp> = chunk
                .iter()
                .map(|document| IndexOp::Upsert {
                    document: document.clone(),
                    version: Version(1),
                })
                .collect();
            Ok(athens_es::bulk_body(&ops)?)
        })
        .collect()
}

async fn send_raw(es: &Elasticsearch, index: &IndexName, body: &[u8]) -> anyhow::Result<()> {
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    // The same answer filter as Athens' requests.
    let query = [("filter_path", "took,errors,items.*.status,items.*.error")];
    let response = es
        .send(
            Method::Post,
            &format!("/{index}/_bulk"),
            headers,
            Some(&query),
            Some(body),
            None,
        )
        .await?
        .error_for_status_code()?;
    let text = response.bytes().await?;
    // Only the flag: the ceiling skips per-item classification on purpose.
    const NO_ERRORS: &[u8] = b"\"errors\":false";
    ensure!(
        text.windows(NO_ERRORS.len()).any(|w| w == NO_ERRORS),
        "raw bulk reported errors"
    );
    Ok(())
}

/// Writes every body with `concurrency` requests in flight; returns the elapsed time.
async fn run_raw(
    es: &Elasticsearch,
    index: &IndexName,
    bodies: &[Vec<u8>],
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let requests: Vec<_> = bodies
        .iter()
        .map(|body| send_raw(es, index, body))
        .collect();
    let results: Vec<anyhow::Result<()>> =
        stream::iter(requests).buffered(concurrency).collect().await;
    let elapsed = started.elapsed();
    results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    Ok(elapsed)
}

async fn run_athens(
    index: &EsIndex,
    target: &IndexName,
    ops: &[IndexOp],
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let outcomes = index.write(target, ops).await?;
    let elapsed = started.elapsed();
    ensure!(
        outcomes
            .iter()
            .all(|outcome| *outcome == WriteOutcome::Applied),
        "athens write did not apply everything"
    );
    Ok(elapsed)
}

/// Refreshes and checks that `expected` documents arrived, then drops the index.
async fn verify_and_drop(
    index: &EsIndex,
    target: &IndexName,
    expected: usize,
) -> anyhow::Result<()> {
    index.refresh(target).await?;
    let count = index.count(target).await?;
    index.drop_index(target).await?;
    ensure!(
        count == expected as u64,
        "{target} holds {count} documents, expected {expected}"
    );
    Ok(())
}

fn rate(docs: usize, elapsed: Duration) -> f64 {
    docs as f64 / elapsed.as_secs_f64()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .or_else(|| std::env::var("ATHENS_ENGINE_URL").ok())
        .unwrap_or_else(|| "http://127.0.0.1:9200".into());
    let count: usize = match args.next() {
        Some(count) => count.parse().context("DOCS must be a number")?,
        None => 100_000,
    };
    if count == 0 {
        bail!("DOCS must be at least 1");
    }
    let alias = format!("athens-bench-{}", std::process::id());
    let base = EsConfig {
        url: url.clone(),
        alias,
        request_timeout_secs: 120,
        ..EsConfig::default()
    };
    let probe = EsIndex::connect(&base).await?;
    let es = Elasticsearch::new(Transport::single_node(&url)?);
    let result = sweep(&probe, &es, &base, count).await;
    // Whatever happened, leave no index behind.
    for index in probe.indexes().await? {
        probe.drop_index(&index).await?;
    }
    result
}

/// Generates the documents, warms the engine up, and measures every bulk size and concurrency.
async fn sweep(
    probe: &EsIndex,
    es: &Elasticsearch,
    base: &EsConfig,
    count: usize,
) -> anyhow::Result<()> {
    let url = &base.url;

    let documents = documents(count);
    let ops: Vec<IndexOp> = documents
        .iter()
        .map(|document| IndexOp::Upsert {
            document: document.clone(),
            version: Version(1),
        })
        .collect();
    let encoding = Instant::now();
    let bytes: usize = raw_bodies(&documents, count)?.iter().map(Vec::len).sum();
    let encoding = encoding.elapsed();
    println!(
        "engine: {} at {url}; {count} documents, {} bytes of NDJSON on average per document",
        probe.engine(),
        bytes / count
    );
    println!(
        "client-side NDJSON encoding alone: {:.0} doc/s ({:.0} MB/s)",
        rate(count, encoding),
        bytes as f64 / encoding.as_secs_f64() / 1e6
    );

    // Warm-up: the JVM compiles the indexing path before the first measured run.
    let warm = probe.create_index().await?;
    let warm_ops = &ops[..count.min(20_000)];
    run_athens(probe, &warm, warm_ops).await?;
    verify_and_drop(probe, &warm, warm_ops.len()).await?;

    println!();
    println!(
        "{:>6} {:>5} {:>12} {:>12} {:>7}",
        "bulk", "conc", "raw doc/s", "athens doc/s", "ratio"
    );
    for bulk_size in BULK_SIZES {
        let bodies = raw_bodies(&documents, bulk_size)?;
        for concurrency in CONCURRENCY {
            let index = EsIndex::connect(&EsConfig {
                bulk_size,
                bulk_concurrency: concurrency,
                ..base.clone()
            })
            .await?;

            let target = index.create_index().await?;
            let raw = run_raw(es, &target, &bodies, concurrency).await?;
            verify_and_drop(&index, &target, count).await?;

            let target = index.create_index().await?;
            let athens = run_athens(&index, &target, &ops).await?;
            verify_and_drop(&index, &target, count).await?;

            let (raw, athens) = (rate(count, raw), rate(count, athens));
            println!(
                "{bulk_size:>6} {concurrency:>5} {raw:>12.0} {athens:>12.0} {:>7.2}",
                athens / raw
            );
        }
    }
    Ok(())
}
