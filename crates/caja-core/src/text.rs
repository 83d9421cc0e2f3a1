//! Free text people type (notes, customer names, payment references): trimmed, bounded, and
//! free of control characters other than line breaks and tabs. PostgreSQL refuses a NUL in
//! text outright, so letting one through would turn a typo into a server error.

use crate::DomainError;

/// `None` for an absent or blank value; the trimmed text otherwise.
pub fn optional(
    field: &'static str,
    value: Option<&str>,
    max_chars: usize,
) -> Result<Option<String>, DomainError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("at most {max_chars} characters"),
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(DomainError::invalid(
            field,
            "must not hold control characters",
        ));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_is_none_and_text_is_trimmed() {
        assert_eq!(optional("note", None, 10), Ok(None));
        assert_eq!(optional("note", Some("   "), 10), Ok(None));
        assert_eq!(
            optional("note", Some(" hola\nmesa 4 "), 20),
            Ok(Some("hola\nmesa 4".into()))
        );
    }

    #[test]
    fn too_long_or_control_characters_are_refused() {
        assert!(optional("note", Some("abcdef"), 5).is_err());
        assert!(optional("note", Some("a\u{0}b"), 5).is_err());
        assert!(optional("note", Some("a\u{1b}[31m"), 50).is_err());
        assert_eq!(optional("note", Some("ñandú"), 5), Ok(Some("ñandú".into())));
    }
}
