//! [`EsSearch`]: the [`ProjectSearch`] port over the alias, with relevance ranking, highlights,
//! cursor paging, facet counts, "did you mean" and as-you-type suggestions.

use std::collections::BTreeMap;
use std::fmt;

use async_trait::async_trait;
use athens_core::{
    ProjectDocument, ProjectSearch, SearchError, SearchHit, SearchPage, SearchRequest,
    SuggestRequest, Suggestions,
};
use elasticsearch::SearchParts;
use serde::Deserialize;
use serde_json::Value;
use tracing::{debug, warn};

use crate::client::{Client, EngineInfo, alias_holders, read};
use crate::config::EsConfig;
use crate::error::EsError;
use crate::query::{self, SearchPlan};
use crate::wire::StoredProject;
use crate::{did_you_mean, facets, fields, suggest};

/// The search engine as the API reads it: implements [`ProjectSearch`] over the alias. Cheap to
/// clone.
#[derive(Clone)]
pub struct EsSearch {
    client: Client,
}

impl fmt::Debug for EsSearch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.client.debug_as("EsSearch", f)
    }
}

impl EsSearch {
    /// Connects to the engine `config` names and checks that it answers and that Athens supports it.
    /// The alias need not exist yet: [`ProjectSearch::ready`] tells when it does.
    pub async fn connect(config: &EsConfig) -> Result<EsSearch, EsError> {
        Ok(EsSearch {
            client: Client::connect(config).await?,
        })
    }

    pub(crate) fn from_client(client: Client) -> EsSearch {
        EsSearch { client }
    }

    /// The engine that answered when connecting.
    pub fn engine(&self) -> &EngineInfo {
        self.client.engine()
    }
}

#[derive(Debug, Deserialize)]
struct SearchResponse {
    #[serde(default)]
    took: u64,
    #[serde(default)]
    timed_out: bool,
    #[serde(rename = "_shards", default)]
    shards: Shards,
    hits: Hits,
    #[serde(default)]
    aggregations: Option<Value>,
    #[serde(default)]
    suggest: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Shards {
    #[serde(default)]
    failed: u64,
}

#[derive(Debug, Deserialize)]
struct Hits {
    total: Total,
    hits: Vec<Hit>,
}

impl Hits {
    fn total(&self) -> u64 {
        match self.total {
            Total::Object { value } | Total::Number(value) => value,
        }
    }
}

/// `{"value": n, "relation": "eq"}`, or a bare number from an engine set to answer the 6.x way.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Total {
    Object { value: u64 },
    Number(u64),
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(rename = "_score", default)]
    score: Option<f64>,
    #[serde(rename = "_source")]
    source: StoredProject,
    #[serde(default)]
    sort: Vec<Value>,
    #[serde(default)]
    highlight: BTreeMap<String, Vec<String>>,
}

#[async_trait]
impl ProjectSearch for EsSearch {
    async fn search(&self, request: &SearchRequest) -> Result<SearchPage, SearchError> {
        search(&self.client, request).await
    }

    async fn suggest(&self, request: &SuggestRequest) -> Result<Suggestions, SearchError> {
        suggestions(&self.client, request).await
    }

    async fn ready(&self) -> Result<(), SearchError> {
        ready(&self.client).await
    }
}

async fn search(client: &Client, request: &SearchRequest) -> Result<SearchPage, SearchError> {
    request.validate()?;
    let SearchPlan {
        body,
        size,
        fingerprint,
        by_relevance,
        text_words,
    } = query::plan(request, client.config().search_timeout_ms)?;
    let response = send(client, body, Some(&fingerprint)).await?;
    let total = response.hits.total();
    let facets = facets::read(&request.facets, response.aggregations)?;
    let did_you_mean = if total == 0 && request.text.is_some() && request.cursor.is_none() {
        correction(client, request, &text_words).await?
    } else {
        None
    };
    let mut hits = response.hits.hits;
    let next_cursor = if hits.len() > size {
        hits.truncate(size);
        let last = hits
            .last()
            .map(|hit| hit.sort.as_slice())
            .unwrap_or_default();
        Some(
            query::encode_cursor(&fingerprint, last)
                .ok_or_else(|| SearchError::internal("cannot encode the next page's cursor"))?,
        )
    } else {
        None
    };
    debug!(
        alias = client.alias(),
        took_ms = response.took,
        total,
        hits = hits.len(),
        by_relevance,
        "search answered"
    );
    Ok(SearchPage {
        total,
        hits: hits
            .into_iter()
            .map(|hit| SearchHit {
                score: hit.score.filter(|_| by_relevance),
                highlights: highlights(hit.highlight),
                document: ProjectDocument::from(hit.source),
            })
            .collect(),
        next_cursor,
        facets,
        did_you_mean,
    })
}

