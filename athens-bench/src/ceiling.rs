//! Athens' backfill against a raw loader of the same documents (issue 17): `athens reindex` with
//! the shipped defaults against the same documents, read from the same database and encoded as
//! `_bulk` bodies before the clock starts, sent with the same bulk size (`sync.chunk_size`) and as
//! many requests in flight as the backfill keeps (`sync.backfill_readers × sync.write_concurrency`),
//! into an index created and finished like Athens' (bulk-load settings, then serving settings and a
//! refresh). The two alternate in one run (raw, Athens, Athens, raw), so that a drift of the shared
//! machine weighs on both alike.

use std::time::Instant;

use anyhow::ensure;
use athens_core::{EngineConfig, IndexOp, SearchIndex, Version};
use athens_es::EsIndex;
use futures::{StreamExt, stream};

use crate::backfill;
use crate::readers::load_average;
use crate::report::{Table, num, ratio};
use crate::{Bench, raw};

/// `_bulk` bodies of the warm-up load (at most): 100,000 documents at the default bulk size.
const WARM_UP_BODIES: usize = 100;

/// What one raw load did.
#[derive(Debug, Clone, Copy)]
struct Load {
    documents: u64,
    seconds: f64,
    /// CPU seconds of PostgreSQL, the engine and this process (the loader).
    cpu: (f64, f64, f64),
}

/// Every project's document as `_bulk` bodies of `bulk_size`, with Athens' action lines (upserts at
/// version 1), each with the number of documents it holds.
async fn bodies(bench: &Bench, bulk_size: usize) -> anyhow::Result<Vec<(Vec<u8>, u64)>> {
    let mut bodies = Vec::new();
    raw::for_each_page(&bench.db_url, usize::MAX, bulk_size, |page| {
        let documents = page.len() as u64;
        let ops: Vec<IndexOp> = page
            .into_iter()
            .map(|document| IndexOp::Upsert {
                document,
                version: Version(1),
            })
            .collect();
        bodies.push((athens_es::bulk_body(&ops)?, documents));
        Ok(())
    })
    .await?;
    Ok(bodies)
}

