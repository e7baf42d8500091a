//! `keyplane config check`: every setting validated, the effective values printed.

use crate::config::{ClientSettings, Config, ConfigError, Sources};

use super::table;

/// Validates the server and client settings and, when TLS is configured, reads both files.
pub fn check(sources: &Sources) -> Result<String, ConfigError> {
    let mut problems = Vec::new();
    match Config::load(sources) {
        Ok(config) => {
            if let Some(files) = &config.tls {
                if let Err(e) = crate::tls::load_certified_key(files) {
                    problems.push(format!("{e:#}"));
                }
            }
        }
        Err(e) => problems.extend(e.0),
    }
    if let Err(e) = ClientSettings::load(sources) {
        problems.extend(e.0);
    }
    if let Some(ca) = sources.get("ca_cert") {
        let ca = std::path::Path::new(&ca.text);
        if !ca.is_file() {
            problems.push(format!("KEYPLANE_CA_CERT: {} is not a file", ca.display()));
        }
    }
    if !problems.is_empty() {
        return Err(ConfigError(problems));
    }
    let rows: Vec<Vec<String>> = sources
        .effective()
        .into_iter()
        .map(|(s, value, source)| vec![s.key.to_owned(), s.env_var(), value, source.to_owned()])
        .collect();
    let mut out = match sources.file() {
        Some(f) => format!("configuration file: {}\n", f.display()),
        None => "configuration file: none (environment only)\n".to_owned(),
    };
    out.push_str(&table::render(
        &["SETTING", "VARIABLE", "VALUE", "SOURCE"],
        &rows,
    ));
    out.push_str("configuration OK\n");
    Ok(out)
}
