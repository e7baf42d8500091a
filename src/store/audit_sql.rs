//! The audit-log SQL both backends share: the filtered list query (only placeholders and the
//! timestamp conversion differ) and the decoding of a row into an [`AuditEntry`].

use std::fmt::Write;

use super::dialect::Dialect;
use super::{StoreError, StoreResult};
use crate::domain::audit::{Actor, AuditEntry, AuditEvent, AuditQuery, EventType, Origin};
use crate::domain::ids::Id;
use crate::domain::time::Millis;

/// A value to bind, in placeholder order.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// Builds `WHERE … ORDER BY … LIMIT …` for one page of the list: `cursor_seq` is the seq of
/// the `after` (older than) or `before` (newer than) event. A `before` page is fetched oldest
/// first, so the caller reverses it.
pub fn list_clause(
    d: &Dialect,
    org: &Id,
    q: &AuditQuery,
    cursor_seq: Option<i64>,
) -> (String, Vec<Bind>) {
    let mut binds = Vec::new();
    let mut p = |b: Bind| {
        binds.push(b);
        (d.placeholder)(binds.len())
    };
    let mut sql = String::new();
    let org_p = p(Bind::Text(org.as_str().to_owned()));
    let _ = write!(
        sql,
        " WHERE (e.organization_id = {org_p} OR e.organization_id IS NULL)"
    );
    if let Some(from) = q.from {
        let _ = write!(
            sql,
            " AND e.effective_at >= {}",
            (d.ts)(&p(Bind::Int(from)))
        );
    }
    if let Some(until) = q.until {
        let _ = write!(
            sql,
            " AND e.effective_at < {}",
            (d.ts)(&p(Bind::Int(until)))
        );
    }
    let mut any_of = |sql: &mut String, column: &str, values: Vec<String>| {
        if values.is_empty() {
            return;
        }
        // A value with a NUL names nothing stored (PostgreSQL text cannot even hold one, and
        // binding it is an error): it becomes the empty string, which matches nothing either.
        let list: Vec<String> = values
            .into_iter()
            .map(|v| p(Bind::Text(if v.contains('\0') { String::new() } else { v })))
            .collect();
        let _ = write!(sql, " AND e.{column} IN ({})", list.join(", "));
    };
    any_of(&mut sql, "project_id", q.project_ids.clone());
    any_of(
        &mut sql,
        "event_type",
        q.event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
    );
    any_of(&mut sql, "actor_id", q.actor_ids.clone());
    any_of(&mut sql, "resource_id", q.resource_ids.clone());
    let newer = q.before.is_some();
    if let Some(seq) = cursor_seq {
        let op = if newer { ">" } else { "<" };
        let _ = write!(sql, " AND e.seq {op} {}", p(Bind::Int(seq)));
    }
    let order = if newer { "ASC" } else { "DESC" };
    let limit = p(Bind::Int(i64::from(q.limit) + 1));
    let _ = write!(sql, " ORDER BY e.seq {order} LIMIT {limit}");
    (sql, binds)
}

/// One stored row, as read by either backend.
pub struct RawAudit {
    pub id: String,
    pub organization_id: Option<String>,
    pub event_type: String,
    pub effective_at: Millis,
    pub project_id: Option<String>,
    pub project_name: Option<String>,
    pub resource_id: String,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub request_id: Option<String>,
    pub client_request_id: Option<String>,
    pub ip_address: Option<String>,
    pub details: String,
    pub webhook_pending: bool,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!(
        "stored audit event has an invalid {what}: {value:?}"
    ))
}

fn id(what: &str, s: &str) -> StoreResult<Id> {
    Id::parse(s).ok_or_else(|| corrupt(what, s))
}

