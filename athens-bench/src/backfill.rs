//! Backfill: `athens reindex` as a child process, with the CPU seconds PostgreSQL, the engine and
//! Athens used meanwhile and Athens' peak memory, against the raw `_bulk` ceiling of the same run.

use anyhow::{Context, ensure};
use reqwest::Method;
use sea_orm::sqlx;

use crate::Bench;
use crate::report::{Table, num, ratio};

/// What one measured reindex did.
#[derive(Debug, Clone, Copy)]
pub struct Backfill {
    /// Documents in the new index.
    pub documents: u64,
    /// Wall seconds of the whole command (start, backfill, settings, alias swap).
    pub seconds: f64,
    /// CPU seconds of PostgreSQL, the engine and Athens.
    pub cpu: (f64, f64, f64),
    /// Athens' peak resident memory.
    pub peak_rss_mib: f64,
}

impl Backfill {
    /// Documents per second.
    pub fn rate(&self) -> f64 {
        self.documents as f64 / self.seconds
    }

    /// Athens' share of the CPU the three used.
    pub fn athens_share(&self) -> f64 {
        self.cpu.2 / (self.cpu.0 + self.cpu.1 + self.cpu.2)
    }
}

/// Runs `athens reindex` with `extra` settings and measures it.
pub async fn measure(bench: &Bench, extra: &[(&str, &str)]) -> anyhow::Result<Backfill> {
    let before = bench.services.cpu();
    let child = bench.athens.spawn(&["reindex"], extra)?;
    let usage = child.wait().await?;
    let after = bench.services.cpu();
    ensure!(
        usage.status.is_some_and(|status| status.success()),
        "athens reindex failed (see {}/bench-reindex.log)",
        bench.athens.log_dir.display()
    );
    let (pg, engine, _) = after.since(&before);
    let count = bench
        .engine(Method::GET, &format!("{}/_count", bench.alias), None)
        .await?["count"]
        .as_u64()
        .context("no count")?;
    Ok(Backfill {
        documents: count,
        seconds: usage.wall.as_secs_f64(),
        cpu: (pg, engine, usage.cpu),
        peak_rss_mib: usage.peak_rss_mib,
    })
}

/// A rate for the report, `n/a` when it was not measured.
fn rate_text(rate: Option<f64>) -> String {
    rate.map_or_else(|| "n/a".into(), |rate| format!("{rate:.0} docs/s"))
}

fn row(label: &str, backfill: &Backfill, ceiling: Option<f64>) -> Vec<String> {
    let per_k = |cpu: f64| num(cpu / backfill.documents as f64 * 1000.0, 3);
    vec![
        label.into(),
        backfill.documents.to_string(),
        num(backfill.seconds, 1),
        num(backfill.rate(), 0),
        ceiling.map_or_else(|| "n/a".into(), |c| ratio(backfill.rate() / c)),
        per_k(backfill.cpu.0),
        per_k(backfill.cpu.1),
        per_k(backfill.cpu.2),
        format!("{:.0}%", backfill.athens_share() * 100.0),
        num(backfill.peak_rss_mib, 0),
    ]
}

const HEADER: [&str; 10] = [
    "run",
    "documents",
    "seconds",
    "docs/s",
    "of raw ceiling",
    "PostgreSQL CPU s/1k docs",
    "engine CPU s/1k docs",
    "Athens CPU s/1k docs",
    "Athens share of CPU",
    "Athens peak RSS MiB",
];

/// Paired rounds of the default backfill: the machine's speed drifts by tens of percent between
/// minutes, so each round takes the raw ceiling again right before its reindex.
const ROUNDS: usize = 3;

