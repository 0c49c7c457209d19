//! Facet counts: `terms` aggregations over every matching project, and their reading.
//!
//! Hashtags are counted by their normalized name (the keyword the mapping normalizes), creators by
//! id, with each creator's name read from one project of its bucket.

use athens_core::{
    CreatorCount, FACET_SIZE, Facet, FacetCounts, HashtagCount, SearchError, UserId,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::fields;

/// The `aggs` of a search that counts `facets`, or `None` when it counts none.
pub(crate) fn aggregations(facets: &[Facet]) -> Option<Value> {
    let mut aggs = Map::new();
    for facet in facets {
        let (name, agg) = match facet {
            Facet::Hashtags => ("hashtags", terms(fields::HASHTAG_NAME)),
            Facet::Creators => {
                let mut agg = terms(fields::CREATOR_ID);
                agg["aggs"] = json!({ "who": { "top_hits": {
                    "size": 1,
                    "_source": { "includes": [fields::CREATOR_ID, fields::CREATOR_NAME] },
                } } });
                ("creators", agg)
            }
        };
        aggs.insert(name.into(), agg);
    }
    (!aggs.is_empty()).then_some(Value::Object(aggs))
}

/// The most frequent values first, ties in value order, so counts are the same on every run.
fn terms(field: &str) -> Value {
    json!({ "terms": {
        "field": field,
        "size": FACET_SIZE,
        "order": [{ "_count": "desc" }, { "_key": "asc" }],
    } })
}

#[derive(Debug, Default, Deserialize)]
struct Aggregations {
    hashtags: Option<Buckets<String, Value>>,
    creators: Option<Buckets<i64, CreatorBucket>>,
}

#[derive(Debug, Deserialize)]
struct Buckets<K, B> {
    buckets: Vec<Bucket<K, B>>,
}

/// The buckets of a terms aggregation; none when the answer has no such aggregation.
fn buckets<K, B>(terms: Option<Buckets<K, B>>) -> Vec<Bucket<K, B>> {
    terms.map(|terms| terms.buckets).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct Bucket<K, B> {
    key: K,
    doc_count: u64,
    #[serde(flatten)]
    rest: B,
}

#[derive(Debug, Deserialize)]
struct CreatorBucket {
    who: TopHits,
}

#[derive(Debug, Deserialize)]
struct TopHits {
    hits: TopHitList,
}

#[derive(Debug, Deserialize)]
struct TopHitList {
    hits: Vec<TopHit>,
}

#[derive(Debug, Deserialize)]
struct TopHit {
    #[serde(rename = "_source")]
    source: CreatorsOnly,
}

#[derive(Debug, Deserialize)]
struct CreatorsOnly {
    #[serde(default)]
    creators: Vec<CreatorName>,
}

#[derive(Debug, Deserialize)]
struct CreatorName {
    id: i64,
    name: String,
}

/// The counts of `facets` in a search answer's `aggregations`.
pub(crate) fn read(
    facets: &[Facet],
    aggregations: Option<Value>,
) -> Result<FacetCounts, SearchError> {
    if facets.is_empty() {
        return Ok(FacetCounts::default());
    }
    let unreadable = |error: serde_json::Error| {
        SearchError::internal(format!("unreadable facet counts: {error}")).with_source(error)
    };
    let aggs: Aggregations = match aggregations {
        Some(value) => serde_json::from_value(value).map_err(unreadable)?,
        None => Aggregations::default(),
    };
    let mut counts = FacetCounts::default();
    if facets.contains(&Facet::Hashtags) {
        counts.hashtags = Some(
            buckets(aggs.hashtags)
                .into_iter()
                .map(|bucket| HashtagCount {
                    name: bucket.key,
                    count: bucket.doc_count,
                })
                .collect(),
        );
    }
    if facets.contains(&Facet::Creators) {
        counts.creators = Some(
            buckets(aggs.creators)
                .into_iter()
                .map(|bucket| {
                    let name = bucket
                        .rest
                        .who
                        .hits
                        .hits
                        .into_iter()
                        .flat_map(|hit| hit.source.creators)
                        .find(|creator| creator.id == bucket.key)
                        .map(|creator| creator.name)
                        .unwrap_or_default();
                    CreatorCount {
                        id: UserId(bucket.key),
                        name,
                        count: bucket.doc_count,
                    }
                })
                .collect(),
        );
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asks_only_for_the_facets_given() {
        assert_eq!(aggregations(&[]), None);
        let aggs = aggregations(&[Facet::Hashtags]).unwrap();
        assert_eq!(aggs["hashtags"]["terms"]["field"], "hashtags.name");
        assert_eq!(aggs["hashtags"]["terms"]["size"], FACET_SIZE);
        assert!(aggs.get("creators").is_none());
        let aggs = aggregations(&[Facet::Creators, Facet::Hashtags]).unwrap();
        assert_eq!(aggs["creators"]["terms"]["field"], "creators.id");
    }

    #[test]
    fn reads_counts_and_the_creator_of_each_bucket() {
        let answer = json!({
            "hashtags": { "buckets": [
                { "key": "rust", "doc_count": 3 }, { "key": "search", "doc_count": 1 },
            ] },
            "creators": { "buckets": [{ "key": 7, "doc_count": 2, "who": { "hits": { "hits": [
                { "_source": { "creators": [
                    { "id": 3, "name": "Jane Doe" }, { "id": 7, "name": "John Smith" },
                ] } },
            ] } } }] },
        });
        let counts = read(&[Facet::Hashtags, Facet::Creators], Some(answer)).unwrap();
        let hashtags = counts.hashtags.unwrap();
        assert_eq!(hashtags[0].name, "rust");
        assert_eq!(hashtags[0].count, 3);
        assert_eq!(hashtags.len(), 2);
        let creators = counts.creators.unwrap();
        assert_eq!(creators[0].id, UserId(7));
        assert_eq!(creators[0].name, "John Smith");
        assert_eq!(creators[0].count, 2);
    }

    #[test]
    fn facets_not_asked_for_stay_absent() {
        let counts = read(&[Facet::Creators], None).unwrap();
        assert_eq!(counts.hashtags, None);
        assert_eq!(counts.creators, Some(Vec::new()));
        assert!(read(&[Facet::Hashtags], Some(json!({ "hashtags": 1 }))).is_err());
    }
}
