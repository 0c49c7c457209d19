//! The first mistakes of a new user, each answered at once with one line naming the setting or the
//! command that fixes it; and `athens doctor`, which runs every one of those checks.

use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::support::{World, engines, free_port, tls};

/// Runs `command`, returning its output and how long it took.
fn timed(command: &mut Command) -> (Output, Duration) {
    let started = Instant::now();
    let output = command.output().unwrap();
    (output, started.elapsed())
}

/// Asserts that `output` failed at once (well under the 10 s connect timeout that used to hide the
/// cause) with one line on stderr starting `athens: ` and holding every one of `says`; the line.
fn answered_at_once(output: &Output, took: Duration, says: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|line| line.starts_with("athens: "))
        .unwrap_or_else(|| panic!("no `athens: ` line in: {stderr}"))
        .to_string();
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {stderr}");
    for part in says {
        assert!(line.contains(part), "expected {part:?} in: {line}");
    }
    line
}

/// The same URL with another port, password or database name.
fn with(url: &str, from: &str, to: &str) -> String {
    assert!(url.contains(from), "{url} has {from}");
    url.replacen(from, to, 1)
}

#[tokio::test]
async fn no_database_says_at_once_that_nothing_answers_where_it_looked() {
    let world = World::new("mistake-no-db", &engines().await[0])
        .await
        .unwrap();
    // Nothing configured: the default, localhost:5432, when nothing listens there on this machine.
    if TcpListener::bind("127.0.0.1:5432").is_ok() {
        let (output, took) = timed(world.athens(&["status"]).env_remove("ATHENS_DATABASE_URL"));
        answered_at_once(
            &output,
            took,
            &["nothing answers at localhost:5432", "database.url"],
        );
    }
    let port = free_port();
    let url = format!("postgres://athens:athens@127.0.0.1:{port}/athens");
    let (output, took) = timed(world.athens(&["status"]).env("ATHENS_DATABASE_URL", &url));
    answered_at_once(
        &output,
        took,
        &[
            &format!("nothing answers at 127.0.0.1:{port}"),
            "ATHENS_DATABASE_URL",
        ],
    );
}

#[tokio::test]
async fn a_port_that_is_not_postgresql_wrong_password_and_missing_database_name_their_fix() {
    let engine = &engines().await[0];
    let world = World::new("mistake-db", engine).await.unwrap();
    let url = world.database.url.clone();
    let engine_port = url::Url::parse(&engine.url).unwrap().port().unwrap();
    let pg_port = url::Url::parse(&url).unwrap().port().unwrap().to_string();

    let wrong_port = with(&url, &pg_port, &engine_port.to_string());
    let wrong_password = with(&url, "athens:athens@", "athens:not-the-password@");
    let missing = with(&url, &world.database.name, "athens_no_such_database");
    let cases: [(String, &[&str]); 3] = [
        (
            wrong_port,
            &["is not PostgreSQL", "check the port in database.url"],
        ),
        (
            wrong_password,
            &["refused user athens", "password in database.url"],
        ),
        (
            missing,
            &[
                "database athens_no_such_database does not exist",
                "database.url",
            ],
        ),
    ];
    for (database_url, expected) in cases {
        let (output, took) = timed(
            world
                .athens(&["migrate"])
                .env("ATHENS_DATABASE_URL", database_url),
        );
        let line = answered_at_once(&output, took, expected);
        assert!(!line.contains("not-the-password"), "no secret: {line}");
    }
}

#[tokio::test]
async fn a_database_without_the_tables_or_without_capture_names_the_command() {
    let world = World::new("mistake-schema", &engines().await[0])
        .await
        .unwrap();
    for command in ["sync", "setup", "seed"] {
        let (output, took) = timed(&mut world.athens(&[command]));
        answered_at_once(
            &output,
            took,
            &["table users is missing", "athens migrate", "database.url"],
        );
    }
    world.ok(&["migrate"]).unwrap();
    for command in ["sync", "run", "reindex"] {
        let (output, took) = timed(&mut world.athens(&[command]));
        answered_at_once(&output, took, &["athens setup"]);
    }
}

