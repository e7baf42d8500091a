//! Admission: project rate-limit overrides, and the counts nodes share (one node, for SQLite,
//! but the same contract as PostgreSQL's, which `pull_counts` explains for this backend).

use sqlx::{Row, SqliteConnection};

use super::audit::insert_audit;
use super::{bind_args, rate_limit_row, SqliteStore, RATE_LIMIT_COLS};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::Id;
use crate::domain::limits::{ProjectRateLimit, RateLimitFields};
use crate::domain::time::Millis;
use crate::store::binds::{args, count_batch, rate_limit_values};
use crate::store::rows::expect_one;
use crate::store::{Count, CountsCursor, StoreResult};

/// Rows per INSERT of counts: 7 parameters each, far below SQLite's 32766 per statement.
const COUNTS_PER_STATEMENT: usize = 500;

/// Inserts a project's overrides of one model. `guarded` (the API): only while the project is
/// an active one of the organization, replacing any earlier overrides of that model; returns
/// the rows written, 0 when the guard failed. Import passes `false` to write rows verbatim.
pub(super) async fn insert_rate_limit(
    conn: &mut SqliteConnection,
    limit: &ProjectRateLimit,
    guarded: bool,
) -> StoreResult<u64> {
    let mut args = rate_limit_values(limit);
    let marks = vec!["?"; args.len()].join(",");
    let sql = match guarded {
        false => format!("INSERT INTO project_rate_limits ({RATE_LIMIT_COLS}) VALUES ({marks})"),
        true => {
            let set: Vec<String> = RateLimitFields::NAMES
                .iter()
                .chain(&["updated_at"])
                .map(|c| format!("{c} = excluded.{c}"))
                .collect();
            args.extend(args![&limit.project_id, &limit.organization_id]);
            // The WHERE also settles SQLite's parsing ambiguity of an upsert after a SELECT.
            format!(
                "INSERT INTO project_rate_limits ({RATE_LIMIT_COLS}) SELECT {marks} \
                 WHERE EXISTS (SELECT 1 FROM projects WHERE id = ? AND organization_id = ? \
                 AND archived_at IS NULL) \
                 ON CONFLICT (project_id, model) DO UPDATE SET {}",
                set.join(", ")
            )
        }
    };
    let done = bind_args(sqlx::query(&sql), args)
        .execute(&mut *conn)
        .await?;
    Ok(done.rows_affected())
}

impl SqliteStore {
    pub(super) async fn put_project_rate_limit(
        &self,
        limit: &ProjectRateLimit,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        // One job on the single writer: the project cannot be archived between the check and
        // the write.
        self.write((limit.clone(), audit.to_vec()), |conn, (limit, audit)| {
            Box::pin(async move {
                let written = insert_rate_limit(&mut *conn, &limit, true).await?;
                expect_one(written, "project is not active")?;
                insert_audit(&mut *conn, &audit).await
            })
        })
        .await
    }

    pub(super) async fn push_counts(&self, counts: &[Count]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        self.write(count_batch(counts), |conn, batch| {
            Box::pin(async move {
                // One version per push, from a counter of its own (see the 0004 migration for
                // why not MAX(version)). The single writer hands versions out in commit order:
                // whatever commits later carries a higher version than anything a reader has
                // seen, which is what `pull_counts`' `version > cursor` relies on.
                let version: i64 = sqlx::query_scalar(
                    "UPDATE admission_counts_version SET version = version + 1 WHERE id = 1 \
                     RETURNING version",
                )
                .fetch_one(&mut *conn)
                .await?;
                for chunk in batch.chunks(COUNTS_PER_STATEMENT) {
                    let marks = vec!["(?,?,?,?,?,?,?)"; chunk.len()].join(",");
                    let sql = format!(
                        "INSERT INTO admission_counts \
                         (node, subject, bucket, span, requests, tokens, version) VALUES {marks} \
                         ON CONFLICT (subject, bucket, span, node) DO UPDATE SET \
                         requests = excluded.requests, tokens = excluded.tokens, \
                         version = excluded.version"
                    );
                    let mut q = sqlx::query(&sql);
                    for c in chunk {
                        q = q
                            .bind(c.node.clone())
                            .bind(c.subject.clone())
                            .bind(c.bucket)
                            .bind(c.span)
                            .bind(c.requests)
                            .bind(c.tokens)
                            .bind(version);
                    }
                    q.execute(&mut *conn).await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// The counter and the rows come from one statement, hence one snapshot of the WAL: every
    /// push committed before it is in the rows and at or below the cursor, every later one
    /// gets a version above the cursor, so the next pull's `version > cursor` finds it. A push
    /// is one transaction, so a snapshot holds all of it or none.
    pub(super) async fn pull_counts(
        &self,
        node: &str,
        after: Option<CountsCursor>,
        not_before: Millis,
    ) -> StoreResult<(Vec<Count>, CountsCursor)> {
        let (since, bound) = match after {
            Some(cursor) => ("c.version > ?", cursor),
            None => ("c.bucket >= ?", not_before),
        };
        // LEFT JOIN: the cursor comes back even when no count does.
        let sql = format!(
            "SELECT v.version AS cursor, c.node, c.subject, c.bucket, c.span, c.requests, \
             c.tokens FROM admission_counts_version v \
             LEFT JOIN admission_counts c ON c.node <> ? AND {since} WHERE v.id = 1"
        );
        let rows = sqlx::query(&sql)
            .bind(node)
            .bind(bound)
            .fetch_all(&self.reader)
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
        self.write((span, before), |conn, (span, before)| {
            Box::pin(async move {
                let done =
                    sqlx::query("DELETE FROM admission_counts WHERE span = ? AND bucket < ?")
                        .bind(span)
                        .bind(before)
                        .execute(&mut *conn)
                        .await?;
                Ok(done.rows_affected())
            })
        })
        .await
    }
}

crate::store::statements::rate_limit_statements!(SqliteStore);
