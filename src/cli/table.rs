//! Aligned text tables and cell formatting for the CLI's human-readable output.

use serde_json::Value;

use crate::domain::time::to_rfc3339_millis;

/// Columns padded to their widest cell, two spaces apart; no trailing spaces.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push('\n');
        out
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// The value at a `/`-separated path as text; `-` when absent or null.
pub fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// A Unix-seconds timestamp at `pointer` as `2026-11-23T07:34:44Z`; `-` when absent.
pub fn time(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer).and_then(Value::as_i64) {
        None => "-".to_owned(),
        Some(secs) => {
            let full = to_rfc3339_millis(secs.saturating_mul(1000));
            // Whole seconds on the wire: drop the always-zero milliseconds.
            format!("{}Z", full.trim_end_matches('Z').trim_end_matches(".000"))
        }
    }
}

/// `rows` from each item of a list object's `data`.
pub fn rows(list: &Value, row: impl Fn(&Value) -> Vec<String>) -> Vec<Vec<String>> {
    list["data"]
        .as_array()
        .map(|items| items.iter().map(row).collect())
        .unwrap_or_default()
}

/// Pretty JSON, as the API sent it.
pub fn json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_on_the_widest_cell() {
        let t = render(
            &["ID", "NAME"],
            &[
                vec!["proj_1".into(), "Billing".into()],
                vec!["p".into(), "Ünïcode".into()],
            ],
        );
        assert_eq!(t, "ID      NAME\nproj_1  Billing\np       Ünïcode\n");
    }

    #[test]
    fn cells() {
        let v = json!({"a": {"b": 1_700_000_000}, "n": null, "s": "x"});
        assert_eq!(time(&v, "/a/b"), "2023-11-14T22:13:20Z");
        assert_eq!(text(&v, "/n"), "-");
        assert_eq!(text(&v, "/s"), "x");
        assert_eq!(text(&v, "/a/b"), "1700000000");
    }
}
