//! `keyplane export` / `keyplane import`: a whole installation as one JSON-lines stream, so a
//! team can move between SQLite and PostgreSQL without re-issuing a single key.
//!
//! The stream is a header line, one line per stored row (parents before children, each table
//! in creation order), and an `end` line with the record count. Import refuses a stream
//! without its `end` line (truncated), a newer format or schema, and a non-empty target; it
//! writes everything in one transaction, so a failed import leaves the target untouched.
//! Key hashes travel as hex; no plaintext secret exists anywhere to be exported.

use std::io::{BufRead, Write};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};

use crate::domain::audit::{Actor, AuditEvent, EventType, Origin};
use crate::domain::ids::Id;
use crate::domain::keys::{KeyHash, KeyKind};
use crate::domain::limits::{
    render_allowlist, Disabled, DisabledReason, KeyLimits, ProjectRateLimit, RateLimitFields,
};
use crate::domain::model::{
    ApiKey, Credential, CredentialFederation, Organization, Project, Role, ServiceAccount,
};
use crate::domain::time::Millis;
use crate::store::{schema_version, Record, Store};

mod federation;

pub const FORMAT: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line {
    KeyplaneExport {
        format: u32,
        schema_version: i64,
    },
    Organization {
        id: String,
        label: String,
        name: String,
        created_at: Millis,
    },
    Project {
        id: String,
        organization_id: String,
        name: String,
        external_key_id: Option<String>,
        is_default: bool,
        created_at: Millis,
        archived_at: Option<Millis>,
        // Absent from exports made before allowlists existed: any address, as then.
        #[serde(default)]
        allowed_ips: Option<Vec<String>>,
    },
    ProjectRateLimit {
        organization_id: String,
        project_id: String,
        model: String,
        max_requests_per_1_minute: Option<i64>,
        max_tokens_per_1_minute: Option<i64>,
        max_images_per_1_minute: Option<i64>,
        max_audio_megabytes_per_1_minute: Option<i64>,
        max_requests_per_1_day: Option<i64>,
        batch_1_day_max_input_tokens: Option<i64>,
        updated_at: Millis,
    },
    ServiceAccount {
        id: String,
        organization_id: String,
        project_id: Option<String>,
        name: String,
        description: Option<String>,
        role: String,
        created_at: Millis,
        updated_at: Millis,
        deleted_at: Option<Millis>,
    },
    ApiKey {
        id: String,
        organization_id: String,
        kind: String,
        project_id: Option<String>,
        service_account_id: Option<String>,
        name: String,
        scopes: Vec<String>,
        key_hash: String,
        redacted_value: String,
        created_at: Millis,
        expires_at: Option<Millis>,
        last_used_at: Option<Millis>,
        revoked_at: Option<Millis>,
        // The admission fields are absent from exports made before they existed: no
        // allowlist, no limits, enabled; as those keys were then.
        #[serde(default)]
        allowed_ips: Option<Vec<String>>,
        #[serde(default)]
        max_requests_per_1_minute: Option<i64>,
        #[serde(default)]
        max_requests_per_1_day: Option<i64>,
        #[serde(default)]
        max_tokens_per_1_minute: Option<i64>,
        #[serde(default)]
        disabled_at: Option<Millis>,
        #[serde(default)]
        disabled_reason: Option<String>,
    },
    Credential {
        id: String,
        organization_id: String,
        service_account_id: String,
        client_id: String,
        secret_hash: String,
        name: String,
        description: Option<String>,
        created_at: Millis,
        updated_at: Millis,
        last_used_at: Option<Millis>,
        deleted_at: Option<Millis>,
        /// Workload identity federation (absent in older exports).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    AuditEvent {
        id: String,
        organization_id: Option<String>,
        event_type: String,
        effective_at: Millis,
        project_id: Option<String>,
        resource_id: String,
        actor_type: String,
        actor_id: Option<String>,
        request_id: Option<String>,
        client_request_id: Option<String>,
        ip_address: Option<String>,
        details: serde_json::Value,
        webhook_pending: bool,
    },
    WorkloadIdentityProvider(federation::ProviderLine),
    FederationRule(federation::RuleLine),
    End {
        records: u64,
    },
}

