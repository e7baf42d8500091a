//! Query strings, decoded once; typed getters refuse bad values the same way in both dialects.

use std::convert::Infallible;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::Rejection;
use crate::domain::page::{DEFAULT_LIMIT, MAX_LIMIT};

/// Decoded query string. Repeated keys keep the last value; unknown keys are ignored.
pub struct QueryPairs(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let raw = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(
            form_urlencoded::parse(raw.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl QueryPairs {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated key, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, Rejection> {
        let Some(raw) = self.get(name) else {
            return Ok(None);
        };
        match raw.to_ascii_lowercase().as_str() {
            "true" | "1" => Ok(Some(true)),
            "false" | "0" => Ok(Some(false)),
            _ => Err(Rejection::bad_request(
                Some(name),
                "invalid_type",
                format!("Invalid type for '{name}': expected a boolean (true or false)."),
            )),
        }
    }

    pub fn integer(&self, name: &str) -> Result<Option<i64>, Rejection> {
        self.get(name)
            .map(|raw| {
                raw.trim().parse::<i64>().map_err(|_| {
                    Rejection::bad_request(
                        Some(name),
                        "invalid_type",
                        format!("Invalid type for '{name}': expected an integer."),
                    )
                })
            })
            .transpose()
    }

    /// `limit`: 1..=100, default 20.
    pub fn limit(&self) -> Result<u32, Rejection> {
        Ok(match self.get("limit") {
            None => DEFAULT_LIMIT,
            Some(raw) => {
                let n: i64 = raw.trim().parse().map_err(|_| {
                    Rejection::bad_request(
                        Some("limit"),
                        "invalid_type",
                        "Invalid type for 'limit': expected an integer.",
                    )
                })?;
                if !(1..=i64::from(MAX_LIMIT)).contains(&n) {
                    return Err(Rejection::bad_request(
                        Some("limit"),
                        "invalid_value",
                        format!("Invalid 'limit': must be between 1 and {MAX_LIMIT}, got {n}."),
                    ));
                }
                n as u32
            }
        })
    }
}
