//! The model catalogue: which models exist for rate limiting and their default limits, from the
//! configuration file's `[models]` table. Every project has one `project.rate_limit` per
//! catalogue model (its ID `rl-{model}`); a project's stored overrides replace the defaults
//! field by field. `*` is the catch-all for requests that name no model or an unlisted one.

use super::limits::RateLimitFields;

/// The catch-all model.
pub const ANY_MODEL: &str = "*";
const ID_PREFIX: &str = "rl-";
const MAX_MODEL_CHARS: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelCatalogue {
    /// Sorted by model name: the order lists page in.
    models: Vec<(String, RateLimitFields)>,
    /// Where `*` is in `models`, found once: every request that names no model uses it.
    any: Option<usize>,
}

impl ModelCatalogue {
    /// A catalogue from `(model, defaults)` pairs. Refuses names that could not be a path
    /// segment of `rl-{model}`, duplicates, and models lacking the two limits OpenAI's object
    /// always has.
    pub fn new(models: Vec<(String, RateLimitFields)>) -> Result<Self, String> {
        let mut models = models;
        models.sort_by(|a, b| a.0.cmp(&b.0));
        for pair in models.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(format!("model '{}' is listed twice", pair[0].0));
            }
        }
        for (name, limits) in &models {
            check_model_name(name)?;
            if limits.max_requests_per_1_minute.is_none()
                || limits.max_tokens_per_1_minute.is_none()
            {
                return Err(format!(
                    "model '{name}' needs max_requests_per_1_minute and max_tokens_per_1_minute"
                ));
            }
            for (field, value) in limits.fields() {
                if let Some(v) = value {
                    super::limits::limit(field, v)
                        .map_err(|e| format!("model '{name}': {}", e.message))?;
                }
            }
        }
        let any = models.iter().position(|(name, _)| name == ANY_MODEL);
        Ok(Self { models, any })
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    pub fn models(&self) -> &[(String, RateLimitFields)] {
        &self.models
    }

    /// The defaults of exactly this model.
    pub fn get(&self, model: &str) -> Option<&RateLimitFields> {
        self.models
            .binary_search_by(|(m, _)| m.as_str().cmp(model))
            .ok()
            .map(|i| &self.models[i].1)
    }

    /// The catalogue entry a request for `model` counts against: the model itself, else the
    /// catch-all, else none (not limited).
    pub fn resolve<'a>(&'a self, model: Option<&str>) -> Option<(&'a str, &'a RateLimitFields)> {
        let find = |m: &str| {
            self.models
                .binary_search_by(|(name, _)| name.as_str().cmp(m))
                .ok()
                .map(|i| (self.models[i].0.as_str(), &self.models[i].1))
        };
        model.and_then(find).or_else(|| {
            let (name, limits) = self.models.get(self.any?)?;
            Some((name.as_str(), limits))
        })
    }
}

/// `rl-{model}`: the ID of a project's rate limit for `model`.
pub fn rate_limit_id(model: &str) -> String {
    format!("{ID_PREFIX}{model}")
}

/// The model a rate-limit ID names, if it has the shape of one.
pub fn model_of(rate_limit_id: &str) -> Option<&str> {
    rate_limit_id
        .strip_prefix(ID_PREFIX)
        .filter(|m| !m.is_empty())
}

/// Model names as OpenAI spells them (`gpt-4o-mini`, `ft:gpt-4o:org:x:id`, `text-embedding-3`)
/// or `*`: no `/`, space or control character, so `rl-{model}` is one path segment.
pub fn check_model_name(name: &str) -> Result<(), String> {
    let ok = name == ANY_MODEL
        || (!name.is_empty()
            && name.chars().count() <= MAX_MODEL_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "model name '{}' must be '*' or 1 to {MAX_MODEL_CHARS} letters, digits, '.', '_', '-' or ':'",
            name.chars().take(64).collect::<String>()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: i64) -> RateLimitFields {
        RateLimitFields {
            max_requests_per_1_minute: Some(rpm),
            max_tokens_per_1_minute: Some(1000),
            ..Default::default()
        }
    }

    #[test]
    fn models_resolve_to_themselves_or_the_catch_all() {
        let c = ModelCatalogue::new(vec![("gpt-4o".into(), limits(10)), ("*".into(), limits(5))])
            .unwrap();
        assert_eq!(c.resolve(Some("gpt-4o")).unwrap().0, "gpt-4o");
        assert_eq!(c.resolve(Some("other")).unwrap().0, "*");
        assert_eq!(c.resolve(None).unwrap().0, "*");
        let only = ModelCatalogue::new(vec![("gpt-4o".into(), limits(10))]).unwrap();
        assert!(only.resolve(Some("other")).is_none());
        assert_eq!(c.models()[0].0, "*", "sorted by name");
    }

    #[test]
    fn bad_catalogues_are_refused() {
        assert!(ModelCatalogue::new(vec![("a/b".into(), limits(1))]).is_err());
        assert!(
            ModelCatalogue::new(vec![("a".into(), limits(1)), ("a".into(), limits(2))]).is_err()
        );
        assert!(ModelCatalogue::new(vec![("a".into(), RateLimitFields::default())]).is_err());
        assert!(ModelCatalogue::new(vec![("a".into(), limits(-1))]).is_err());
    }

    #[test]
    fn ids_name_models() {
        assert_eq!(rate_limit_id("gpt-4o"), "rl-gpt-4o");
        assert_eq!(model_of("rl-gpt-4o"), Some("gpt-4o"));
        assert_eq!(model_of("rl-"), None);
        assert_eq!(model_of("gpt-4o"), None);
    }
}