#[tokio::test]
async fn an_unreachable_engine_and_an_engine_that_needs_credentials_name_the_settings() {
    let world = World::new("mistake-engine", &engines().await[0])
        .await
        .unwrap();
    world.prepare(20).unwrap();
    let port = free_port();
    let (output, took) = timed(
        world
            .athens(&["reindex"])
            .env("ATHENS_ENGINE_URL", format!("http://127.0.0.1:{port}")),
    );
    answered_at_once(
        &output,
        took,
        &[
            &format!("nothing answers as one at http://127.0.0.1:{port}"),
            "engine.url (ATHENS_ENGINE_URL",
        ],
    );

    let tls = tls();
    let (output, took) = timed(
        world
            .athens(&["reindex"])
            .env("ATHENS_ENGINE_URL", &tls.url)
            .env("ATHENS_ENGINE_CA_CERT", &tls.ca),
    );
    answered_at_once(
        &output,
        took,
        &[
            "needs credentials",
            "ATHENS_ENGINE_USERNAME and ATHENS_ENGINE_PASSWORD, or ATHENS_ENGINE_API_KEY",
        ],
    );
    let (output, took) = timed(
        world
            .athens(&["reindex"])
            .env("ATHENS_ENGINE_URL", &tls.url)
            .env("ATHENS_ENGINE_CA_CERT", &tls.ca)
            .env("ATHENS_ENGINE_USERNAME", &tls.username)
            .env("ATHENS_ENGINE_PASSWORD", "not-the-password"),
    );
    let line = answered_at_once(&output, took, &["refused the credentials of engine.auth"]);
    assert!(!line.contains("not-the-password"), "no secret: {line}");
}

#[tokio::test]
async fn a_taken_port_fails_before_anything_slow() {
    let world = World::new("mistake-port", &engines().await[0])
        .await
        .unwrap();
    world.prepare(20).unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    for command in ["run", "serve"] {
        let (output, took) = timed(world.athens(&[command]).env("ATHENS_HTTP_ADDR", &addr));
        answered_at_once(
            &output,
            took,
            &[&format!("{addr} is taken"), "http.addr (ATHENS_HTTP_ADDR"],
        );
    }
    // `run` failed before its backfill: no index was created.
    assert!(world.document(1).await.is_err(), "no alias yet");
    world.cleanup().await;
}

/// `athens doctor`'s lines, by check name: (status word, rest of the line).
fn doctor_lines(output: &Output) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace();
            let status = words.next().unwrap_or_default().to_string();
            let check = words.next().unwrap_or_default().to_string();
            (status, check, words.collect::<Vec<_>>().join(" "))
        })
        .collect()
}

fn doctor_says(output: &Output, check: &str, status: &str, detail: &str) {
    let lines = doctor_lines(output);
    let line = lines
        .iter()
        .find(|(_, name, _)| name == check)
        .unwrap_or_else(|| panic!("no {check} line in {lines:?}"));
    assert_eq!(line.0, status, "{check}: {lines:?}");
    assert!(line.2.contains(detail), "{check}: {detail:?} in {lines:?}");
}

