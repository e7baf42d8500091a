//! The objects keyplane stores. Both dialects render these; neither owns them.

use ipnet::IpNet;

use super::ids::Id;
use super::keys::{KeyHash, KeyKind};
use super::limits::{Disabled, KeyLimits};
use super::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub id: Id,
    /// DNS-label style handle (`default`), usable in place of the ID by the Keycard dialect.
    pub label: String,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: Id,
    pub organization_id: Id,
    pub name: String,
    pub external_key_id: Option<String>,
    /// Every organization has exactly one; it cannot be archived.
    pub is_default: bool,
    pub created_at: Millis,
    pub archived_at: Option<Millis>,
    /// Addresses the project's keys may be used from (`None`: any).
    pub allowed_ips: Option<Vec<IpNet>>,
}

impl Project {
    pub fn is_archived(&self) -> bool {
        self.archived_at.is_some()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Owner,
    Member,
    /// A project account created without membership (`create_service_account_only`).
    None,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
            Role::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "owner" => Some(Role::Owner),
            "member" => Some(Role::Member),
            "none" => Some(Role::None),
            _ => None,
        }
    }
}

/// One table, two views: OpenAI shows the accounts of a project, Keycard (later) every account
/// of the organization, where `project_id` is `None` for accounts created there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    pub id: Id,
    pub organization_id: Id,
    pub project_id: Option<Id>,
    pub name: String,
    pub description: Option<String>,
    pub role: Role,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub id: Id,
    pub organization_id: Id,
    pub kind: KeyKind,
    pub project_id: Option<Id>,
    pub service_account_id: Option<Id>,
    pub name: String,
    pub scopes: Vec<String>,
    pub hash: KeyHash,
    pub redacted_value: String,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    /// Addresses the key may be used from (`None`: any); project keys only.
    pub allowed_ips: Option<Vec<IpNet>>,
    /// keyplane's own limits on the key; project keys only.
    pub limits: KeyLimits,
    /// Set while the key is disabled: refused at verification, history kept.
    pub disabled: Option<Disabled>,
}

impl ApiKey {
    /// `revoked_at` may lie in the future: a key deleted with a grace period keeps working
    /// until then. Both bounds are exclusive: at that millisecond the key stops working.
    pub fn is_revoked_at(&self, now: Millis) -> bool {
        self.revoked_at.is_some_and(|r| now >= r)
    }

    pub fn is_expired_at(&self, now: Millis) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    pub fn is_usable_at(&self, now: Millis) -> bool {
        !self.is_revoked_at(now) && !self.is_expired_at(now)
    }

    /// Deleted through the API (possibly still inside its grace period): no longer listed.
    pub fn is_deleted(&self) -> bool {
        self.revoked_at.is_some()
    }
}

/// Which project keys to list, by whether their owner has access to the project
/// (`owner_project_access`). Service accounts with role `none` have no access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerAccess {
    Active,
    Inactive,
    Any,
}

impl Role {
    pub fn has_project_access(self) -> bool {
        !matches!(self, Role::None)
    }
}

/// A client-credentials pair of a service account (the Keycard dialect's "credential"). The
/// secret is stored only as its SHA-256; `client_id` is public and unique across the server,
/// because the token endpoint finds the credential by it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub id: Id,
    pub organization_id: Id,
    pub service_account_id: Id,
    pub client_id: String,
    pub secret_hash: KeyHash,
    pub name: String,
    pub description: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_used_at: Option<Millis>,
    /// Deleted credentials are kept (like deleted accounts) so old cursors still resolve.
    pub deleted_at: Option<Millis>,
    /// A credential of workload identity federation: no secret (its `secret_hash` is of
    /// random bytes nobody holds); the client authenticates with a token of this provider
    /// whose `sub` is this subject (RFC 7523 `client_assertion`).
    pub federation: Option<CredentialFederation>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFederation {
    pub provider_id: Id,
    /// The subject token's `sub`, exactly (e.g. `repo:acme/api:ref:refs/heads/main`).
    pub subject: String,
}

/// A key that signs access tokens (JWTs). Shared by every node through the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKey {
    /// The JWT `kid`.
    pub kid: String,
    /// The JWS `alg`; only `EdDSA` (Ed25519) today.
    pub algorithm: String,
    /// The 32-byte Ed25519 seed. Never rendered, never logged.
    pub private_key: Vec<u8>,
    pub public_key: Vec<u8>,
    pub created_at: Millis,
    /// Set by rotation: the key stops signing then, and stays published in the JWKS until the
    /// tokens it signed have expired.
    pub retired_at: Option<Millis>,
}
