//! Documentation of the Keycard dialect's path and query parameters. The handlers read them
//! through [`super::extract`]; these structs only describe them in the OpenAPI document (the
//! docs tests check every `{name}` in a path is described).
#![allow(dead_code)]

use utoipa::IntoParams;

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct OrganizationPath {
    /// The organization's ID or its label (e.g. `default`).
    #[param(min_length = 1)]
    organization_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AccountPath {
    /// The organization's ID or its label (e.g. `default`).
    #[param(min_length = 1)]
    organization_id: String,
    /// A service account ID (26 characters `[0-9a-z]`).
    #[param(min_length = 1)]
    service_account_id: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CredentialPath {
    /// The organization's ID or its label (e.g. `default`).
    #[param(min_length = 1)]
    organization_id: String,
    /// A service account ID (26 characters `[0-9a-z]`).
    #[param(min_length = 1)]
    service_account_id: String,
    /// A credential ID (26 characters `[0-9a-z]`).
    #[param(min_length = 1)]
    credential_id: String,
}

/// Two-way cursor pagination in creation order.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Window {
    /// How many objects to return.
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: Option<i64>,
    /// `page_info.end_cursor` of the previous page. Not together with `before`.
    after: Option<String>,
    /// `page_info.start_cursor` of the next page. Not together with `after`.
    before: Option<String>,
}

/// `permissions` adds the caller's permissions; other values are ignored.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Expand {
    /// Repeated or comma-separated, e.g. `expand=permissions`.
    expand: Option<Vec<String>>,
    /// The same as `expand`, in bracket form.
    #[param(rename = "expand[]")]
    expand_brackets: Option<Vec<String>>,
}
