//! The three searches, their combination and paging, on both engines.

use std::collections::BTreeSet;

use poem::http::StatusCode;
use serde_json::Value;

use crate::corpus::{Answer, BULK, Client, Database, each_engine, get};

/// Runs `check` against the application over each engine, with the corpus indexed.
async fn on_each_engine<F>(test: &str, check: F) -> anyhow::Result<()>
where
    F: AsyncFn(&Client, &Database, &str),
{
    let database = Database::create(test).await?;
    each_engine(&database, test, check).await
}

fn names(values: &Value, key: &str) -> Vec<String> {
    values
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|value| value[key].as_str().map(str::to_string))
        .collect()
}

fn set(slugs: &[&str]) -> BTreeSet<String> {
    slugs.iter().map(|slug| slug.to_string()).collect()
}

fn slug_set(answer: &Answer) -> BTreeSet<String> {
    answer.slugs().into_iter().collect()
}

#[tokio::test]
async fn projects_by_user_id_come_with_hashtags_and_creators() -> anyhow::Result<()> {
    on_each_engine("http-by-user-id", async |client, db, engine| {
        let john = db.user("john");
        let answer = get(client, &format!("/v1/users/{john}/projects")).await;
        assert_eq!(answer.status, StatusCode::OK, "{engine}: {}", answer.body);
        assert_eq!(answer.body["total"], 2, "{engine}");
        assert_eq!(
            slug_set(&answer),
            set(&["elasticsearch-sync", "fuzzy-finder"]),
            "{engine}"
        );

        let sync = answer.item("elasticsearch-sync").unwrap();
        let project = &sync["project"];
        assert_eq!(project["name"], "Athens", "{engine}");
        assert!(project["id"].as_i64().unwrap() > 0, "{engine}");
        assert!(
            project["description"]
                .as_str()
                .unwrap()
                .starts_with("Keeps Elasticsearch")
        );
        assert!(
            project["created_at"].as_str().unwrap().contains('T'),
            "{engine}"
        );
        assert_eq!(
            names(&project["hashtags"], "name"),
            ["Rust", "search"],
            "{engine}"
        );
        assert!(
            project["hashtags"][0]["id"].as_i64().unwrap() > 0,
            "{engine}"
        );
        assert_eq!(
            names(&project["creators"], "name"),
            ["John Smith"],
            "{engine}"
        );
        assert_eq!(project["creators"][0]["id"], john.0, "{engine}");
        assert!(project["creators"][0]["created_at"].is_string(), "{engine}");

        let finder = &answer.item("fuzzy-finder").unwrap()["project"];
        assert_eq!(
            names(&finder["creators"], "name"),
            ["John Smith", "Jane Doe"],
            "{engine}: every creator, by id"
        );

        // A user who created nothing exists: an empty page, not a 404.
        let larry = db.user("larry");
        let answer = get(client, &format!("/v1/users/{larry}/projects")).await;
        assert_eq!(answer.status, StatusCode::OK, "{engine}");
        assert_eq!(answer.body["total"], 0, "{engine}");
        assert_eq!(answer.body["items"], Value::Array(Vec::new()), "{engine}");
        assert!(answer.body.get("next_cursor").is_none(), "{engine}");
    })
    .await
}

#[tokio::test]
async fn projects_by_user_name_match_fuzzily() -> anyhow::Result<()> {
    on_each_engine("http-by-user-name", async |client, _db, engine| {
        let answer = get(client, "/v1/projects/search?user_name=jon%20smith").await;
        assert_eq!(answer.status, StatusCode::OK, "{engine}: {}", answer.body);
        assert_eq!(
            slug_set(&answer),
            set(&["elasticsearch-sync", "fuzzy-finder"]),
            "{engine}"
        );

        let answer = get(
            client,
            "/v1/projects/search?user_name=ada%20lovelace&size=100",
        )
        .await;
        assert_eq!(answer.body["total"], (BULK + 1) as u64, "{engine}");
        assert!(
            answer.slugs().contains(&"search-ui".to_string()),
            "{engine}"
        );
    })
    .await
}

#[tokio::test]
async fn projects_by_hashtags_ignore_case_and_hash() -> anyhow::Result<()> {
    on_each_engine("http-by-hashtags", async |client, _db, engine| {
        let all = get(
            client,
            "/v1/hashtags/projects?hashtags=RUST,%23Search&mode=all",
        )
        .await;
        assert_eq!(all.status, StatusCode::OK, "{engine}: {}", all.body);
        assert_eq!(all.slugs(), ["elasticsearch-sync"], "{engine}");
        let sync = all.item("elasticsearch-sync").unwrap();
        assert_eq!(names(&sync["project"]["creators"], "name"), ["John Smith"]);

        let any = get(client, "/v1/hashtags/projects?hashtags=rust,search").await;
        let expected = set(&["elasticsearch-sync", "fuzzy-finder", "search-ui"]);
        assert_eq!(slug_set(&any), expected, "{engine}");
        assert_eq!(any.body["total"], 3, "{engine}");

        let repeated = get(
            client,
            "/v1/hashtags/projects?hashtags=rust&hashtags=search&mode=any",
        )
        .await;
        assert_eq!(
            slug_set(&repeated),
            expected,
            "{engine}: repeated = comma-separated"
        );

        let general = get(client, "/v1/projects/search?hashtags=%23ml").await;
        assert_eq!(general.slugs(), ["ml-pipeline"], "{engine}");

        let everything = get(client, "/v1/projects/search").await;
        assert_eq!(
            everything.status,
            StatusCode::OK,
            "{engine}: {}",
            everything.body
        );
        assert_eq!(
            everything.body["total"],
            (BULK + 4) as u64,
            "{engine}: no filter, every project"
        );
        assert_eq!(
            everything.slugs().len(),
            20,
            "{engine}: the default page size"
        );

        let unused = get(client, "/v1/hashtags/projects?hashtags=cobol").await;
        assert_eq!(unused.status, StatusCode::OK, "{engine}");
        assert_eq!(unused.body["total"], 0, "{engine}");
    })
    .await
}

