//! The API over the real adapters: athens-pg on PostgreSQL and athens-es on Elasticsearch and
//! OpenSearch, every route exercised over HTTP (poem's `TestClient`), for both engines.
//!
//! Needs the services of `deploy/local/up` and the variables of `deploy/local/env` (see
//! `athens_testkit`): an integration test never skips.

mod corpus;
mod hostile;
mod outages;
mod problems;
mod refinements;
mod searches;
