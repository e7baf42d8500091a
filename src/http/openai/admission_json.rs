//! JSON shapes of admission control in the OpenAI dialect: keyplane's own fields on keys and
//! projects (allowlists, limits, the disabled state) and OpenAI's `project.rate_limit`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::domain::limits::{render_allowlist, Disabled};
use crate::domain::model::ApiKey;
use crate::domain::time::to_unix_seconds;
use crate::http::openapi::string_enum;
use crate::service::RateLimitView;

string_enum! {
    disabled_reason = ["user_initiated", "exposed", "compromised"];
    rate_limit_object = ["project.rate_limit"];
}

/// Why and since when a key is disabled.
#[derive(Serialize, ToSchema)]
#[schema(as = KeyDisabled)]
pub struct DisabledJson {
    #[schema(schema_with = disabled_reason)]
    reason: &'static str,
    /// Unix seconds.
    disabled_at: i64,
}

pub fn disabled(d: Option<Disabled>) -> Option<DisabledJson> {
    d.map(|d| DisabledJson {
        reason: d.reason.as_str(),
        disabled_at: to_unix_seconds(d.at),
    })
}

/// keyplane's admission fields of a project API key (not in OpenAI's object).
#[derive(Serialize, ToSchema)]
#[schema(as = ApiKeyAdmission)]
pub struct KeyAdmissionJson {
    /// Addresses or CIDRs the key may be used from; `null`: any.
    #[schema(required = true)]
    allowed_ips: Option<Vec<String>>,
    #[schema(required = true)]
    max_requests_per_1_minute: Option<i64>,
    #[schema(required = true)]
    max_requests_per_1_day: Option<i64>,
    #[schema(required = true)]
    max_tokens_per_1_minute: Option<i64>,
    /// `null` while the key is enabled.
    #[schema(required = true)]
    disabled: Option<DisabledJson>,
}

impl KeyAdmissionJson {
    pub fn of(key: &ApiKey) -> Self {
        Self {
            allowed_ips: key.allowed_ips.as_deref().map(render_allowlist),
            max_requests_per_1_minute: key.limits.max_requests_per_1_minute,
            max_requests_per_1_day: key.limits.max_requests_per_1_day,
            max_tokens_per_1_minute: key.limits.max_tokens_per_1_minute,
            disabled: disabled(key.disabled),
        }
    }
}

/// OpenAI's `project.rate_limit`: one model's limits for one project.
#[derive(Serialize, ToSchema)]
#[schema(as = ProjectRateLimit)]
pub struct RateLimitJson {
    #[schema(schema_with = rate_limit_object)]
    object: &'static str,
    id: String,
    model: String,
    max_requests_per_1_minute: i64,
    max_tokens_per_1_minute: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_images_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_audio_megabytes_per_1_minute: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_requests_per_1_day: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    batch_1_day_max_input_tokens: Option<i64>,
}

impl From<RateLimitView> for RateLimitJson {
    fn from(v: RateLimitView) -> Self {
        let l = v.limits;
        Self {
            object: "project.rate_limit",
            id: v.id,
            model: v.model,
            // The catalogue refuses models without these two (OpenAI's object requires them).
            max_requests_per_1_minute: l.max_requests_per_1_minute.unwrap_or_default(),
            max_tokens_per_1_minute: l.max_tokens_per_1_minute.unwrap_or_default(),
            max_images_per_1_minute: l.max_images_per_1_minute,
            max_audio_megabytes_per_1_minute: l.max_audio_megabytes_per_1_minute,
            max_requests_per_1_day: l.max_requests_per_1_day,
            batch_1_day_max_input_tokens: l.batch_1_day_max_input_tokens,
        }
    }
}

impl RateLimitJson {
    pub fn id(&self) -> &str {
        &self.id
    }
}
