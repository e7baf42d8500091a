//! The bearer credential of `Authorization: Bearer …`.

use axum::http::{header, HeaderMap};

use crate::service::AuthFailure;

/// The token of `Authorization: Bearer …` (scheme case-insensitive), if the header is there.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let raw = raw.to_str().map_err(|_| AuthFailure::Malformed)?;
    let (scheme, token) = raw.trim().split_once(' ').unwrap_or((raw, ""));
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(AuthFailure::Missing);
    }
    Ok(Some(token.trim()))
}
