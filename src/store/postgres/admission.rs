//! Admission: project rate-limit overrides, and the counts nodes share.
//!
//! How a node reads the others' counts without losing any: every write stamps its rows with
//! the id of its transaction (`pg_current_xact_id()`), and a read returns, besides the rows, the
//! xmin of the snapshot it read them in (`pg_snapshot_xmin(pg_current_snapshot())`, in the same
//! statement, hence the same snapshot). Every transaction with an id below that xmin had ended
//! when the snapshot was taken, so its rows were visible to this read; any other write (still
//! running, or not even started) has an id at or above the xmin, and the next read, which asks
//! for `version >= cursor`, sees it once committed. Transaction ids do not commit in order,
//! which is why a "highest version seen" cursor would skip rows and the xmin does not. The
//! price is re-reading rows of transactions that were still running at the xmin, harmless for
//! absolute counts. A long-running writing transaction anywhere in the cluster holds the xmin
//! back and makes reads re-read more meanwhile, never miss anything.

use sqlx::{PgConnection, Row};

use super::audit::insert_audit;
use super::projects::lock_active_project;
use super::{bind_args, rate_limit_row, PostgresStore, RATE_LIMIT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::limits::{ProjectRateLimit, RateLimitFields};
use crate::domain::time::Millis;
use crate::store::binds::{args, count_batch, rate_limit_values};
use crate::store::{Count, CountsCursor, StoreResult};

/// `project_rate_limits`' columns, in the order `binds::rate_limit_values` binds.
const RATE_LIMIT_INSERT: &str = "INSERT INTO project_rate_limits (organization_id, project_id, \
     model, max_requests_per_1_minute, max_tokens_per_1_minute, max_images_per_1_minute, \
     max_audio_megabytes_per_1_minute, max_requests_per_1_day, batch_1_day_max_input_tokens, \
     updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, kp_ts($10))";

/// Inserts a project's overrides of one model; with `upsert`, replacing any earlier ones
/// (import writes rows verbatim, without).
pub(super) async fn insert_rate_limit(
    conn: &mut PgConnection,
    limit: &ProjectRateLimit,
    upsert: bool,
) -> StoreResult<()> {
    let sql = match upsert {
        false => RATE_LIMIT_INSERT.to_owned(),
        true => {
            let set: Vec<String> = RateLimitFields::NAMES
                .iter()
                .chain(&["updated_at"])
                .map(|c| format!("{c} = EXCLUDED.{c}"))
                .collect();
            format!(
                "{RATE_LIMIT_INSERT} ON CONFLICT (project_id, model) DO UPDATE SET {}",
                set.join(", ")
            )
        }
    };
    bind_args(sqlx::query(&sql), rate_limit_values(limit))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

impl PostgresStore {
    pub(super) async fn put_project_rate_limit(
        &self,
        limit: &ProjectRateLimit,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        // Holds the project active (FOR SHARE) until the write commits: an archive racing it
        // waits, or wins first and makes this a Conflict.
        lock_active_project(&mut tx, &limit.organization_id, &limit.project_id).await?;
        insert_rate_limit(&mut tx, limit, true).await?;
        insert_audit(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One statement, so one transaction: every row of the batch carries its id.
    pub(super) async fn push_counts(&self, counts: &[Count]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let batch = count_batch(counts);
        let column = |f: fn(&Count) -> i64| batch.iter().map(f).collect::<Vec<i64>>();
        let nodes: Vec<&str> = batch.iter().map(|c| c.node.as_str()).collect();
        let subjects: Vec<&str> = batch.iter().map(|c| c.subject.as_str()).collect();
        sqlx::query(
            "INSERT INTO admission_counts (node, subject, bucket, span, requests, tokens, version) \
             SELECT u.node, u.subject, u.bucket, u.span, u.requests, u.tokens, \
             pg_current_xact_id()::text::bigint \
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[], \
             $6::bigint[]) AS u(node, subject, bucket, span, requests, tokens) \
             ON CONFLICT (subject, bucket, span, node) DO UPDATE SET \
             requests = EXCLUDED.requests, tokens = EXCLUDED.tokens, version = EXCLUDED.version",
        )
        .bind(&nodes)
        .bind(&subjects)
        .bind(column(|c| c.bucket))
        .bind(column(|c| c.span))
        .bind(column(|c| c.requests))
        .bind(column(|c| c.tokens))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// See the module comment for why `version >= cursor` with the snapshot's xmin as cursor
    /// loses no row.
    pub(super) async fn pull_counts(
        &self,
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)> {
        let (since, bound) = match after {
            Some(cursor) => ("c.version >= $2", cursor),
            None => ("c.bucket >= $2", not_before),
        };
        // LEFT JOIN: the cursor comes back even when no count does.
        let sql = format!(
            "SELECT s.cursor, c.node, c.subject, c.bucket, c.span, c.requests, c.tokens \
             FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS cursor) s \
             LEFT JOIN admission_counts c ON c.node <> $1 AND {since}"
        );
        let rows = sqlx::query(&sql)
            .bind(node)
            .bind(bound)
            .fetch_all(&self.pool)
            .await?;
        let mut cursor = after.unwrap_or(0);
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            cursor = row.try_get("cursor")?;
            let Some(node) = row.try_get::<Option<String>, _>("node")? else {
                continue;
            };
            counts.push(Count {
                node,
                subject: row.try_get("subject")?,
                bucket: row.try_get("bucket")?,
                span: row.try_get("span")?,
                requests: row.try_get("requests")?,
                tokens: row.try_get("tokens")?,
            });
        }
        Ok((counts, cursor))
    }

    pub(super) async fn prune_counts(&self, span: Millis, before: Millis) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM admission_counts WHERE span = $1 AND bucket < $2")
            .bind(span)
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}

crate::store::statements::rate_limit_statements!(PostgresStore);
