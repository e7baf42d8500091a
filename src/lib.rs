//! keyplane: service accounts and API keys, spoken in the OpenAI Admin API and Keycard dialects.
//!
//! Layers, top to bottom: `http` (one module per wire dialect, thin adapters) → `connections`
//! (the accept loop) → `service` (the one place where rules, authorization and key issuing
//! live) → `store` (persistence behind a trait) → `metrics` (counters, rendered from plain
//! data) → `domain` (plain types and pure functions used by all of them). `app` wires them
//! together from `config`. A module uses its own layer and lower ones only; `tests/it/layers.rs`
//! checks it.

pub mod app;
pub mod cli;
pub mod config;
pub mod connections;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod transfer;
