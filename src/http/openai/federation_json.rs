//! The JSON shapes of workload identity providers and federation rules, as the official SDKs
//! type them (`openai` 3.60 `types/admin/organization/workload_identity_provider*.py`,
//! `…/workload_identity_providers/federation_rule*.py`; see `e2e/WORKLOAD-IDENTITY-WIRE.md`).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::federation::{
    matchers_to_json, AttributeTransformation, FederationRule, Permissions, Provider, Verification,
};
use crate::domain::ids::Kind;
use crate::domain::time::to_unix_seconds;
use crate::http::openapi::string_enum;

string_enum! {
    provider_object = ["organization.workload_identity_provider"];
    rule_object = ["organization.workload_identity_federation_rule"];
}

/// The only provider type.
pub fn oidc() -> utoipa::openapi::Object {
    crate::http::openapi::one_of(&["oidc"])
}

/// An attribute a provider derives from verified token claims.
#[derive(Serialize, Deserialize, ToSchema)]
#[schema(as = WorkloadIdentityAttributeTransformation)]
pub struct TransformationJson {
    /// The attribute's name: letters, digits, `_` and `.`, starting with a letter or `_`.
    pub attribute: String,
    /// How it is computed, e.g. `lower(assertion.repository) + "@" + assertion.ref`: claim
    /// paths (`assertion.a.b`, `assertion["kubernetes.io"].namespace`), double-quoted
    /// strings, `+`, and `lower()`, `upper()`, `trim()`.
    pub expression: String,
}

impl From<TransformationJson> for AttributeTransformation {
    fn from(t: TransformationJson) -> Self {
        Self {
            attribute: t.attribute,
            expression: t.expression,
        }
    }
}

/// How the provider's signing keys are found.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = WorkloadIdentityVerification)]
pub enum VerificationJson {
    /// OpenID discovery: `discovery_url`, or `<issuer>/.well-known/openid-configuration`
    /// when it is absent or `null`.
    Discovery {
        #[serde(default)]
        discovery_url: Option<String>,
    },
    /// A JSON Web Key Set (`{"keys": [...]}`) of public RSA, EC or OKP keys, each with a `kid`.
    UploadedJwks {
        #[schema(value_type = Object)]
        jwks: Value,
    },
}

impl From<VerificationJson> for Verification {
    fn from(v: VerificationJson) -> Self {
        match v {
            VerificationJson::Discovery { discovery_url } => {
                Verification::Discovery { discovery_url }
            }
            VerificationJson::UploadedJwks { jwks } => Verification::UploadedJwks { jwks },
        }
    }
}

/// What a token mapped by a rule may do.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = WorkloadIdentityPermissions)]
pub enum PermissionsJson {
    /// What the service account's own keys may.
    ServiceAccountDefault {},
    /// Only these scopes.
    Restricted { scopes: Vec<String> },
}

impl From<PermissionsJson> for Permissions {
    fn from(p: PermissionsJson) -> Self {
        match p {
            PermissionsJson::ServiceAccountDefault {} => Permissions::ServiceAccountDefault,
            PermissionsJson::Restricted { scopes } => Permissions::Restricted { scopes },
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = WorkloadIdentityProvider)]
pub struct ProviderJson {
    #[schema(schema_with = provider_object)]
    object: &'static str,
    /// `idp_…`.
    id: String,
    name: String,
    #[schema(required = true)]
    description: Option<String>,
    #[serde(rename = "type")]
    #[schema(schema_with = oidc)]
    kind: &'static str,
    issuer: String,
    audience: String,
    enabled: bool,
    attribute_transformations: Vec<TransformationJson>,
    /// `{"type": "discovery", "discovery_url": …}` or `{"type": "uploaded_jwks", "jwks": …}`.
    #[schema(value_type = Object)]
    verification: Value,
    created_at: i64,
    updated_at: i64,
}

impl From<Provider> for ProviderJson {
    fn from(p: Provider) -> Self {
        Self {
            object: "organization.workload_identity_provider",
            id: Kind::IdentityProvider.render_openai(&p.id),
            name: p.name,
            description: p.description,
            kind: "oidc",
            issuer: p.issuer,
            audience: p.audience,
            enabled: p.enabled,
            attribute_transformations: p
                .attribute_transformations
                .into_iter()
                .map(|t| TransformationJson {
                    attribute: t.attribute,
                    expression: t.expression,
                })
                .collect(),
            verification: p.verification.to_json(),
            created_at: to_unix_seconds(p.created_at),
            updated_at: to_unix_seconds(p.updated_at),
        }
    }
}

impl ProviderJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = WorkloadIdentityFederationRule)]
pub struct RuleJson {
    #[schema(schema_with = rule_object)]
    object: &'static str,
    /// `fedrule_…`.
    id: String,
    #[schema(required = true)]
    name: Option<String>,
    #[schema(required = true)]
    description: Option<String>,
    enabled: bool,
    workload_identity_provider_id: String,
    project_id: String,
    service_account_id: String,
    /// Claim (or attribute) name → the value it must equal: a string, boolean or number.
    #[schema(value_type = Object)]
    attribute_matchers: Value,
    /// `{"type": "service_account_default"}` or `{"type": "restricted", "scopes": [...]}`.
    #[schema(value_type = Object)]
    permissions: Value,
    created_at: i64,
    updated_at: i64,
}

impl From<FederationRule> for RuleJson {
    fn from(r: FederationRule) -> Self {
        Self {
            object: "organization.workload_identity_federation_rule",
            id: Kind::FederationRule.render_openai(&r.id),
            name: r.name,
            description: r.description,
            enabled: r.enabled,
            workload_identity_provider_id: Kind::IdentityProvider.render_openai(&r.provider_id),
            project_id: Kind::Project.render_openai(&r.project_id),
            service_account_id: Kind::ServiceAccount.render_openai(&r.service_account_id),
            attribute_matchers: matchers_to_json(&r.attribute_matchers),
            permissions: r.permissions.to_json(),
            created_at: to_unix_seconds(r.created_at),
            updated_at: to_unix_seconds(r.updated_at),
        }
    }
}

impl RuleJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}