/// Runs the section: rounds of the shipped defaults, each against a ceiling taken just before it,
/// then one run with smaller requests for comparison.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let mut table = Table::new("Backfill (`athens reindex`)", &HEADER);
    let defaults_config = athens_core::EngineConfig::default();
    let rounds = if bench.tiny { 1 } else { ROUNDS };
    // (ratio to the paired ceiling, the round's figures)
    let mut measured: Vec<(f64, Backfill)> = Vec::new();
    for round in 1..=rounds {
        let ceiling = crate::raw::ceiling_again(bench).await?;
        let defaults = measure(bench, &[]).await?;
        println!(
            "reindex (defaults) round {round}: {} docs in {:.1} s, {:.0} docs/s (ceiling just before: {}), Athens {:.0}% of CPU, peak {:.0} MiB",
            defaults.documents,
            defaults.seconds,
            defaults.rate(),
            rate_text(ceiling),
            defaults.athens_share() * 100.0,
            defaults.peak_rss_mib
        );
        table.row(row(
            &format!(
                "{} projects, defaults (chunk {}, {} writes in flight), round {round}; `_bulk` ceiling just before: {}",
                bench.projects,
                defaults_config.chunk_size,
                defaults_config.write_concurrency,
                rate_text(ceiling),
            ),
            &defaults,
            ceiling,
        ));
        let of_ceiling = ceiling.map_or(f64::NAN, |c| defaults.rate() / c);
        measured.push((of_ceiling, defaults));
    }
    measured.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (median_ratio, defaults) = measured[measured.len() / 2];
    if !bench.tiny {
        let tuned = measure(
            bench,
            &[
                ("ATHENS_SYNC_CHUNK_SIZE", "500"),
                ("ATHENS_SYNC_WRITE_CONCURRENCY", "2"),
            ],
        )
        .await?;
        println!(
            "reindex (chunk 500, 2 in flight): {:.0} docs/s",
            tuned.rate()
        );
        table.row(row(
            &format!(
                "{} projects, chunk 500, 2 writes in flight (smaller requests; against the sweep's ceiling)",
                bench.projects
            ),
            &tuned,
            bench.bulk_ceiling,
        ));
    }
    table.note(
        "wall time of the whole command: connect, create the index, backfill, serving settings and refresh, alias swap",
    );
    table.note(
        "CPU from /proc: PostgreSQL = postmaster and every backend; engine = its JVM; Athens = the reindex process",
    );
    table.note(format!(
        "of raw ceiling: each round against the best sweep point re-measured right before it; the headline is the median round of {rounds}"
    ));
    bench.backfill_rate = Some(defaults.rate());
    let of_ceiling = Some(median_ratio).filter(|r| r.is_finite());
    headlines(
        bench,
        &format!("{} projects, median of paired rounds", bench.projects),
        of_ceiling,
        &defaults,
    );
    bench.report.headline(
        "backfill docs/s; Athens peak RSS",
        format!("{:.0}; {:.0} MiB", defaults.rate(), defaults.peak_rss_mib),
        "absolute",
        None,
    );
    bench.report.tables.push(table);
    Ok(())
}

/// The backfill's headlines: its rate against the raw ceiling and Athens' share of the CPU, for the
/// run `what` describes.
fn headlines(bench: &mut Bench, what: &str, of_ceiling: Option<f64>, backfill: &Backfill) {
    bench.report.headline(
        &format!("backfill throughput / raw `_bulk` ceiling ({what})"),
        of_ceiling.map_or_else(|| "n/a".into(), ratio),
        "≥ 0.75×",
        of_ceiling.map(|r| r >= 0.75),
    );
    bench.report.headline(
        &format!("Athens' share of the backfill's CPU, PostgreSQL + engine + Athens ({what})"),
        format!("{:.1}%", backfill.athens_share() * 100.0),
        "< 15%",
        Some(backfill.athens_share() < 0.15),
    );
}

/// Makes sure the alias exists (a section run without `backfill` needs an index).
pub async fn ensure_index(bench: &mut Bench) -> anyhow::Result<()> {
    let exists = bench
        .http
        .head(format!("{}/_alias/{}", bench.engine_url, bench.alias))
        .send()
        .await?
        .status()
        .is_success();
    if !exists {
        bench.athens.run(&["reindex"])?;
    }
    Ok(())
}

/// Seeds up to 1,000,000 projects and measures a backfill of them.
pub async fn million(bench: &mut Bench) -> anyhow::Result<()> {
    let target: u64 = 1_000_000;
    let mut seeded = None;
    if bench.projects < target {
        let started = std::time::Instant::now();
        bench.athens.run(&[
            "seed",
            "--force",
            "--projects",
            &(target - bench.projects).to_string(),
        ])?;
        sqlx::raw_sql("VACUUM ANALYZE").execute(&bench.pool).await?;
        let elapsed = started.elapsed().as_secs_f64();
        println!("seeded up to {target} projects in {elapsed:.0} s");
        seeded = Some((target - bench.projects, elapsed));
    }
    let ceiling = crate::raw::ceiling_again(bench).await?;
    let backfill = measure(bench, &[]).await?;
    println!("reindex 1M: {:.0} docs/s", backfill.rate());
    let mut table = Table::new(
        "Backfill at 1,000,000 projects (`athens reindex`, defaults)",
        &HEADER,
    );
    table.row(row(
        &format!(
            "1,000,000 projects, defaults; `_bulk` ceiling just before: {}",
            rate_text(ceiling)
        ),
        &backfill,
        ceiling,
    ));
    table.note("run after the other sections, against the raw ceiling re-measured right before it");
    if let Some((projects, seconds)) = seeded {
        table.note(format!(
            "seeding the other {projects} projects first (`athens seed`, then `VACUUM ANALYZE`) took {seconds:.0} s"
        ));
    }
    bench.report.tables.push(table);
    headlines(
        bench,
        "1,000,000 projects",
        ceiling.map(|c| backfill.rate() / c),
        &backfill,
    );
    Ok(())
}
