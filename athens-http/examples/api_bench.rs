//! What the API costs over the engine: requests per second and p50/p99 latency of each search through
//! the API (over HTTP, in-process server on a loopback port) against the same engine query sent
//! straight to the engine, in the same run, at the same concurrency. Prints a table and the ratios.
//!
//! Needs a database and an index with data behind the alias, for example the ones `deploy/local`
//! scripts or `athens migrate && athens seed && athens setup && athens reindex` make:
//!
//! ```text
//! eval "$(deploy/local/env)"
//! ATHENS_DATABASE_URL=... ATHENS_ENGINE_URL=... ATHENS_INDEX=athens-projects \
//!     cargo run --release -p athens-http --example api_bench
//! ```
//!
//! Tunables: `BENCH_CONCURRENCY` (default 8), `BENCH_SECONDS` of measurement per search and target
//! (default 10), split into `BENCH_ROUNDS` (default 5) alternating runs of the API and the engine.
//! Every request goes to 127.0.0.1 and the run stops by itself.
//!
//! The engine query of each search is the adapter's own: it is captured by running the search once
//! through a recording proxy in front of the engine, then replayed as is.
#![allow(clippy::print_stdout)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use athens_core::{HashtagMode, ProjectSearch, SearchRequest};
use athens_es::{DEFAULT_ALIAS, EsConfig, EsSearch};
use athens_http::{AppState, HttpConfig, serve_on};
use athens_pg::{PgConfig, PgSource};
use poem::http::StatusCode;
use poem::{Body, Endpoint, Request, Response};

/// One search, as the API gets it and as the adapter runs it.
struct Scenario {
    name: &'static str,
    path: String,
    request: SearchRequest,
}

#[derive(Clone)]
enum Target {
    Get(String),
    Post(String, Arc<Vec<u8>>),
}

struct Stats {
    requests: usize,
    errors: usize,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let database_url = std::env::var("ATHENS_DATABASE_URL").context("set ATHENS_DATABASE_URL")?;
    let engine_url = std::env::var("ATHENS_ENGINE_URL").context("set ATHENS_ENGINE_URL")?;
    let alias = std::env::var("ATHENS_INDEX").unwrap_or_else(|_| DEFAULT_ALIAS.into());
    let concurrency: usize = number("BENCH_CONCURRENCY", 8)?;
    let seconds: u64 = number("BENCH_SECONDS", 10)?;
    let rounds: usize = number("BENCH_ROUNDS", 5)?.max(1);

    let source = Arc::new(PgSource::connect(&PgConfig::new(database_url)).await?);
    let config = EsConfig {
        url: engine_url.trim_end_matches('/').to_string(),
        alias: alias.clone(),
        ..EsConfig::default()
    };
    let index = Arc::new(EsSearch::connect(&config).await?);
    index
        .ready()
        .await
        .context("the alias has no index: load data first")?;