impl From<Record> for Line {
    fn from(r: Record) -> Self {
        let s = |id: Id| id.to_string();
        let o = |id: Option<Id>| id.map(|i| i.to_string());
        let ips = |list: Option<Vec<ipnet::IpNet>>| list.map(|l| render_allowlist(&l));
        match r {
            Record::Organization(x) => Line::Organization {
                id: s(x.id),
                label: x.label,
                name: x.name,
                created_at: x.created_at,
            },
            Record::Project(x) => Line::Project {
                id: s(x.id),
                organization_id: s(x.organization_id),
                name: x.name,
                external_key_id: x.external_key_id,
                is_default: x.is_default,
                created_at: x.created_at,
                archived_at: x.archived_at,
                allowed_ips: ips(x.allowed_ips),
            },
            Record::ProjectRateLimit(x) => Line::ProjectRateLimit {
                organization_id: s(x.organization_id),
                project_id: s(x.project_id),
                model: x.model,
                max_requests_per_1_minute: x.overrides.max_requests_per_1_minute,
                max_tokens_per_1_minute: x.overrides.max_tokens_per_1_minute,
                max_images_per_1_minute: x.overrides.max_images_per_1_minute,
                max_audio_megabytes_per_1_minute: x.overrides.max_audio_megabytes_per_1_minute,
                max_requests_per_1_day: x.overrides.max_requests_per_1_day,
                batch_1_day_max_input_tokens: x.overrides.batch_1_day_max_input_tokens,
                updated_at: x.updated_at,
            },
            Record::ServiceAccount {
                account: x,
                deleted_at,
            } => Line::ServiceAccount {
                id: s(x.id),
                organization_id: s(x.organization_id),
                project_id: o(x.project_id),
                name: x.name,
                description: x.description,
                role: x.role.as_str().to_owned(),
                created_at: x.created_at,
                updated_at: x.updated_at,
                deleted_at,
            },
            Record::ApiKey(x) => Line::ApiKey {
                id: s(x.id),
                organization_id: s(x.organization_id),
                kind: x.kind.as_str().to_owned(),
                project_id: o(x.project_id),
                service_account_id: o(x.service_account_id),
                name: x.name,
                scopes: x.scopes,
                key_hash: hex::encode(x.hash.as_bytes()),
                redacted_value: x.redacted_value,
                created_at: x.created_at,
                expires_at: x.expires_at,
                last_used_at: x.last_used_at,
                revoked_at: x.revoked_at,
                allowed_ips: ips(x.allowed_ips),
                max_requests_per_1_minute: x.limits.max_requests_per_1_minute,
                max_requests_per_1_day: x.limits.max_requests_per_1_day,
                max_tokens_per_1_minute: x.limits.max_tokens_per_1_minute,
                disabled_at: x.disabled.map(|d| d.at),
                disabled_reason: x.disabled.map(|d| d.reason.as_str().to_owned()),
            },
            Record::Credential(x) => Line::Credential {
                id: s(x.id),
                organization_id: s(x.organization_id),
                service_account_id: s(x.service_account_id),
                client_id: x.client_id,
                secret_hash: hex::encode(x.secret_hash.as_bytes()),
                name: x.name,
                description: x.description,
                created_at: x.created_at,
                updated_at: x.updated_at,
                last_used_at: x.last_used_at,
                deleted_at: x.deleted_at,
                provider_id: x.federation.as_ref().map(|f| f.provider_id.to_string()),
                subject: x.federation.map(|f| f.subject),
            },
            Record::Provider(x) => Line::WorkloadIdentityProvider(x.into()),
            Record::FederationRule(x) => Line::FederationRule(x.into()),
            Record::AuditEvent(x) => Line::AuditEvent {
                id: s(x.id),
                organization_id: o(x.organization_id),
                event_type: x.event_type.as_str().to_owned(),
                effective_at: x.effective_at,
                project_id: o(x.project_id),
                resource_id: x.resource_id,
                actor_type: x.actor.type_str().to_owned(),
                actor_id: x.actor.rendered_id(),
                request_id: x.origin.request_id,
                client_request_id: x.origin.client_request_id,
                ip_address: x.origin.ip_address.map(|ip| ip.to_string()),
                details: x.details,
                webhook_pending: x.notify_webhook,
            },
        }
    }
}

fn id(s: &str) -> anyhow::Result<Id> {
    Id::parse(s).ok_or_else(|| anyhow!("invalid id {s:?}"))
}

fn opt_id(s: &Option<String>) -> anyhow::Result<Option<Id>> {
    s.as_deref().map(id).transpose()
}

/// An allowlist as exported: CIDRs as `ipnet` renders them.
fn allowlist(list: Option<Vec<String>>) -> anyhow::Result<Option<Vec<ipnet::IpNet>>> {
    list.map(|l| {
        l.iter()
            .map(|e| {
                e.parse()
                    .map_err(|_| anyhow!("invalid allowed_ips entry {e:?}"))
            })
            .collect()
    })
    .transpose()
}

