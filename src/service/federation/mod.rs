//! Workload identity federation: the providers (external OIDC issuers) an organization
//! trusts and the rules that map their tokens to project service accounts (`providers.rs`,
//! `rules.rs`), their issuers' key sets (`jwks.rs`), and the token exchange that uses them
//! (`exchange.rs`).

mod exchange;
pub mod jwks;
mod providers;
mod rules;

pub use exchange::{ExchangeFailure, ExchangeRequest, TOKEN_TYPE_ID_TOKEN, TOKEN_TYPE_JWT};
pub use providers::{NewProvider, ProviderChanges};
pub use rules::{NewRule, RuleChanges};

/// Operator settings of federation.
#[derive(Debug, Clone, Default)]
pub struct FederationSettings {
    /// Accept `http://` issuers and discovery URLs (`KEYPLANE_FEDERATION_ALLOW_HTTP`): for
    /// tests on loopback and closed networks; off by default, since a key set fetched over
    /// plain HTTP can be swapped by anyone on the path.
    pub allow_http: bool,
}
