//! Phone book names (the seed's "performance limitations and
//! requirements"): at most eight characters, not all digits, no space and
//! no symbol. Only ASCII letters and digits are let through, which also
//! keeps the name safe as a file and URL path component.

/// Why a phone book name is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("phone book name is empty")]
    Empty,
    #[error("phone book name {0:?} is longer than 8 characters")]
    TooLong(String),
    #[error("phone book name {0:?} is all digits")]
    AllDigits(String),
    #[error("phone book name {0:?} has a space or symbol (only letters A-Z, a-z and digits)")]
    Symbol(String),
}

/// The longest phone book name.
pub const MAX_NAME_LEN: usize = 8;

/// Checks a phone book name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(NameError::Symbol(name.to_owned()));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError::TooLong(name.to_owned()));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::AllDigits(name.to_owned()));
    }
    Ok(())
}
