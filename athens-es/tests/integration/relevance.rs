//! Search behaviour on a fixed corpus of realistic projects, on both engines: fuzzy full text (typos,
//! transpositions, partial words, any word order), highlights, user and hashtag filters, paging, and
//! hostile input.

use std::collections::BTreeSet;

use anyhow::{Context, ensure};
use athens_core::{
    Creator, Hashtag, HashtagId, HashtagMode, IndexOp, ProjectDocument, ProjectId, ProjectSearch,
    SearchError, SearchIndex, SearchPage, SearchRequest, UserId, Version,
};
use athens_es::EsIndex;
use chrono::{DateTime, Utc};

use crate::support::on_every_engine;

const USERS: &[(i64, &str)] = &[
    (1, "John Smith"),
    (2, "Ada Lovelace"),
    (3, "Grace Hopper"),
    (4, "Linus Torvalds"),
    (5, "Jane Doe"),
    (6, "Alan Turing"),
    (7, "Zoë Ünal"),
];

const HASHTAGS: &[(i64, &str)] = &[
    (1, "Rust"),
    (2, "Search"),
    (3, "PostgreSQL"),
    (4, "CDC"),
    (5, "Kafka"),
    (6, "Web"),
    (7, "Frontend"),
    (8, "ML"),
    (9, "#DevOps"),
    (10, "AWS"),
];

/// id, slug, description, creators, hashtags.
type Project = (
    i64,
    &'static str,
    &'static str,
    &'static [i64],
    &'static [i64],
);

const PROJECTS: &[Project] = &[
    (
        1,
        "elasticsearch-sync",
        "Keeps Elasticsearch in sync with PostgreSQL",
        &[1],
        &[1, 2, 3],
    ),
    (
        2,
        "postgres-outbox",
        "Transactional outbox pattern for PostgreSQL change capture",
        &[2],
        &[3, 4],
    ),
    (
        3,
        "kafka-connect-bridge",
        "Streams Kafka topics into data warehouses",
        &[3],
        &[5],
    ),
    (
        4,
        "rust-web-server",
        "A fast HTTP server written in Rust",
        &[1, 4],
        &[1, 6],
    ),
    (
        5,
        "react-dashboard",
        "Admin dashboard built with React and TypeScript",
        &[5],
        &[7],
    ),
    (
        6,
        "ml-pipeline",
        "Machine learning pipeline for image classification",
        &[6],
        &[8],
    ),
    (
        7,
        "terraform-aws-modules",
        "Reusable Terraform modules for AWS infrastructure",
        &[3],
        &[9, 10],
    ),
    (
        8,
        "search-ui",
        "Faceted search interface for product catalogs",
        &[5],
        &[2, 7],
    ),
    (
        9,
        "log-shipper",
        "Ships application logs to OpenSearch clusters",
        &[4],
        &[1, 2, 9],
    ),
    (
        10,
        "graphql-gateway",
        "Federated GraphQL gateway for microservices",
        &[2],
        &[6],
    ),
    (
        11,
        "mobile-banking",
        "Cross-platform mobile banking application",
        &[5],
        &[7],
    ),
    (
        12,
        "data-lake-ingest",
        "Batch ingestion into a data lake on S3",
        &[6],
        &[10],
    ),
    (
        13,
        "chat_server",
        "Realtime chat server with WebSockets",
        &[1],
        &[6],
    ),
    (
        14,
        "pdf-renderer",
        "Renders PDF reports from HTML templates",
        &[5],
        &[],
    ),
    (
        15,
        "sync-engine-core",
        "Core sync engine with at-least-once delivery",
        &[2],
        &[1, 4],
    ),
    (
        16,
        "elastic-beats-config",
        "Configuration templates for Beats and Logstash",
        &[4],
        &[2, 9],
    ),
    (17, "weather-api", "Public weather forecast API", &[3], &[6]),
    (
        18,
        "postgresql-backup",
        "Point-in-time backups for PostgreSQL databases",
        &[6],
        &[3, 9],
    ),
    (
        19,
        "naive-bayes",
        "Naïve Bayes text classifier, café crème edition",
        &[7],
        &[8],
    ),
    (
        20,
        "game-of-life",
        "Conway's Game of Life in WebAssembly",
        &[5],
        &[1, 6],
    ),
];

fn at(day: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(1_600_000_000_000_000 + day * 86_400_000_000 + 123_456)
        .unwrap_or_default()
}

