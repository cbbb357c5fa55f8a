//! The version file (`NAME.vers`). No public source gives its layout; ours
//! is one line holding the decimal version number (see docs/PHONEBOOK.md).

use crate::limits::MAX_VERSION;

/// Why a version file is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("version file: {0:?} is not a version number from 1 to {MAX_VERSION}")]
pub struct VersionFileError(pub String);

/// The version file's text.
pub fn write_version(version: u32) -> String {
    format!("{version}\r\n")
}

/// Parses a version file.
pub fn read_version(text: &str) -> Result<u32, VersionFileError> {
    let t = text.trim();
    match crate::field_error::parse_digits(t) {
        Some(v) if (1..=MAX_VERSION).contains(&v) => Ok(v),
        _ => Err(VersionFileError(t.chars().take(20).collect())),
    }
}