fn disabled(at: Option<Millis>, reason: Option<String>) -> anyhow::Result<Option<Disabled>> {
    match (at, reason) {
        (None, None) => Ok(None),
        (Some(at), Some(reason)) => Ok(Some(Disabled {
            reason: DisabledReason::parse(&reason)
                .ok_or_else(|| anyhow!("invalid disabled_reason {reason:?}"))?,
            at,
        })),
        _ => bail!("disabled_at and disabled_reason must be given together"),
    }
}

/// A data line as a record; `None` for the header and end lines.
fn record(line: Line) -> anyhow::Result<Option<Record>> {
    Ok(Some(match line {
        Line::KeyplaneExport { .. } | Line::End { .. } => return Ok(None),
        Line::WorkloadIdentityProvider(x) => Record::Provider(x.into_record()?),
        Line::FederationRule(x) => Record::FederationRule(x.into_record()?),
        Line::Organization {
            id: i,
            label,
            name,
            created_at,
        } => Record::Organization(Organization {
            id: id(&i)?,
            label,
            name,
            created_at,
        }),
        Line::Project {
            id: i,
            organization_id,
            name,
            external_key_id,
            is_default,
            created_at,
            archived_at,
            allowed_ips,
        } => Record::Project(Project {
            id: id(&i)?,
            organization_id: id(&organization_id)?,
            name,
            external_key_id,
            is_default,
            created_at,
            archived_at,
            allowed_ips: allowlist(allowed_ips)?,
        }),
        Line::ProjectRateLimit {
            organization_id,
            project_id,
            model,
            max_requests_per_1_minute,
            max_tokens_per_1_minute,
            max_images_per_1_minute,
            max_audio_megabytes_per_1_minute,
            max_requests_per_1_day,
            batch_1_day_max_input_tokens,
            updated_at,
        } => Record::ProjectRateLimit(ProjectRateLimit {
            organization_id: id(&organization_id)?,
            project_id: id(&project_id)?,
            model,
            overrides: RateLimitFields {
                max_requests_per_1_minute,
                max_tokens_per_1_minute,
                max_images_per_1_minute,
                max_audio_megabytes_per_1_minute,
                max_requests_per_1_day,
                batch_1_day_max_input_tokens,
            },
            updated_at,
        }),
        Line::ServiceAccount {
            id: i,
            organization_id,
            project_id,
            name,
            description,
            role,
            created_at,
            updated_at,
            deleted_at,
        } => Record::ServiceAccount {
            account: ServiceAccount {
                id: id(&i)?,
                organization_id: id(&organization_id)?,
                project_id: opt_id(&project_id)?,
                name,
                description,
                role: Role::parse(&role).ok_or_else(|| anyhow!("invalid role {role:?}"))?,
                created_at,
                updated_at,
            },
            deleted_at,
        },
        Line::ApiKey {
            id: i,
            organization_id,
            kind,
            project_id,
            service_account_id,
            name,
            scopes,
            key_hash,
            redacted_value,
            created_at,
            expires_at,
            last_used_at,
            revoked_at,
            allowed_ips,
            max_requests_per_1_minute,
            max_requests_per_1_day,
            max_tokens_per_1_minute,
            disabled_at,
            disabled_reason,
        } => Record::ApiKey(ApiKey {
            id: id(&i)?,
            organization_id: id(&organization_id)?,
            kind: KeyKind::from_db(&kind).ok_or_else(|| anyhow!("invalid key kind {kind:?}"))?,
            project_id: opt_id(&project_id)?,
            service_account_id: opt_id(&service_account_id)?,
            name,
            scopes,
            hash: unhex(&key_hash)
                .and_then(|b| KeyHash::from_slice(&b))
                .ok_or_else(|| anyhow!("invalid key_hash"))?,
            redacted_value,
            created_at,
            expires_at,
            last_used_at,
            revoked_at,
            allowed_ips: allowlist(allowed_ips)?,
            limits: KeyLimits {
                max_requests_per_1_minute,
                max_requests_per_1_day,
                max_tokens_per_1_minute,
            },
            disabled: disabled(disabled_at, disabled_reason)?,
        }),
        Line::Credential {
            id: i,
            organization_id,
            service_account_id,
            client_id,
            secret_hash,
            name,
            description,
            created_at,
            updated_at,
            last_used_at,
            deleted_at,
            provider_id,
            subject,
        } => Record::Credential(Credential {
            id: id(&i)?,
            organization_id: id(&organization_id)?,
            service_account_id: id(&service_account_id)?,
            client_id,
            secret_hash: unhex(&secret_hash)
                .and_then(|b| KeyHash::from_slice(&b))
                .ok_or_else(|| anyhow!("invalid secret_hash"))?,
            name,
            description,
            created_at,
            updated_at,
            last_used_at,
            deleted_at,
            federation: match (provider_id, subject) {
                (Some(p), Some(subject)) => Some(CredentialFederation {
                    provider_id: id(&p)?,
                    subject,
                }),
                (None, None) => None,
                _ => bail!("a credential with only one of provider_id and subject"),
            },
        }),
        Line::AuditEvent {
            id: i,
            organization_id,
            event_type,
            effective_at,
            project_id,
            resource_id,
            actor_type,
            actor_id,
            request_id,
            client_request_id,
            ip_address,
            details,
            webhook_pending,
        } => Record::AuditEvent(AuditEvent {
            id: id(&i)?,
            organization_id: opt_id(&organization_id)?,
            event_type: EventType::parse(&event_type)
                .ok_or_else(|| anyhow!("invalid audit event type {event_type:?}"))?,
            effective_at,
            project_id: opt_id(&project_id)?,
            resource_id,
            actor: Actor::from_stored(&actor_type, actor_id.as_deref())
                .ok_or_else(|| anyhow!("invalid audit actor {actor_type:?}"))?,
            origin: Origin {
                request_id,
                client_request_id,
                ip_address: ip_address
                    .map(|ip| ip.parse().map_err(|_| anyhow!("invalid ip address {ip:?}")))
                    .transpose()?,
            },
            details,
            notify_webhook: webhook_pending,
        }),
    }))
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    hex::decode(s).ok()
}

