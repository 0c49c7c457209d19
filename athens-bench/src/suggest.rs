//! `athens-bench --suggest`: the latency of as-you-type suggestions (`GET /v1/suggestions`) on the
//! Debian corpus, through `athens serve` over HTTP, one request at a time, as a person types.
//!
//! The corpus goes through the product's path (loaded into the five tables of a fresh database
//! `athens_suggest`, `athens setup`, `athens reindex` into each engine under the alias
//! `athens-suggest`). Then, with a fixed seed, package names, user names and hashtags are typed
//! key by key (every prefix from one character up to twelve), and package names with two letters
//! swapped after the first four (a typo while typing); each prefix is one request. Reported per
//! kind: p50/p90/p99/max latency, and how often the typed item is among the suggestions once its
//! whole name (or twelve characters) is typed.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::bail;
use athens_testkit::debian::Corpus;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::Value;

use crate::corpus::{self, CorpusRun};
use crate::stats::Samples;

/// Name of the suggestion benchmark's own database.
const DATABASE: &str = "athens_suggest";
/// Alias of its index.
const ALIAS: &str = "athens-suggest";
/// The benchmark's indexes (the alias's physical indexes).
const INDEXES: &str = "athens-suggest-v*";
/// The seed of the items typed.
const SEED: u64 = 11;
/// Longest prefix typed.
const MAX_PREFIX: usize = 12;
/// Suggestions asked per kind (the page asks four, the API's default is five).
const LIMIT: usize = 5;

/// What the suggestion run needs.
pub struct Options {
    /// The corpus, the engines, the database server and `athens` (`per_kind`: items typed per
    /// kind).
    pub run: CorpusRun,
    /// Port of `athens serve` during the run.
    pub port: u16,
}

/// One kind of thing typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Project,
    ProjectTypo,
    User,
    Hashtag,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Project, Kind::ProjectTypo, Kind::User, Kind::Hashtag];

    fn name(self) -> &'static str {
        match self {
            Kind::Project => "project name",
            Kind::ProjectTypo => "project name, typo",
            Kind::User => "user name",
            Kind::Hashtag => "hashtag",
        }
    }

    /// The key of the answer that should hold the item, and how to read an entry's name.
    fn found(self, answer: &Value, item: &str) -> bool {
        let (key, field) = match self {
            Kind::Project | Kind::ProjectTypo => ("projects", Some("slug")),
            Kind::User => ("users", Some("name")),
            Kind::Hashtag => ("hashtags", None),
        };
        answer[key].as_array().into_iter().flatten().any(|entry| {
            let name = match field {
                Some(field) => entry[field].as_str(),
                None => entry.as_str(),
            };
            name.is_some_and(|name| name.eq_ignore_ascii_case(item))
        })
    }
}

/// The item typed and its prefixes, in typing order.
struct Typed {
    kind: Kind,
    item: String,
    prefixes: Vec<String>,
}

/// Every prefix of `text` from one character up to [`MAX_PREFIX`].
fn prefixes(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    (1..=chars.len().min(MAX_PREFIX))
        .map(|n| chars[..n].iter().collect())
        .collect()
}

/// `text` with its fifth and sixth characters swapped, when it has more than six.
fn typo(text: &str) -> Option<String> {
    let mut chars: Vec<char> = text.chars().collect();
    (chars.len() > 6 && chars[4] != chars[5]).then(|| {
        chars.swap(4, 5);
        chars.into_iter().collect()
    })
}

fn typed(corpus: &Corpus, per_kind: usize) -> Vec<Typed> {
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut typed = Vec::new();
    let packages: Vec<&str> = corpus
        .packages
        .choose_multiple(&mut rng, per_kind)
        .map(|package| package.name.as_str())
        .collect();
    for name in &packages {
        typed.push(Typed {
            kind: Kind::Project,
            item: (*name).to_owned(),
            prefixes: prefixes(name),
        });
        if let Some(wrong) = typo(name) {
            typed.push(Typed {
                kind: Kind::ProjectTypo,
                item: (*name).to_owned(),
                prefixes: prefixes(&wrong).split_off(5),
            });
        }
    }
    for user in corpus.users.choose_multiple(&mut rng, per_kind) {
        typed.push(Typed {
            kind: Kind::User,
            item: user.clone(),
            prefixes: prefixes(user),
        });
    }
    for hashtag in corpus.hashtags.choose_multiple(&mut rng, per_kind) {
        let normalized = athens_core::normalize_hashtag(hashtag);
        typed.push(Typed {
            kind: Kind::Hashtag,
            prefixes: prefixes(&normalized),
            item: normalized,
        });
    }
    typed
}

