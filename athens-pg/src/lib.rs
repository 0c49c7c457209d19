//! Athens' PostgreSQL adapter: the source schema, seed data, change capture through a transactional
//! outbox, set-based document reads and the writer lease.
//!
//! # Ports
//! - [`PgSource`] implements [`ChangeSource`](athens_core::ChangeSource) (the `athens.outbox`
//!   table, filled by triggers, woken by LISTEN/NOTIFY with a polling fallback) and
//!   [`DocumentSource`](athens_core::DocumentSource) (REPEATABLE READ reads versioned by the
//!   `athens.version` sequence).
//! - [`LogicalSource`] implements [`ChangeSource`](athens_core::ChangeSource) over logical
//!   decoding instead (`capture.mode = "logical"`: a publication, a replication slot, `pgoutput`
//!   read through the SQL interface), for databases where a slot is allowed and triggers cost too
//!   much.
//! - [`PgSource`] implements [`RebuildQueue`](athens_core::RebuildQueue) too (the
//!   `athens.rebuild_queue` table, in both capture modes): the projects of a fan-out, queued until
//!   rebuilt.
//! - [`PgLease`] implements [`WriterLease`](athens_core::WriterLease) with a session advisory lock
//!   on a dedicated connection.
//!
//! # Operations
//! Methods of [`PgSource`]. Schema and capture are separate steps, so Athens can attach to a
//! database whose tables it did not create:
//! 1. [`migrate`](PgSource::migrate) creates the five tables (skipped when attaching;
//!    [`check_schema`](PgSource::check_schema) checks them);
//! 2. [`install_capture`](PgSource::install_capture) creates the `athens` schema (outbox, dead
//!    letters, version sequence, trigger functions) and the triggers;
//!    [`remove_capture`](PgSource::remove_capture) undoes it, leaving the tables alone;
//!    [`check_capture`](PgSource::check_capture) says whether it is in place;
//! 3. [`seed`](PgSource::seed) loads deterministic demo data.
//!
//! The outbox mode needs no superuser and no replication slot: the role must own the five tables
//! (to create triggers) and may create a schema. Works on Amazon RDS. The logical mode
//! ([`install_logical_capture`](PgSource::install_logical_capture),
//! [`remove_logical_capture`](PgSource::remove_logical_capture)) needs `wal_level = logical` and
//! the `REPLICATION` attribute besides.
//!
//! # Errors
//! Everything returns [`PgError`]; `From<PgError> for SourceError` classifies it once: lost
//! connections are `Unavailable` (retryable), missing objects and refused credentials
//! `Misconfigured` with the command that fixes them.

mod capture;
mod changes;
mod config;
mod connect;
mod consumer;
mod cursor;
mod documents;
pub mod entity;
mod error;
mod lease;
mod logical;
mod rebuild_queue;
mod runtime_role;
mod schema;
mod seed;
mod session;
mod source;
mod tables;
mod version;

pub use capture::CAPTURE_SCHEMA;
pub use config::{CaptureConfig, CaptureMode, DEFAULT_LEASE_KEY, DatabaseUrl, PgConfig};
pub use error::PgError;
pub use lease::PgLease;
pub use logical::{LogicalSource, Relay, Relayed, SLOT_LAG, SLOT_RETAINED_WAL, SlotStatus};
pub use runtime_role::runtime_grants;
pub use schema::Migrator;
pub use seed::{SeedOptions, SeedReport};
pub use source::PgSource;
pub use version::{MIN_LOGICAL_VERSION, MIN_VERSION};
