//! Hostile clients, over the real adapters: pathological queries (query syntax, regex characters,
//! control characters, over-long text, huge page sizes, deep paging) are searched as plain text,
//! bounded or refused, never a 5xx; and over real TCP, clients that open many stalled connections,
//! send oversized requests or pile up slow requests starve no one: the others are served, the
//! stalled connections are closed, and beyond the concurrency limit requests get a 503 with
//! `Retry-After` at once.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use athens_core::{ProjectSearch, SourceLookup};
use athens_es::EsSearch;
use athens_http::{AppState, HttpConfig, serve_on};
use poem::http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

use crate::corpus::{
    BULK, Database, client, drop_index, engine_config, get, index, on_first_engine,
};

/// Projects in the corpus.
const CORPUS: u64 = 4 + BULK as u64;

#[tokio::test]
async fn pathological_queries_are_plain_text_bounded_or_refused() -> anyhow::Result<()> {
    let test = "http-hostile-queries";
    let database = Database::create(test).await?;
    // Query syntax and regular expressions without a word in them: nothing to search for.
    let wordless = [
        "*", "?", "*:*", ".*", "/.*/", "\\", "\"", "(", ")", "[", "{", "~", "^", "&&", "||", "!",
        ":", "<>", "\0", "\u{1b}[", "🦀", "\u{202e}", "\u{feff}", "////", "\\\\\"",
    ];
    // Query syntax around words: searched as the words, never parsed.
    let syntax = [
        "elasticsearch AND NOT sync",
        "slug:elasticsearch-sync",
        "description:(fuzzy OR finder)~2^10",
        "elastic* sync?",
        "/elasticsearch/",
        "{\"match_all\":{}}",
        "_exists_:slug OR _id:1",
        "<script>alert(1)</script>",
        "' OR 1=1 --",
        "a~ b~ c~ d~ e~ f~ g~ h~ i~ j~ k~ l~ m~ n~ o~ p~ q~ r~ s~ t~",
        "(((((((((((((((((((((((((((((((((((((((((x)))))))))))))))))))))))))))))))))))))))))",
        "[^]+$(?=.*){1,99999}",
        "fuzzy^2",
    ];
    // Control characters (terminal escapes, NUL, bell) are refused outright.
    let controls = [
        "\u{1b}[31mfuzzy\u{1b}[0m",
        "fuzzy\0",
        "fuzzy\u{7}",
        "\r\nfuzzy",
    ];
    // Within the 200 characters `q` may hold.
    let regex_soup = ".*+?[](){}|^$\\".repeat(14);
    let long_words = (0..10)
        .map(|n| format!("{n}abcdefghijklmnopq"))
        .collect::<Vec<_>>()
        .join(" ");
    let encode =
        |q: &str| -> String { url::form_urlencoded::byte_serialize(q.as_bytes()).collect() };
    for engine in athens_testkit::engines().await? {
        let index = index(&database, &engine_config(&engine, test)).await?;
        let client = client(Arc::new(index.searcher()), database.source());
        for q in wordless {
            let uri = format!("/v1/projects/search?q={}", encode(q));
            let answer = get(&client, &uri).await;
            assert!(
                answer.status == StatusCode::OK || answer.status == StatusCode::BAD_REQUEST,
                "{engine}: {uri}: {} {}",
                answer.status,
                answer.body
            );
            if answer.status == StatusCode::OK {
                assert_eq!(answer.body["total"], 0, "{engine}: {uri} matches nothing");
            } else {
                assert_eq!(
                    answer.body["invalid_params"][0]["name"], "q",
                    "{engine}: {uri}"
                );
            }
        }
        for q in syntax
            .into_iter()
            .chain([regex_soup.as_str(), long_words.as_str()])
        {
            let uri = format!("/v1/projects/search?q={}", encode(q));
            let started = Instant::now();
            let answer = get(&client, &uri).await;
            assert_eq!(
                answer.status,
                StatusCode::OK,
                "{engine}: {uri}: {}",
                answer.body
            );
            assert!(
                answer.body["total"].as_u64().unwrap() < CORPUS,
                "{engine}: {uri} does not match everything"
            );
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "{engine}: {uri} took {:?}",
                started.elapsed()
            );
        }
        for q in controls {
            let uri = format!("/v1/projects/search?q={}", encode(q));
            let answer = get(&client, &uri).await;
            answer.assert_invalid("q", &format!("{engine}: {uri}"));
        }
        let answer = get(&client, "/v1/projects/search?q=elasticsearch%20AND%20sync").await;
        assert_eq!(
            answer.slugs().first().map(String::as_str),
            Some("elasticsearch-sync"),
            "{engine}: words around syntax are still searched"
        );

        // Over-long text: refused by the URI limit first, by the parameter's bound below it.
        let answer = get(
            &client,
            &format!("/v1/projects/search?q={}", "q".repeat(10_000)),
        )
        .await;
        assert_eq!(answer.status, StatusCode::URI_TOO_LONG, "{engine}");
        assert_eq!(answer.body["status"], 414, "{engine}: a problem document");
        for param in ["q", "user_name"] {
            let answer = get(
                &client,
                &format!("/v1/projects/search?{param}={}", "q".repeat(4_000)),
            )
            .await;
            answer.assert_invalid(param, &format!("{engine}: {param}"));
        }
        // Huge, negative, fractional and overflowing page sizes.
        for size in [
            "1000000",
            "4294967296",
            "99999999999999999999999",
            "-1",
            "1e3",
            "10.5",
            "0x10",
            "",
        ] {
            for path in [
                "/v1/projects/search?q=rust&",
                "/v1/hashtags/projects?hashtags=rust&",
                "/v1/users/1/projects?",
            ] {
                let uri = format!("{path}size={size}");
                let answer = get(&client, &uri).await;
                answer.assert_invalid("size", &format!("{engine}: {uri}"));
            }
        }
        // Too many hashtags, an over-long one, and hashtags made of syntax.
        let many = (0..21)
            .map(|n| format!("t{n}"))
            .collect::<Vec<_>>()
            .join(",");
        for (uri, status) in [
            (
                format!("/v1/hashtags/projects?hashtags={many}"),
                StatusCode::BAD_REQUEST,
            ),
            (
                format!("/v1/hashtags/projects?hashtags={}", "h".repeat(101)),
                StatusCode::BAD_REQUEST,
            ),
            (
                "/v1/hashtags/projects?hashtags=*".to_string(),
                StatusCode::OK,
            ),
            (
                "/v1/hashtags/projects?hashtags=%2A%3F%5C".to_string(),
                StatusCode::OK,
            ),
        ] {
            let answer = get(&client, &uri).await;
            assert_eq!(answer.status, status, "{engine}: {uri}: {}", answer.body);
            if status == StatusCode::OK {
                assert_eq!(answer.body["total"], 0, "{engine}: {uri}");
            } else {
                assert_eq!(
                    answer.body["invalid_params"][0]["name"], "hashtags",
                    "{engine}"
                );
            }
        }

        // Deep paging: only by cursor, every page as cheap as the first (search_after, never an
        // offset), bounded by `size`; offsets a client invents are ignored.
        let mut uri = "/v1/hashtags/projects?hashtags=bulk&size=1".to_string();
        let first = get(&client, &uri).await;
        for offset in ["from=10000", "offset=10000", "page=500", "start=20"] {
            let answer = get(&client, &format!("{uri}&{offset}")).await;
            assert_eq!(
                answer.slugs(),
                first.slugs(),
                "{engine}: {offset} is ignored"
            );
        }
        let mut seen = Vec::new();
        loop {
            let answer = get(&client, &uri).await;
            assert_eq!(answer.status, StatusCode::OK, "{engine}: {}", answer.body);
            assert!(
                answer.slugs().len() <= 1,
                "{engine}: a page holds at most size"
            );
            seen.extend(answer.slugs());
            match answer.body["next_cursor"].as_str() {
                Some(cursor) => {
                    uri = format!("/v1/hashtags/projects?hashtags=bulk&size=1&cursor={cursor}")
                }
                None => break,
            }
            assert!(seen.len() <= BULK, "{engine}: paging ends");
        }
        assert_eq!(seen.len(), BULK, "{engine}: every project once");
        // A cursor is bound to its search and bounded in size.
        let cursor = first.body["next_cursor"].as_str().unwrap();
        for uri in [
            format!("/v1/projects/search?q=fuzzy&cursor={cursor}"),
            format!("/v1/projects/search?cursor={}", "A".repeat(513)),
            "/v1/projects/search?cursor=eyJ2IjoxLCJmIjoiIiwiYSI6WzFlMzA4LDFdfQ".to_string(),
        ] {
            let answer = get(&client, &uri).await;
            answer.assert_invalid("cursor", &format!("{engine}: {uri}"));
        }
        drop_index(&index).await?;
    }
    Ok(())
}