/// Posts one `_search` to the alias; partial results are an error.
///
/// A search of projects passes its fingerprint as the `preference`: every page of one search then
/// reads the same copy of each shard. Copies of a shard can score a document differently (their
/// deleted documents are merged away at different times), and paging by `search_after` over
/// scores from different copies could repeat or skip hits; with one copy, the scores are those
/// of one ranking, which the id breaks ties in. Both Elasticsearch (7.10 on) and OpenSearch route
/// a custom preference string the same way.
async fn send(
    client: &Client,
    body: Value,
    preference: Option<&str>,
) -> Result<SearchResponse, SearchError> {
    let indexes = [client.alias()];
    let mut search = client.es.search(SearchParts::Index(&indexes)).body(body);
    if let Some(preference) = preference {
        search = search.preference(preference);
    }
    let sent = search.send().await;
    let response: SearchResponse = read(sent).await?;
    if response.timed_out || response.shards.failed > 0 {
        warn!(
            alias = client.alias(),
            timed_out = response.timed_out,
            failed_shards = response.shards.failed,
            "search returned partial results"
        );
        return Err(SearchError::unavailable(
            "the search engine returned partial results",
        ));
    }
    Ok(response)
}

/// A correction of the text of `request`, which matched nothing, that matches something under
/// the same filters; `None` when the engine knows none.
async fn correction(
    client: &Client,
    request: &SearchRequest,
    words: &[String],
) -> Result<Option<String>, SearchError> {
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    if words.is_empty() {
        return Ok(None);
    }
    let timeout_ms = client.config().search_timeout_ms;
    let response = send(client, did_you_mean::body(&words, timeout_ms), None).await?;
    let Some(corrected) = did_you_mean::correction(&words, response.suggest.as_ref()) else {
        return Ok(None);
    };
    let check = SearchRequest {
        text: Some(corrected.clone()),
        facets: Vec::new(),
        cursor: None,
        size: 1,
        ..request.clone()
    };
    let mut body = query::plan(&check, timeout_ms)?.body;
    body["size"] = 0.into();
    body.as_object_mut().map(|body| body.remove("highlight"));
    let found = send(client, body, None).await?.hits.total();
    debug!(
        alias = client.alias(),
        found, "did-you-mean correction checked"
    );
    Ok((found > 0).then_some(corrected))
}

/// Completes `request` with the completion suggesters.
async fn suggestions(
    client: &Client,
    request: &SuggestRequest,
) -> Result<Suggestions, SearchError> {
    request.validate()?;
    let body = suggest::body(request, client.config().search_timeout_ms);
    let response = send(client, body, None).await?;
    suggest::read(request, response.suggest)
}

async fn ready(client: &Client) -> Result<(), SearchError> {
    if alias_holders(client).await?.is_empty() {
        return Err(SearchError::unavailable(format!(
            "alias {} does not exist yet: no index has been published",
            client.alias()
        )));
    }
    Ok(())
}

/// Fragments under their field's name: those of `slug` and `description`, or else those of their
/// partial-word sub-fields.
fn highlights(mut raw: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    let mut highlights = BTreeMap::new();
    for field in [fields::SLUG, fields::DESCRIPTION] {
        let fragments = raw
            .remove(field)
            .filter(|fragments| !fragments.is_empty())
            .or_else(|| raw.remove(&fields::prefix_of(field)));
        if let Some(fragments) = fragments {
            highlights.insert(field.to_owned(), fragments);
        }
    }
    highlights
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highlights_fall_back_to_partial_word_fragments() {
        let raw = BTreeMap::from([
            (
                "slug".to_owned(),
                vec!["<em>elasticsearch</em>-sync".to_owned()],
            ),
            ("slug.prefix".to_owned(), vec!["ignored".to_owned()]),
            (
                "description.prefix".to_owned(),
                vec!["Keeps <em>Elasticsearch</em>".to_owned()],
            ),
        ]);
        let merged = highlights(raw);
        assert_eq!(merged["slug"], ["<em>elasticsearch</em>-sync"]);
        assert_eq!(merged["description"], ["Keeps <em>Elasticsearch</em>"]);
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn reads_both_total_formats() {
        let object: Hits = serde_json::from_value(serde_json::json!({
            "total": {"value": 3, "relation": "eq"}, "hits": []
        }))
        .unwrap();
        assert!(matches!(object.total, Total::Object { value: 3 }));
        let number: Hits =
            serde_json::from_value(serde_json::json!({"total": 4, "hits": []})).unwrap();
        assert!(matches!(number.total, Total::Number(4)));
    }
}
