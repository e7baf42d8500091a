//! The audit log: writing events inside the change they describe, listing them, and the webhook
//! delivery queue.

use sqlx::{PgConnection, Row};

use super::{audit_row, bind_args, PostgresStore, DIALECT};
use crate::domain::audit::{AuditEntry, AuditEvent, AuditQuery, DeliveryOutcome};
use crate::domain::ids::Id;
use crate::domain::page::Page;
use crate::domain::time::Millis;
use crate::store::binds::{audit_values, Arg};
use crate::store::{audit_sql, StoreResult};

pub(super) const AUDIT_SELECT: &str = "SELECT e.id, e.organization_id, e.event_type, \
     kp_ms(e.effective_at) AS effective_at, e.project_id, p.name AS project_name, e.resource_id, \
     e.actor_type, e.actor_id, e.request_id, e.client_request_id, e.ip_address, \
     e.details::text AS details, e.webhook_pending, e.webhook_attempts \
     FROM audit_events e LEFT JOIN projects p ON p.id = e.project_id";

const INSERT_AUDIT: &str = "INSERT INTO audit_events (id, organization_id, event_type, \
     effective_at, project_id, resource_id, actor_type, actor_id, request_id, client_request_id, \
     ip_address, details, webhook_pending, webhook_next_at) \
     VALUES ($1, $2, $3, kp_ts($4), $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, kp_ts($14))";

/// Writes audit events inside the caller's transaction, so they commit or vanish with the
/// change they describe.
pub(super) async fn insert_audit(
    conn: &mut PgConnection,
    events: &[AuditEvent],
) -> StoreResult<()> {
    for e in events {
        bind_args(sqlx::query(INSERT_AUDIT), audit_values(e))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

impl PostgresStore {
    pub(super) async fn claim_webhook_deliveries(
        &self,
        now: Millis,
        lease_until: Millis,
        limit: u32,
    ) -> StoreResult<Vec<(AuditEntry, u32)>> {
        // SKIP LOCKED: nodes claiming at the same moment take disjoint batches instead of
        // queueing behind each other.
        let sql = format!(
            "WITH due AS (SELECT seq FROM audit_events WHERE webhook_pending \
               AND webhook_next_at <= kp_ts($1) ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED), \
             claimed AS (UPDATE audit_events SET webhook_next_at = kp_ts($3) \
               FROM due WHERE audit_events.seq = due.seq RETURNING audit_events.seq) \
             {AUDIT_SELECT} JOIN claimed c ON c.seq = e.seq ORDER BY e.seq"
        );
        let rows = sqlx::query(&sql)
            .bind(now)
            .bind(i64::from(limit))
            .bind(lease_until)
            .fetch_all(&self.pool)
            .await?;
        let mut claimed = Vec::with_capacity(rows.len());
        for row in &rows {
            let attempts: i32 = row.try_get("webhook_attempts")?;
            claimed.push((audit_row(row)?, u32::try_from(attempts).unwrap_or(0)));
        }
        Ok(claimed)
    }

    pub(super) async fn finish_webhook_delivery(
        &self,
        id: &Id,
        outcome: &DeliveryOutcome,
    ) -> StoreResult<()> {
        let q = match outcome {
            DeliveryOutcome::Delivered { at } => sqlx::query(
                "UPDATE audit_events SET webhook_pending = false, webhook_next_at = NULL, \
                 webhook_delivered_at = kp_ts($1), webhook_error = NULL WHERE id = $2",
            )
            .bind(*at),
            DeliveryOutcome::Failed {
                next_attempt_at, ..
            } => sqlx::query(
                "UPDATE audit_events SET webhook_attempts = webhook_attempts + 1, \
                 webhook_next_at = kp_ts($1), webhook_error = $3 WHERE id = $2",
            )
            .bind(*next_attempt_at),
        };
        let q = q.bind(id.as_str());
        let q = match outcome {
            DeliveryOutcome::Failed { error, .. } => q.bind(error.as_str()),
            DeliveryOutcome::Delivered { .. } => q,
        };
        q.execute(&self.pool).await?;
        Ok(())
    }

    pub(super) async fn pending_webhook_deliveries(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE webhook_pending")
            .fetch_one(&self.pool)
            .await?;
        Ok(n.max(0) as u64)
    }
}

crate::store::statements::audit_statements!(PostgresStore);
