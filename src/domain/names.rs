//! Validation of user-supplied text fields, shared by both dialects.

pub const MAX_NAME_CHARS: usize = 256;

/// Why a text field was refused; the dialect layer turns it into its own error envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Names: 1..=256 characters after trimming, any Unicode, no control characters.
/// Returns the trimmed name, which is what gets stored.
pub fn name(field: &'static str, raw: &str) -> Result<String, FieldError> {
    text(field, raw, 1, MAX_NAME_CHARS)
}

/// Like [`name`] with other bounds (descriptions, external ids, scopes).
pub fn text(field: &'static str, raw: &str, min: usize, max: usize) -> Result<String, FieldError> {
    let trimmed = raw.trim();
    let count = trimmed.chars().count();
    if count < min {
        return Err(FieldError::new(
            field,
            format!("'{field}' must not be empty."),
        ));
    }
    if count > max {
        return Err(FieldError::new(
            field,
            format!("'{field}' must be at most {max} characters, got {count}."),
        ));
    }
    if trimmed.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("'{field}' must not contain control characters."),
        ));
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Prod  ").unwrap(), "Prod");
        assert!(name("name", "").is_err());
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(256)).is_ok());
        assert!(name("name", &"x".repeat(257)).is_err());
    }

    #[test]
    fn unicode_counts_characters_not_bytes() {
        let s = "é".repeat(256);
        assert!(s.len() > 256);
        assert_eq!(name("name", &s).unwrap(), s);
        assert_eq!(name("name", "服务账户 🚀").unwrap(), "服务账户 🚀");
    }

    #[test]
    fn control_characters_are_rejected_and_named() {
        let err = name("name", "a\u{0}b").unwrap_err();
        assert_eq!(err.field, "name");
        assert!(err.message.contains("control"));
        assert!(name("name", "line\nbreak").is_err());
        assert!(name("name", "bell\u{7}").is_err());
        assert!(name("name", "del\u{7f}").is_err());
    }
}
