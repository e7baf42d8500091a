//! Where a setting's value comes from: a `KEYPLANE_*` environment variable, else the TOML file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::settings::{self, Setting, ValueKind, SETTINGS};
use super::ConfigError;

/// A setting's raw text and a label naming its origin, for error messages.
#[derive(Debug, Clone)]
pub struct Raw {
    pub text: String,
    pub origin: String,
}

#[derive(Debug, Default, Clone)]
pub struct Sources {
    file: Option<PathBuf>,
    from_file: BTreeMap<&'static str, String>,
    env: BTreeMap<String, String>,
    /// The file's `[models]` table, read by `models::catalogue`.
    models: Option<toml::Value>,
}

impl Sources {
    /// The process environment, plus `file` when given.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let env = std::env::vars()
            .filter(|(k, _)| k.starts_with("KEYPLANE_"))
            .collect();
        match file {
            None => Ok(Self {
                env,
                ..Self::default()
            }),
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::one(format!(
                        "cannot read configuration file {}: {e}",
                        path.display()
                    ))
                })?;
                Self::parse(&text, path, env)
            }
        }
    }

    /// `text` as the file at `path`, with `env` as the environment.
    pub fn parse(
        text: &str,
        path: &Path,
        env: BTreeMap<String, String>,
    ) -> Result<Self, ConfigError> {
        let shown = path.display();
        let table: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| ConfigError::one(format!("{shown}: {e}")))?;
        let mut problems = Vec::new();
        let mut from_file = BTreeMap::new();
        let mut models = None;
        for (key, value) in table {
            if key == "models" {
                models = Some(value);
                continue;
            }
            let Some(setting) = settings::find(&key) else {
                problems.push(format!("{key} in {shown}: unknown setting"));
                continue;
            };
            match (setting.kind, value) {
                (ValueKind::Integer, toml::Value::Integer(n)) => {
                    from_file.insert(setting.key, n.to_string());
                }
                (ValueKind::Text, toml::Value::String(s)) => {
                    from_file.insert(setting.key, s);
                }
                (ValueKind::Boolean, toml::Value::Boolean(b)) => {
                    from_file.insert(setting.key, b.to_string());
                }
                (kind, other) => problems.push(format!(
                    "{key} in {shown}: must be {}, not {}",
                    match kind {
                        ValueKind::Integer => "an integer",
                        ValueKind::Boolean => "a boolean",
                        ValueKind::Text => "a string",
                    },
                    other.type_str()
                )),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError(problems));
        }
        Ok(Self {
            file: Some(path.to_owned()),
            from_file,
            env,
            models,
        })
    }

    /// The file's `[models]` table, if it has one.
    pub fn models(&self) -> Option<&toml::Value> {
        self.models.as_ref()
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The value of `key` (a name from the settings table); blank counts as unset.
    pub fn get(&self, key: &str) -> Option<Raw> {
        let setting = settings::find(key)?;
        let var = setting.env_var();
        if let Some(v) = self.env.get(&var).filter(|v| !v.trim().is_empty()) {
            return Some(Raw {
                text: v.clone(),
                origin: var,
            });
        }
        let v = self.from_file.get(setting.key)?;
        if v.trim().is_empty() {
            return None;
        }
        Some(Raw {
            text: v.clone(),
            origin: format!("{key} in {}", self.file.as_deref()?.display()),
        })
    }

    /// Where the effective value of `setting` comes from: `env`, `file` or `default`.
    pub fn source_of(&self, setting: &Setting) -> &'static str {
        match self.get(setting.key) {
            Some(raw) if raw.origin.starts_with("KEYPLANE_") => "env",
            Some(_) => "file",
            None => "default",
        }
    }

    /// The logging settings are read from the environment by `telemetry`; a value from the file
    /// is copied there. Call only before any thread is started (the environment is
    /// process-global and not thread-safe to write).
    pub fn export_logging_settings(&self) {
        for key in ["log", "log_format"] {
            if let Some(raw) = self.get(key) {
                if !raw.origin.starts_with("KEYPLANE_") {
                    if let Some(s) = settings::find(key) {
                        std::env::set_var(s.env_var(), raw.text);
                    }
                }
            }
        }
    }

    /// Every setting, for display: (setting, shown value, source).
    pub fn effective(&self) -> Vec<(&'static Setting, String, &'static str)> {
        SETTINGS
            .iter()
            .map(|s| {
                let shown = match self.get(s.key) {
                    Some(_) if s.secret => "<set>".to_owned(),
                    Some(raw) => raw.text,
                    None => s.default.to_owned(),
                };
                (s, shown, self.source_of(s))
            })
            .collect()
    }
}
