//! Token usage reported by gateways after the upstream answered (`POST /v1/usage`): token
//! limits are post-paid, as OpenAI's are, so a request is refused while the tokens reported
//! for its window are at or over the limit.

use std::collections::HashMap;

use crate::domain::ids::Id;
use crate::domain::keys::KeyKind;
use crate::domain::model::ApiKey;
use crate::domain::names::FieldError;

use super::admission::SubjectRef;
use super::permissions::Action;
use super::{Principal, Service, ServiceResult};

/// Most records one report may carry.
pub const MAX_USAGE_RECORDS: usize = 1_000;
/// Largest token count one record may carry (far beyond any context window).
const MAX_RECORD_TOKENS: i64 = 1_000_000_000;

/// One upstream response's tokens, for one key and model.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    pub key_id: Id,
    /// `None`: the catalogue's `*`.
    pub model: Option<String>,
    pub input_tokens: i64,
    pub output_tokens: i64,
}

impl Service {
    /// Counts every record against its key's and its project × model's token windows. All or
    /// nothing: a record naming no project key of the organization, or a bad count, refuses
    /// the whole report (400) and counts none of it. Returns the records counted.
    pub async fn report_usage(
        &self,
        who: &Principal,
        records: Vec<UsageRecord>,
    ) -> ServiceResult<usize> {
        who.require(Action::ReportUsage)?;
        if records.len() > MAX_USAGE_RECORDS {
            return Err(FieldError::new(
                "data",
                format!("'data' may hold at most {MAX_USAGE_RECORDS} records."),
            )
            .into());
        }
        let mut keys: HashMap<Id, ApiKey> = HashMap::new();
        for (i, r) in records.iter().enumerate() {
            for (name, n) in [
                ("input_tokens", r.input_tokens),
                ("output_tokens", r.output_tokens),
            ] {
                if !(0..=MAX_RECORD_TOKENS).contains(&n) {
                    return Err(FieldError::new(
                        "data",
                        format!("'data[{i}].{name}' must be an integer between 0 and {MAX_RECORD_TOKENS}."),
                    )
                    .into());
                }
            }
            if keys.contains_key(&r.key_id) {
                continue;
            }
            match self.store.api_key(&who.organization_id, &r.key_id).await? {
                Some(k) if k.kind == KeyKind::ServiceAccount && k.project_id.is_some() => {
                    keys.insert(r.key_id.clone(), k);
                }
                _ => {
                    return Err(FieldError::new(
                        "data",
                        format!(
                            "'data[{i}].key_id' names no project API key of this organization."
                        ),
                    )
                    .into())
                }
            }
        }
        let now = self.clock.now();
        for r in &records {
            let Some(key) = keys.get(&r.key_id) else {
                continue;
            };
            let tokens = r.input_tokens + r.output_tokens;
            if key.limits.max_tokens_per_1_minute.is_some() {
                self.admission
                    .add_tokens(now, SubjectRef::Key(key.id.as_str()), tokens);
            }
            if let (Some(project), Some((model, _))) =
                (&key.project_id, self.catalogue.resolve(r.model.as_deref()))
            {
                let subject = SubjectRef::ProjectModel {
                    project: project.as_str(),
                    model,
                };
                self.admission.add_tokens(now, subject, tokens);
            }
        }
        Ok(records.len())
    }
}