    // The API, in this process, on a loopback port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let api = format!("http://{}", listener.local_addr()?);
    let http_config = HttpConfig {
        max_concurrency: 4 * concurrency.max(64),
        ..HttpConfig::default()
    };
    let state = AppState::new(index.clone(), source, None);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve_on(listener, state, &http_config, async {
            stopped.await.ok();
        })
        .await
    });

    // A recording proxy in front of the engine, to learn the adapter's query of each search.
    let recorder = Recorder::start(&config.url).await?;
    let recorded = EsSearch::connect(&EsConfig {
        url: recorder.url.clone(),
        ..config.clone()
    })
    .await?;

    let scenarios = scenarios(index.as_ref()).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let duration = Duration::from_secs(seconds);
    let search_url = format!("{}/{alias}/_search", config.url);

    println!(
        "api_bench: engine {} ({}), alias {alias}, concurrency {concurrency}, {seconds} s per \
         search and target in {rounds} alternating rounds",
        index.engine(),
        config.url
    );
    println!(
        "{:<10} {:>6} {:>10} {:>9} {:>9} | {:>10} {:>9} {:>9} | {:>7} {:>10}",
        "search",
        "reqs",
        "req/s",
        "p50 ms",
        "p99 ms",
        "engine r/s",
        "p50 ms",
        "p99 ms",
        "ratio",
        "+p99 ms"
    );
    for scenario in &scenarios {
        recorded.search(&scenario.request).await?;
        let body = recorder
            .last_search()
            .context("no search reached the engine")?;
        let api_target = Target::Get(format!("{api}{}", scenario.path));
        let engine_target = Target::Post(search_url.clone(), Arc::new(body));
        // Warm both paths, then alternate short runs of each so that drift in the machine's load
        // (the engine shares its cores) weighs on both alike.
        load(&client, &api_target, concurrency, Duration::from_secs(1)).await;
        load(&client, &engine_target, concurrency, Duration::from_secs(1)).await;
        let mut through_api = Samples::default();
        let mut direct = Samples::default();
        for round in 0..rounds {
            let slice = duration / rounds as u32;
            if round % 2 == 0 {
                through_api.add(load(&client, &api_target, concurrency, slice).await);
                direct.add(load(&client, &engine_target, concurrency, slice).await);
            } else {
                direct.add(load(&client, &engine_target, concurrency, slice).await);
                through_api.add(load(&client, &api_target, concurrency, slice).await);
            }
        }
        let (through_api, direct) = (through_api.stats(), direct.stats());
        if through_api.errors > 0 || direct.errors > 0 {
            bail!(
                "{}: {} API errors, {} engine errors",
                scenario.name,
                through_api.errors,
                direct.errors
            );
        }
        println!(
            "{:<10} {:>6} {:>10.0} {:>9.2} {:>9.2} | {:>10.0} {:>9.2} {:>9.2} | {:>6.0}% {:>+10.2}",
            scenario.name,
            through_api.requests,
            through_api.per_second,
            through_api.p50_ms,
            through_api.p99_ms,
            direct.per_second,
            direct.p50_ms,
            direct.p99_ms,
            100.0 * through_api.per_second / direct.per_second,
            through_api.p99_ms - direct.p99_ms,
        );
    }
    println!("ratio: API req/s as a share of the engine's; +p99: latency the API adds at p99");

    stop.send(()).ok();
    server.await??;
    Ok(())
}

fn number<T: std::str::FromStr>(var: &str, default: T) -> anyhow::Result<T> {
    match std::env::var(var) {
        Ok(value) => value
            .parse()
            .ok()
            .with_context(|| format!("{var} is not a number")),
        Err(_) => Ok(default),
    }
}

/// The three searches of the API, on values the data holds: the first creator and hashtag of the
/// index's first page.
async fn scenarios(index: &EsSearch) -> anyhow::Result<Vec<Scenario>> {
    let page = index
        .search(&SearchRequest {
            size: 1,
            ..SearchRequest::default()
        })
        .await?;
    let document = &page.hits.first().context("the index is empty")?.document;
    let user = document
        .creators
        .first()
        .context("a project without creators")?
        .id;
    let hashtag = document
        .hashtags
        .first()
        .context("a project without hashtags")?;
    let word = document
        .description
        .split_whitespace()
        .nth(1)
        .unwrap_or("search");
    let size = athens_core::DEFAULT_PAGE_SIZE;
    Ok(vec![
        Scenario {
            name: "user",
            path: format!("/v1/users/{user}/projects"),
            request: SearchRequest {
                user_id: Some(user),
                size,
                ..SearchRequest::default()
            },
        },
        Scenario {
            name: "hashtags",
            path: format!("/v1/hashtags/projects?hashtags={}", hashtag.name),
            request: SearchRequest {
                hashtags: vec![hashtag.name.clone()],
                hashtag_mode: HashtagMode::Any,
                size,
                ..SearchRequest::default()
            },
        },
        Scenario {
            name: "full-text",
            path: format!("/v1/projects/search?q={word}"),
            request: SearchRequest {
                text: Some(word.to_string()),
                size,
                ..SearchRequest::default()
            },
        },
    ])
}

