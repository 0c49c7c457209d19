//! Refusals over the real adapters: every class of bad input is a 400 problem naming the
//! parameter, an unknown user is a 404, and nothing internal leaks.

use std::sync::Arc;

use poem::http::StatusCode;

use crate::corpus::{Database, client, drop_index, engine_config, get, index};

#[tokio::test]
async fn bad_input_and_unknown_users_are_problems() -> anyhow::Result<()> {
    let test = "http-problems";
    let database = Database::create(test).await?;
    let long = "x".repeat(201);
    let cases = [
        ("/v1/users/abc/projects".to_string(), "user_id"),
        ("/v1/users/0/projects".to_string(), "user_id"),
        ("/v1/projects/search?q=".to_string(), "q"),
        ("/v1/projects/search?q=%20".to_string(), "q"),
        (format!("/v1/projects/search?q={long}"), "q"),
        (format!("/v1/projects/search?user_name={long}"), "user_name"),
        ("/v1/projects/search?size=0".to_string(), "size"),
        ("/v1/projects/search?size=101".to_string(), "size"),
        (
            "/v1/hashtags/projects?hashtags=rust&mode=most".to_string(),
            "mode",
        ),
        ("/v1/hashtags/projects".to_string(), "hashtags"),
        ("/v1/projects/search?cursor=garbage".to_string(), "cursor"),
    ];
    for engine in athens_testkit::engines().await? {
        let index = index(&database, &engine_config(&engine, test)).await?;
        let client = client(Arc::new(index.searcher()), database.source());
        for (uri, param) in &cases {
            let answer = get(&client, uri).await;
            answer.assert_invalid(param, &format!("{engine}: {uri}"));
            assert_eq!(
                answer.headers.get("content-type").unwrap(),
                "application/problem+json",
                "{engine}: {uri}"
            );
            assert_eq!(answer.body["status"], 400);
            let id = answer.headers.get("x-request-id").unwrap().to_str()?;
            assert_eq!(answer.body["request_id"], id, "{engine}: {uri}");
        }

        let answer = get(&client, "/v1/users/999999/projects").await;
        answer.assert_problem(
            StatusCode::NOT_FOUND,
            "user-not-found",
            "999999",
            &engine.to_string(),
        );
        drop_index(&index).await?;
    }
    Ok(())
}
