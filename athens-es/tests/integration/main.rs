//! Integration tests of the Elasticsearch/OpenSearch adapter against real engines (both
//! Elasticsearch and OpenSearch, see `athens_testkit::engines`), plus a scripted fake engine for
//! failures a real one will not produce on demand.

mod contract;
mod failures;
mod paging;
mod relevance;
mod sigv4;
mod strays;
mod support;