/// Latencies and errors of one or more runs.
#[derive(Default)]
struct Samples {
    latencies: Vec<Duration>,
    errors: usize,
    elapsed: Duration,
}

impl Samples {
    fn add(&mut self, mut other: Samples) {
        self.latencies.append(&mut other.latencies);
        self.errors += other.errors;
        self.elapsed += other.elapsed;
    }

    fn stats(mut self) -> Stats {
        self.latencies.sort();
        let quantile = |q: f64| {
            let at = ((self.latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            self.latencies
                .get(at)
                .map_or(0.0, |latency| latency.as_secs_f64() * 1000.0)
        };
        Stats {
            requests: self.latencies.len(),
            errors: self.errors,
            per_second: self.latencies.len() as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50_ms: quantile(0.50),
            p99_ms: quantile(0.99),
        }
    }
}

/// Sends `target` from `concurrency` workers for `duration`.
async fn load(
    client: &reqwest::Client,
    target: &Target,
    concurrency: usize,
    duration: Duration,
) -> Samples {
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let target = target.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors = 0;
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let request = match &target {
                        Target::Get(url) => client.get(url),
                        Target::Post(url, body) => client
                            .post(url)
                            .header("content-type", "application/json")
                            .body(body.as_ref().clone()),
                    };
                    match request.send().await {
                        Ok(response) if response.status().is_success() => {
                            if response.bytes().await.is_err() {
                                errors += 1;
                            }
                        }
                        _ => errors += 1,
                    }
                    latencies.push(sent.elapsed());
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut samples = Samples::default();
    for worker in workers {
        if let Ok((mut seen, failed)) = worker.await {
            samples.latencies.append(&mut seen);
            samples.errors += failed;
        }
    }
    samples.elapsed = started.elapsed();
    samples
}

/// A loopback HTTP proxy to the engine that remembers the body of the last `_search`.
struct Recorder {
    url: String,
    last: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Recorder {
    async fn start(engine: &str) -> anyhow::Result<Recorder> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let last = Arc::new(Mutex::new(None));
        let forward = Forward {
            engine: engine.to_string(),
            client: reqwest::Client::new(),
            last: last.clone(),
        };
        tokio::spawn(async move {
            let acceptor = poem::listener::TcpAcceptor::from_tokio(listener)?;
            poem::Server::new_with_acceptor(acceptor).run(forward).await
        });
        Ok(Recorder { url, last })
    }

    fn last_search(&self) -> Option<Vec<u8>> {
        self.last.lock().ok()?.take()
    }
}

/// Headers that belong to one connection, not to the message.
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

struct Forward {
    engine: String,
    client: reqwest::Client,
    last: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Endpoint for Forward {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        let target = request.uri().path_and_query().map_or("/", |pq| pq.as_str());
        let url = format!("{}{target}", self.engine);
        let method = reqwest::Method::from_bytes(request.method().as_str().as_bytes())
            .map_err(poem::error::BadRequest)?;
        let headers: Vec<(String, Vec<u8>)> = request
            .headers()
            .iter()
            .filter(|(name, _)| !HOP_BY_HOP.contains(&name.as_str()))
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let body = request.into_body().into_vec().await?;
        if url.contains("/_search")
            && let Ok(mut last) = self.last.lock()
        {
            *last = Some(body.clone());
        }
        let mut forwarded = self.client.request(method, url).body(body);
        for (name, value) in headers {
            forwarded = forwarded.header(name, value);
        }
        let answer = forwarded.send().await.map_err(poem::error::BadGateway)?;
        let mut response = Response::builder().status(
            StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
        );
        for (name, value) in answer.headers() {
            if !HOP_BY_HOP.contains(&name.as_str()) {
                response = response.header(name.as_str(), value.as_bytes());
            }
        }
        let bytes = answer.bytes().await.map_err(poem::error::BadGateway)?;
        Ok(response.body(Body::from_vec(bytes.to_vec())))
    }
}
