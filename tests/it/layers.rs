//! The layer rule: a module under `src/` may use (`crate::…`) its own top-level module and the
//! modules of lower layers, never a higher one. Lowest first:
//!
//! 0. `domain`: plain types and pure functions.
//! 1. `metrics`: counters and their rendering, from plain data it is handed.
//! 2. `store`: persistence behind a trait (`metered.rs` records into `metrics`).
//! 3. `service`: every rule, once.
//! 4. `connections`: the accept loop and read timeouts HTTP and HTTPS share.
//! 5. `http`: routing, the wire dialects, thin handlers.
//! 6. `app`, `cli`, `config`, `main`, `telemetry`, `tls`, `transfer`: the program around the
//!    layers; these may use each other.
//!
//! Paths are read from code, not comments (a doc link is not a dependency). A top-level module
//! missing from [`LAYERS`] is an error too, so a new one gets placed. README's Architecture
//! section states the same order.

use std::path::Path;

/// Top-level modules by layer, lowest first.
const LAYERS: &[&[&str]] = &[
    &["domain"],
    &["metrics"],
    &["store"],
    &["service"],
    &["connections"],
    &["http"],
    &[
        "app",
        "cli",
        "config",
        "main",
        "telemetry",
        "tls",
        "transfer",
    ],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a file under `src/` belongs to (`None` for `lib.rs`, the root).
fn owner(relative: &str) -> Option<&str> {
    let first = relative.split('/').next()?;
    let module = first.strip_suffix(".rs").unwrap_or(first);
    (module != "lib").then_some(module)
}

/// The top-level modules a piece of source names through `crate::` (or `$crate::`), outside
/// comments: `crate::a::…` gives `a`, `crate::{a::…, b}` gives `a` and `b`.
fn used_modules(source: &str) -> Vec<String> {
    let mut used = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + "crate::".len()..];
            rest = after;
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = after.strip_prefix('{') {
                let mut depth = 0;
                let mut start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            start = true;
                            continue;
                        }
                        _ => {}
                    }
                    if start && depth == 0 && (c.is_alphanumeric() || c == '_') {
                        used.push(ident(&group[i..]));
                        start = false;
                    } else if !c.is_whitespace() {
                        start = false;
                    }
                }
            } else {
                let name = ident(after);
                if !name.is_empty() {
                    used.push(name);
                }
            }
        }
    }
    used
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every breach of the layer rule in `files` (path relative to `src/`, source).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, source) in files {
        let Some(module) = owner(path) else { continue };
        let Some(own) = layer(module) else {
            found.push(format!("{path}: module `{module}` is in no layer"));
            continue;
        };
        for used in used_modules(source) {
            match layer(&used) {
                None => found.push(format!("{path}: `crate::{used}` is in no layer")),
                Some(l) if l > own => found.push(format!(
                    "{path}: `{module}` (layer {own}) uses `crate::{used}` (layer {l})"
                )),
                Some(_) => {}
            }
        }
    }
    found
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src/")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, root, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let relative = path.strip_prefix(root).expect("under src/");
            let relative = relative.to_string_lossy().replace('\\', "/");
            out.push((relative, std::fs::read_to_string(&path).expect("read")));
        }
    }
}

#[test]
fn src_respects_the_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &src, &mut files);
    assert!(files.len() > 50, "read {} files", files.len());
    let found = violations(&files);
    assert!(found.is_empty(), "layer violations:\n{}", found.join("\n"));
}

#[test]
fn every_top_level_module_has_a_layer() {
    let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs"))
        .expect("read lib.rs");
    let modules: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(modules.contains(&"domain"));
    for m in modules {
        assert!(layer(m).is_some(), "`{m}` is in no layer");
    }
}

fn file(path: &str, source: &str) -> (String, String) {
    (path.to_owned(), source.to_owned())
}

#[test]
fn the_checker_finds_upward_uses() {
    let found = violations(&[
        file("metrics/text.rs", "use crate::store::PoolStats;\n"),
        file(
            "service/x.rs",
            "use crate::{domain::ids::Id, http::AppState};\n",
        ),
        file("domain/y.rs", "fn f() { crate::service::go(); }\n"),
        file(
            "store/z.rs",
            "macro_rules! m { () => { $crate::app::run() } }\n",
        ),
    ]);
    assert_eq!(
        found,
        [
            "metrics/text.rs: `metrics` (layer 1) uses `crate::store` (layer 2)",
            "service/x.rs: `service` (layer 3) uses `crate::http` (layer 5)",
            "domain/y.rs: `domain` (layer 0) uses `crate::service` (layer 3)",
            "store/z.rs: `store` (layer 2) uses `crate::app` (layer 6)",
        ]
    );
}

#[test]
fn the_checker_allows_downward_and_sideways_uses_and_ignores_comments() {
    let found = violations(&[
        file(
            "http/a.rs",
            "use crate::{domain, service::Service};\nuse crate::http::AppState;\n",
        ),
        file("metrics/b.rs", "//! See [`crate::service::Service`].\n"),
        file("store/c.rs", "let x = 1; // crate::http is above\n"),
        file("tls.rs", "use crate::config::TlsFiles;\n"),
        file("lib.rs", "pub mod app;\n"),
        file("service/d.rs", "use keyplane_crate::http;\n"),
    ]);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn the_checker_wants_every_module_placed() {
    let found = violations(&[
        file("plugins/a.rs", "use crate::domain::ids::Id;\n"),
        file("domain/b.rs", "use crate::plugins::Thing;\n"),
    ]);
    assert_eq!(
        found,
        [
            "plugins/a.rs: module `plugins` is in no layer",
            "domain/b.rs: `crate::plugins` is in no layer",
        ]
    );
}
