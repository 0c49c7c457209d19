//! pgsync, the best-known tool for this job, from the same database into the same engine: its
//! initial sync against Athens' backfill, and its change latency against Athens' with both running
//! on the same writes at once.
//!
//! pgsync (PyPI) and a private Redis come from `deploy/local/bench`; its schema is the equivalent of
//! Athens' document: a project with its hashtags through `project_hashtags` and its creators
//! through `user_projects`. It needs `wal_level = logical` and a role with `REPLICATION`; its
//! replication slot and triggers are removed at the end (`bootstrap --teardown`), since a slot left
//! behind keeps WAL forever.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use athens_pg::entity::{hashtags, project_hashtags, projects, user_projects, users};
use reqwest::Method;
use sea_orm::{EntityName, EntityTrait, IdenStatic, Iterable};
use serde_json::{Value, json};

use crate::load::{Generator, Plan, UPDATES};
use crate::procs;
use crate::report::{Table, num, ratio};
use crate::stream::{engine, start_sync};
use crate::{Bench, DATABASE};

/// The index pgsync writes.
const PGSYNC_INDEX: &str = "athens-bench-pgsync";

/// The columns of a table as Athens reads it: its entity's (athens-pg), the specification the
/// capture triggers and the document queries derive from, so pgsync reads what Athens reads.
fn columns<E: EntityTrait>() -> Vec<&'static str> {
    E::Column::iter().map(|column| column.as_str()).collect()
}

/// pgsync's description of Athens' document: a project with its hashtags through
/// `project_hashtags` and its creators (label `creators`) through `user_projects`.
fn nodes() -> Value {
    json!({
        "table": projects::Entity.table_name(),
        "columns": columns::<projects::Entity>(),
        "children": [
            child::<hashtags::Entity, project_hashtags::Entity>("hashtags"),
            child::<users::Entity, user_projects::Entity>("creators"),
        ]
    })
}

/// A child node of a project: the rows of `E` linked through `Through`, as an array `label`.
fn child<E: EntityTrait + Default, Through: EntityTrait + Default>(label: &str) -> Value {
    json!({
        "table": E::default().table_name(),
        "columns": columns::<E>(),
        "label": label,
        "relationship": {
            "variant": "object",
            "type": "one_to_many",
            "through_tables": [Through::default().table_name()]
        }
    })
}

struct Pgsync {
    bin: PathBuf,
    env: Vec<(String, String)>,
    schema: PathBuf,
    log: PathBuf,
}

