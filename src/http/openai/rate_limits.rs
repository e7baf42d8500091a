//! `/v1/organization/projects/{project_id}/rate_limits…`: OpenAI's project rate limits, one
//! per catalogue model. No create or delete: the catalogue decides which exist.

use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::admission_json::RateLimitJson;
use super::error::ApiError;
use super::extract::{parse_id, AdminAuth, ApiPath, JsonBody};
use super::params;
use super::render::ListJson;
use crate::domain::ids::Kind;
use crate::domain::limits::RateLimitFields;
use crate::domain::page::Page;
use crate::http::extract::QueryPairs;
use crate::http::openapi::tags::RATE_LIMITS as TAG;
use crate::http::AppState;
use crate::service::{RateLimitWindow, RATE_LIMIT_PAGE};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Any subset of the six limits; each a whole number (0 refuses every request).
#[derive(Deserialize, utoipa::ToSchema)]
#[schema(as = ProjectRateLimitUpdateRequest)]
pub struct UpdateBody {
    #[serde(default)]
    #[schema(minimum = 0)]
    max_requests_per_1_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    max_tokens_per_1_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    max_images_per_1_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    max_audio_megabytes_per_1_minute: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    max_requests_per_1_day: Option<i64>,
    #[serde(default)]
    #[schema(minimum = 0)]
    batch_1_day_max_input_tokens: Option<i64>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct RateLimitPage {
    /// 1–100, default 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// A rate limit ID (`rl-…`): the page starts after it.
    after: Option<String>,
    /// A rate limit ID: the page ends before it.
    before: Option<String>,
}

#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
pub struct RateLimitPath {
    /// The project's ID.
    project_id: String,
    /// `rl-{model}`.
    rate_limit_id: String,
}

fn window(query: &QueryPairs) -> Result<RateLimitWindow, ApiError> {
    let limit = match query.integer("limit")? {
        None => RATE_LIMIT_PAGE,
        Some(n) if (1..=i64::from(RATE_LIMIT_PAGE)).contains(&n) => n as u32,
        Some(_) => {
            return Err(ApiError::bad_request(
                Some("limit"),
                "invalid_value",
                format!("Invalid value for 'limit': expected 1 to {RATE_LIMIT_PAGE}."),
            ))
        }
    };
    let cursor = |name| query.get(name).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(RateLimitWindow {
        limit,
        after: cursor("after"),
        before: cursor("before"),
    })
}

/// List a project's rate limits, one per model of the catalogue.
#[utoipa::path(get, path = "/organization/projects/{project_id}/rate_limits", tag = TAG,
    params(params::ProjectPath, RateLimitPage),
    responses((status = 200, description = "A page of rate limits, in model order.", body = ListJson<RateLimitJson>)))]
pub async fn list(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath(project_id): ApiPath<String>,
    query: QueryPairs,
) -> ApiResult<ListJson<RateLimitJson>> {
    let project = parse_id(Kind::Project, &project_id)?;
    let window = window(&query)?;
    let walked_back = window.before.is_some();
    let page = app
        .service
        .list_project_rate_limits(&who, &project, &window)
        .await?;
    // `has_more`: more in the direction walked.
    let has_more = if walked_back {
        page.has_prev
    } else {
        page.has_next
    };
    let page = Page {
        items: page.items,
        has_more,
    };
    Ok(Json(ListJson::new(
        page,
        RateLimitJson::from,
        RateLimitJson::id,
    )))
}

/// Update a project's rate limit for one model.
///
/// The fields sent replace this project's values; the others keep theirs (the catalogue's
/// defaults unless changed before). Applied on every node within a second.
#[utoipa::path(post, path = "/organization/projects/{project_id}/rate_limits/{rate_limit_id}", tag = TAG,
    params(RateLimitPath),
    request_body = UpdateBody,
    responses((status = 200, description = "The rate limit, updated.", body = RateLimitJson)))]
pub async fn update(
    State(app): State<AppState>,
    AdminAuth(who): AdminAuth,
    ApiPath((project_id, rate_limit_id)): ApiPath<(String, String)>,
    JsonBody(body): JsonBody<UpdateBody>,
) -> ApiResult<RateLimitJson> {
    let project = parse_id(Kind::Project, &project_id)?;
    let changes = RateLimitFields {
        max_requests_per_1_minute: body.max_requests_per_1_minute,
        max_tokens_per_1_minute: body.max_tokens_per_1_minute,
        max_images_per_1_minute: body.max_images_per_1_minute,
        max_audio_megabytes_per_1_minute: body.max_audio_megabytes_per_1_minute,
        max_requests_per_1_day: body.max_requests_per_1_day,
        batch_1_day_max_input_tokens: body.batch_1_day_max_input_tokens,
    };
    let view = app
        .service
        .update_project_rate_limit(&who, &project, &rate_limit_id, changes)
        .await?;
    Ok(Json(view.into()))
}