#[tokio::test]
async fn doctor_runs_every_check_names_each_fix_and_exits_non_zero_on_a_failure() {
    let world = World::new("mistake-doctor", &engines().await[0])
        .await
        .unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();

    // A bare database, a taken port and an engine without the alias: every fix on its line.
    let output = world
        .athens(&["doctor"])
        .env("ATHENS_HTTP_ADDR", &addr)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    doctor_says(&output, "http", "FAIL", "http.addr");
    doctor_says(&output, "database", "ok", "PostgreSQL answers");
    doctor_says(&output, "schema", "FAIL", "athens migrate");
    doctor_says(&output, "capture", "FAIL", "athens setup");
    doctor_says(&output, "engine", "ok", &world.engine.version);
    doctor_says(&output, "alias", "FAIL", "athens reindex");
    doctor_says(&output, "indexes", "ok", "serves every index");
    drop(taken);

    // Nothing answering: the database's checks are skipped, not failed twice.
    let output = world
        .athens(&["doctor"])
        .env(
            "ATHENS_DATABASE_URL",
            format!("postgres://athens@127.0.0.1:{}/x", free_port()),
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    doctor_says(&output, "database", "FAIL", "nothing answers at 127.0.0.1");
    doctor_says(&output, "schema", "skip", "needs the database");

    // Set up and indexed: every check passes, exit 0, and JSON for scripts says the same.
    world.prepare(30).unwrap();
    world.ok(&["reindex"]).unwrap();
    let output = world.athens(&["doctor"]).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{:?}", doctor_lines(&output));
    for (status, check, _) in doctor_lines(&output) {
        assert_eq!(status, "ok", "{check}");
    }
    doctor_says(&output, "alias", "ok", "(30 documents)");
    let json: serde_json::Value =
        serde_json::from_str(&world.ok(&["doctor", "--json"]).unwrap()).unwrap();
    assert_eq!(json["failed"], 0);
    assert_eq!(json["checks"].as_array().unwrap().len(), 7);
    world.cleanup().await;
}

/// `deploy/local/up` in a copy of the scripts (no built engine launchers, an empty ATHENS_HOME),
/// with `env` added.
fn local_up(dir: &std::path::Path, env: &[(&str, &str)], services: &[&str]) -> (Output, Duration) {
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let copy = dir.join("deploy");
    std::fs::create_dir_all(&copy).unwrap();
    let status = Command::new("cp")
        .arg("-r")
        .arg(repo.join("deploy/local"))
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    for engine in ["es", "os", "os3"] {
        let _ = std::fs::remove_dir_all(copy.join("local/engines").join(engine).join("target"));
    }
    let mut command = Command::new(copy.join("local/up"));
    command
        .args(services)
        .env("ATHENS_HOME", dir.join("home"))
        .env("ATHENS_ES_PORT", free_port().to_string())
        .env("ATHENS_OS3_PORT", free_port().to_string());
    for (name, value) in env {
        command.env(name, value);
    }
    timed(&mut command)
}

#[test]
fn missing_java_or_maven_for_the_local_engines_is_said_before_anything_starts() {
    let dir = std::env::temp_dir().join(athens_testkit::unique_name("mistake-local"));
    let last_line = |output: &Output| {
        String::from_utf8_lossy(&output.stderr)
            .lines()
            .last()
            .unwrap_or_default()
            .to_string()
    };

    let (output, took) = local_up(&dir, &[("ATHENS_ES_JAVA", "/nonexistent/java")], &["es"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let line = last_line(&output);
    assert!(line.contains("Java not found at ATHENS_ES_JAVA"), "{line}");

    // A Java 17 where OpenSearch 3 needs 21.
    let old_java = dir.join("java17");
    std::fs::create_dir_all(dir.join("home")).unwrap();
    std::fs::write(
        &old_java,
        "#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n",
    )
    .unwrap();
    let status = Command::new("chmod").arg("+x").arg(&old_java).status();
    assert!(status.unwrap().success());
    let (output, took) = local_up(
        &dir,
        &[("ATHENS_OS3_JAVA", old_java.to_str().unwrap())],
        &["os3"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let line = last_line(&output);
    assert!(line.contains("is Java 17"), "{line}");
    assert!(line.contains("needs Java 21+"), "{line}");
    assert!(line.contains("ATHENS_OS3_JAVA"), "{line}");

    let (output, took) = local_up(&dir, &[("ATHENS_MVN", "/nonexistent/mvn")], &["es"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let line = last_line(&output);
    assert!(line.contains("Maven not found"), "{line}");
    assert!(line.contains("apt-get install -y maven"), "{line}");
    std::fs::remove_dir_all(&dir).unwrap();
}
