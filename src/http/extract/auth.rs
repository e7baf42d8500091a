//! The bearer credential of `Authorization: Bearer …`.

use axum::http::{header, HeaderMap};

use crate::service::AuthFailure;

/// The token of `Authorization: Bearer …` (scheme case-insensitive), if the header is there.
///
/// By bytes, not `to_str` + `trim` + `split_once`: every gateway check runs this, and those
/// walk the value a byte (or a char) at a time, three times over.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AuthFailure> {
    let Some(raw) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    // A `HeaderValue` holds no control byte but tab and no DEL, so "visible ASCII" (what
    // `to_str` asks) is plain ASCII here, which `is_ascii` checks a word at a time.
    let bytes = raw.as_bytes();
    if !bytes.is_ascii() {
        return Err(AuthFailure::Malformed);
    }
    let value = std::str::from_utf8(bytes)
        .map_err(|_| AuthFailure::Malformed)?
        .trim_ascii();
    const SCHEME: &str = "bearer ";
    let token = match value.get(..SCHEME.len()) {
        Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => value[SCHEME.len()..].trim_ascii(),
        _ => return Err(AuthFailure::Missing),
    };
    if token.is_empty() {
        return Err(AuthFailure::Missing);
    }
    Ok(Some(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn token_of(value: &[u8]) -> Result<Option<String>, AuthFailure> {
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).unwrap(),
        );
        bearer_token(&h).map(|t| t.map(str::to_owned))
    }

    #[test]
    fn the_token_is_what_follows_the_bearer_scheme() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        for value in [
            "Bearer sk-1",
            "bearer sk-1",
            "BEARER   sk-1  ",
            " \tBearer sk-1",
            "Bearer \tsk-1",
        ] {
            assert_eq!(
                token_of(value.as_bytes()),
                Ok(Some("sk-1".into())),
                "{value:?}"
            );
        }
        assert_eq!(token_of(b"Bearer a b"), Ok(Some("a b".into())));
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_missing_and_non_ascii_is_malformed() {
        for value in [
            "Basic abc",
            "Bearer",
            "Bearer   ",
            "Bearer\tsk-1",
            "Bearersk-1",
            "x",
        ] {
            assert_eq!(
                token_of(value.as_bytes()),
                Err(AuthFailure::Missing),
                "{value:?}"
            );
        }
        assert_eq!(token_of(b"Bearer sk-\xc3\xa9"), Err(AuthFailure::Malformed));
        assert_eq!(token_of(b"Bearer \xff"), Err(AuthFailure::Malformed));
    }
}
