//! End-to-end tests of the `athens` binary against real PostgreSQL and real Elasticsearch/OpenSearch:
//! every subcommand, every kind of change, crashes, outages, two writers and random workloads.

// Test code: a failed expectation is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod capture;
mod cli;
mod crash;
mod fanout;
mod mistakes;
mod partitions;
mod pipeline;
mod poison;
mod privileges;
mod relevance;
mod resume;
mod security;
mod soak;
mod support;
