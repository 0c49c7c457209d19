//! Athens' Elasticsearch/OpenSearch adapter: the [`SearchIndex`](athens_core::SearchIndex) the sync
//! engine writes to ([`EsIndex`]) and the [`ProjectSearch`](athens_core::ProjectSearch) the API reads
//! ([`EsSearch`]).
//!
//! One adapter for Elasticsearch 7.10 to 9.x, OpenSearch 2.x/3.x and Amazon OpenSearch Service: it
//! only uses APIs they share (typeless document APIs, `_bulk` with external versions, `_aliases`,
//! `_mget`, `search_after`) and sends plain `application/json` (no Elasticsearch 8+ compatibility
//! media types, which OpenSearch and Elasticsearch 7 refuse).
//!
//! Modules: [`config`](EsConfig) (settings), `client` (transport, auth, TLS, the check of every
//! answer), `signing` (AWS SigV4 through an in-process signing forwarder), `mapping` (analysis
//! and mapping), `fields` (the document's field names, shared by mapping, wire and queries), `wire` (the stored document), `bulk` (NDJSON and
//! per-item outcomes), `checkpoint` (backfill checkpoints in the index's `_meta`), `claim` (writer fencing), `fence` (no index created by a write), `index` ([`EsIndex`]), `stray` (indexes the alias does not serve), `query` (search bodies and cursors), `refine` (sort
//! order and date range), `facets` (facet counts), `did_you_mean` (corrections of queries that match
//! nothing), `suggest` (as-you-type completions), `search` ([`EsSearch`]), `error` ([`EsError`] and
//! the mapping of failures to the core's error kinds).

mod bulk;
mod checkpoint;
mod claim;
mod client;
mod config;
mod did_you_mean;
mod error;
mod facets;
mod fence;
mod fields;
mod index;
mod mapping;
mod query;
mod refine;
mod search;
mod signing;
mod stray;
mod suggest;
mod wire;

pub use bulk::bulk_body;
pub use client::{Distribution, EngineInfo};
pub use config::{AwsService, DEFAULT_ALIAS, EsAuth, EsConfig};
pub use error::EsError;
pub use index::EsIndex;
pub use mapping::{MAPPING_VERSION, index_body};
pub use query::search_body;
pub use search::EsSearch;
pub use stray::{StrayIndex, StrayKind};