#[tokio::test]
async fn full_text_search_is_fuzzy_ranked_and_highlighted() -> anyhow::Result<()> {
    on_each_engine("http-full-text", async |client, _db, engine| {
        let typo = get(client, "/v1/projects/search?q=elasticsaerch").await;
        assert_eq!(typo.status, StatusCode::OK, "{engine}: {}", typo.body);
        assert_eq!(
            typo.slugs().first().map(String::as_str),
            Some("elasticsearch-sync"),
            "{engine}"
        );
        let first = &typo.body["items"][0];
        assert!(first["score"].as_f64().unwrap() > 0.0, "{engine}: {first}");
        let highlighted = first["highlights"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|fragments| fragments.as_array().unwrap())
            .any(|fragment| fragment.as_str().unwrap().contains("<em>"));
        assert!(highlighted, "{engine}: {first}");

        let description = get(client, "/v1/projects/search?q=termnal").await;
        assert_eq!(
            description.slugs().first().map(String::as_str),
            Some("fuzzy-finder"),
            "{engine}"
        );

        let words = get(client, "/v1/projects/search?q=fuzy%20fnder").await;
        assert_eq!(
            words.slugs().first().map(String::as_str),
            Some("fuzzy-finder"),
            "{engine}"
        );

        let nothing = get(client, "/v1/projects/search?q=zzzqqqxxx").await;
        assert_eq!(nothing.status, StatusCode::OK, "{engine}");
        assert_eq!(nothing.body["total"], 0, "{engine}");
    })
    .await
}

#[tokio::test]
async fn filters_combine() -> anyhow::Result<()> {
    on_each_engine("http-combined", async |client, db, engine| {
        let answer = get(client, "/v1/projects/search?q=fuzzy&hashtags=search").await;
        assert_eq!(
            answer.slugs(),
            ["elasticsearch-sync"],
            "{engine}: {}",
            answer.body
        );

        let answer = get(client, "/v1/projects/search?q=fuzzy&user_name=jane%20doe").await;
        assert_eq!(
            answer.slugs(),
            ["fuzzy-finder"],
            "{engine}: {}",
            answer.body
        );

        let john = db.user("john");
        let uri = format!("/v1/projects/search?user_id={john}&hashtags=search");
        let answer = get(client, &uri).await;
        assert_eq!(
            answer.slugs(),
            ["elasticsearch-sync"],
            "{engine}: {}",
            answer.body
        );
    })
    .await
}

/// Follows `next_cursor` from `first` to the end; returns every slug seen, in order.
async fn every_page(client: &Client, first: &str, engine: &str) -> Vec<String> {
    let mut slugs = Vec::new();
    let mut uri = first.to_string();
    for _ in 0..100 {
        let page = get(client, &uri).await;
        assert_eq!(
            page.status,
            StatusCode::OK,
            "{engine}: {uri}: {}",
            page.body
        );
        slugs.extend(page.slugs());
        match page.body["next_cursor"].as_str() {
            Some(cursor) => {
                assert_eq!(
                    page.slugs().len(),
                    5,
                    "{engine}: only the last page is short"
                );
                uri = format!("{first}&cursor={cursor}");
            }
            None => return slugs,
        }
    }
    panic!("{engine}: paging does not end");
}

#[tokio::test]
async fn paging_returns_every_project_exactly_once() -> anyhow::Result<()> {
    on_each_engine("http-paging", async |client, db, engine| {
        let expected: BTreeSet<String> = (1..=BULK).map(|n| format!("bulk-{n:02}")).collect();
        let ada = db.user("ada");
        for first in [
            "/v1/hashtags/projects?hashtags=bulk&size=5".to_string(),
            "/v1/projects/search?q=filler%20project&size=5".to_string(),
            format!("/v1/users/{ada}/projects?size=5"),
        ] {
            let slugs = every_page(client, &first, engine).await;
            let unique: BTreeSet<String> = slugs.iter().cloned().collect();
            assert_eq!(
                unique.len(),
                slugs.len(),
                "{engine}: {first}: a project came twice"
            );
            let bulk: BTreeSet<String> = unique
                .into_iter()
                .filter(|s| s.starts_with("bulk-"))
                .collect();
            assert_eq!(bulk, expected, "{engine}: {first}: a project is missing");
        }

        let first = get(client, "/v1/hashtags/projects?hashtags=bulk&size=5").await;
        assert_eq!(first.body["total"], BULK as u64, "{engine}");
    })
    .await
}

#[tokio::test]
async fn a_cursor_that_is_not_ours_is_a_400_naming_cursor() -> anyhow::Result<()> {
    on_each_engine("http-bad-cursor", async |client, _db, engine| {
        for cursor in ["not-a-cursor", "eyJub3QiOiJvdXJzIn0", "%E2%9C%93"] {
            let answer = get(
                client,
                &format!("/v1/projects/search?q=fuzzy&cursor={cursor}"),
            )
            .await;
            assert_eq!(
                answer.status,
                StatusCode::BAD_REQUEST,
                "{engine}: {}",
                answer.body
            );
            assert_eq!(
                answer.body["invalid_params"][0]["name"], "cursor",
                "{engine}"
            );
        }
    })
    .await
}
