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

        world.ok(&["teardown"]).unwrap();
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

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn bad_configuration_and_unreachable_services_fail_with_one_clear_message() {
    let engine = &engines().await[0];
    let world = World::new("cli-errors", engine).await.unwrap();

    let output = world
        .run(&["--config", "/nonexistent/athens.toml", "status"])
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("configuration file /nonexistent/athens.toml does not exist")
    );

    let output = world
        .athens(&["status"])
        .env("ATHENS_SYNC_BATCH_SIZE", "0")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr_of(&output).contains("sync.batch_size must be at least 1"));

    let output = world
        .athens(&["status"])
        .env("ATHENS_SYNC_BATCH_SIZE", "many")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr_of(&output).contains("invalid configuration"),
        "{}",
        stderr_of(&output)
    );

    let output = world
        .athens(&["migrate"])
        .env(
            "ATHENS_DATABASE_URL",
            "postgres://athens:athens@127.0.0.1:1/athens",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot connect to PostgreSQL"),
        "{}",
        stderr_of(&output)
    );

    let wrong_password = world
        .database
        .url
        .replacen("athens:athens@", "athens:wrong@", 1);
    let output = world
        .athens(&["migrate"])
        .env("ATHENS_DATABASE_URL", wrong_password)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot connect to PostgreSQL"),
        "{}",
        stderr_of(&output)
    );
    assert!(
        !stderr_of(&output).contains("wrong"),
        "no secret in messages"
    );

    let output = world.run(&["seed"]).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("athens migrate"),
        "{}",
        stderr_of(&output)
    );

    world.ok(&["migrate"]).unwrap();
    let output = world.run(&["sync"]).unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("athens setup"),
        "{}",
        stderr_of(&output)
    );

    world.ok(&["setup"]).unwrap();
    let output = world
        .athens(&["status"])
        .env("ATHENS_ENGINE_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr_of(&output).contains("cannot connect to the search engine"),
        "{}",
        stderr_of(&output)
    );
}