/// Serves the application on a fresh local port until the returned sender is dropped or fired.
async fn serve(
    search: Arc<dyn ProjectSearch>,
    source: Arc<dyn SourceLookup>,
    config: HttpConfig,
) -> (SocketAddr, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let state = AppState::new(search, source);
    tokio::spawn(async move {
        serve_on(listener, state, &config, async {
            stopped.await.ok();
        })
        .await
    });
    (addr, stop)
}

/// Sends raw bytes and reads the status code of the answer (`None` when the server closed the
/// connection without one).
async fn raw(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // The server may answer and close before reading everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    let head = String::from_utf8_lossy(&answer);
    head.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

async fn search_status(addr: SocketAddr, q: &str) -> (StatusCode, reqwest::header::HeaderMap) {
    let answer = reqwest::Client::new()
        .get(format!("http://{addr}/v1/projects/search?q={q}"))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    (
        StatusCode::from_u16(answer.status().as_u16()).unwrap(),
        answer.headers().clone(),
    )
}

// Multi-threaded: hundreds of sockets and the server share the runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_and_oversized_requests_starve_no_one() -> anyhow::Result<()> {
    let test = "http-hostile-connections";
    let (database, _, index) = on_first_engine(test).await?;
    let config = HttpConfig {
        idle_timeout_ms: 2_000.try_into().unwrap(),
        ..HttpConfig::default()
    };
    let (addr, stop) = serve(Arc::new(index.searcher()), database.source(), config).await;

    // 200 connections: half say nothing, half stall in the middle of their headers.
    let mut stalled = Vec::new();
    for n in 0..200 {
        let mut stream = TcpStream::connect(addr).await?;
        if n % 2 == 0 {
            stream
                .write_all(b"GET /v1/projects/search?q=fuzzy HTTP/1.1\r\nhost: x\r\nx-slow: ")
                .await?;
        }
        stalled.push(stream);
    }
    let started = Instant::now();
    let (status, _) = search_status(addr, "fuzzy").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "served beside 200 stalled connections in {:?}",
        started.elapsed()
    );
    // The server closes them once they have been silent for the idle timeout.
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    let mut open = Vec::new();
    for (n, stream) in stalled.iter_mut().enumerate() {
        let mut buffer = [0u8; 512];
        let closed =
            tokio::time::timeout(Duration::from_millis(100), stream.read(&mut buffer)).await;
        if !matches!(closed, Ok(Ok(0)) | Ok(Err(_))) {
            open.push(n);
        }
    }
    assert!(open.is_empty(), "stalled connections still open: {open:?}");

    // Oversized requests over TCP: refused, and the server goes on.
    let long_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\nconnection: close\r\n\r\n",
        "p".repeat(20_000)
    );
    assert_eq!(raw(addr, long_header.as_bytes()).await, Some(431));
    let huge_header = format!(
        "GET /healthz HTTP/1.1\r\nhost: x\r\nx-padding: {}\r\nconnection: close\r\n\r\n",
        "p".repeat(1_000_000)
    );
    let status = raw(addr, huge_header.as_bytes()).await;
    assert!(
        matches!(status, Some(431) | None),
        "a 1 MB header is refused or cut: {status:?}"
    );
    let many_headers: String = (0..500).map(|n| format!("x-h{n}: v\r\n")).collect();
    let status = raw(
        addr,
        format!("GET /healthz HTTP/1.1\r\nhost: x\r\n{many_headers}connection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(
        matches!(status, Some(431) | None),
        "500 headers are refused or cut: {status:?}"
    );
    let long_uri = format!(
        "GET /v1/projects/search?q={} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "q".repeat(9_000)
    );
    assert_eq!(raw(addr, long_uri.as_bytes()).await, Some(414));
    let body = b"GET /healthz HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\nconnection: close\r\n\r\nxxxx";
    assert_eq!(raw(addr, body).await, Some(413));
    assert_eq!(search_status(addr, "fuzzy").await.0, StatusCode::OK);

    drop(stop);
    drop_index(&index).await?;
    Ok(())
}

