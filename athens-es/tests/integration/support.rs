//! Shared test support: a configuration per engine, a loop over both engines with cleanup, and a
//! scripted fake engine for answers a real one will not give on demand.

use std::future::Future;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::Context;
use athens_core::SearchIndex;
use athens_es::{EsConfig, EsIndex};
use athens_testkit::TestEngine;

/// A configuration for `engine` with its own alias.
pub fn config(engine: &TestEngine, alias: &str) -> EsConfig {
    EsConfig {
        url: engine.url.clone(),
        alias: alias.to_owned(),
        request_timeout_secs: 30,
        ..EsConfig::default()
    }
}

/// Runs `body` against every engine with a fresh alias named after `test`, then deletes every index
/// of that alias whether `body` passed or not.
pub async fn on_every_engine<F, Fut>(test: &str, body: F) -> anyhow::Result<()>
where
    F: Fn(EsIndex, TestEngine) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    on_every_engine_with(test, |config| config, body).await
}

/// [`on_every_engine`] through an adapter whose settings `configure` adjusts.
pub async fn on_every_engine_with<F, Fut>(
    test: &str,
    configure: fn(EsConfig) -> EsConfig,
    body: F,
) -> anyhow::Result<()>
where
    F: Fn(EsIndex, TestEngine) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let engines = athens_testkit::engines().await?;
    for engine in engines {
        let alias = athens_testkit::unique_name(test);
        let index = EsIndex::connect(&configure(config(&engine, &alias)))
            .await
            .with_context(|| format!("connect to {engine}"))?;
        let result = body(index.clone(), engine.clone()).await;
        let cleaned = drop_all(&index).await;
        result.with_context(|| format!("on {engine}"))?;
        cleaned.with_context(|| format!("cleanup on {engine}"))?;
    }
    Ok(())
}

/// Deletes every physical index of `index`'s alias.
pub async fn drop_all(index: &EsIndex) -> anyhow::Result<()> {
    for name in index.indexes().await? {
        index.drop_index(&name).await?;
    }
    index.drop_claims().await?;
    Ok(())
}

/// A request the fake engine received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST /x/_bulk`.
    pub line: String,
    /// Header lines, lowercase names.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Received {
    /// The value of a header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// An HTTP server on a local port that answers `GET /` like Elasticsearch 7.10, then each request
/// with the next scripted answer, then stops listening (so later connections are refused).
pub struct FakeEngine {
    /// Its base URL.
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    thread: Option<JoinHandle<()>>,
}

const BANNER: &str =
    r#"{"name":"fake","version":{"number":"7.10.2"},"tagline":"You Know, for Search"}"#;

impl FakeEngine {
    /// Starts serving the banner and then `answers` (status, JSON body), one per connection.
    pub fn start(answers: Vec<(u16, String)>) -> anyhow::Result<FakeEngine> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let thread = std::thread::spawn(move || {
            let script = std::iter::once((200, BANNER.to_owned())).chain(answers);
            for (status, body) in script {
                let Some(stream) = accept(&listener) else {
                    return;
                };
                let mut reader = BufReader::new(stream);
                let Some(request) = read_request(&mut reader) else {
                    return;
                };
                if let Ok(mut log) = log.lock() {
                    log.push(request);
                }
                let answer = format!(
                    "HTTP/1.1 {status} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let mut stream = reader.into_inner();
                if stream.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            }
        });
        Ok(FakeEngine {
            url,
            received,
            thread: Some(thread),
        })
    }

    /// Waits until the script is played out and returns what the engine received.
    pub fn finish(mut self) -> Vec<Received> {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.received
            .lock()
            .map(|log| log.clone())
            .unwrap_or_default()
    }
}

/// The next connection, or `None` after a few seconds without one (a test that sent fewer requests
/// than scripted must fail, not hang).
fn accept(listener: &TcpListener) -> Option<std::net::TcpStream> {
    let deadline = Instant::now() + Duration::from_secs(10);
    listener.set_nonblocking(true).ok()?;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).ok()?;
                return Some(stream);
            }
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return None,
        }
    }
}

fn read_request(reader: &mut BufReader<std::net::TcpStream>) -> Option<Received> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_lowercase(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Received {
        line: line.trim_end().to_owned(),
        headers,
        body,
    })
}
