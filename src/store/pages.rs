//! Keyset pagination both backends share: resolving a cursor to its creation sequence number,
//! and the two-way windows of the Keycard lists. Generated per backend by [`paging_fns!`], for
//! the same reason as `rows::decode_rows!` (sqlx's generic executor bounds would be longer
//! than the bodies); the backends differ only in how they spell a placeholder.
//!
//! A scope (`scope_sql`) is a trusted fragment whose parameters (`?`, see `dialect.rs`) come
//! right after the first one of the statement, bound from `binds`.

/// Generates the methods `cursor_seq` and `window_rows` of `$store`, reading `$row`s from its
/// pool field `$pool` and spelling placeholders with `$dialect` (a
/// [`Dialect`](super::dialect::Dialect)).
macro_rules! paging_fns {
    ($store:ty, $pool:ident, $row:ty, $dialect:expr) => {
        impl $store {
            /// Resolves an `after` cursor to its creation sequence number within the listed scope.
            async fn cursor_seq(
                &self,
                table: &str,
                scope_sql: &str,
                after: Option<&Id>,
                binds: &[&str],
            ) -> StoreResult<i64> {
                let Some(after) = after else { return Ok(0) };
                let sql = format!("SELECT seq FROM {table} WHERE id = ? AND {scope_sql}");
                let sql = $dialect.spell(&sql);
                let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(after.as_str());
                for b in binds {
                    q = q.bind(*b);
                }
                q.fetch_optional(&self.$pool)
                    .await?
                    .ok_or(StoreError::UnknownCursor)
            }

            /// One window of a two-way list over the live rows of `table` in `scope_sql`, in
            /// creation order. The cursor may name a deleted row of the scope: a client paging
            /// while another deletes the row it stands on carries on.
            async fn window_rows<T>(
                &self,
                (table, cols): (&str, &str),
                scope_sql: &str,
                binds: &[&str],
                window: &Window,
                decode: fn(&$row) -> StoreResult<T>,
            ) -> StoreResult<WindowPage<T>> {
                let (cursor, forward) = $crate::store::rows::window_direction(window)?;
                let cursor = match cursor {
                    None => None,
                    Some(id) => Some(self.cursor_seq(table, scope_sql, Some(id), binds).await?),
                };
                let (cmp, from, order) = match forward {
                    true => (">", cursor.unwrap_or(0), "ASC"),
                    false => ("<", cursor.unwrap_or(i64::MAX), "DESC"),
                };
                let sql = format!(
                    "SELECT {cols}, seq FROM {table} WHERE seq {cmp} ? AND {scope_sql} \
                     AND deleted_at IS NULL ORDER BY seq {order} LIMIT ?"
                );
                let sql = $dialect.spell(&sql);
                let mut q = sqlx::query(&sql).bind(from);
                for b in binds {
                    q = q.bind(*b);
                }
                let mut rows = q
                    .bind(i64::from(window.limit) + 1)
                    .fetch_all(&self.$pool)
                    .await?;
                let overfetched = rows.len() > window.limit as usize;
                rows.truncate(window.limit as usize);
                if !forward {
                    rows.reverse();
                }
                // Whether anything lies beyond the end the window started from: only a cursor can
                // leave rows behind it. Checked against the nearest returned row (or the cursor
                // itself when the page is empty), never guessed.
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
                            "SELECT EXISTS (SELECT 1 FROM {table} WHERE seq {cmp} ? \
                             AND {scope_sql} AND deleted_at IS NULL)"
                        );
                        let sql = $dialect.spell(&sql);
                        let mut q = sqlx::query_scalar::<_, bool>(&sql).bind(edge);
                        for b in binds {
                            q = q.bind(*b);
                        }
                        q.fetch_one(&self.$pool).await?
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
        }
    };
}

pub(super) use paging_fns;
