//! The `[models]` table of the configuration file: the model catalogue rate limits exist for.
//!
//! ```toml
//! [models."gpt-4o"]
//! max_requests_per_1_minute = 500
//! max_tokens_per_1_minute = 30000
//! max_requests_per_1_day = 10000
//!
//! [models."*"]          # requests naming no model, or one not listed
//! max_requests_per_1_minute = 60
//! max_tokens_per_1_minute = 10000
//! ```
//!
//! A table of tables, so it lives in the file only (no environment variable spells it).

use crate::domain::catalogue::ModelCatalogue;
use crate::domain::limits::RateLimitFields;

/// The catalogue from the file's `[models]` value (`None`: empty catalogue, nothing limited).
/// Every problem is reported, each naming the model and field.
pub fn catalogue(value: Option<&toml::Value>, shown: &str) -> Result<ModelCatalogue, Vec<String>> {
    let Some(value) = value else {
        return Ok(ModelCatalogue::default());
    };
    let Some(table) = value.as_table() else {
        return Err(vec![format!(
            "models in {shown}: must be a table of models"
        )]);
    };
    let mut problems = Vec::new();
    let mut models = Vec::new();
    for (model, entry) in table {
        let Some(fields) = entry.as_table() else {
            problems.push(format!(
                "models.\"{model}\" in {shown}: must be a table of limits"
            ));
            continue;
        };
        let mut limits = RateLimitFields::default();
        for (name, v) in fields {
            let Some(slot) = limits.field_mut(name) else {
                problems.push(format!(
                    "models.\"{model}\".{name} in {shown}: unknown limit (expected one of {})",
                    RateLimitFields::NAMES.join(", ")
                ));
                continue;
            };
            match v.as_integer() {
                Some(n) => *slot = Some(n),
                None => problems.push(format!(
                    "models.\"{model}\".{name} in {shown}: must be an integer, not {}",
                    v.type_str()
                )),
            }
        }
        models.push((model.clone(), limits));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    ModelCatalogue::new(models).map_err(|e| vec![format!("models in {shown}: {e}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelCatalogue, Vec<String>> {
        let table: toml::Table = text.parse().unwrap();
        catalogue(table.get("models"), "/etc/kp.toml")
    }

    #[test]
    fn models_and_their_defaults_are_read() {
        let c = parse(
            "[models.\"gpt-4o\"]\nmax_requests_per_1_minute = 5\nmax_tokens_per_1_minute = 100\n\
             max_requests_per_1_day = 50\n[models.\"*\"]\nmax_requests_per_1_minute = 1\n\
             max_tokens_per_1_minute = 2\n",
        )
        .unwrap();
        assert_eq!(c.models().len(), 2);
        assert_eq!(c.get("gpt-4o").unwrap().max_requests_per_1_day, Some(50));
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn problems_name_the_model_and_field() {
        let e = parse(
            "[models.a]\nmax_requests_per_1_minute = \"x\"\nmax_tokens_per_1_minute = 1\nfoo = 1\n",
        )
        .unwrap_err()
        .join("\n");
        assert!(
            e.contains(
                "models.\"a\".max_requests_per_1_minute in /etc/kp.toml: must be an integer"
            ),
            "{e}"
        );
        assert!(
            e.contains("models.\"a\".foo in /etc/kp.toml: unknown limit"),
            "{e}"
        );
        let e =
            parse("[models.\"a/b\"]\nmax_requests_per_1_minute = 1\nmax_tokens_per_1_minute = 1\n")
                .unwrap_err()
                .join("\n");
        assert!(e.contains("model name 'a/b'"), "{e}");
        let e = parse("[models.a]\nmax_requests_per_1_minute = -1\nmax_tokens_per_1_minute = 1\n")
            .unwrap_err()
            .join("\n");
        assert!(e.contains("between 0"), "{e}");
    }
}
