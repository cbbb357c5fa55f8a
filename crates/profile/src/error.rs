//! Errors that name the file, line, section and key at fault.

use std::path::PathBuf;

use crate::ini::IniError;

/// Everything that can go wrong reading or writing a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file system refused (missing file, permission, ...).
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not an INI text file we can read or write.
    #[error("{}: {source}", file.display())]
    Ini {
        /// The file concerned.
        file: PathBuf,
        /// What the INI layer said.
        source: IniError,
    },
    /// A key has a value we cannot accept.
    #[error("{}:{line}: [{section}] {key}: {reason}", file.display())]
    Invalid {
        /// The file concerned.
        file: PathBuf,
        /// 1-based line of the entry.
        line: usize,
        /// The section the key is in.
        section: String,
        /// The key as written.
        key: String,
        /// Why the value is refused, and what is accepted.
        reason: String,
    },
    /// A required key is absent.
    #[error("{}: [{section}] {key}: missing ({reason})", file.display())]
    Missing {
        /// The file concerned.
        file: PathBuf,
        /// The section the key belongs in.
        section: String,
        /// The key.
        key: String,
        /// Why it is required.
        reason: String,
    },
    /// The files of a profile are not where they must be, or do not agree.
    #[error("{}: {reason}", path.display())]
    Layout {
        /// The file or directory concerned.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl ProfileError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        ProfileError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn layout(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        ProfileError::Layout {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The 1-based line the error points at, when it points at one.
    pub fn line(&self) -> Option<usize> {
        match self {
            ProfileError::Invalid { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The key the error is about, when it is about one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ProfileError::Invalid { key, .. } | ProfileError::Missing { key, .. } => Some(key),
            _ => None,
        }
    }
}
