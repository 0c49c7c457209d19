//! `doctor`: every check a new deployment stumbles on, in one command, each with what passed or
//! what failed and the setting or command that fixes it; exits non-zero when one failed.
#![allow(clippy::print_stdout)] // command output for the user

use std::time::Duration;

use athens_core::{ErrorChain, SearchIndex};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cli::DoctorArgs;
use crate::config::Settings;
use crate::wiring;

/// One check's outcome.
struct Check {
    name: &'static str,
    outcome: Outcome,
}

enum Outcome {
    Passed(String),
    Failed(String),
    /// Not run, because a check it needs failed: why.
    Skipped(String),
}

impl Check {
    fn passed(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            outcome: Outcome::Passed(detail.into()),
        }
    }

    fn failed(name: &'static str, error: &anyhow::Error) -> Check {
        Check {
            name,
            outcome: Outcome::Failed(ErrorChain(error.as_ref()).to_string()),
        }
    }

    /// `name` could not be reached: it failed, and `dependents`, which need it, are skipped.
    fn unreachable(
        name: &'static str,
        error: &anyhow::Error,
        dependents: [&'static str; 2],
    ) -> [Check; 3] {
        let [first, second] = dependents.map(|dependent| Check {
            name: dependent,
            outcome: Outcome::Skipped(format!("needs the {name}")),
        });
        [Check::failed(name, error), first, second]
    }
}

pub async fn doctor(settings: &Settings, args: &DoctorArgs) -> anyhow::Result<()> {
    let checks = run_checks(settings).await;
    let failed = checks
        .iter()
        .filter(|check| matches!(check.outcome, Outcome::Failed(_)))
        .count();
    if args.json {
        let checks: Vec<_> = checks
            .iter()
            .map(|check| {
                let (status, detail) = match &check.outcome {
                    Outcome::Passed(detail) => ("passed", detail.as_str()),
                    Outcome::Failed(detail) => ("failed", detail.as_str()),
                    Outcome::Skipped(because) => ("skipped", because.as_str()),
                };
                json!({ "check": check.name, "status": status, "detail": detail })
            })
            .collect();
        println!("{:#}", json!({ "failed": failed, "checks": checks }));
    } else {
        for check in &checks {
            match &check.outcome {
                Outcome::Passed(detail) => println!("ok    {:<9} {detail}", check.name),
                Outcome::Failed(detail) => println!("FAIL  {:<9} {detail}", check.name),
                Outcome::Skipped(because) => println!("skip  {:<9} {because}", check.name),
            }
        }
    }
    if failed > 0 {
        anyhow::bail!("{failed} check(s) failed; the fix is on each FAIL line");
    }
    Ok(())
}

