//! Running the real `athens` binary against a test's own database and alias, and reading both sides.

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use athens_testkit::{TestDatabase, TestEngine};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::Value;

/// One test's world: its database, its alias on one engine, and the `athens` binary.
pub struct World {
    pub database: TestDatabase,
    pub engine: TestEngine,
    pub alias: String,
    pub sql: DatabaseConnection,
    engine_url: String,
    /// `capture.mode` for every `athens` command: `outbox` or `logical`.
    capture: &'static str,
}

impl World {
    /// A fresh database and alias on `engine`.
    pub async fn new(test: &str, engine: &TestEngine) -> anyhow::Result<World> {
        let database = athens_testkit::database(test).await?;
        let sql = Database::connect(&database.url).await?;
        Ok(World {
            alias: athens_testkit::unique_name(test),
            engine_url: engine.url.clone(),
            engine: engine.clone(),
            database,
            sql,
            capture: "outbox",
        })
    }

    /// Captures changes by logical decoding instead of the outbox (every `athens` command gets
    /// `ATHENS_CAPTURE_MODE=logical`).
    pub fn logical(mut self) -> World {
        self.capture = "logical";
        self
    }

    /// A fresh world capturing in `mode` (`outbox` or `logical`).
    pub async fn in_mode(test: &str, engine: &TestEngine, mode: &str) -> anyhow::Result<World> {
        let world = World::new(&format!("{test}-{mode}"), engine).await?;
        Ok(if mode == "logical" {
            world.logical()
        } else {
            world
        })
    }

    /// Points `athens` at another engine URL (a proxy in front of the real one, say).
    pub fn with_engine_url(mut self, url: String) -> World {
        self.engine_url = url;
        self
    }

    /// An `athens` command wired to this world.
    pub fn athens(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_athens"));
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ATHENS_DATABASE_URL", &self.database.url)
            .env("ATHENS_ENGINE_URL", &self.engine_url)
            .env("ATHENS_INDEX", &self.alias)
            .env("ATHENS_HTTP_ADDR", "127.0.0.1:0")
            .env(
                "ATHENS_LOG",
                std::env::var("H17_LOG").unwrap_or("info".into()),
            )
            .env("ATHENS_SYNC_BATCH_SIZE", "200")
            .env("ATHENS_CAPTURE_MODE", self.capture)
            .stdin(Stdio::null());
        command
    }

