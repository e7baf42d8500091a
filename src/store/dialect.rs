//! How each backend spells what its statements share. Statements written once for both (see
//! `statements.rs`, the audit list, pagination) spell a parameter `?` and a parameter that
//! carries milliseconds into a timestamp column `?ts`; [`Dialect::spell`] turns them into the
//! backend's own: SQLite `?` for both (it stores milliseconds), PostgreSQL `$n` and
//! `kp_ts($n)`, numbered in order of appearance. Statements a backend writes for itself keep
//! their native spelling, which `spell` leaves alone (`$n` has no `?`).

use std::borrow::Cow;

pub struct Dialect {
    /// Parameter `n` (1-based).
    pub placeholder: fn(usize) -> String,
    /// A parameter's placeholder, as a timestamp.
    pub ts: fn(&str) -> String,
    /// Whether a plain `?` is already this backend's spelling (SQLite): then only `?ts` needs
    /// rewriting, and a statement without one is used as it is, with no copy.
    pub plain_marks: bool,
}

/// SQLite's placeholders are positional `?`; timestamps are stored as milliseconds already.
pub const SQLITE: Dialect = Dialect {
    placeholder: |_| "?".to_owned(),
    ts: |p| p.to_owned(),
    plain_marks: true,
};

/// Numbered placeholders; bound milliseconds become `timestamptz` through `kp_ts`.
pub const POSTGRES: Dialect = Dialect {
    placeholder: |n| format!("${n}"),
    ts: |p| format!("kp_ts({p})"),
    plain_marks: false,
};

impl Dialect {
    /// `sql` with its `?` and `?ts` spelled for this backend. A `?` inside a quoted literal is
    /// text, not a parameter.
    pub fn spell<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        let nothing_to_do = match self.plain_marks {
            true => !sql.contains("?ts"),
            false => !sql.contains('?'),
        };
        if nothing_to_do {
            return Cow::Borrowed(sql);
        }
        let mut out = String::with_capacity(sql.len() + 16);
        let (mut n, mut quoted) = (0, false);
        let mut rest = sql;
        while let Some(c) = rest.chars().next() {
            rest = &rest[c.len_utf8()..];
            match c {
                '\'' => {
                    quoted = !quoted;
                    out.push(c);
                }
                '?' if !quoted => {
                    n += 1;
                    let p = (self.placeholder)(n);
                    match rest.strip_prefix("ts") {
                        Some(after) => {
                            out.push_str(&(self.ts)(&p));
                            rest = after;
                        }
                        None => out.push_str(&p),
                    }
                }
                _ => out.push(c),
            }
        }
        Cow::Owned(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_numbered_in_order_and_timestamps_wrapped() {
        let sql = "UPDATE t SET a = ?ts, b = ? WHERE id = ? AND k = 'why?' AND c = ?ts";
        assert_eq!(
            POSTGRES.spell(sql),
            "UPDATE t SET a = kp_ts($1), b = $2 WHERE id = $3 AND k = 'why?' AND c = kp_ts($4)"
        );
        assert_eq!(
            SQLITE.spell(sql),
            "UPDATE t SET a = ?, b = ? WHERE id = ? AND k = 'why?' AND c = ?"
        );
    }

    #[test]
    fn native_statements_are_left_alone() {
        let sql = "SELECT 1 FROM t WHERE id = $1 AND s = 'x'";
        assert!(matches!(POSTGRES.spell(sql), Cow::Borrowed(s) if s == sql));
        let sql = "SELECT 1 FROM t WHERE id = ? AND s = ?";
        assert!(matches!(SQLITE.spell(sql), Cow::Borrowed(s) if s == sql));
    }
}
