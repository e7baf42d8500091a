//! The one place that reads the operating system's CSPRNG.

/// The OS random source failed. Callers must not fall back to anything weaker.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomError(String);

pub fn fill(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::getrandom(buf).map_err(|e| RandomError(e.to_string()))
}