/// Runs the benchmark and prints its table.
pub async fn run(mut options: Options) -> anyhow::Result<()> {
    let corpus = corpus::corpus(&options.run.corpus)?;
    let typed = typed(&corpus, options.run.per_kind);
    println!(
        "suggest: {} packages, {} users, {} hashtags; {} items typed, {} requests per engine",
        corpus.packages.len(),
        corpus.users.len(),
        corpus.hashtags.len(),
        typed.len(),
        typed.iter().map(|t| t.prefixes.len()).sum::<usize>()
    );
    let addr = format!("127.0.0.1:{}", options.port);
    options
        .run
        .load(&corpus, DATABASE, ALIAS, &[("ATHENS_HTTP_ADDR", &addr)])
        .await?;

    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let base = format!("http://{addr}");
    for engine in &options.run.engines {
        let engine = engine.trim_end_matches('/');
        let (name, athens) = options.run.reindex(&http, engine, INDEXES).await?;
        let server = athens.spawn(&["serve"], &[])?;
        let measured = async {
            wait_ready(&http, &base).await?;
            measure(&http, &base, &typed).await
        }
        .await;
        server.stop().await?;
        drop_indexes(&http, engine).await?;
        println!("{}", table(&name, measured?));
    }
    crate::fresh_database(&options.run.admin_url, DATABASE).await?;
    Ok(())
}

/// Deletes the benchmark's indexes on `engine`.
async fn drop_indexes(http: &reqwest::Client, engine: &str) -> anyhow::Result<()> {
    crate::drop_matching(http, engine, INDEXES).await
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = http.get(format!("{base}/readyz")).send().await;
        if ready.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("athens serve not ready at {base} within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Per kind: latencies, items typed, items found once typed whole; then every latency.
type Figures = (Vec<(Kind, Samples, usize, usize)>, Samples);

async fn measure(http: &reqwest::Client, base: &str, typed: &[Typed]) -> anyhow::Result<Figures> {
    let get = |prefix: &str| {
        let request = http
            .get(format!("{base}/v1/suggestions"))
            .query(&[("q", prefix), ("limit", &LIMIT.to_string())]);
        async move {
            let response = request.send().await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            if !status.is_success() {
                bail!("suggestions answered {status}: {answer}");
            }
            anyhow::Ok(answer)
        }
    };
    // Warm up (engine caches, connections) on every tenth item.
    for item in typed.iter().step_by(10) {
        for prefix in &item.prefixes {
            get(prefix).await?;
        }
    }
    let mut figures: Vec<(Kind, Samples, usize, usize)> = Kind::ALL
        .iter()
        .map(|kind| (*kind, Samples::default(), 0, 0))
        .collect();
    let mut all = Samples::default();
    for item in typed {
        let Some(slot) = figures.iter_mut().find(|f| f.0 == item.kind) else {
            continue;
        };
        let mut last = Value::Null;
        for prefix in &item.prefixes {
            let started = Instant::now();
            last = get(prefix).await?;
            slot.1.push(started.elapsed());
            all.push(started.elapsed());
        }
        slot.2 += 1;
        if item.kind.found(&last, &item.item) {
            slot.3 += 1;
        }
    }
    Ok((figures, all))
}

fn table(engine: &str, (figures, mut all): Figures) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "\n#### {engine}\n");
    let _ = writeln!(
        out,
        "| typed | requests | p50 ms | p90 ms | p99 ms | max ms | found once typed |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (kind, mut samples, items, found) in figures {
        let _ = writeln!(
            out,
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            kind.name(),
            samples.len(),
            samples.ms(0.5),
            samples.ms(0.9),
            samples.ms(0.99),
            samples.max() * 1000.0,
            found as f64 / items.max(1) as f64
        );
    }
    let _ = writeln!(
        out,
        "| **all** | {} | {:.1} | {:.1} | **{:.1}** | {:.1} | |",
        all.len(),
        all.ms(0.5),
        all.ms(0.9),
        all.ms(0.99),
        all.max() * 1000.0
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_typed_key_by_key_up_to_twelve() {
        assert_eq!(prefixes("abc"), ["a", "ab", "abc"]);
        assert_eq!(prefixes("naïve"), ["n", "na", "naï", "naïv", "naïve"]);
        assert_eq!(prefixes(&"x".repeat(30)).len(), MAX_PREFIX);
    }

    #[test]
    fn a_typo_swaps_the_fifth_and_sixth_letters() {
        assert_eq!(
            typo("python3-requests").as_deref(),
            Some("pythno3-requests")
        );
        assert_eq!(typo("bash"), None);
        assert_eq!(typo("aaaaaaa"), None);
    }
}
