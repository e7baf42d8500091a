//! Path parameters as raw strings (percent-decoded): IDs are parsed by the handler, so a
//! malformed one is a 404 naming what the client sent, in the dialect's own words.

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use super::Rejection;

pub async fn raw_path<T, S>(parts: &mut Parts, state: &S) -> Result<T, Rejection>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    match Path::<T>::from_request_parts(parts, state).await {
        Ok(Path(v)) => Ok(v),
        Err(_) => Err(Rejection::new(
            StatusCode::NOT_FOUND,
            "unknown_url",
            "The URL's path parameters could not be decoded.",
        )),
    }
}
