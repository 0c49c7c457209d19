//! Every subcommand's happy path, and its error path for bad configuration and unreachable services.

use std::time::Duration;

use crate::support::{World, engines, signal};

#[tokio::test]
async fn every_subcommand_succeeds_on_both_engines() {
    for engine in engines().await {
        let world = World::new("cli-happy", &engine).await.unwrap();
        assert!(
            world
                .ok(&["migrate"])
                .unwrap()
                .contains("schema up to date")
        );
        world.ok(&["migrate"]).unwrap();
        let seeded = world.ok(&["seed", "--projects", "300"]).unwrap();
        assert!(seeded.contains("seeded 300 projects"), "{seeded}");
        let again = world.run(&["seed", "--projects", "10"]).unwrap();
        assert_eq!(again.status.code(), Some(1), "seeding twice needs --force");
        assert!(
            world
                .ok(&["seed", "--if-empty"])
                .unwrap()
                .contains("not seeding")
        );
        world.ok(&["setup"]).unwrap();
        world.ok(&["setup"]).unwrap();

        let reindexed = world.ok(&["reindex"]).unwrap();
        assert!(
            reindexed.contains("reindexed 300 documents"),
            "{engine}: {reindexed}"
        );
        let status = world.status().unwrap();
        assert_eq!(status["projects_in_database"], 300);
        assert_eq!(status["documents_in_index"], 300);
        assert_eq!(status["pending_changes"], 0);
        let text = world.ok(&["status"]).unwrap();
        assert!(text.contains("pending changes"), "{text}");
        assert_eq!(world.verify_clean().unwrap()["checked"], 300);

        world
            .sql("UPDATE projects SET name = 'Renamed' WHERE id = 1")
            .await
            .unwrap();
        let mut sync = world.spawn(&["sync"]).unwrap();
        world.wait_drained(Duration::from_secs(30)).await.unwrap();
        // A repair writes through the single writer (issue 12, finding 2): beside a running sync
        // it waits for the lease, then gives up without writing.
        let repair = world
            .run(&["verify", "--repair", "--lease-wait-secs", "1"])
            .unwrap();
        assert_eq!(repair.status.code(), Some(1), "{engine}");
        assert!(
            String::from_utf8_lossy(&repair.stderr).contains("holds the writer lease"),
            "{engine}: {}",
            String::from_utf8_lossy(&repair.stderr)
        );
        assert_eq!(
            world.document(1).await.unwrap().unwrap()["name"],
            "Renamed",
            "{engine}"
        );
        assert_eq!(
            signal(&mut sync, "TERM").unwrap(),
            Some(0),
            "SIGTERM exits 0"
        );

        // The writers that ran (reindex, sync) left their claim indexes; teardown removes them.
        let claims = || async {
            let url = format!(
                "{}/_cat/indices/{}-claim-*?h=index",
                engine.url, world.alias
            );
            reqwest::get(url).await.unwrap().text().await.unwrap()
        };
        assert!(
            !claims().await.trim().is_empty(),
            "{engine}: a writer claimed the index"
        );
        world.ok(&["teardown"]).unwrap();
        assert_eq!(
            claims().await.trim(),
            "",
            "{engine}: teardown removes the claim indexes"
        );
        world.ok(&["teardown"]).unwrap();
        world.cleanup().await;
    }
}

#[tokio::test]
async fn help_documents_every_subcommand() {
    let engine = &engines().await[0];
    let world = World::new("cli-help", engine).await.unwrap();
    let help = world.ok(&["--help"]).unwrap();
    for command in [
        "migrate", "seed", "setup", "teardown", "reindex", "sync", "serve", "run", "status",
        "verify",
    ] {
        assert!(help.contains(command), "--help lists {command}");
        let own = world.ok(&[command, "--help"]).unwrap();
        assert!(own.contains("Usage: athens"), "{command} --help");
    }
}

/// Asserts that `output` is a failure with exit `code` whose stderr says `message`; the stderr.
fn fails_with(output: std::process::Output, code: i32, message: &str) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected {message:?} in: {stderr}"
    );
    stderr
}

#[tokio::test]
async fn bad_configuration_and_unreachable_services_fail_with_one_clear_message() {
    let engine = &engines().await[0];
    let world = World::new("cli-errors", engine).await.unwrap();
    let with_env = |command: &str, name: &str, value: &str| {
        world.athens(&[command]).env(name, value).output().unwrap()
    };

    fails_with(
        world
            .run(&["--config", "/nonexistent/athens.toml", "status"])
            .unwrap(),
        2,
        "configuration file /nonexistent/athens.toml does not exist",
    );
    fails_with(
        with_env("status", "ATHENS_SYNC_BATCH_SIZE", "0"),
        2,
        "sync.batch_size must be at least 1",
    );
    fails_with(
        with_env("status", "ATHENS_SYNC_BATCH_SIZE", "many"),
        2,
        "invalid configuration",
    );
    fails_with(
        with_env(
            "migrate",
            "ATHENS_DATABASE_URL",
            "postgres://athens:athens@127.0.0.1:1/athens",
        ),
        1,
        "cannot connect to PostgreSQL",
    );
    let wrong_password = world
        .database
        .url
        .replacen("athens:athens@", "athens:wrong@", 1);
    let stderr = fails_with(
        with_env("migrate", "ATHENS_DATABASE_URL", &wrong_password),
        1,
        "cannot connect to PostgreSQL",
    );
    assert!(!stderr.contains("wrong"), "no secret in messages");
    assert!(
        stderr.contains("password authentication failed for user"),
        "the server's own words end the message, as its root cause: {stderr}"
    );

    fails_with(world.run(&["seed"]).unwrap(), 1, "athens migrate");
    world.ok(&["migrate"]).unwrap();
    fails_with(world.run(&["sync"]).unwrap(), 1, "athens setup");
    world.ok(&["setup"]).unwrap();
    fails_with(
        with_env("status", "ATHENS_ENGINE_URL", "http://127.0.0.1:1"),
        1,
        "cannot connect to the search engine",
    );
}
