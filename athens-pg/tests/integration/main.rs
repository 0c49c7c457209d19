//! Integration tests of the PostgreSQL adapter against a real PostgreSQL (one database per test,
//! from `athens_testkit::database`): the core source contract, capture of every table and
//! operation, the outbox's ordering trap, wake-ups, versions, the writer lease, setup and attach,
//! seed data, error classification, and the core engine end to end.

// Helpers outside `#[test]` functions panic on purpose too: a failed setup fails its test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;
mod contract;
mod deployment;
mod documents;
mod engine;
mod errors;
mod invalidated;
mod lease;
mod logical;
mod outbox;
mod partitions;
mod queue;
mod relay;
mod seed;
mod setup;
mod support;
mod tables;