/// A TCP forwarder to `target` that can freeze: while frozen, bytes stop flowing both ways on
/// every connection (requests hang, as against an overloaded engine) without any being closed or
/// lost; they flow again once thawed.
struct Freezer {
    addr: SocketAddr,
    frozen: watch::Sender<bool>,
}

/// Copies `from` to `to`, holding the bytes while frozen.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.wait_for(|frozen| !*frozen).await.is_err()
            || to.write_all(&buffer[..n]).await.is_err()
        {
            return;
        }
    }
}

impl Freezer {
    async fn start(target: SocketAddr) -> Freezer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (frozen, _) = watch::channel(false);
        let watched = frozen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(target).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, watched.subscribe()));
                tokio::spawn(pump(server_read, client_write, watched.subscribe()));
            }
        });
        Freezer { addr, frozen }
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.send_replace(frozen);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_concurrency_limit_requests_get_503_with_retry_after() -> anyhow::Result<()> {
    let test = "http-hostile-concurrency";
    let (database, engine, index) = on_first_engine(test).await?;
    let target = tokio::net::lookup_host(engine.url.trim_start_matches("http://"))
        .await?
        .next()
        .unwrap();
    let freezer = Freezer::start(target).await;
    let mut config = engine_config(&engine, test);
    config.url = format!("http://{}", freezer.addr);
    config.alias = index.alias().to_string();
    let search = Arc::new(EsSearch::connect(&config).await?);
    let http = HttpConfig {
        max_concurrency: 4.try_into().unwrap(),
        request_timeout_ms: 3_000,
        retry_after_secs: 7,
        ..HttpConfig::default()
    };
    let (addr, stop) = serve(search, database.source(), http).await;
    assert_eq!(search_status(addr, "fuzzy").await.0, StatusCode::OK);

    // The engine hangs: four requests fill the limit and wait.
    freezer.freeze(true);
    let hanging: Vec<_> = (0..4)
        .map(|_| tokio::spawn(async move { search_status(addr, "fuzzy").await }))
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let (status, headers) = search_status(addr, "finder").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(headers["retry-after"], "7");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refused at once, not queued: {:?}",
        started.elapsed()
    );
    let answer = reqwest::get(format!("http://{addr}/v1/projects/search?q=x")).await?;
    let problem: serde_json::Value = answer.json().await?;
    assert_eq!(problem["type"], "urn:athens:problem:busy");
    // Liveness is exempt from the limit.
    let live = reqwest::get(format!("http://{addr}/healthz")).await?;
    assert_eq!(live.status().as_u16(), 200);
    // The hanging ones end at the request timeout, with a 503 and Retry-After too.
    for request in hanging {
        let (status, headers) = request.await?;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(headers["retry-after"], "7");
    }
    // The engine is back: so is the service.
    freezer.freeze(false);
    assert_eq!(search_status(addr, "fuzzy").await.0, StatusCode::OK);

    drop(stop);
    drop_index(&index).await?;
    Ok(())
}