async fn run_checks(settings: &Settings) -> Vec<Check> {
    let mut checks = Vec::new();
    checks.push(http_addr(settings).await);

    match wiring::database(settings).await {
        Err(error) => checks.extend(Check::unreachable(
            "database",
            &error,
            ["schema", "capture"],
        )),
        Ok(source) => {
            checks.push(database(settings, &source).await);
            let schema = source.check_schema().await;
            match schema {
                Ok(()) => checks.push(Check::passed("schema", "the five tables are there")),
                Err(error) => checks.push(Check::failed("schema", &error.into())),
            }
            let capture = match settings.capture.mode {
                athens_pg::CaptureMode::Outbox => outbox(settings, &source).await,
                athens_pg::CaptureMode::Logical => source
                    .check_logical_capture(&settings.capture)
                    .await
                    .map(|()| {
                        format!(
                            "logical decoding: publication {} is installed",
                            settings.capture.publication
                        )
                    })
                    .map_err(anyhow::Error::from),
            };
            match capture {
                Ok(passed) => checks.push(Check::passed("capture", passed)),
                Err(error) => checks.push(Check::failed("capture", &error)),
            }
        }
    }

    match wiring::engine(settings).await {
        Err(error) => checks.extend(Check::unreachable("engine", &error, ["alias", "indexes"])),
        Ok(index) => {
            checks.push(Check::passed(
                "engine",
                format!(
                    "{} at {}",
                    index.engine(),
                    wiring::engine_address(&settings.engine.url)
                ),
            ));
            checks.push(match index.live_index().await {
                Ok(Some(live)) => {
                    let count = index
                        .count(&live)
                        .await
                        .map_or_else(|_| "unknown".into(), |n| n.to_string());
                    Check::passed(
                        "alias",
                        format!("{} serves {live} ({count} documents)", index.alias()),
                    )
                }
                Ok(None) => Check::failed(
                    "alias",
                    &anyhow::anyhow!(
                        "alias {} does not exist yet, so searches fail: run `athens reindex` or \
                         `athens run`, or set engine.alias (ATHENS_INDEX) to the alias you use",
                        index.alias()
                    ),
                ),
                Err(error) => Check::failed("alias", &error.into()),
            });
            checks.push(match index.stray_indexes().await {
                Ok(strays) if strays.is_empty() => {
                    Check::passed("indexes", "the alias serves every index of Athens")
                }
                Ok(strays) => {
                    let listed: Vec<String> = strays
                        .iter()
                        .map(|stray| format!("{} ({})", stray.name, stray.kind.as_str()))
                        .collect();
                    Check::passed(
                        "indexes",
                        format!(
                            "not served by the alias: {}; `athens status` says what becomes of each",
                            listed.join(", ")
                        ),
                    )
                }
                Err(error) => Check::failed("indexes", &error.into()),
            });
        }
    }
    checks
}

/// The outbox capture: triggers, outbox and lease installed, one consumer, and the partition count
/// the settings say.
async fn outbox(settings: &Settings, source: &athens_pg::PgSource) -> anyhow::Result<String> {
    source.check_capture().await?;
    source.check_consumer().await?;
    let partitions = settings.capture.partitions;
    wiring::check_partitions(source, partitions).await?;
    Ok(if partitions.get() > 1 {
        format!("triggers, outbox and lease are installed, {partitions} partitions")
    } else {
        "triggers, outbox and lease are installed".to_string()
    })
}

/// Whether PostgreSQL, which answered, is recent enough for the capture mode and gives each
/// connection a session of its own (no pooler in transaction mode).
async fn database(settings: &Settings, source: &athens_pg::PgSource) -> Check {
    let checked = async {
        let version = source.check_version(settings.capture.mode).await?;
        source.check_session().await?;
        Ok::<_, athens_pg::PgError>(version)
    };
    match checked.await {
        Ok(version) => Check::passed(
            "database",
            format!(
                "PostgreSQL answers at {} (version {version}, Athens needs {} or later; a \
                 session per connection)",
                settings.database.url,
                match settings.capture.mode {
                    athens_pg::CaptureMode::Outbox => athens_pg::MIN_VERSION,
                    athens_pg::CaptureMode::Logical => athens_pg::MIN_LOGICAL_VERSION,
                }
            ),
        ),
        Err(error) => Check::failed("database", &error.into()),
    }
}

/// Whether the API could listen on `http.addr`; a port held by a running Athens API passes.
async fn http_addr(settings: &Settings) -> Check {
    let addr = &settings.http.addr;
    match wiring::listener(settings).await {
        Ok(listener) => {
            drop(listener);
            Check::passed("http", format!("{addr} is free for the API"))
        }
        Err(error) => match athens_answers(addr).await {
            true => Check::passed("http", format!("an Athens API already answers at {addr}")),
            false => Check::failed("http", &error),
        },
    }
}

/// True when an Athens API answers `GET /healthz` at `addr` within a second or two.
async fn athens_answers(addr: &str) -> bool {
    let local = addr
        .replace("0.0.0.0:", "127.0.0.1:")
        .replace("[::]:", "[::1]:");
    let probe = async {
        let mut stream = TcpStream::connect(local.as_str()).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        stream.take(4096).read_to_end(&mut answer).await?;
        std::io::Result::Ok(String::from_utf8_lossy(&answer).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(2), probe).await {
        Ok(Ok(answer)) => {
            answer.starts_with("HTTP/1.1 200") && answer.contains("\"status\":\"ok\"")
        }
        _ => false,
    }
}
