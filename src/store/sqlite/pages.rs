//! Keyset pagination: resolving a cursor to its creation sequence number, and the two-way windows
//! of the Keycard lists.

use sqlx::sqlite::{SqlitePool, SqliteRow};
use sqlx::Row;

use crate::domain::ids::Id;
use crate::domain::page::{Window, WindowPage};
use crate::store::rows::window_direction;
use crate::store::{StoreError, StoreResult};

/// Resolves an `after` cursor to its creation sequence number within the listed scope.
/// `scope_sql` is a trusted fragment binding the same parameters as `binds`.
pub(super) async fn cursor_seq(
    pool: &SqlitePool,
    table: &str,
    scope_sql: &str,
    after: &Option<Id>,
    binds: &[&str],
) -> StoreResult<i64> {
    let Some(after) = after else { return Ok(0) };
    let sql = format!("SELECT seq FROM {table} WHERE id = ? AND {scope_sql}");
    let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(after.as_str());
    for b in binds {
        q = q.bind(*b);
    }
    q.fetch_optional(pool)
        .await?
        .ok_or(StoreError::UnknownCursor)
}

/// One window of a two-way list over the live rows of `table` in `scope_sql` (a trusted
/// fragment binding `binds`), in creation order. The cursor may name a deleted row of the
/// scope: a client paging while another deletes the row it stands on carries on.
pub(super) async fn window_rows<T>(
    pool: &SqlitePool,
    (table, cols): (&str, &str),
    scope_sql: &str,
    binds: &[&str],
    window: &Window,
    decode: fn(&SqliteRow) -> StoreResult<T>,
) -> StoreResult<WindowPage<T>> {
    let (cursor, forward) = window_direction(window)?;
    let cursor = match cursor {
        None => None,
        Some(_) => Some(cursor_seq(pool, table, scope_sql, cursor, binds).await?),
    };
    let (cmp, from, order) = match forward {
        true => (">", cursor.unwrap_or(0), "ASC"),
        false => ("<", cursor.unwrap_or(i64::MAX), "DESC"),
    };
    let sql = format!(
        "SELECT {cols}, seq FROM {table} WHERE {scope_sql} AND deleted_at IS NULL \
         AND seq {cmp} ? ORDER BY seq {order} LIMIT ?"
    );
    let mut q = sqlx::query(&sql);
    for b in binds {
        q = q.bind(*b);
    }
    let mut rows = q
        .bind(from)
        .bind(i64::from(window.limit) + 1)
        .fetch_all(pool)
        .await?;
    let overfetched = rows.len() > window.limit as usize;
    rows.truncate(window.limit as usize);
    if !forward {
        rows.reverse();
    }
    // Whether anything lies beyond the end the window started from: only a cursor can leave
    // rows behind it. Checked against the nearest returned row (or the cursor itself when the
    // page is empty), never guessed.
    let behind = match cursor {
        None => false,
        Some(cursor) => {
            let (cmp, edge) = match forward {
                true => (
                    "<",
                    rows.first()
                        .map(|r| r.try_get("seq"))
                        .transpose()?
                        .unwrap_or(cursor + 1),
                ),
                false => (
                    ">",
                    rows.last()
                        .map(|r| r.try_get("seq"))
                        .transpose()?
                        .unwrap_or(cursor - 1),
                ),
            };
            let sql = format!(
                "SELECT EXISTS (SELECT 1 FROM {table} WHERE {scope_sql} \
                 AND deleted_at IS NULL AND seq {cmp} ?)"
            );
            let mut q = sqlx::query_scalar::<_, bool>(&sql);
            for b in binds {
                q = q.bind(*b);
            }
            q.bind(edge).fetch_one(pool).await?
        }
    };
    let items = rows.iter().map(decode).collect::<StoreResult<Vec<_>>>()?;
    let (has_next, has_prev) = match forward {
        true => (overfetched, behind),
        false => (behind, overfetched),
    };
    Ok(WindowPage {
        items,
        has_next,
        has_prev,
    })
}
