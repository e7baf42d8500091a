//! Statement arguments as owned values, so that a statement and what it binds travel as data:
//! SQLite moves its writes to the writer task, and each backend runs its lookups, pages and
//! guarded single-row writes through one helper apiece instead of spelling out every
//! `.bind(…)` chain. Each backend turns them into its own binds (`bind_args`), with the same
//! Rust types the chains bound before, so the database sees the same parameter types.

use std::collections::BTreeMap;

use ipnet::IpNet;

use super::audit_sql::Bind;
use super::Count;
use crate::domain::audit::AuditEvent;
use crate::domain::federation::{
    matchers_to_json, transformations_to_json, FederationRule, Provider,
};
use crate::domain::ids::Id;
use crate::domain::limits::{render_allowlist, Disabled, ProjectRateLimit};
use crate::domain::model::{ApiKey, Credential, Organization, Project, ServiceAccount};
use crate::domain::time::Millis;

/// `args![a, b, …]`: the values as [`Arg`]s, in placeholder order.
macro_rules! args {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::store::binds::Arg::from($value)),*]
    };
}

pub(crate) use args;

/// A value to bind, in placeholder order (build a list with [`args!`]).
pub enum Arg {
    Text(String),
    OptText(Option<String>),
    Int(i64),
    OptInt(Option<i64>),
    Bool(bool),
    Bytes(Vec<u8>),
    /// A list: `text[]` in PostgreSQL, a JSON array in SQLite (scopes).
    Texts(Vec<String>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Arg::Text(v.to_owned())
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Arg::Text(v)
    }
}

impl From<&String> for Arg {
    fn from(v: &String) -> Self {
        Arg::Text(v.clone())
    }
}

impl From<&Id> for Arg {
    fn from(v: &Id) -> Self {
        Arg::Text(v.as_str().to_owned())
    }
}

impl From<&Option<String>> for Arg {
    fn from(v: &Option<String>) -> Self {
        Arg::OptText(v.clone())
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Arg::Int(v)
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Arg::OptInt(v)
    }
}

impl From<bool> for Arg {
    fn from(v: bool) -> Self {
        Arg::Bool(v)
    }
}

impl From<&[u8]> for Arg {
    fn from(v: &[u8]) -> Self {
        Arg::Bytes(v.to_vec())
    }
}

impl From<&Vec<String>> for Arg {
    fn from(v: &Vec<String>) -> Self {
        Arg::Texts(v.clone())
    }
}

impl From<Bind> for Arg {
    fn from(b: Bind) -> Self {
        match b {
            Bind::Text(t) => Arg::Text(t),
            Bind::Int(n) => Arg::Int(n),
        }
    }
}

impl From<Option<&Id>> for Arg {
    fn from(v: Option<&Id>) -> Self {
        Arg::OptText(v.map(|id| id.as_str().to_owned()))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Arg::OptText(v)
    }
}

/// How an allowlist is stored: a JSON array of CIDRs as `ipnet` renders them (`None`: any).
pub fn allowlist_text(list: &Option<Vec<IpNet>>) -> Arg {
    Arg::OptText(list.as_deref().map(|l| {
        // A list of strings always serialises; the fallback only satisfies the type.
        serde_json::to_string(&render_allowlist(l)).unwrap_or_else(|_| "[]".to_owned())
    }))
}

/// The two disabled columns, `disabled_at` then `disabled_reason`.
pub fn disabled_values(d: Option<&Disabled>) -> Vec<Arg> {
    args![d.map(|d| d.at), d.map(|d| d.reason.as_str().to_owned())]
}

// What a full row binds, in the column order both backends' inserts name (the `*_COLS` lists
// of each backend); only how a backend spells placeholders and timestamps differs.

pub fn organization_values(org: &Organization) -> Vec<Arg> {
    args![&org.id, &org.label, &org.name, org.created_at]
}

pub fn project_values(p: &Project) -> Vec<Arg> {
    args![
        &p.id,
        &p.organization_id,
        &p.name,
        &p.external_key_id,
        p.is_default,
        p.created_at,
        p.archived_at,
        allowlist_text(&p.allowed_ips),
    ]
}

/// Without `deleted_at`, which only an import writes (it follows these).
pub fn account_values(a: &ServiceAccount) -> Vec<Arg> {
    args![
        &a.id,
        &a.organization_id,
        a.project_id.as_ref(),
        &a.name,
        &a.description,
        a.role.as_str(),
        a.created_at,
        a.updated_at,
    ]
}

pub fn key_values(k: &ApiKey) -> Vec<Arg> {
    let mut values = args![
        &k.id,
        &k.organization_id,
        k.kind.as_str(),
        k.project_id.as_ref(),
        k.service_account_id.as_ref(),
        &k.name,
        &k.scopes,
        k.hash.as_bytes(),
        &k.redacted_value,
        k.created_at,
        k.expires_at,
        k.last_used_at,
        k.revoked_at,
        allowlist_text(&k.allowed_ips),
        k.limits.max_requests_per_1_minute,
        k.limits.max_requests_per_1_day,
        k.limits.max_tokens_per_1_minute,
    ];
    values.extend(disabled_values(k.disabled.as_ref()));
    values
}

/// In the order of `project_rate_limits (organization_id, project_id, model,` the six
/// [`RateLimitFields`](crate::domain::limits::RateLimitFields) in their `NAMES` order,
/// `updated_at)`.
pub fn rate_limit_values(l: &ProjectRateLimit) -> Vec<Arg> {
    let mut values = args![&l.organization_id, &l.project_id, &l.model];
    values.extend(l.overrides.fields().into_iter().map(|(_, v)| Arg::from(v)));
    values.push(Arg::from(l.updated_at));
    values
}

