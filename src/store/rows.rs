//! Decoding rows into domain objects, written once for every sqlx backend. The functions are
//! generated per row type by [`decode_rows!`] because sqlx's generic `Row` bounds would be
//! longer than the bodies; only the column that differs in type (scopes: JSON text in SQLite,
//! `text[]` in PostgreSQL) is decoded by the backend itself.

use std::collections::HashMap;

use super::{StoreError, StoreResult};
use crate::domain::audit::{AuditEvent, EventType};
use ipnet::IpNet;

use crate::domain::ids::Id;
use crate::domain::limits::{Disabled, DisabledReason};
use crate::domain::model::{ApiKey, ServiceAccount};
use crate::domain::page::{Page, Window};
use crate::domain::time::Millis;

/// The audit events of a service account's deletion, with the keys it revoked added to
/// `service_account.deleted` (only the store's transaction knows exactly which they were).
pub(super) fn with_revoked_keys(
    audit: &[AuditEvent],
    revoked: &[String],
) -> StoreResult<Vec<AuditEvent>> {
    let ids = revoked
        .iter()
        .map(|raw| Id::parse(raw).ok_or_else(|| corrupt("api_keys.id")))
        .collect::<StoreResult<Vec<Id>>>()?;
    Ok(audit
        .iter()
        .cloned()
        .map(|mut e| {
            if e.event_type == EventType::ServiceAccountDeleted {
                e.note_revoked_keys(&ids);
            }
            e
        })
        .collect())
}

pub(super) fn corrupt(col: &'static str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("corrupt value in column {col}"))
}

/// A stored allowlist (a JSON array of CIDRs, see the 0004 migration); `None` allows any
/// address. A value that does not parse is corrupt, like any other column's.
pub(super) fn allowlist_col(raw: Option<String>) -> StoreResult<Option<Vec<IpNet>>> {
    let Some(raw) = raw else { return Ok(None) };
    let entries: Vec<String> = serde_json::from_str(&raw).map_err(|_| corrupt("allowed_ips"))?;
    entries
        .iter()
        .map(|e| e.parse::<IpNet>().map_err(|_| corrupt("allowed_ips")))
        .collect::<StoreResult<Vec<_>>>()
        .map(Some)
}

/// The disabled state from its two columns, which the schema keeps NULL together.
pub(super) fn disabled_col(
    at: Option<Millis>,
    reason: Option<String>,
) -> StoreResult<Option<Disabled>> {
    match (at, reason) {
        (None, None) => Ok(None),
        (Some(at), Some(reason)) => Ok(Some(Disabled {
            reason: DisabledReason::parse(&reason).ok_or_else(|| corrupt("disabled_reason"))?,
            at,
        })),
        _ => Err(corrupt("disabled_at")),
    }
}

/// A JSON column, decoded by `decode` (the domain's own reader of that form).
pub(super) fn json_col<T>(
    raw: &str,
    col: &'static str,
    decode: impl FnOnce(&serde_json::Value) -> Option<T>,
) -> StoreResult<T> {
    serde_json::from_str(raw)
        .ok()
        .and_then(|v| decode(&v))
        .ok_or_else(|| corrupt(col))
}

/// A guarded single-row write that touched nothing: its precondition failed.
pub(super) fn expect_one(rows: u64, why: &'static str) -> StoreResult<()> {
    if rows == 1 {
        Ok(())
    } else {
        Err(StoreError::Conflict(why))
    }
}

/// Pairs each key of a page with its owning account (fetched in one query by the backend).
pub(super) fn attach_owners(
    page: Page<ApiKey>,
    owners: Vec<ServiceAccount>,
) -> StoreResult<Page<(ApiKey, ServiceAccount)>> {
    let owners: HashMap<_, _> = owners.into_iter().map(|a| (a.id.clone(), a)).collect();
    let mut items = Vec::with_capacity(page.items.len());
    for key in page.items {
        let owner = key
            .service_account_id
            .as_ref()
            .and_then(|id| owners.get(id).cloned())
            .ok_or_else(|| corrupt("service_account_id"))?;
        items.push((key, owner));
    }
    Ok(Page {
        items,
        has_more: page.has_more,
    })
}

/// Which way a two-way list walks: forward from `after` (or from the start when there is no
/// cursor), or backward from `before`. Returns the cursor and `true` for forward.
pub(super) fn window_direction(window: &Window) -> StoreResult<(&Option<Id>, bool)> {
    match (&window.after, &window.before) {
        (Some(_), Some(_)) => Err(StoreError::Conflict("after and before are exclusive")),
        (None, Some(_)) => Ok((&window.before, false)),
        (_, None) => Ok((&window.after, true)),
    }
}

