//! Least privilege: the tables belong to an owner role that installs capture; Athens runs as a
//! runtime role holding only the grants of docs/operations.md (read from that page, so the docs
//! and the test cannot part). As that role `athens` reindexes, syncs, reports, verifies and serves;
//! it can write none of the five tables nor touch the triggers; and no secret (its database
//! password, the engine's password or API key) appears in its logs, errors, API answers or
//! `/metrics`.

use std::fs::OpenOptions;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

use crate::support::{Running, World, engines, free_port, tls};

const DRAIN: Duration = Duration::from_secs(60);

/// The SQL blocks of the "Least privilege" section of docs/operations.md, in order.
fn documented_sql() -> Vec<String> {
    let doc = include_str!("../../../docs/operations.md");
    let start = doc
        .find("## Least privilege")
        .expect("a least-privilege section");
    let section = &doc[start..];
    let section = match section[3..].find("\n## ") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    section
        .split("```sql\n")
        .skip(1)
        .map(|block| block[..block.find("```").expect("the block ends")].to_string())
        .collect()
}

/// A role of this test's own (roles are cluster-wide: names must not collide between runs).
struct Role {
    name: String,
    password: String,
}

impl Role {
    fn new(world: &World, kind: &str) -> Role {
        let suffix = &world.database.name[world.database.name.len() - 8..];
        Role {
            name: format!("{kind}_{suffix}"),
            password: format!("{kind}-secret-{suffix}"),
        }
    }

    /// The test database's URL, logged in as this role.
    fn url(&self, world: &World) -> String {
        let mut url = url::Url::parse(&world.database.url).unwrap();
        url.set_username(&self.name).unwrap();
        url.set_password(Some(&self.password)).unwrap();
        url.to_string()
    }
}

/// The documented statements with this test's names.
fn adapted(sql: &str, world: &World, owner: &Role, runtime: &Role) -> String {
    sql.replace("athens_runtime", &runtime.name)
        .replace("app_owner", &owner.name)
        .replace(
            "DATABASE app ",
            &format!("DATABASE \"{}\" ", world.database.name),
        )
        .replace("'change-me'", &format!("'{}'", runtime.password))
}

