//! `POST /v1/usage`: gateways report the tokens each upstream response used.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::{JsonBody, UsageAuth};
use crate::domain::ids::Kind;
use crate::http::openapi::tags::USAGE as TAG;
use crate::http::AppState;
use crate::service::UsageRecord;

crate::http::openapi::string_enum! {
    report_object = ["usage.report"];
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UsageRecord)]
pub struct RecordBody {
    /// The project API key the request was admitted with (`key_…`).
    key_id: String,
    /// The model (`X-Keyplane-Model` of the check); absent: the catalogue's `*`.
    #[serde(default)]
    model: Option<String>,
    #[schema(minimum = 0)]
    input_tokens: i64,
    #[schema(minimum = 0)]
    output_tokens: i64,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = UsageReport)]
pub struct ReportBody {
    /// Up to 1000 records.
    #[schema(max_items = 1000)]
    data: Vec<RecordBody>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = UsageReportResult)]
pub struct ReportJson {
    #[schema(schema_with = report_object)]
    object: &'static str,
    /// Records counted (all of them: a report is counted whole or refused whole).
    accepted: usize,
}

/// Report token usage.
///
/// Token limits are post-paid: once the tokens reported for a key's or a project × model's
/// last minute reach its limit, its requests are refused until the window slides. Needs an
/// admin key with `api.usage.write` (a gateway's key holds only that) or full access. A
/// report is counted whole or refused whole (400).
#[utoipa::path(post, path = "/usage", tag = TAG,
    request_body = ReportBody,
    responses((status = 200, description = "Counted.", body = ReportJson)))]
pub async fn report(
    State(app): State<AppState>,
    UsageAuth(who): UsageAuth,
    JsonBody(body): JsonBody<ReportBody>,
) -> Result<Json<ReportJson>, ApiError> {
    let mut records = Vec::with_capacity(body.data.len());
    for (i, r) in body.data.into_iter().enumerate() {
        let key_id = Kind::ApiKey.parse_openai(r.key_id.trim()).ok_or_else(|| {
            ApiError::bad_request(
                Some("data"),
                "invalid_value",
                format!("'data[{i}].key_id' is not an API key ID (key_…)."),
            )
        })?;
        records.push(UsageRecord {
            key_id,
            model: r.model.filter(|m| !m.trim().is_empty()),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
        });
    }
    let accepted = app.service.report_usage(&who, records).await?;
    Ok(Json(ReportJson {
        object: "usage.report",
        accepted,
    }))
}