    /// Runs `athens args…` to completion.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        Ok(self.athens(args).output()?)
    }

    /// Runs `athens args…` and fails unless it exits 0; returns stdout.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args)?;
        if !output.status.success() {
            bail!(
                "athens {args:?} exited {:?}\nstdout: {}\nstderr: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Starts `athens args…` in the background (its logs go to the test's stderr), killed when
    /// the returned guard drops: a failing test leaves no process behind.
    pub fn spawn(&self, args: &[&str]) -> anyhow::Result<Running> {
        Ok(Running(Some(
            self.athens(args)
                .stdout(Stdio::null())
                .stderr(Stdio::inherit())
                .spawn()?,
        )))
    }

    /// `migrate`, `seed --projects n`, `setup`.
    pub fn prepare(&self, projects: u64) -> anyhow::Result<()> {
        self.ok(&["migrate"])?;
        self.ok(&["seed", "--projects", &projects.to_string()])?;
        self.ok(&["setup"])?;
        Ok(())
    }

    /// Executes SQL statements.
    pub async fn sql(&self, statements: &str) -> anyhow::Result<()> {
        self.sql
            .execute_unprepared(statements)
            .await
            .with_context(|| format!("SQL failed: {statements}"))?;
        Ok(())
    }

    /// `athens status --json`.
    pub fn status(&self) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&self.ok(&["status", "--json"])?)?)
    }

    /// Waits until nothing is pending in the outbox and no project is queued for a rebuild.
    pub async fn wait_drained(&self, timeout: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            let status = self.status()?;
            if drained(&status) {
                return Ok(());
            }
            if started.elapsed() > timeout {
                bail!(
                    "{} changes still pending, {} projects queued after {timeout:?}",
                    status["pending_changes"],
                    status["queued_projects"]
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `athens verify --json`, requiring zero drift.
    pub fn verify_clean(&self) -> anyhow::Result<Value> {
        let report: Value = serde_json::from_str(&self.ok(&["verify", "--json"])?)?;
        anyhow::ensure!(report["drift"] == 0, "drift found: {report:#}");
        Ok(report)
    }

    /// The stored document of a project, straight from the engine, `None` when absent.
    pub async fn document(&self, project: i64) -> anyhow::Result<Option<Value>> {
        let client = reqwest::Client::new();
        let _ = client
            .post(format!("{}/{}/_refresh", self.engine.url, self.alias))
            .send()
            .await?;
        let response = client
            .post(format!("{}/{}/_search", self.engine.url, self.alias))
            .json(&serde_json::json!({ "query": { "ids": { "values": [project.to_string()] } } }))
            .send()
            .await?
            .error_for_status()?;
        let body: Value = response.json().await?;
        Ok(body["hits"]["hits"][0].get("_source").cloned())
    }

    /// Deletes the indexes behind this world's alias, and the database's replication slot (a slot
    /// retains WAL on the shared server until dropped).
    pub async fn cleanup(&self) {
        let _ = self
            .sql
            .execute_unprepared(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
                 WHERE database = current_database() AND NOT active",
            )
            .await;
        let _ = reqwest::Client::new()
            .delete(format!("{}/{}-*", self.engine.url, self.alias))
            .send()
            .await;
    }
}

/// Whether `athens status --json` says the sync has nothing left to do: no change pending, no
/// project of a fan-out queued.
pub fn drained(status: &Value) -> bool {
    status["pending_changes"] == 0 && status["queued_projects"] == 0
}

/// A port of 127.0.0.1 on which nothing listens right now (for a server the test starts, or a
/// connection that must be refused).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Sends SIGKILL (a crash) or SIGTERM (a stop) to a child and reaps it.
pub fn signal(child: &mut Child, name: &str) -> anyhow::Result<Option<i32>> {
    let status = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -{name} failed");
    Ok(child.wait()?.code())
}

/// Every engine under test.
pub async fn engines() -> Vec<TestEngine> {
    athens_testkit::engines()
        .await
        .expect("test engines must be configured")
}

/// A running `athens` process, stopped with SIGTERM by [`Running::stop`], killed if the test fails
/// before that.
pub struct Running(pub Option<Child>);

impl Running {
    /// SIGTERM, and the exit status.
    pub fn stop(&mut self) -> Option<i32> {
        self.0
            .take()
            .and_then(|mut child| signal(&mut child, "TERM").unwrap())
    }
}

impl std::ops::Deref for Running {
    type Target = Child;

    fn deref(&self) -> &Child {
        self.0.as_ref().expect("the process was already stopped")
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process was already stopped")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The TLS and authentication proxy of `deploy/local/up tls` and its credentials.
pub struct Tls {
    pub url: String,
    pub ca: String,
    pub username: String,
    pub password: String,
    pub api_key: String,
}

/// The proxy's address and credentials, from the variables `deploy/local/env` prints.
pub fn tls() -> Tls {
    let var = |name: &str| {
        std::env::var(name).unwrap_or_else(|_| {
            panic!("{name} is not set: start the tls service with `deploy/local/up tls` and `eval \"$(deploy/local/env)\"`")
        })
    };
    Tls {
        url: var("ATHENS_TEST_TLS_URL"),
        ca: var("ATHENS_TEST_TLS_CA"),
        username: var("ATHENS_TEST_TLS_USERNAME"),
        password: var("ATHENS_TEST_TLS_PASSWORD"),
        api_key: var("ATHENS_TEST_TLS_API_KEY"),
    }
}
