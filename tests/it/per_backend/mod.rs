//! Tests whose store follows `KEYPLANE_TEST_BACKEND` (through `TestApp::new`,
//! `TestStore::from_env` or a `keyplane` child process on that store): scripts/test runs them
//! once on SQLite and once more on PostgreSQL, selected by the filter `per_backend::`.

pub mod admission;
pub mod allowlist_socket;
pub mod audit_webhook;
pub mod binary;
pub mod cli;
pub mod config_file;
pub mod console_session;
pub mod docs_page;
pub mod hostile_input;
pub mod isolation_matrix;
pub mod keycard_credentials;
pub mod keycard_federation;
pub mod keycard_service_accounts;
pub mod keycard_tokens;
pub mod log_secrecy;
pub mod nginx_gateway;
pub mod observability;
pub mod openai_audit_logs;
pub mod openai_errors;
pub mod openai_keys;
pub mod openai_projects;
pub mod openai_service_accounts;
pub mod slowloris;
pub mod tls;
pub mod token_exchange;
pub mod token_exchange_refusals;
pub mod verification;
pub mod workload_identity_config;