fn write_line(out: &mut (impl Write + ?Sized), line: &Line) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, line)?;
    out.write_all(b"\n")?;
    Ok(())
}

/// Writes the whole store to `out`; returns the number of records.
pub async fn export(store: &dyn Store, out: &mut (dyn Write + Send)) -> anyhow::Result<u64> {
    write_line(
        out,
        &Line::KeyplaneExport {
            format: FORMAT,
            schema_version: schema_version(),
        },
    )?;
    let records = store
        .export(&mut |r: Record| write_line(out, &Line::from(r)))
        .await
        .context("reading the store")?;
    write_line(out, &Line::End { records })?;
    out.flush()?;
    Ok(records)
}

/// Reads an export stream into `store`, which must be empty; returns the number of records.
pub async fn import(store: &dyn Store, input: Box<dyn BufRead + Send>) -> anyhow::Result<u64> {
    if !store.is_empty().await? {
        bail!("the target store is not empty: import only into a fresh installation (run `keyplane migrate`, then import, before the first `serve`)");
    }
    let mut lines = input.lines().enumerate();
    let header = match lines.next() {
        Some((_, line)) => {
            serde_json::from_str::<Line>(&line?).context("line 1: not a keyplane export header")?
        }
        None => bail!("the input is empty"),
    };
    match header {
        Line::KeyplaneExport {
            format,
            schema_version: v,
        } => {
            if format > FORMAT {
                bail!("export format {format} is newer than this keyplane understands ({FORMAT})");
            }
            if v > schema_version() {
                bail!(
                    "the export comes from schema version {v}, newer than this keyplane ({})",
                    schema_version()
                );
            }
        }
        _ => bail!("line 1: not a keyplane export header"),
    }
    let mut source = RecordLines {
        lines,
        count: 0,
        ended: false,
    };
    let imported = store.import(&mut source).await.context("importing")?;
    Ok(imported)
}

/// Yields the records of the stream and fails (so the import rolls back) on a malformed line,
/// a count mismatch, data after the end line, or a missing end line.
struct RecordLines<I> {
    lines: I,
    count: u64,
    ended: bool,
}

impl<I: Iterator<Item = (usize, std::io::Result<String>)>> Iterator for RecordLines<I> {
    type Item = anyhow::Result<Record>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let Some((i, line)) = self.lines.next() else {
                return (!self.ended)
                    .then(|| Err(anyhow!("the stream ends without its end line (truncated?)")));
            };
            let n = i + 1;
            let parsed = line
                .map_err(anyhow::Error::from)
                .and_then(|l| serde_json::from_str::<Line>(&l).map_err(anyhow::Error::from))
                .with_context(|| format!("line {n}"));
            let line = match parsed {
                Ok(l) => l,
                Err(e) => return Some(Err(e)),
            };
            if self.ended {
                return Some(Err(anyhow!("line {n}: data after the end line")));
            }
            if let Line::End { records } = line {
                if records != self.count {
                    return Some(Err(anyhow!(
                        "line {n}: the end line counts {records} records but the stream holds {}",
                        self.count
                    )));
                }
                self.ended = true;
                continue;
            }
            match record(line) {
                Ok(Some(r)) => {
                    self.count += 1;
                    return Some(Ok(r));
                }
                Ok(None) => return Some(Err(anyhow!("line {n}: a second header"))),
                Err(e) => return Some(Err(e.context(format!("line {n}")))),
            }
        }
    }
}

#[cfg(test)]
mod tests;
