//! Adapter crate (in progress).
