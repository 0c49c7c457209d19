//! Facet counts, sort orders, creation-date filters, "did you mean" and as-you-type suggestions, on
//! both engines.

#![allow(clippy::unwrap_used)]

use poem::http::StatusCode;
use sea_orm::sqlx;
use serde_json::{Value, json};

use crate::corpus::{Answer, Client, Database, each_engine, get};

/// Creation dates given to the four named projects (the filler ones keep the time of the test).
const DATES: &[(&str, &str)] = &[
    ("elasticsearch-sync", "2020-01-01T00:00:00Z"),
    ("fuzzy-finder", "2021-01-01T00:00:00Z"),
    ("ml-pipeline", "2022-01-01T00:00:00Z"),
    ("search-ui", "2023-01-01T00:00:00Z"),
];

/// Runs `check` against the application over each engine, with the corpus (dated as [`DATES`])
/// indexed.
async fn on_each_engine<F>(test: &str, check: F) -> anyhow::Result<()>
where
    F: AsyncFn(&Client, &Database, &str),
{
    let database = Database::create(test).await?;
    for (slug, date) in DATES {
        sqlx::query("UPDATE projects SET created_at = $1::timestamptz WHERE slug = $2")
            .bind(date)
            .bind(slug)
            .execute(database.source().pool())
            .await?;
    }
    each_engine(&database, test, check).await
}

/// `GET uri`, asserting a 200.
async fn ok(client: &Client, uri: &str, engine: &str) -> Answer {
    let answer = get(client, uri).await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{engine} {uri}: {}",
        answer.body
    );
    answer
}