/// What an export reads, in order: each table (parents before children) with the columns the
/// backend selects from it (`cols`, in the same order), then the audit trail; every table in
/// creation order (rate limits, which have no creation order, by project and model). Pairs
/// each statement with the table name [`decode_rows!`]'s `record_row` takes. The admission
/// counters are not exported: they are ephemeral and age out within a day.
pub(super) fn export_queries(cols: [&str; 8], audit_select: &str) -> Vec<(&'static str, String)> {
    const TABLES: [(&str, &str); 8] = [
        ("organizations", "seq"),
        ("projects", "seq"),
        ("project_rate_limits", "project_id, model"),
        ("service_accounts", "seq"),
        ("api_keys", "seq"),
        ("credentials", "seq"),
        ("workload_identity_providers", "seq"),
        ("federation_rules", "seq"),
    ];
    let mut queries: Vec<_> = TABLES
        .iter()
        .zip(cols)
        .map(|((table, order), cols)| {
            (
                *table,
                format!("SELECT {cols} FROM {table} ORDER BY {order}"),
            )
        })
        .collect();
    queries.push(("audit_events", format!("{audit_select} ORDER BY e.seq")));
    queries
}

/// Generates `id_col`, `opt_id_col`, `organization_row`, `project_row`, `account_row`,
/// `key_row`, `rate_limit_row`, `credential_row`, `signing_key_row`, `audit_row` and `record_row` for `$row`;
/// `$scopes` decodes the scopes column.
macro_rules! decode_rows {
    ($row:ty, $scopes:path) => {
        fn id_col(row: &$row, col: &'static str) -> StoreResult<Id> {
            let raw: String = row.try_get(col)?;
            Id::parse(&raw).ok_or_else(|| super::rows::corrupt(col))
        }

        fn opt_id_col(row: &$row, col: &'static str) -> StoreResult<Option<Id>> {
            let raw: Option<String> = row.try_get(col)?;
            raw.map(|s| Id::parse(&s).ok_or_else(|| super::rows::corrupt(col)))
                .transpose()
        }

        fn organization_row(row: &$row) -> StoreResult<Organization> {
            Ok(Organization {
                id: id_col(row, "id")?,
                label: row.try_get("label")?,
                name: row.try_get("name")?,
                created_at: row.try_get("created_at")?,
            })
        }

        fn project_row(row: &$row) -> StoreResult<Project> {
            Ok(Project {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                name: row.try_get("name")?,
                external_key_id: row.try_get("external_key_id")?,
                is_default: row.try_get("is_default")?,
                created_at: row.try_get("created_at")?,
                archived_at: row.try_get("archived_at")?,
                allowed_ips: super::rows::allowlist_col(row.try_get("allowed_ips")?)?,
            })
        }

        fn account_row(row: &$row) -> StoreResult<ServiceAccount> {
            let role: String = row.try_get("role")?;
            Ok(ServiceAccount {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                project_id: opt_id_col(row, "project_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                role: Role::parse(&role).ok_or_else(|| super::rows::corrupt("role"))?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn key_row(row: &$row) -> StoreResult<ApiKey> {
            let kind: String = row.try_get("kind")?;
            let hash: Vec<u8> = row.try_get("key_hash")?;
            Ok(ApiKey {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                kind: KeyKind::from_db(&kind).ok_or_else(|| super::rows::corrupt("kind"))?,
                project_id: opt_id_col(row, "project_id")?,
                service_account_id: opt_id_col(row, "service_account_id")?,
                name: row.try_get("name")?,
                scopes: $scopes(row)?,
                hash: KeyHash::from_slice(&hash).ok_or_else(|| super::rows::corrupt("key_hash"))?,
                redacted_value: row.try_get("redacted_value")?,
                created_at: row.try_get("created_at")?,
                expires_at: row.try_get("expires_at")?,
                last_used_at: row.try_get("last_used_at")?,
                revoked_at: row.try_get("revoked_at")?,
                allowed_ips: super::rows::allowlist_col(row.try_get("allowed_ips")?)?,
                limits: $crate::domain::limits::KeyLimits {
                    max_requests_per_1_minute: row.try_get("max_requests_per_1_minute")?,
                    max_requests_per_1_day: row.try_get("max_requests_per_1_day")?,
                    max_tokens_per_1_minute: row.try_get("max_tokens_per_1_minute")?,
                },
                disabled: super::rows::disabled_col(
                    row.try_get("disabled_at")?,
                    row.try_get("disabled_reason")?,
                )?,
            })
        }

        fn rate_limit_row(row: &$row) -> StoreResult<$crate::domain::limits::ProjectRateLimit> {
            Ok($crate::domain::limits::ProjectRateLimit {
                organization_id: id_col(row, "organization_id")?,
                project_id: id_col(row, "project_id")?,
                model: row.try_get("model")?,
                overrides: $crate::domain::limits::RateLimitFields {
                    max_requests_per_1_minute: row.try_get("max_requests_per_1_minute")?,
                    max_tokens_per_1_minute: row.try_get("max_tokens_per_1_minute")?,
                    max_images_per_1_minute: row.try_get("max_images_per_1_minute")?,
                    max_audio_megabytes_per_1_minute: row
                        .try_get("max_audio_megabytes_per_1_minute")?,
                    max_requests_per_1_day: row.try_get("max_requests_per_1_day")?,
                    batch_1_day_max_input_tokens: row.try_get("batch_1_day_max_input_tokens")?,
                },
                updated_at: row.try_get("updated_at")?,
            })
        }

        fn credential_row(row: &$row) -> StoreResult<Credential> {
            let hash: Vec<u8> = row.try_get("secret_hash")?;
            Ok(Credential {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                service_account_id: id_col(row, "service_account_id")?,
                client_id: row.try_get("client_id")?,
                secret_hash: KeyHash::from_slice(&hash)
                    .ok_or_else(|| super::rows::corrupt("secret_hash"))?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                last_used_at: row.try_get("last_used_at")?,
                deleted_at: row.try_get("deleted_at")?,
                federation: match (opt_id_col(row, "provider_id")?, row.try_get("subject")?) {
                    (Some(provider_id), Some(subject)) => {
                        Some($crate::domain::model::CredentialFederation {
                            provider_id,
                            subject,
                        })
                    }
                    (None, None) => None,
                    _ => return Err(super::rows::corrupt("subject")),
                },
            })
        }

        fn signing_key_row(row: &$row) -> StoreResult<SigningKey> {
            Ok(SigningKey {
                kid: row.try_get("kid")?,
                algorithm: row.try_get("algorithm")?,
                private_key: row.try_get("private_key")?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get("created_at")?,
                retired_at: row.try_get("retired_at")?,
            })
        }

        fn audit_row(row: &$row) -> StoreResult<$crate::domain::audit::AuditEntry> {
            $crate::store::audit_sql::RawAudit {
                id: row.try_get("id")?,
                organization_id: row.try_get("organization_id")?,
                event_type: row.try_get("event_type")?,
                effective_at: row.try_get("effective_at")?,
                project_id: row.try_get("project_id")?,
                project_name: row.try_get("project_name")?,
                resource_id: row.try_get("resource_id")?,
                actor_type: row.try_get("actor_type")?,
                actor_id: row.try_get("actor_id")?,
                request_id: row.try_get("request_id")?,
                client_request_id: row.try_get("client_request_id")?,
                ip_address: row.try_get("ip_address")?,
                details: row.try_get("details")?,
                webhook_pending: row.try_get("webhook_pending")?,
            }
            .into_entry()
        }

        /// A row of an exported table as its [`Record`](crate::store::Record).
        fn provider_row(row: &$row) -> StoreResult<$crate::domain::federation::Provider> {
            use $crate::domain::federation as f;
            use $crate::store::rows::json_col;
            let transformations: String = row.try_get("attribute_transformations")?;
            let verification: String = row.try_get("verification")?;
            Ok(f::Provider {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                issuer: row.try_get("issuer")?,
                audience: row.try_get("audience")?,
                enabled: row.try_get("enabled")?,
                attribute_transformations: json_col(
                    &transformations,
                    "attribute_transformations",
                    f::transformations_from_json,
                )?,
                verification: json_col(&verification, "verification", f::Verification::from_json)?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                deleted_at: row.try_get("deleted_at")?,
            })
        }

        fn rule_row(row: &$row) -> StoreResult<$crate::domain::federation::FederationRule> {
            use $crate::domain::federation as f;
            use $crate::store::rows::json_col;
            let matchers: String = row.try_get("attribute_matchers")?;
            let permissions: String = row.try_get("permissions")?;
            Ok(f::FederationRule {
                id: id_col(row, "id")?,
                organization_id: id_col(row, "organization_id")?,
                provider_id: id_col(row, "provider_id")?,
                project_id: id_col(row, "project_id")?,
                service_account_id: id_col(row, "service_account_id")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                enabled: row.try_get("enabled")?,
                attribute_matchers: json_col(
                    &matchers,
                    "attribute_matchers",
                    f::matchers_from_json,
                )?,
                permissions: json_col(&permissions, "permissions", f::Permissions::from_json)?,
                created_at: row.try_get("created_at")?,
                updated_at: row.try_get("updated_at")?,
                deleted_at: row.try_get("deleted_at")?,
            })
        }

        fn record_row(table: &str, row: &$row) -> StoreResult<$crate::store::Record> {
            use $crate::store::Record;
            Ok(match table {
                "organizations" => Record::Organization(organization_row(row)?),
                "projects" => Record::Project(project_row(row)?),
                "project_rate_limits" => Record::ProjectRateLimit(rate_limit_row(row)?),
                "service_accounts" => Record::ServiceAccount {
                    account: account_row(row)?,
                    deleted_at: row.try_get("deleted_at")?,
                },
                "api_keys" => Record::ApiKey(key_row(row)?),
                "credentials" => Record::Credential(credential_row(row)?),
                "workload_identity_providers" => Record::Provider(provider_row(row)?),
                "federation_rules" => Record::FederationRule(rule_row(row)?),
                _ => Record::AuditEvent(audit_row(row)?.event),
            })
        }
    };
}

pub(super) use decode_rows;
