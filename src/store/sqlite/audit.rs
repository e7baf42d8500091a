//! The audit log: writing events inside the change they describe, listing them, and the webhook
//! delivery queue.

use sqlx::Row;

use super::{audit_row, bind_args, SqliteStore, DIALECT};
use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::ids::Id;
use crate::domain::page::Page;
use crate::domain::time::Millis;
use crate::store::binds::{audit_values, Arg};
use crate::store::{audit_sql, StoreResult};

pub(super) const AUDIT_SELECT: &str =
    "SELECT e.id, e.organization_id, e.event_type, e.effective_at, \
     e.project_id, p.name AS project_name, e.resource_id, e.actor_type, e.actor_id, \
     e.request_id, e.client_request_id, e.ip_address, e.details, e.webhook_pending, \
     e.webhook_attempts FROM audit_events e LEFT JOIN projects p ON p.id = e.project_id";

const INSERT_AUDIT: &str = "INSERT INTO audit_events (id, organization_id, event_type, \
     effective_at, project_id, resource_id, actor_type, actor_id, request_id, client_request_id, \
     ip_address, details, webhook_pending, webhook_next_at) \
     VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

/// Writes audit events inside the caller's transaction, so they commit or vanish with the
/// change they describe.
pub(super) async fn insert_audit(
    conn: &mut sqlx::SqliteConnection,
    events: &[AuditEvent],
) -> StoreResult<()> {
    for e in events {
        bind_args(sqlx::query(INSERT_AUDIT), audit_values(e))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl SqliteStore {
    pub(super) async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>> {
        self.write((), move |conn, ()| {
            Box::pin(async move {
                let sql = format!(
                    "{AUDIT_SELECT} WHERE e.webhook_pending = 1 AND e.webhook_next_at <= ? \
                     ORDER BY e.seq LIMIT ?"
                );
                let rows = sqlx::query(&sql)
                    .bind(now)
                    .bind(i64::from(limit))
                    .fetch_all(&mut *conn)
                    .await?;
                let mut claimed = Vec::with_capacity(rows.len());
                for row in &rows {
                    let entry = audit_row(row)?;
                    let attempts: i64 = row.try_get("webhook_attempts")?;
                    sqlx::query("UPDATE audit_events SET webhook_next_at = ? WHERE id = ?")
                        .bind(lease_until)
                        .bind(entry.event.id.as_str())
                        .execute(&mut *conn)
                        .await?;
                    claimed.push((entry, u32::try_from(attempts).unwrap_or(u32::MAX)));
                }
                Ok(claimed)
            })
        })
        .await
    }

    pub(super) async fn finish_webhook_delivery(
        &self,
        id: &Id,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        let input = (id.clone(), outcome.clone());
        self.write(input, |conn, (id, outcome)| {
            Box::pin(async move {
                let q = match &outcome {
                    DeliveryOutcome::Delivered { at } => sqlx::query(
                        "UPDATE audit_events SET webhook_pending = 0, webhook_next_at = NULL, \
                         webhook_delivered_at = ?, webhook_error = NULL WHERE id = ?",
                    )
                    .bind(*at),
                    DeliveryOutcome::Failed {
                        next_attempt_at,
                        error,
                    } => sqlx::query(
                        "UPDATE audit_events SET webhook_attempts = webhook_attempts + 1, \
                         webhook_next_at = ?, webhook_error = ? WHERE id = ?",
                    )
                    .bind(*next_attempt_at)
                    .bind(error.as_str()),
                };
                q.bind(id.as_str()).execute(&mut *conn).await?;
                Ok(())
            })
        })
        .await
    }

    pub(super) async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE webhook_pending = 1")
                .fetch_one(&self.reader)
                .await?;
        Ok(n.max(0) as u64)
    }
}

crate::store::statements::audit_statements!(SqliteStore);