fn athens_as(world: &World, role: &Role, args: &[&str]) -> Command {
    let mut command = world.athens(args);
    command.env("ATHENS_DATABASE_URL", role.url(world));
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `command` to success; returns its stdout.
fn ok(command: &mut Command) -> String {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} exited {:?}: {}",
        output.status.code(),
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `migrate`, `seed --projects <projects>` and `setup` as `role`, each to success.
fn migrate_seed_setup(world: &World, role: &Role, projects: &str) {
    ok(&mut athens_as(world, role, &["migrate"]));
    ok(&mut athens_as(
        world,
        role,
        &["seed", "--projects", projects],
    ));
    ok(&mut athens_as(world, role, &["setup"]));
}

async fn refused(sql: &DatabaseConnection, statement: &str) {
    let error = sql
        .execute_unprepared(statement)
        .await
        .expect_err(statement)
        .to_string();
    assert!(
        error.contains("permission denied") || error.contains("must be owner"),
        "{statement}: {error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_role_with_the_documented_grants_syncs_serves_and_writes_nothing() {
    let engine = &engines().await[0];
    let world = World::new("privileges", engine).await.unwrap();
    let owner = Role::new(&world, "owner");
    let runtime = Role::new(&world, "runtime");
    let blocks = documented_sql();
    assert_eq!(blocks.len(), 2, "an administrator's block and the owner's");

    // The owner exists beforehand in real life (it owns the tables); here the test makes it, with
    // the right to create tables in schema public for `athens migrate`.
    world
        .sql(&format!(
            "CREATE ROLE {} LOGIN PASSWORD '{}'; GRANT CREATE ON SCHEMA public TO {};",
            owner.name, owner.password, owner.name
        ))
        .await
        .unwrap();
    world
        .sql(&adapted(&blocks[0], &world, &owner, &runtime))
        .await
        .unwrap();
    migrate_seed_setup(&world, &owner, "200");
    let as_owner = Database::connect(owner.url(&world)).await.unwrap();
    as_owner
        .execute_unprepared(&adapted(&blocks[1], &world, &owner, &runtime))
        .await
        .unwrap();

    // Everything the runtime role runs works.
    let reindexed = ok(&mut athens_as(&world, &runtime, &["reindex"]));
    assert!(reindexed.contains("reindexed 200 documents"), "{reindexed}");
    let log = std::env::temp_dir().join(format!("{}.log", world.alias));
    let mut sync = Running(Some(
        athens_as(&world, &runtime, &["sync"])
            .env("ATHENS_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log)
                    .unwrap(),
            ))
            .spawn()
            .unwrap(),
    ));
    as_owner
        .execute_unprepared(
            "UPDATE projects SET description = 'runtime role at work' WHERE id = 1;
             INSERT INTO users (name) VALUES ('Least Privilege');
             INSERT INTO user_projects (project_id, user_id) SELECT 2, max(id) FROM users;
             DELETE FROM hashtags WHERE id = 3;",
        )
        .await
        .unwrap();
    // An upgrade (`athens setup` again) keeps the grants.
    ok(&mut athens_as(&world, &owner, &["setup"]));
    as_owner
        .execute_unprepared("UPDATE projects SET name = 'After upgrade' WHERE id = 4")
        .await
        .unwrap();
    let started = Instant::now();
    loop {
        let status: serde_json::Value =
            serde_json::from_str(&ok(&mut athens_as(&world, &runtime, &["status", "--json"])))
                .unwrap();
        if crate::support::drained(&status) {
            assert_eq!(status["dead_letters"], 0);
            break;
        }
        assert!(started.elapsed() < DRAIN, "not drained: {status:#}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let report: serde_json::Value =
        serde_json::from_str(&ok(&mut athens_as(&world, &runtime, &["verify", "--json"]))).unwrap();
    assert_eq!(report["drift"], 0, "{report:#}");
    let document = world.document(1).await.unwrap().unwrap();
    assert_eq!(document["description"], "runtime role at work");

    // Nothing the runtime role must not do works.
    let as_runtime = Database::connect(runtime.url(&world)).await.unwrap();
    for statement in [
        "INSERT INTO users (name) VALUES ('intruder')",
        "UPDATE projects SET name = 'defaced' WHERE id = 1",
        "DELETE FROM hashtags WHERE id = 1",
        "INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1)",
        "DELETE FROM user_projects",
        "TRUNCATE projects CASCADE",
        "DROP TRIGGER athens_capture_insert ON projects",
        "ALTER TABLE projects DISABLE TRIGGER ALL",
        "CREATE TABLE public.intruder (id int)",
        "CREATE TABLE athens.intruder (id int)",
        "INSERT INTO athens.outbox (source_table, op, project_id) VALUES ('projects', 'U', 1)",
        "DELETE FROM athens.dead_letters",
        "DROP SCHEMA athens CASCADE",
        "ALTER SEQUENCE athens.version RESTART WITH 1",
    ] {
        refused(&as_runtime, statement).await;
    }
    for command in [["setup"], ["teardown"], ["migrate"]] {
        let output = athens_as(&world, &runtime, &command).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{command:?}: {}",
            text(&output)
        );
        assert!(
            text(&output).contains("permission denied") || text(&output).contains("must be owner"),
            "{command:?}: {}",
            text(&output)
        );
        assert!(!text(&output).contains(&runtime.password), "{command:?}");
    }
    as_runtime.close().await.unwrap();

    // No secret anywhere: the API (served over the TLS engine with a password) and its
    // `/metrics`, the logs, and a refused login.
    let tls = tls();
    let port = free_port();
    let serve_log = std::env::temp_dir().join(format!("{}-serve.log", world.alias));
    let mut serve = Running(Some(
        athens_as(&world, &runtime, &["serve"])
            .env("ATHENS_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("ATHENS_ENGINE_URL", &tls.url)
            .env("ATHENS_ENGINE_CA_CERT", &tls.ca)
            .env("ATHENS_ENGINE_USERNAME", &tls.username)
            .env("ATHENS_ENGINE_PASSWORD", &tls.password)
            .env("ATHENS_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(Stdio::from(std::fs::File::create(&serve_log).unwrap()))
            .spawn()
            .unwrap(),
    ));
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .map_or(true, |answer| !answer.status().is_success())
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "serve never got ready: {}",
            std::fs::read_to_string(&serve_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut bodies = String::new();
    for path in [
        "/v1/projects/search?q=runtime%20role",
        "/v1/users/1/projects",
        "/v1/users/99999999/projects",
        "/v1/projects/search?size=1000",
        "/readyz",
        "/healthz",
        "/metrics",
    ] {
        let answer = http.get(format!("{base}{path}")).send().await.unwrap();
        bodies.push_str(&format!("{:?}", answer.headers()));
        bodies.push_str(&answer.text().await.unwrap());
    }
    assert!(
        bodies.contains("athens_http_requests_total"),
        "metrics rendered"
    );
    assert!(bodies.contains("runtime role at work"), "searches served");
    assert_eq!(serve.stop(), Some(0));
    assert_eq!(sync.stop(), Some(0));
    let wrong = athens_as(&world, &runtime, &["status"])
        .env(
            "ATHENS_DATABASE_URL",
            Role {
                name: runtime.name.clone(),
                password: "not-the-runtime-password".into(),
            }
            .url(&world),
        )
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong).contains("password in database.url"),
        "{}",
        text(&wrong)
    );
    let logs = format!(
        "{}{}{}",
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(&serve_log).unwrap(),
        text(&wrong)
    );
    assert!(logs.contains("DEBUG"), "debug logs were on");
    for secret in [
        runtime.password.as_str(),
        owner.password.as_str(),
        "not-the-runtime-password",
        tls.password.as_str(),
        tls.api_key.as_str(),
    ] {
        assert!(!bodies.contains(secret), "{secret} leaked into an answer");
        assert!(!logs.contains(secret), "{secret} leaked into a log");
    }

    as_owner.close().await.unwrap();
    world.cleanup().await;
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_file(&serve_log);
    drop_roles(&world, &[&owner, &runtime]).await;
}

/// Drops the test's database (its objects belong to the roles) and then the roles.
async fn drop_roles(world: &World, roles: &[&Role]) {
    let admin = Database::connect(std::env::var(athens_testkit::DATABASE_URL_VAR).unwrap())
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "DROP DATABASE \"{}\" WITH (FORCE)",
            world.database.name
        ))
        .await
        .unwrap();
    for role in roles {
        admin
            .execute_unprepared(&format!("DROP ROLE {}", role.name))
            .await
            .unwrap();
    }
}

#[test]
fn grant_runtime_grants_exactly_the_documented_statements() {
    let documented: Vec<String> = documented_sql()[1]
        .lines()
        .map(|line| line.trim().trim_end_matches(';').to_owned())
        .filter(|line| !line.is_empty())
        .collect();
    assert_eq!(documented, athens_pg::runtime_grants("athens_runtime"));
}

/// `athens grant-runtime`, as deploy/aws's admin task runs it: the owner (who may create roles and
/// owns the database, like RDS's master user) makes the runtime role in one step; the role logs in
/// with the password (so the SCRAM verifier Athens computed is right), reindexes and reports, and
/// cannot write the tables. Running it again (a rotated password) keeps it working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grant_runtime_makes_a_role_that_logs_in_and_writes_nothing() {
    let engine = &engines().await[0];
    let world = World::new("grant-runtime", engine).await.unwrap();
    let owner = Role::new(&world, "gowner");
    let mut runtime = Role::new(&world, "gruntime");
    world
        .sql(&format!(
            "CREATE ROLE {0} LOGIN CREATEROLE PASSWORD '{1}'; GRANT CREATE ON SCHEMA public TO {0};
             GRANT {0} TO CURRENT_USER; ALTER DATABASE \"{2}\" OWNER TO {0};",
            owner.name, owner.password, world.database.name
        ))
        .await
        .unwrap();
    migrate_seed_setup(&world, &owner, "50");
    let missing = athens_as(&world, &owner, &["grant-runtime", "--role", &runtime.name])
        .env_remove("ATHENS_RUNTIME_PASSWORD")
        .output()
        .unwrap();
    assert!(!missing.status.success(), "{}", text(&missing));
    assert!(
        text(&missing).contains("ATHENS_RUNTIME_PASSWORD"),
        "{}",
        text(&missing)
    );

    for round in ["created", "rotated"] {
        if round == "rotated" {
            runtime.password = format!("{}-rotated", runtime.password);
        }
        let granted = ok(
            athens_as(&world, &owner, &["grant-runtime", "--role", &runtime.name])
                .env("ATHENS_RUNTIME_PASSWORD", &runtime.password),
        );
        assert!(!granted.contains(&runtime.password), "{granted}");
        let reindexed = ok(&mut athens_as(&world, &runtime, &["reindex"]));
        assert!(
            reindexed.contains("reindexed 50 documents"),
            "{round}: {reindexed}"
        );
    }
    let as_runtime = Database::connect(runtime.url(&world)).await.unwrap();
    for statement in [
        "INSERT INTO users (name) VALUES ('intruder')",
        "DELETE FROM athens.dead_letters",
        "CREATE TABLE public.intruder (id int)",
    ] {
        refused(&as_runtime, statement).await;
    }
    as_runtime.close().await.unwrap();
    drop_roles(&world, &[&owner, &runtime]).await;
}