impl RawAudit {
    pub fn into_entry(self) -> StoreResult<AuditEntry> {
        let event_type =
            EventType::parse(&self.event_type).ok_or_else(|| corrupt("type", &self.event_type))?;
        let actor = Actor::from_stored(&self.actor_type, self.actor_id.as_deref())
            .ok_or_else(|| corrupt("actor", &self.actor_type))?;
        let ip_address = match self.ip_address {
            None => None,
            Some(ip) => Some(ip.parse().map_err(|_| corrupt("ip address", &ip))?),
        };
        let details =
            serde_json::from_str(&self.details).map_err(|_| corrupt("details", &self.details))?;
        Ok(AuditEntry {
            event: AuditEvent {
                id: id("id", &self.id)?,
                organization_id: self
                    .organization_id
                    .as_deref()
                    .map(|s| id("organization", s))
                    .transpose()?,
                event_type,
                effective_at: self.effective_at,
                project_id: self
                    .project_id
                    .as_deref()
                    .map(|s| id("project", s))
                    .transpose()?,
                resource_id: self.resource_id,
                actor,
                origin: Origin {
                    request_id: self.request_id,
                    client_request_id: self.client_request_id,
                    ip_address,
                },
                details,
                notify_webhook: self.webhook_pending,
            },
            project_name: self.project_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::dialect::{POSTGRES, SQLITE};
    fn sqlite() -> Dialect {
        SQLITE
    }

    fn postgres() -> Dialect {
        POSTGRES
    }

    #[test]
    fn the_plain_list_filters_by_organization_only() {
        let org = Id::generate().unwrap();
        let q = AuditQuery {
            limit: 20,
            ..AuditQuery::default()
        };
        let (sql, binds) = list_clause(&postgres(), &org, &q, None);
        assert_eq!(
            sql,
            " WHERE (e.organization_id = $1 OR e.organization_id IS NULL) ORDER BY e.seq DESC LIMIT $2"
        );
        assert_eq!(
            binds,
            vec![Bind::Text(org.as_str().to_owned()), Bind::Int(21)]
        );
    }

    #[test]
    fn every_filter_binds_its_values_in_placeholder_order() {
        let org = Id::generate().unwrap();
        let before = Id::generate().unwrap();
        let q = AuditQuery {
            from: Some(1_000),
            until: Some(2_000),
            project_ids: vec!["p1".into(), "p2".into()],
            event_types: vec![EventType::ProjectCreated],
            actor_ids: vec!["key_a".into()],
            actor_emails: vec![],
            resource_ids: vec!["r".into()],
            limit: 5,
            after: None,
            before: Some(before),
        };
        let (sql, binds) = list_clause(&postgres(), &org, &q, Some(42));
        assert!(sql.contains("e.effective_at >= kp_ts($2) AND e.effective_at < kp_ts($3)"));
        assert!(sql.contains("e.project_id IN ($4, $5)"));
        assert!(sql.contains("e.event_type IN ($6)"));
        assert!(sql.contains("e.actor_id IN ($7)"));
        assert!(sql.contains("e.resource_id IN ($8)"));
        assert!(sql.ends_with("AND e.seq > $9 ORDER BY e.seq ASC LIMIT $10"));
        assert_eq!(binds.len(), 10);
        assert_eq!(binds[5], Bind::Text("project.created".into()));
        assert_eq!(binds[8], Bind::Int(42));
        let (sql, binds2) = list_clause(&sqlite(), &org, &q, Some(42));
        assert_eq!(sql.matches('?').count(), 10);
        assert_eq!(binds, binds2);
    }

    #[test]
    fn a_filter_value_with_a_nul_matches_nothing_and_is_never_bound() {
        let org = Id::generate().unwrap();
        let q = AuditQuery {
            project_ids: vec!["proj_\0x".into()],
            resource_ids: vec!["ok".into(), "\0".into()],
            limit: 5,
            ..AuditQuery::default()
        };
        let (sql, binds) = list_clause(&postgres(), &org, &q, None);
        assert!(
            sql.contains("e.project_id IN ($2)"),
            "still a filter: {sql}"
        );
        assert_eq!(binds[1], Bind::Text(String::new()));
        assert_eq!(binds[2], Bind::Text("ok".into()));
        assert_eq!(binds[3], Bind::Text(String::new()));
    }
}