fn corpus() -> Vec<ProjectDocument> {
    PROJECTS
        .iter()
        .map(
            |&(id, slug, description, creators, hashtags)| ProjectDocument {
                id: ProjectId(id),
                name: slug.replace(['-', '_'], " "),
                slug: slug.into(),
                description: description.into(),
                created_at: at(id),
                updated_at: at(id),
                hashtags: HASHTAGS
                    .iter()
                    .filter(|(tag, _)| hashtags.contains(tag))
                    .map(|&(tag, name)| Hashtag {
                        id: HashtagId(tag),
                        name: name.into(),
                        created_at: at(0),
                    })
                    .collect(),
                creators: USERS
                    .iter()
                    .filter(|(user, _)| creators.contains(user))
                    .map(|&(user, name)| Creator {
                        id: UserId(user),
                        name: name.into(),
                        created_at: at(0),
                    })
                    .collect(),
            },
        )
        .collect()
}

/// Loads the corpus into a fresh index and publishes it behind the alias.
async fn load(index: &EsIndex) -> anyhow::Result<()> {
    let target = index.create_index().await?;
    let ops: Vec<IndexOp> = corpus()
        .into_iter()
        .map(|document| IndexOp::Upsert {
            document,
            version: Version(1),
        })
        .collect();
    let outcomes = index.write(&target, &ops).await?;
    ensure!(
        outcomes
            .iter()
            .all(|o| *o == athens_core::WriteOutcome::Applied),
        "{outcomes:?}"
    );
    index.finish_bulk_load(&target).await?;
    index.publish(&target).await?;
    Ok(())
}

fn text(query: &str) -> SearchRequest {
    SearchRequest {
        text: Some(query.into()),
        size: 20,
        ..SearchRequest::default()
    }
}

fn filters() -> SearchRequest {
    SearchRequest {
        size: 20,
        ..SearchRequest::default()
    }
}

fn slugs(page: &SearchPage) -> Vec<&str> {
    page.hits
        .iter()
        .map(|hit| hit.document.slug.as_str())
        .collect()
}

fn ids(page: &SearchPage) -> Vec<i64> {
    page.hits.iter().map(|hit| hit.document.id.0).collect()
}

async fn search(index: &EsIndex, request: &SearchRequest) -> anyhow::Result<SearchPage> {
    index
        .searcher()
        .search(request)
        .await
        .with_context(|| format!("search {request:?}"))
}

/// The best hit of a free-text query.
async fn first(index: &EsIndex, query: &str) -> anyhow::Result<String> {
    let page = search(index, &text(query)).await?;
    page.hits
        .first()
        .map(|hit| hit.document.slug.clone())
        .with_context(|| format!("{query:?} found nothing"))
}

#[tokio::test]
async fn full_text_is_fuzzy_partial_and_order_free() -> anyhow::Result<()> {
    on_every_engine("fulltext", |index, _| async move {
        load(&index).await?;
        for (query, expected) in [
            ("elasticsearch sync", "elasticsearch-sync"),
            ("elasticsaerch sync", "elasticsearch-sync"),
            ("elasticsearhc", "elasticsearch-sync"),
            ("sync elasticsearch", "elasticsearch-sync"),
            ("elasticsearch-sync", "elasticsearch-sync"),
            (
                "Keeps Elasticsearch in sync with PostgreSQL",
                "elasticsearch-sync",
            ),
            ("outbox postgre", "postgres-outbox"),
            ("chat server", "chat_server"),
            ("chat_server", "chat_server"),
            ("naive cafe", "naive-bayes"),
            ("NAÏVE CRÈME", "naive-bayes"),
            ("terraform aws", "terraform-aws-modules"),
            ("wether forcast", "weather-api"),
            ("grahpql", "graphql-gateway"),
        ] {
            let got = first(&index, query).await?;
            ensure!(
                got == expected,
                "{query:?} must rank {expected} first, got {got}"
            );
        }

        let partial = search(&index, &text("elasti")).await?;
        let found = slugs(&partial);
        ensure!(
            found.contains(&"elasticsearch-sync") && found.contains(&"elastic-beats-config"),
            "a partial word must find whole words, got {found:?}"
        );
        let postgre = search(&index, &text("postgre")).await?;
        let found = slugs(&postgre);
        for expected in ["postgres-outbox", "postgresql-backup", "elasticsearch-sync"] {
            ensure!(
                found.contains(&expected),
                "postgre must find {expected}, got {found:?}"
            );
        }
        let unrelated = search(&index, &text("elasticsaerch sync")).await?;
        ensure!(
            !slugs(&unrelated).contains(&"weather-api"),
            "unrelated projects must not match, got {:?}",
            slugs(&unrelated)
        );
        let nothing = search(&index, &text("zzyzx quux")).await?;
        ensure!(nothing.total == 0 && nothing.hits.is_empty() && nothing.next_cursor.is_none());
        Ok(())
    })
    .await
}

