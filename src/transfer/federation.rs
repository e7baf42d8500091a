//! Export lines of workload identity providers and federation rules. The structured fields
//! travel in the same JSON forms the API shows (and the store keeps).

use anyhow::anyhow;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::id;
use crate::domain::federation::{
    matchers_from_json, matchers_to_json, transformations_from_json, transformations_to_json,
    FederationRule, Permissions, Provider, Verification,
};
use crate::domain::time::Millis;

#[derive(Debug, Serialize, Deserialize)]
pub struct ProviderLine {
    id: String,
    organization_id: String,
    name: String,
    description: Option<String>,
    issuer: String,
    audience: String,
    enabled: bool,
    attribute_transformations: Value,
    verification: Value,
    created_at: Millis,
    updated_at: Millis,
    deleted_at: Option<Millis>,
}

impl From<Provider> for ProviderLine {
    fn from(p: Provider) -> Self {
        Self {
            id: p.id.to_string(),
            organization_id: p.organization_id.to_string(),
            name: p.name,
            description: p.description,
            issuer: p.issuer,
            audience: p.audience,
            enabled: p.enabled,
            attribute_transformations: transformations_to_json(&p.attribute_transformations),
            verification: p.verification.to_json(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            deleted_at: p.deleted_at,
        }
    }
}

impl ProviderLine {
    pub fn into_record(self) -> anyhow::Result<Provider> {
        Ok(Provider {
            id: id(&self.id)?,
            organization_id: id(&self.organization_id)?,
            name: self.name,
            description: self.description,
            issuer: self.issuer,
            audience: self.audience,
            enabled: self.enabled,
            attribute_transformations: transformations_from_json(&self.attribute_transformations)
                .ok_or_else(|| {
                anyhow!("invalid attribute_transformations")
            })?,
            verification: Verification::from_json(&self.verification)
                .ok_or_else(|| anyhow!("invalid verification"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub struct RuleLine {
    id: String,
    organization_id: String,
    provider_id: String,
    project_id: String,
    service_account_id: String,
    name: Option<String>,
    description: Option<String>,
    enabled: bool,
    attribute_matchers: Value,
    permissions: Value,
    created_at: Millis,
    updated_at: Millis,
    deleted_at: Option<Millis>,
}

impl From<FederationRule> for RuleLine {
    fn from(r: FederationRule) -> Self {
        Self {
            id: r.id.to_string(),
            organization_id: r.organization_id.to_string(),
            provider_id: r.provider_id.to_string(),
            project_id: r.project_id.to_string(),
            service_account_id: r.service_account_id.to_string(),
            name: r.name,
            description: r.description,
            enabled: r.enabled,
            attribute_matchers: matchers_to_json(&r.attribute_matchers),
            permissions: r.permissions.to_json(),
            created_at: r.created_at,
            updated_at: r.updated_at,
            deleted_at: r.deleted_at,
        }
    }
}

impl RuleLine {
    pub fn into_record(self) -> anyhow::Result<FederationRule> {
        Ok(FederationRule {
            id: id(&self.id)?,
            organization_id: id(&self.organization_id)?,
            provider_id: id(&self.provider_id)?,
            project_id: id(&self.project_id)?,
            service_account_id: id(&self.service_account_id)?,
            name: self.name,
            description: self.description,
            enabled: self.enabled,
            attribute_matchers: matchers_from_json(&self.attribute_matchers)
                .ok_or_else(|| anyhow!("invalid attribute_matchers"))?,
            permissions: Permissions::from_json(&self.permissions)
                .ok_or_else(|| anyhow!("invalid permissions"))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
            deleted_at: self.deleted_at,
        })
    }
}