pub fn credential_values(c: &Credential) -> Vec<Arg> {
    args![
        &c.id,
        &c.organization_id,
        &c.service_account_id,
        &c.client_id,
        c.secret_hash.as_bytes(),
        &c.name,
        &c.description,
        c.created_at,
        c.updated_at,
        c.last_used_at,
        c.deleted_at,
        c.federation
            .as_ref()
            .map(|f| f.provider_id.as_str().to_owned()),
        c.federation.as_ref().map(|f| f.subject.clone()),
    ]
}

/// In the order of the providers' columns (`PROVIDER_COLS`).
pub fn provider_values(p: &Provider) -> Vec<Arg> {
    args![
        &p.id,
        &p.organization_id,
        &p.name,
        &p.description,
        &p.issuer,
        &p.audience,
        p.enabled,
        transformations_to_json(&p.attribute_transformations).to_string(),
        p.verification.to_json().to_string(),
        p.created_at,
        p.updated_at,
        p.deleted_at,
    ]
}

/// In the order of the rules' columns (`RULE_COLS`).
pub fn rule_values(r: &FederationRule) -> Vec<Arg> {
    args![
        &r.id,
        &r.organization_id,
        &r.provider_id,
        &r.project_id,
        &r.service_account_id,
        &r.name,
        &r.description,
        r.enabled,
        matchers_to_json(&r.attribute_matchers).to_string(),
        r.permissions.to_json().to_string(),
        r.created_at,
        r.updated_at,
        r.deleted_at,
    ]
}

/// In the order of `audit_events (id, organization_id, event_type, effective_at, project_id,
/// resource_id, actor_type, actor_id, request_id, client_request_id, ip_address, details,
/// webhook_pending, webhook_next_at)`.
pub fn audit_values(e: &AuditEvent) -> Vec<Arg> {
    args![
        &e.id,
        e.organization_id.as_ref(),
        e.event_type.as_str(),
        e.effective_at,
        e.project_id.as_ref(),
        &e.resource_id,
        e.actor.type_str(),
        e.actor.rendered_id(),
        &e.origin.request_id,
        &e.origin.client_request_id,
        e.origin.ip_address.map(|ip| ip.to_string()),
        e.details.to_string(),
        e.notify_webhook,
        e.notify_webhook.then_some(e.effective_at),
    ]
}

/// Generates, for a backend whose statements are `Query<'q>` (a type alias at the call site)
/// and whose rows are `$row`: `bind_args`, and on `$store` the read shapes `fetch_opt` and
/// `fetch_page` on its pool field `$pool`, spelling shared SQL with `$dialect`. `$list` turns an [`Arg::Texts`] into what the
/// backend binds for a list. A macro for the same reason as `rows::decode_rows!`.
macro_rules! query_fns {
    ($store:ty, $row:ty, $pool:ident, $dialect:expr, $list:expr) => {
        /// Binds `args` in order.
        fn bind_args(mut q: Query<'_>, args: Vec<Arg>) -> Query<'_> {
            use $crate::store::binds::Arg;
            for arg in args {
                q = match arg {
                    Arg::Text(v) => q.bind(v),
                    Arg::OptText(v) => q.bind(v),
                    Arg::Int(v) => q.bind(v),
                    Arg::OptInt(v) => q.bind(v),
                    Arg::Bool(v) => q.bind(v),
                    Arg::Bytes(v) => q.bind(v),
                    Arg::Texts(v) => q.bind($list(v)),
                };
            }
            q
        }

        impl $store {
            /// The row `sql` selects, if any, decoded.
            async fn fetch_opt<T>(
                &self,
                sql: &str,
                args: Vec<Arg>,
                decode: fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<Option<T>> {
                let sql = $dialect.spell(sql);
                let row = bind_args(sqlx::query(&sql), args)
                    .fetch_optional(&self.$pool)
                    .await?;
                row.as_ref().map(decode).transpose()
            }

            /// Every row `sql` selects, decoded.
            async fn fetch_all<T>(
                &self,
                sql: &str,
                args: Vec<Arg>,
                decode: fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<Vec<T>> {
                let sql = $dialect.spell(sql);
                let rows = bind_args(sqlx::query(&sql), args)
                    .fetch_all(&self.$pool)
                    .await?;
                rows.iter().map(decode).collect()
            }

            /// A page of at most `limit` rows; `sql` asks for one more, which tells that more
            /// follow.
            async fn fetch_page<T>(
                &self,
                sql: &str,
                args: Vec<Arg>,
                limit: u32,
                decode: fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<$crate::domain::page::Page<T>> {
                let sql = $dialect.spell(sql);
                let rows = bind_args(sqlx::query(&sql), args)
                    .fetch_all(&self.$pool)
                    .await?;
                let items = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
                Ok($crate::domain::page::Page::from_overfetch(items, limit))
            }
        }
    };
}

pub(super) use query_fns;

/// A batch of counts as written: one per (subject, bucket, span, node), the last given
/// winning (an upsert may not touch one row twice in a statement), sorted by that key so that
/// concurrent batches lock rows in one order.
pub fn count_batch(counts: &[Count]) -> Vec<Count> {
    let mut latest: BTreeMap<(&str, Millis, Millis, &str), &Count> = BTreeMap::new();
    for c in counts {
        latest.insert((&c.subject, c.bucket, c.span, &c.node), c);
    }
    latest.into_values().cloned().collect()
}