/// A facet's values as `[name or id, count]` pairs.
fn pairs(facet: &Value, key: &str) -> Vec<(Value, u64)> {
    facet
        .as_array()
        .unwrap_or_else(|| panic!("no facet list: {facet}"))
        .iter()
        .map(|value| (value[key].clone(), value["count"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn facets_count_every_matching_project() -> anyhow::Result<()> {
    on_each_engine("http-facets", async |client, db, engine| {
        let all = ok(
            client,
            "/v1/projects/search?facets=hashtags,creators&size=1",
            engine,
        )
        .await;
        assert_eq!(all.body["total"], 25, "{engine}");
        assert_eq!(
            pairs(&all.body["facets"]["hashtags"], "name"),
            [
                (json!("bulk"), 21),
                (json!("rust"), 2),
                (json!("search"), 2),
                (json!("ml"), 1),
                (json!("python"), 1),
            ],
            "{engine}: most frequent first, ties by name, names normalized"
        );
        let creators = &all.body["facets"]["creators"];
        let (john, jane, ada) = (db.user("john").0, db.user("jane").0, db.user("ada").0);
        assert_eq!(
            pairs(creators, "id"),
            [(json!(ada), 22), (json!(john), 2), (json!(jane), 2)],
            "{engine}"
        );
        assert_eq!(creators[0]["name"], "Ada Lovelace", "{engine}");
        assert_eq!(creators[1]["name"], "John Smith", "{engine}");
        assert_eq!(creators[2]["name"], "Jane Doe", "{engine}");

        let fuzzy = ok(
            client,
            "/v1/projects/search?q=fuzzy&facets=hashtags",
            engine,
        )
        .await;
        assert_eq!(fuzzy.body["total"], 2, "{engine}: {}", fuzzy.body);
        assert_eq!(
            pairs(&fuzzy.body["facets"]["hashtags"], "name"),
            [(json!("rust"), 2), (json!("search"), 1)],
            "{engine}: counted over the matching set only"
        );
        assert!(fuzzy.body["facets"].get("creators").is_none(), "{engine}");

        let clicked = ok(
            client,
            "/v1/projects/search?q=fuzzy&hashtags=search&facets=creators",
            engine,
        )
        .await;
        assert_eq!(clicked.slugs(), ["elasticsearch-sync"], "{engine}");
        assert_eq!(
            pairs(&clicked.body["facets"]["creators"], "id"),
            [(json!(john), 1)],
            "{engine}"
        );

        let plain = ok(client, "/v1/projects/search?q=fuzzy", engine).await;
        assert!(
            plain.body.get("facets").is_none(),
            "{engine}: not asked for"
        );
    })
    .await
}

#[tokio::test]
async fn sorts_by_creation_time_within_a_date_range() -> anyhow::Result<()> {
    on_each_engine("http-sort-dates", async |client, _, engine| {
        let before_2024 = "created_before=2024-01-01T00:00:00Z";
        let oldest = ok(client, &format!("/v1/projects/search?{before_2024}&sort=oldest"), engine).await;
        assert_eq!(
            oldest.slugs(),
            ["elasticsearch-sync", "fuzzy-finder", "ml-pipeline", "search-ui"],
            "{engine}"
        );
        let newest = ok(client, &format!("/v1/projects/search?{before_2024}&sort=newest"), engine).await;
        assert_eq!(
            newest.slugs(),
            ["search-ui", "ml-pipeline", "fuzzy-finder", "elasticsearch-sync"],
            "{engine}"
        );
        let window = ok(
            client,
            "/v1/projects/search?created_after=2021-01-01T00:00:00Z&created_before=2023-01-01T00:00:00Z&sort=oldest",
            engine,
        )
        .await;
        assert_eq!(
            window.slugs(),
            ["fuzzy-finder", "ml-pipeline"],
            "{engine}: after is inclusive, before exclusive"
        );
        let recent = ok(client, "/v1/projects/search?created_after=2024-01-01T00:00:00Z", engine).await;
        assert_eq!(recent.body["total"], 21, "{engine}: the filler projects only");
        // Before 1970 and not a whole second: Elasticsearch 7.10 cannot parse such epoch millis.
        let ancient = ok(
            client,
            "/v1/projects/search?created_before=1619-04-30T14%3A12%3A28.722303-15%3A37&created_after=0000-01-01T00%3A00%3A00%2B01%3A00",
            engine,
        )
        .await;
        assert_eq!(ancient.body["total"], 0, "{engine}");

        // A text query sorted by date: every match, oldest first, highlighted but not scored.
        let text = ok(client, "/v1/projects/search?q=fuzzy&sort=oldest", engine).await;
        assert_eq!(text.slugs(), ["elasticsearch-sync", "fuzzy-finder"], "{engine}");
        let first = &text.body["items"][0];
        assert!(first.get("score").is_none(), "{engine}: {first}");
        assert!(!first["highlights"].as_object().unwrap().is_empty(), "{engine}");

        // Paging keeps the order; a cursor only resumes the order it was made for.
        let page = ok(client, &format!("/v1/projects/search?{before_2024}&sort=oldest&size=3"), engine).await;
        let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
        let rest = ok(
            client,
            &format!("/v1/projects/search?{before_2024}&sort=oldest&size=3&cursor={cursor}"),
            engine,
        )
        .await;
        assert_eq!(rest.slugs(), ["search-ui"], "{engine}");
        get(client, &format!("/v1/projects/search?{before_2024}&sort=newest&cursor={cursor}"))
            .await
            .assert_invalid("cursor", engine);
        get(client, &format!("/v1/projects/search?sort=oldest&cursor={cursor}"))
            .await
            .assert_invalid("cursor", engine);
    })
    .await
}

#[tokio::test]
async fn a_text_that_finds_nothing_gets_a_correction_that_finds_something() -> anyhow::Result<()> {
    on_each_engine("http-did-you-mean", async |client, _, engine| {
        // Two edits in a five-letter word: beyond the search's fuzziness, within the correction's.
        let typo = ok(client, "/v1/projects/search?q=fizzi%20finder", engine).await;
        assert_eq!(typo.body["total"], 0, "{engine}: {}", typo.body);
        assert_eq!(typo.body["did_you_mean"], "fuzzy finder", "{engine}");
        let corrected = ok(client, "/v1/projects/search?q=fuzzy%20finder", engine).await;
        assert_eq!(corrected.slugs()[0], "fuzzy-finder", "{engine}");
        assert!(
            corrected.body.get("did_you_mean").is_none(),
            "{engine}: it found something"
        );

        let filtered = ok(
            client,
            "/v1/projects/search?q=fizzi&hashtags=python",
            engine,
        )
        .await;
        assert_eq!(filtered.body["total"], 0, "{engine}");
        assert!(
            filtered.body.get("did_you_mean").is_none(),
            "{engine}: the correction finds nothing with the filter either: {}",
            filtered.body
        );
        let nonsense = ok(client, "/v1/projects/search?q=qqqqqqqqqq", engine).await;
        assert!(
            nonsense.body.get("did_you_mean").is_none(),
            "{engine}: {}",
            nonsense.body
        );
    })
    .await
}

#[tokio::test]
async fn suggestions_complete_projects_hashtags_and_users() -> anyhow::Result<()> {
    on_each_engine("http-suggest", async |client, db, engine| {
        let fuz = ok(client, "/v1/suggestions?q=fuz", engine).await;
        assert_eq!(
            fuz.body["projects"][0]["slug"], "fuzzy-finder",
            "{engine}: {}",
            fuz.body
        );
        assert_eq!(fuz.body["projects"][0]["name"], "Fuzzy Finder", "{engine}");

        let typo = ok(client, "/v1/suggestions?q=fuzzi", engine).await;
        assert_eq!(
            typo.body["projects"][0]["slug"], "fuzzy-finder",
            "{engine}: one typo: {}",
            typo.body
        );

        let word = ok(client, "/v1/suggestions?q=smi", engine).await;
        assert_eq!(
            word.body["users"],
            json!([{ "id": db.user("john").0, "name": "John Smith" }]),
            "{engine}: from the start of a later word"
        );
        let accent = ok(client, "/v1/suggestions?q=LOVEL", engine).await;
        assert_eq!(accent.body["users"][0]["name"], "Ada Lovelace", "{engine}");

        let hashtag = ok(client, "/v1/suggestions?q=%23Ru", engine).await;
        assert_eq!(
            hashtag.body["hashtags"],
            json!(["rust"]),
            "{engine}: {}",
            hashtag.body
        );

        let bulk = ok(client, "/v1/suggestions?q=bu&limit=3", engine).await;
        assert_eq!(
            bulk.body["hashtags"],
            json!(["bulk"]),
            "{engine}: once, though 21 projects use it"
        );
        let projects = bulk.body["projects"].as_array().unwrap();
        assert_eq!(projects.len(), 3, "{engine}: {}", bulk.body);
        assert!(
            projects
                .iter()
                .all(|p| p["slug"].as_str().unwrap().starts_with("bulk-"))
        );

        let none = ok(client, "/v1/suggestions?q=zzzzzz", engine).await;
        assert_eq!(
            none.body,
            json!({ "projects": [], "hashtags": [], "users": [] }),
            "{engine}"
        );
    })
    .await
}
