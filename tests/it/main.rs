//! The integration tests, as one test binary (one link, one process; a module per area).
//!
//! What goes where:
//! - `per_backend`: every test whose store follows `KEYPLANE_TEST_BACKEND` (SQLite by
//!   default). scripts/test runs the whole binary on SQLite, then these once more on
//!   PostgreSQL: `KEYPLANE_TEST_BACKEND=postgres cargo test --test it per_backend::`. A new
//!   test that builds its app with `TestApp::new()` or its store with `TestStore::from_env()`
//!   belongs there.
//! - Everything else runs once per pass: suites that loop over both backends themselves
//!   (`store_suite`, `multi_node`, `store_schema`, `transfer`, `crash_safety`) and tests that
//!   need no store (`properties`, `layers`). `brute_force` builds its app with
//!   `TestApp::new()`, so it would follow `KEYPLANE_TEST_BACKEND`, but the throttle it
//!   measures is in memory and scripts/test has only ever run it on SQLite; it stays here.
//!
//! All tests share one process: a test that needs process-global state (the log subscriber
//! of `per_backend::log_secrecy`) reruns itself alone in a child process
//! (`common::in_own_process`).

mod common;

mod admission_nodes;
mod brute_force;
mod crash_safety;
mod layers;
mod multi_node;
mod per_backend;
mod properties;
mod store_schema;
mod store_suite;
mod transfer;
