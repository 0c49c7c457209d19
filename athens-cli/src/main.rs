//! The `athens` command (in progress).
fn main() {}
