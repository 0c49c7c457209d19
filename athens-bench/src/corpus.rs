//! What the two benchmarks on the Debian corpus (`relevance`, `suggest`) share: their options, the
//! corpus they read, its load into a fresh database of their own through the product's path
//! (`athens migrate`, the five tables, `athens setup`), and `athens reindex` of it into an engine.

use anyhow::{Context, bail};
use athens_testkit::debian::{self, Corpus, LoadReport};
use serde_json::Value;

use crate::procs::Athens;

/// Options of a run on the Debian corpus.
pub struct CorpusRun {
    /// `live` (`apt-cache dumpavail`), `sample` (the committed sample) or the path of a dumpavail
    /// file.
    pub corpus: String,
    /// Queries (relevance) or items typed (suggest) per kind.
    pub per_kind: usize,
    /// Engines' base URLs.
    pub engines: Vec<String>,
    /// A PostgreSQL URL whose role may create databases.
    pub admin_url: String,
    /// How to run `athens` (its environment is set by [`CorpusRun::load`]).
    pub athens: Athens,
}

/// `apt-cache dumpavail` of this machine.
pub fn dumpavail() -> anyhow::Result<String> {
    let output = std::process::Command::new("apt-cache")
        .arg("dumpavail")
        .output()
        .context("cannot run apt-cache dumpavail (a Debian machine with apt lists is needed)")?;
    if !output.status.success() || output.stdout.is_empty() {
        bail!("apt-cache dumpavail gave nothing: run apt-get update first");
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The corpus `source` names: `sample`, `live` (`apt-cache dumpavail`) or a dumpavail file.
pub fn corpus(source: &str) -> anyhow::Result<Corpus> {
    match source {
        "sample" => Corpus::sample(),
        "live" => Ok(Corpus::new(debian::parse_dumpavail(&dumpavail()?))),
        path => {
            let text =
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
            Ok(Corpus::new(debian::parse_dumpavail(&text)))
        }
    }
}

impl CorpusRun {
    /// Loads `corpus` into a fresh `database` and sets `athens` up on it, for the alias `alias`
    /// (plus the settings of `extra`).
    pub async fn load(
        &mut self,
        corpus: &Corpus,
        database: &str,
        alias: &str,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<LoadReport> {
        let db_url = crate::database_url(&self.admin_url, database)?;
        crate::fresh_database(&self.admin_url, database).await?;
        self.athens.env = [
            ("ATHENS_DATABASE_URL", db_url.as_str()),
            ("ATHENS_INDEX", alias),
            ("ATHENS_LOG", "warn"),
        ]
        .iter()
        .chain(extra)
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect();
        self.athens.run(&["migrate"])?;
        let loaded = debian::load(&db_url, corpus).await?;
        self.athens.run(&["setup"])?;
        Ok(loaded)
    }

    /// `athens reindex` into `engine` after deleting the indexes matching `pattern` there; the
    /// engine's label ("opensearch 2.19.1") and how to run `athens` against it.
    pub async fn reindex(
        &self,
        http: &reqwest::Client,
        engine: &str,
        pattern: &str,
    ) -> anyhow::Result<(String, Athens)> {
        let banner: Value = http.get(engine).send().await?.json().await?;
        let name = crate::engine_label(&banner);
        println!("== {name}: athens reindex");
        crate::drop_matching(http, engine, pattern).await?;
        let mut athens = self.athens.clone();
        athens
            .env
            .push(("ATHENS_ENGINE_URL".into(), engine.to_owned()));
        athens.run(&["reindex"])?;
        Ok((name, athens))
    }
}