#[tokio::test]
async fn hits_carry_scores_highlights_and_whole_documents() -> anyhow::Result<()> {
    on_every_engine("highlights", |index, _| async move {
        load(&index).await?;
        let page = search(&index, &text("elasticsaerch sync")).await?;
        let hit = page.hits.first().context("no hit")?;
        ensure!(hit.score.is_some_and(|score| score > 0.0));
        let expected = corpus().into_iter().find(|d| d.id == ProjectId(1));
        ensure!(
            Some(&hit.document) == expected.as_ref(),
            "the document must round-trip"
        );
        let slug = hit.highlights.get("slug").context("no slug highlight")?;
        ensure!(
            slug.iter()
                .any(|f| f.contains("<em>elasticsearch</em>") && f.contains("<em>sync</em>")),
            "{slug:?}"
        );
        let description = hit
            .highlights
            .get("description")
            .context("no description highlight")?;
        ensure!(
            description
                .iter()
                .any(|f| f.contains("<em>Elasticsearch</em>")),
            "{description:?}"
        );

        let partial = search(&index, &text("elasti")).await?;
        let hit = partial
            .hits
            .iter()
            .find(|hit| hit.document.id == ProjectId(1))
            .context("elasti must find elasticsearch-sync")?;
        ensure!(
            hit.highlights
                .get("slug")
                .is_some_and(|f| f.iter().any(|f| f.contains("<em>"))),
            "partial words must be highlighted, got {:?}",
            hit.highlights
        );

        let chrono = search(&index, &filters()).await?;
        ensure!(
            chrono
                .hits
                .iter()
                .all(|hit| hit.score.is_none() && hit.highlights.is_empty())
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn users_and_hashtags_filter_and_combine() -> anyhow::Result<()> {
    on_every_engine("filters", |index, _| async move {
        load(&index).await?;
        let by_id = search(
            &index,
            &SearchRequest {
                user_id: Some(UserId(1)),
                ..filters()
            },
        )
        .await?;
        ensure!(
            ids(&by_id) == [13, 4, 1],
            "newest first, got {:?}",
            ids(&by_id)
        );
        ensure!(by_id.total == 3);
        ensure!(
            by_id.hits[1].document.creators.len() == 2,
            "all creators are returned"
        );

        for name in [
            "John Smith",
            "jon smith",
            "smith john",
            "Jhon Smtih",
            "smith",
        ] {
            let page = search(
                &index,
                &SearchRequest {
                    user_name: Some(name.into()),
                    ..filters()
                },
            )
            .await?;
            ensure!(
                ids(&page) == [13, 4, 1],
                "user name {name:?} got {:?}",
                ids(&page)
            );
        }
        let zoe = search(
            &index,
            &SearchRequest {
                user_name: Some("zoe unal".into()),
                ..filters()
            },
        )
        .await?;
        ensure!(ids(&zoe) == [19], "{:?}", ids(&zoe));

        let hashtags = |tags: &[&str], mode| SearchRequest {
            hashtags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            hashtag_mode: mode,
            ..filters()
        };
        let any = search(&index, &hashtags(&["#RUST", "web"], HashtagMode::Any)).await?;
        ensure!(
            ids(&any) == [20, 17, 15, 13, 10, 9, 4, 1],
            "any: {:?}",
            ids(&any)
        );
        let all = search(&index, &hashtags(&["rust", "#Web"], HashtagMode::All)).await?;
        ensure!(ids(&all) == [20, 4], "all: {:?}", ids(&all));
        let stored_with_hash = search(&index, &hashtags(&["devops"], HashtagMode::Any)).await?;
        ensure!(
            ids(&stored_with_hash) == [18, 16, 9, 7],
            "#DevOps is stored with its #: {:?}",
            ids(&stored_with_hash)
        );
        let page = &all.hits[0].document;
        ensure!(
            page.hashtags.iter().any(|h| h.name == "Rust"),
            "hashtags are returned as stored"
        );

        let combined = search(
            &index,
            &SearchRequest {
                text: Some("server".into()),
                user_id: Some(UserId(1)),
                ..filters()
            },
        )
        .await?;
        let found: BTreeSet<i64> = ids(&combined).into_iter().collect();
        ensure!(found == BTreeSet::from([4, 13]), "{found:?}");
        let combined = search(
            &index,
            &SearchRequest {
                text: Some("postgresql".into()),
                hashtags: vec!["#devops".into()],
                user_name: Some("alan turing".into()),
                ..filters()
            },
        )
        .await?;
        ensure!(ids(&combined) == [18], "{:?}", ids(&combined));
        let nobody = search(
            &index,
            &SearchRequest {
                user_id: Some(UserId(999)),
                ..filters()
            },
        )
        .await?;
        ensure!(nobody.total == 0 && nobody.hits.is_empty() && nobody.next_cursor.is_none());
        Ok(())
    })
    .await
}

/// Pages through `request` with `size`, checking each page's total; returns the ids in page order.
async fn page_through(
    index: &EsIndex,
    mut request: SearchRequest,
) -> anyhow::Result<(Vec<i64>, u64)> {
    let mut seen = Vec::new();
    let mut total = None;
    for _ in 0..50 {
        let page = search(index, &request).await?;
        ensure!(page.hits.len() <= request.size);
        ensure!(
            total.is_none_or(|total| total == page.total),
            "total changed between pages"
        );
        total = Some(page.total);
        seen.extend(ids(&page));
        match page.next_cursor {
            Some(cursor) => {
                ensure!(
                    page.hits.len() == request.size,
                    "only the last page may be short"
                );
                request.cursor = Some(cursor);
            }
            None => return Ok((seen, total.unwrap_or_default())),
        }
    }
    anyhow::bail!("paging did not end")
}

#[tokio::test]
async fn cursors_page_through_every_hit_exactly_once() -> anyhow::Result<()> {
    on_every_engine("paging", |index, _| async move {
        load(&index).await?;
        let (seen, total) = page_through(
            &index,
            SearchRequest {
                size: 3,
                ..filters()
            },
        )
        .await?;
        ensure!(total == 20);
        let expected: Vec<i64> = (1..=20).rev().collect();
        ensure!(
            seen == expected,
            "every project once, newest first: {seen:?}"
        );

        let (seen, total) = page_through(
            &index,
            SearchRequest {
                size: 20,
                ..filters()
            },
        )
        .await?;
        ensure!(
            seen.len() == 20 && total == 20,
            "a full single page has no next cursor"
        );

        let query = SearchRequest {
            size: 2,
            ..text("for")
        };
        let single = search(
            &index,
            &SearchRequest {
                size: 20,
                ..query.clone()
            },
        )
        .await?;
        let (seen, total) = page_through(&index, query.clone()).await?;
        ensure!(total >= 5, "'for' matches many projects, got {total}");
        ensure!(seen.len() as u64 == total);
        ensure!(
            seen == ids(&single),
            "pages must follow the ranking: {seen:?} vs {:?}",
            ids(&single)
        );

        for bad in ["not-a-cursor", "eyJ2IjoxfQ", "🙂"] {
            let result = index
                .searcher()
                .search(&SearchRequest {
                    cursor: Some(bad.into()),
                    ..query.clone()
                })
                .await;
            ensure!(
                matches!(
                    result,
                    Err(SearchError::InvalidRequest {
                        field: "cursor",
                        ..
                    })
                ),
                "cursor {bad:?}: {result:?}"
            );
        }
        let chrono = search(
            &index,
            &SearchRequest {
                size: 3,
                ..filters()
            },
        )
        .await?;
        let foreign = SearchRequest {
            cursor: chrono.next_cursor,
            ..query
        };
        let result = index.searcher().search(&foreign).await;
        ensure!(
            matches!(
                result,
                Err(SearchError::InvalidRequest {
                    field: "cursor",
                    ..
                })
            ),
            "a cursor of another search: {result:?}"
        );
        Ok(())
    })
    .await
}

#[tokio::test]
async fn hostile_input_is_searched_as_text() -> anyhow::Result<()> {
    on_every_engine("hostile", |index, _| async move {
        load(&index).await?;
        let long_words = "elasticsearch ".repeat(15);
        let inputs = [
            r#"*?~"(){}[]^:\/"#.to_owned(),
            r#"elastic* AND sync~ OR "postgres" NOT (a:b) [1 TO 5] {x} ^2 \/"#.to_owned(),
            "/.*/".to_owned(),
            r#"{"query":{"match_all":{}}}"#.to_owned(),
            "'; DROP TABLE projects; --".to_owned(),
            "a".repeat(200),
            long_words.trim().chars().take(200).collect(),
            "x y z w v u t s r q p o n m l k j i h g f e d c b a".to_owned(),
            "日本語 テキスト 🚀".to_owned(),
        ];
        for input in &inputs {
            for request in [
                text(input),
                SearchRequest {
                    user_name: Some(input.clone()),
                    ..filters()
                },
                SearchRequest {
                    hashtags: vec![input.chars().take(100).collect()],
                    ..filters()
                },
            ] {
                match index.searcher().search(&request).await {
                    Ok(_) => {}
                    Err(SearchError::InvalidRequest { .. }) => {}
                    Err(error) => anyhow::bail!("{input:?} broke the search: {error}"),
                }
            }
        }
        let only_syntax = search(&index, &text(r#"*?~"(){}[]^:\/"#)).await?;
        ensure!(
            only_syntax.total == 0,
            "a text without words matches nothing, got {:?}",
            slugs(&only_syntax)
        );
        let syntax = search(&index, &text(r#"elastic* AND sync~"#)).await?;
        ensure!(
            slugs(&syntax).first() == Some(&"elasticsearch-sync"),
            "syntax characters are only separators: {:?}",
            slugs(&syntax)
        );
        Ok(())
    })
    .await
}