/// Creates an index like Athens' backfill does, sends `bodies` with `in_flight` requests at once,
/// restores the serving settings (refresh included) and checks the count; timed from the creation.
async fn load(
    bench: &Bench,
    es: &EsIndex,
    bodies: &[(Vec<u8>, u64)],
    in_flight: usize,
) -> anyhow::Result<Load> {
    let documents = bodies.iter().map(|(_, documents)| documents).sum();
    let cpu_before = bench.services.cpu();
    let loader_before = crate::procs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN);
    let started = Instant::now();
    let index = es.create_index().await?;
    let sent: Vec<anyhow::Result<()>> = stream::iter(bodies.iter().map(|(body, _)| body.clone()))
        .map(|body| raw::send(bench, &index, body))
        .buffer_unordered(in_flight)
        .collect()
        .await;
    es.finish_bulk_load(&index).await?;
    let seconds = started.elapsed().as_secs_f64();
    let loader = crate::procs::cpu_seconds(std::process::id()).unwrap_or(f64::NAN) - loader_before;
    let (pg, engine, _) = bench.services.cpu().since(&cpu_before);
    let count = es.count(&index).await;
    es.drop_index(&index).await?;
    sent.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    let count = count?;
    ensure!(
        count == documents,
        "the raw load left {count} documents of {documents}"
    );
    Ok(Load {
        documents,
        seconds,
        cpu: (pg, engine, loader),
    })
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let defaults = EngineConfig::default();
    let bulk_size = defaults.chunk_size.get();
    let in_flight = defaults.backfill_readers.get() * defaults.write_concurrency.get();
    let encoding = Instant::now();
    let bodies = bodies(bench, bulk_size).await?;
    let encoding = encoding.elapsed().as_secs_f64();
    let documents: u64 = bodies.iter().map(|(_, documents)| documents).sum();
    let bytes: usize = bodies.iter().map(|(body, _)| body.len()).sum();
    println!(
        "ceiling: {documents} documents read and encoded in {encoding:.1} s ({} MB of NDJSON)",
        bytes / 1_000_000
    );
    let es = raw::connect(bench, bulk_size, in_flight).await?;
    // Warm-up: the JVM compiles the indexing path before the first measured run. An engine with
    // the full JIT (C2) needs about 100,000 documents before its rate settles (measured: 959,
    // then 3,282 documents/s over the first and fourth 100,000 after a warm-up of 20,000).
    let warm_up = bodies.len().min(WARM_UP_BODIES);
    let warm_documents = load(bench, &es, &bodies[..warm_up], in_flight)
        .await?
        .documents;

    let load_before = load_average();
    let rounds = if bench.tiny { 1 } else { bench.ceiling_rounds };
    let mut table = Table::new(
        &format!(
            "Backfill against a raw loader of the same {documents} documents ({bulk_size} per `_bulk`, {in_flight} in flight)"
        ),
        &[
            "run",
            "docs/s",
            "seconds",
            "PostgreSQL CPU s/1k docs",
            "engine CPU s/1k docs",
            "Athens or loader CPU s/1k docs",
            "load average after",
        ],
    );
    let per_k = |cpu: f64, docs: u64| num(cpu / docs as f64 * 1000.0, 3);
    // (documents, seconds) of each side over all rounds
    let (mut raw_total, mut athens_total) = ((0.0, 0.0), (0.0, 0.0));
    // Athens ÷ raw within each round (its two loads ran one after the other).
    let mut per_round: Vec<f64> = Vec::new();
    for round in 0..rounds {
        let mut rates = (f64::NAN, f64::NAN);
        // raw then Athens, then Athens then raw
        for athens_turn in [round % 2 == 1, round % 2 == 0] {
            let (label, documents, seconds, cpu) = if athens_turn {
                let b = backfill::measure(bench, &[]).await?;
                athens_total = (
                    athens_total.0 + b.documents as f64,
                    athens_total.1 + b.seconds,
                );
                rates.0 = b.rate();
                ("`athens reindex` (defaults)", b.documents, b.seconds, b.cpu)
            } else {
                let l = load(bench, &es, &bodies, in_flight).await?;
                raw_total = (raw_total.0 + l.documents as f64, raw_total.1 + l.seconds);
                rates.1 = l.documents as f64 / l.seconds;
                ("raw `_bulk` loader", l.documents, l.seconds, l.cpu)
            };
            let load = load_average();
            println!(
                "ceiling: {label} {:.0} docs/s ({documents} docs in {seconds:.1} s), CPU s per 1k docs: engine {:.3}, Athens or loader {:.3}; load {load:.2}",
                documents as f64 / seconds,
                cpu.1 / documents as f64 * 1000.0,
                cpu.2 / documents as f64 * 1000.0,
            );
            table.row(vec![
                label.into(),
                num(documents as f64 / seconds, 0),
                num(seconds, 1),
                per_k(cpu.0, documents),
                per_k(cpu.1, documents),
                per_k(cpu.2, documents),
                num(load, 2),
            ]);
        }
        println!(
            "ceiling: round {}: Athens ÷ raw {}",
            round + 1,
            ratio(rates.0 / rates.1)
        );
        per_round.push(rates.0 / rates.1);
    }
    let rounds_text: Vec<String> = per_round.iter().map(|r| ratio(*r)).collect();
    per_round.sort_by(f64::total_cmp);
    let median = match per_round.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => per_round[n / 2],
        n => (per_round[n / 2 - 1] + per_round[n / 2]) / 2.0,
    };
    drop(bodies);
    let raw_rate = raw_total.0 / raw_total.1;
    let athens_rate = athens_total.0 / athens_total.1;
    table.note(format!(
        "Athens: the whole `athens reindex` command (start, connect, create the index, {} readers × {} writes in flight of {bulk_size}-document pages, serving settings and refresh, alias swap); raw: the same documents read and encoded before the clock ({encoding:.0} s, {} MB of NDJSON), then create the index, send, serving settings and refresh",
        defaults.backfill_readers,
        defaults.write_concurrency,
        bytes / 1_000_000
    ));
    table.note(format!(
        "over all rounds (documents ÷ seconds): Athens {athens_rate:.0} docs/s, raw {raw_rate:.0} docs/s, Athens ÷ raw {}; load average {load_before:.2} at the start; CPU from /proc as in the backfill section (the loader: this process)",
        ratio(athens_rate / raw_rate),
    ));
    table.note(format!(
        "Athens ÷ raw per round (raw then Athens, then Athens then raw, …): {}; median {}; warm-up before the first round: {} documents through the raw loader",
        rounds_text.join(", "),
        ratio(median),
        warm_documents
    ));
    let of_raw = athens_rate / raw_rate;
    bench.report.headline(
        &format!(
            "backfill ÷ raw `_bulk` loader, same documents, bulk size and concurrency, {documents} documents"
        ),
        ratio(of_raw),
        "≥ 0.9×",
        Some(of_raw >= 0.9),
    );
    bench.report.tables.push(table);
    Ok(())
}
