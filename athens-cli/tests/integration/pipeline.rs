//! Every kind of change on every table reaches every document it touches, through a running
//! `athens sync`, on both engines; and `verify` finds and repairs drift injected into the index.

use std::time::Duration;

use serde_json::{Value, json};

use athens_testkit::TestEngine;

use crate::support::{World, engines, signal};

const DRAIN: Duration = Duration::from_secs(30);

fn names(document: &Value, field: &str) -> Vec<String> {
    document[field]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `statements`, each in a transaction of its own, and waits until the sync applied them.
async fn apply(world: &World, statements: &[&str]) {
    for statement in statements {
        world.sql(statement).await.unwrap();
    }
    world.wait_drained(DRAIN).await.unwrap();
}

#[tokio::test]
async fn every_change_to_every_table_reaches_the_documents_it_touches() {
    for engine in engines().await {
        every_change_reaches_its_documents(&engine, "outbox").await;
    }
}

#[tokio::test]
async fn every_change_to_every_table_reaches_the_documents_it_touches_through_logical_decoding() {
    every_change_reaches_its_documents(&engines().await[0], "logical").await;
}

async fn every_change_reaches_its_documents(engine: &TestEngine, mode: &str) {
    {
        let world = World::in_mode("pipeline-crud", engine, mode).await.unwrap();
        world.ok(&["migrate"]).unwrap();
        world.ok(&["setup"]).unwrap();
        world
            .sql(
                "INSERT INTO users (id, name) VALUES (1, 'Ada'), (2, 'Bob');
                 INSERT INTO hashtags (id, name) VALUES (1, 'rust'), (2, 'search');
                 INSERT INTO projects (id, name, slug, description) VALUES
                   (1, 'One', 'one', 'first'), (2, 'Two', 'two', 'second'), (3, 'Three', 'three', 'third');
                 INSERT INTO user_projects (project_id, user_id) VALUES (1, 1), (2, 1), (3, 2);
                 INSERT INTO project_hashtags (project_id, hashtag_id) VALUES (1, 1), (1, 2), (2, 1), (3, 2);",
            )
            .await
            .unwrap();
        let mut sync = world.spawn(&["sync"]).unwrap();
        world.wait_drained(DRAIN).await.unwrap();
        let status = world.status().unwrap();
        if mode == "logical" {
            assert_eq!(status["capture_mode"], "logical", "{status:#}");
            let slot = &status["slot"];
            assert!(
                slot["name"]
                    .as_str()
                    .unwrap()
                    .starts_with("athens_athens_t_")
                    && slot["retained_wal_bytes"].is_u64()
                    && slot["lag_bytes"].is_u64()
                    && slot["wal_status"] != "lost",
                "status shows the slot: {status:#}"
            );
        } else {
            assert!(status["slot"].is_null(), "{status:#}");
        }
        let one = world.document(1).await.unwrap().unwrap();
        assert_eq!(names(&one, "hashtags"), ["rust", "search"], "{engine}");
        assert_eq!(names(&one, "creators"), ["Ada"], "{engine}");

        let statements = [
            // users: UPDATE reaches every project of the user.
            "UPDATE users SET name = 'Ada Lovelace' WHERE id = 1",
            // hashtags: UPDATE reaches every project using it.
            "UPDATE hashtags SET name = 'Search' WHERE id = 2",
            // projects: UPDATE.
            "UPDATE projects SET description = 'changed' WHERE id = 3",
            // user_projects: INSERT and DELETE.
            "INSERT INTO user_projects (project_id, user_id) VALUES (3, 1); DELETE FROM user_projects WHERE project_id = 2 AND user_id = 1;",
            // project_hashtags: DELETE.
            "DELETE FROM project_hashtags WHERE project_id = 2 AND hashtag_id = 1",
        ];
        apply(&world, &statements).await;
        let one = world.document(1).await.unwrap().unwrap();
        assert_eq!(names(&one, "creators"), ["Ada Lovelace"], "{engine}");
        assert_eq!(names(&one, "hashtags"), ["rust", "Search"], "{engine}");
        let two = world.document(2).await.unwrap().unwrap();
        assert!(
            names(&two, "creators").is_empty() && names(&two, "hashtags").is_empty(),
            "{two}"
        );
        let three = world.document(3).await.unwrap().unwrap();
        assert_eq!(three["description"], "changed");
        assert_eq!(names(&three, "creators"), ["Ada Lovelace", "Bob"]);

        let statements = [
            // hashtags: DELETE removes it from every project; users: DELETE removes the creator.
            "DELETE FROM hashtags WHERE id = 2",
            "DELETE FROM users WHERE id = 2",
            // projects: DELETE removes the document; INSERT adds one.
            "DELETE FROM projects WHERE id = 2",
            "INSERT INTO projects (id, name, slug, description) VALUES (4, 'Four', 'four', 'new')",
        ];
        apply(&world, &statements).await;
        let one = world.document(1).await.unwrap().unwrap();
        assert_eq!(names(&one, "hashtags"), ["rust"]);
        let three = world.document(3).await.unwrap().unwrap();
        assert_eq!(names(&three, "creators"), ["Ada Lovelace"]);
        assert!(
            world.document(2).await.unwrap().is_none(),
            "deleted project's document is gone"
        );
        assert!(world.document(4).await.unwrap().is_some());

        // TRUNCATE of a link table, then of projects.
        world.sql("TRUNCATE project_hashtags").await.unwrap();
        world.wait_drained(DRAIN).await.unwrap();
        assert!(names(&world.document(1).await.unwrap().unwrap(), "hashtags").is_empty());
        world.sql("TRUNCATE projects CASCADE").await.unwrap();
        world.wait_drained(DRAIN).await.unwrap();
        assert_eq!(world.status().unwrap()["documents_in_index"], 0);
        world.verify_clean().unwrap();

        assert_eq!(signal(&mut sync, "TERM").unwrap(), Some(0));
        world.cleanup().await;
    }
}

#[tokio::test]
async fn verify_finds_and_repairs_drift_injected_into_the_index() {
    for engine in engines().await {
        let world = World::new("pipeline-verify", &engine).await.unwrap();
        world.prepare(120).unwrap();
        world.ok(&["reindex"]).unwrap();
        world.verify_clean().unwrap();

        let client = reqwest::Client::new();
        let mut tampered = world.document(5).await.unwrap().unwrap();
        tampered["name"] = json!("tampered");
        client
            .put(format!(
                "{}/{}/_doc/5?refresh=true",
                engine.url, world.alias
            ))
            .json(&tampered)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
        client
            .delete(format!(
                "{}/{}/_doc/7?refresh=true",
                engine.url, world.alias
            ))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();

        let found = world.run(&["verify", "--json"]).unwrap();
        assert_eq!(
            found.status.code(),
            Some(1),
            "{engine}: drift makes verify fail"
        );
        let report: Value = serde_json::from_slice(&found.stdout).unwrap();
        assert_eq!(report["stale"], 1, "{report:#}");
        assert_eq!(report["missing"], 1, "{report:#}");
        assert_eq!(report["samples"], json!([5, 7]));

        let repaired: Value =
            serde_json::from_str(&world.ok(&["verify", "--repair", "--json"]).unwrap()).unwrap();
        assert_eq!(repaired["repaired"], 2, "{repaired:#}");
        world.verify_clean().unwrap();
        world.cleanup().await;
    }
}