impl Pgsync {
    fn new(bench: &Bench, bin: &Path, redis_port: u16) -> anyhow::Result<Pgsync> {
        let db = reqwest::Url::parse(&bench.db_url)?;
        let engine = reqwest::Url::parse(&bench.engine_url)?;
        let dir = bench.athens.log_dir.join("pgsync");
        std::fs::create_dir_all(&dir)?;
        let schema = dir.join("schema.json");
        let document = json!([{
            "database": DATABASE,
            "index": PGSYNC_INDEX,
            "nodes": nodes(),
        }]);
        std::fs::write(&schema, serde_json::to_vec_pretty(&document)?)?;
        let env = [
            ("PG_HOST", db.host_str().unwrap_or("127.0.0.1").to_owned()),
            ("PG_PORT", db.port().unwrap_or(5432).to_string()),
            ("PG_USER", db.username().to_owned()),
            ("PG_PASSWORD", db.password().unwrap_or_default().to_owned()),
            (
                "ELASTICSEARCH_HOST",
                engine.host_str().unwrap_or("127.0.0.1").to_owned(),
            ),
            (
                "ELASTICSEARCH_PORT",
                engine.port().unwrap_or(9200).to_string(),
            ),
            ("ELASTICSEARCH_SCHEME", engine.scheme().to_owned()),
            ("ELASTICSEARCH", "false".into()),
            ("OPENSEARCH", "true".into()),
            ("REDIS_HOST", "127.0.0.1".into()),
            ("REDIS_PORT", redis_port.to_string()),
            ("CHECKPOINT_PATH", dir.display().to_string()),
            ("ELASTICSEARCH_TIMEOUT", "120".into()),
            ("CONSOLE_LOGGING_HANDLER_MIN_LEVEL", "WARNING".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        Ok(Pgsync {
            bin: bin.to_owned(),
            env,
            schema,
            log: bench.athens.log_dir.join("bench-pgsync.log"),
        })
    }

    fn command(&self, program: &str, args: &[&str]) -> anyhow::Result<Command> {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .arg("--config")
            .arg(&self.schema)
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.log)?;
        command.stdout(log.try_clone()?).stderr(log);
        Ok(command)
    }

    /// Runs a pgsync command to completion; fails with the tail of its log.
    fn run(&self, program: &str, args: &[&str]) -> anyhow::Result<()> {
        let status = self
            .command(program, args)?
            .status()
            .with_context(|| format!("cannot run {}", self.bin.join(program).display()))?;
        if !status.success() {
            bail!(
                "pgsync `{program} {}` exited with {status}: {}",
                args.join(" "),
                self.tail()
            );
        }
        Ok(())
    }

    fn tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(12).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

/// Runs the section.
pub async fn run(bench: &mut Bench) -> anyhow::Result<()> {
    let Some((bin, redis_port)) = bench.pgsync.clone() else {
        bail!("pgsync is not installed (deploy/local/bench installs it; pass --pgsync-bin)");
    };
    let pgsync = Pgsync::new(bench, &bin, redis_port)?;
    let _ = bench.drop_indexes(PGSYNC_INDEX).await;
    let _ = pgsync.run("bootstrap", &["--teardown"]);
    let result = measure(bench, &pgsync).await;
    if let Err(error) = pgsync.run("bootstrap", &["--teardown"]) {
        println!("pgsync teardown failed: {error:#}");
    }
    let _ = bench.drop_indexes(PGSYNC_INDEX).await;
    result
}

async fn measure(bench: &mut Bench, pgsync: &Pgsync) -> anyhow::Result<()> {
    // Initial sync: bootstrap (triggers, views, slot), then one pgsync pass. The pass is the
    // counterpart of `athens reindex` (whose own setup, `athens setup`, is not timed either).
    let started = Instant::now();
    pgsync.run("bootstrap", &[])?;
    let bootstrap = started.elapsed().as_secs_f64();
    let before = bench.services.cpu();
    let started = Instant::now();
    let child = pgsync.command("pgsync", &[])?.spawn()?;
    let pid = child.id();
    let cpu_seconds = wait_child(child, pid).await?;
    let seconds = started.elapsed().as_secs_f64();
    let after = bench.services.cpu();
    bench
        .engine(Method::POST, &format!("{PGSYNC_INDEX}/_refresh"), None)
        .await?;
    let documents = bench
        .engine(Method::GET, &format!("{PGSYNC_INDEX}/_count"), None)
        .await?["count"]
        .as_u64()
        .context("no count")?;
    ensure!(
        documents >= bench.projects * 9 / 10,
        "pgsync indexed {documents} documents of {}: {}",
        bench.projects,
        pgsync.tail()
    );
    let rate = documents as f64 / seconds;
    let (pg, engine_cpu, _) = after.since(&before);
    println!(
        "pgsync initial sync: {documents} docs in {seconds:.1} s ({rate:.0} docs/s), bootstrap {bootstrap:.1} s"
    );
    let mut table = Table::new(
        "pgsync against Athens, same database, same engine (OpenSearch), same run",
        &["figure", "pgsync", "Athens", "Athens / pgsync"],
    );
    let athens_rate = bench.backfill_rate.unwrap_or(f64::NAN);
    table.row(vec![
        "initial sync, docs/s (pgsync pass / `athens reindex`)".into(),
        num(rate, 0),
        num(athens_rate, 0),
        ratio(athens_rate / rate),
    ]);
    table.note(format!(
        "pgsync initial sync: {documents} documents in {seconds:.1} s, after a bootstrap (triggers, views, replication slot) of {bootstrap:.1} s; CPU s per 1k docs: pgsync {:.3}, PostgreSQL {:.3}, engine {:.3}",
        cpu_seconds / documents as f64 * 1000.0,
        pg / documents as f64 * 1000.0,
        engine_cpu / documents as f64 * 1000.0
    ));

    // Change latency: both running, the same project updates, both indexes probed.
    let daemon = pgsync.command("pgsync", &["--daemon"])?.spawn()?;
    let daemon_pid = daemon.id();
    let sync = start_sync(bench).await?;
    let result = latency(bench, &mut table, rate, athens_rate).await;
    let _ = Command::new("kill")
        .args(["-TERM", &daemon_pid.to_string()])
        .status();
    let _ = wait_child(daemon, daemon_pid).await;
    sync.stop().await?;
    result?;
    bench.report.tables.push(table);
    Ok(())
}

/// Waits for a child to exit; returns its CPU seconds (read while it is a zombie).
async fn wait_child(mut child: std::process::Child, pid: u32) -> anyhow::Result<f64> {
    let mut cpu = 0.0;
    let deadline = Instant::now() + Duration::from_secs(3600);
    loop {
        if let Some(seconds) = procs::cpu_seconds(pid) {
            cpu = seconds;
        }
        if child.try_wait()?.is_some() {
            return Ok(cpu);
        }
        ensure!(Instant::now() < deadline, "pgsync ran for an hour");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn latency(
    bench: &mut Bench,
    table: &mut Table,
    pgsync_rate: f64,
    athens_rate: f64,
) -> anyhow::Result<()> {
    // Give the daemon its start-up (it catches up with the slot first).
    tokio::time::sleep(Duration::from_secs(if bench.tiny { 3 } else { 10 })).await;
    let tag = format!("{:x}p", chrono::Utc::now().timestamp() % 0xfffff);
    let generator = Generator::new(bench.pool.clone(), &tag).await?;
    let plan = Plan {
        rate: 10.0,
        seconds: bench.scale.pgsync_seconds,
        mix: UPDATES,
        searchable_in: vec![bench.alias.clone(), PGSYNC_INDEX.into()],
        track_acks: true,
        drain: Duration::from_secs(60),
    };
    let outcome = generator.run(&plan, &engine(bench)).await?;
    let (mut athens, athens_lost) = outcome.searchable_latency(0);
    let (mut pgsync, pgsync_lost) = outcome.searchable_latency(1);
    println!(
        "change latency: Athens p50 {:.0} p99 {:.0} ms ({athens_lost} lost), pgsync p50 {:.0} p99 {:.0} ms ({pgsync_lost} lost)",
        athens.ms(0.5),
        athens.ms(0.99),
        pgsync.ms(0.5),
        pgsync.ms(0.99)
    );
    for (label, q) in [("p50", 0.5), ("p99", 0.99)] {
        table.row(vec![
            format!("commit → searchable {label}, ms (10 updates/s, both running)"),
            num(pgsync.ms(q), 0),
            num(athens.ms(q), 0),
            ratio(athens.ms(q) / pgsync.ms(q)),
        ]);
    }
    let mut ack = outcome.ack_latency(0.0, 1.0);
    table.note(format!(
        "{} project updates probed in both indexes; never seen within 60 s: pgsync {pgsync_lost}, Athens {athens_lost}; Athens' commit → acknowledged p50 {:.0} ms, p99 {:.0} ms",
        outcome.committed(),
        ack.ms(0.5),
        ack.ms(0.99)
    ));
    bench.report.headline(
        "backfill throughput Athens / pgsync",
        ratio(athens_rate / pgsync_rate),
        "≥ 5×",
        athens_rate
            .is_finite()
            .then_some(athens_rate / pgsync_rate >= 5.0),
    );
    let change = athens.ms(0.5) / pgsync.ms(0.5);
    bench.report.headline(
        "change latency (commit → searchable p50) Athens / pgsync",
        format!(
            "{} ({} ms vs {} ms)",
            ratio(change),
            num(athens.ms(0.5), 0),
            num(pgsync.ms(0.5), 0)
        ),
        "≤ 0.1×",
        change.is_finite().then_some(change <= 0.1),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use athens_core::{Creator, Hashtag, HashtagId, ProjectDocument, ProjectId, UserId};

    use super::*;

    /// The keys of a JSON object, sorted.
    fn keys(value: &Value) -> Vec<String> {
        let mut keys: Vec<String> = value
            .as_object()
            .map(|object| object.keys().cloned().collect())
            .unwrap_or_default();
        keys.sort();
        keys
    }

    fn sorted(columns: &Value, extra: &[&str]) -> Vec<String> {
        let mut names: Vec<String> = columns
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|column| column.as_str().map(str::to_owned))
            .chain(extra.iter().map(|name| (*name).to_owned()))
            .collect();
        names.sort();
        names
    }

    #[test]
    fn pgsync_reads_every_field_of_athens_document() {
        let at = chrono::DateTime::UNIX_EPOCH;
        let document = serde_json::to_value(ProjectDocument {
            id: ProjectId(1),
            name: "n".into(),
            slug: "s".into(),
            description: "d".into(),
            created_at: at,
            updated_at: at,
            hashtags: vec![Hashtag {
                id: HashtagId(2),
                name: "h".into(),
                created_at: at,
            }],
            creators: vec![Creator {
                id: UserId(3),
                name: "u".into(),
                created_at: at,
            }],
        })
        .unwrap();
        let nodes = nodes();
        assert_eq!(
            sorted(&nodes["columns"], &["hashtags", "creators"]),
            keys(&document)
        );
        for (child, field) in [(0, "hashtags"), (1, "creators")] {
            let node = &nodes["children"][child];
            assert_eq!(node["label"], field);
            assert_eq!(sorted(&node["columns"], &[]), keys(&document[field][0]));
        }
    }
}
