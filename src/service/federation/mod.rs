//! Workload identity federation: the providers (external OIDC issuers) an organization
//! trusts and the rules that map their tokens to project service accounts (`providers.rs`,
//! `rules.rs`). The token exchange that uses them comes with issue 16's next part.

pub mod jwks;
mod providers;
mod rules;

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
