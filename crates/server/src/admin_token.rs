//! The bearer token of the admin HTTPS listener (`[admin] token_file`,
//! docs/ADMIN.md): the file's first line, at least [`MIN_TOKEN_LEN`]
//! characters. It is never logged, and compared in constant time.

use std::fmt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// The shortest token accepted: 32 characters (e.g. `openssl rand -hex 16`
/// gives exactly that), so that guessing it over the network is hopeless.
pub const MIN_TOKEN_LEN: usize = 32;

/// Why the token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    #[error("admin token file {} ([admin] token_file): {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("admin token file {} ([admin] token_file): the token (its first line) has {len} characters, at least {MIN_TOKEN_LEN} are needed", path.display())]
    TooShort { path: PathBuf, len: usize },
    #[error("admin token file {} ([admin] token_file): the token (its first line) must be printable ASCII without spaces", path.display())]
    NotPrintable { path: PathBuf },
}

/// The token, kept only as its SHA-256 digest: comparing digests takes
/// the same time whatever the length or content of what a client sent.
pub struct AdminToken {
    digest: Zeroizing<[u8; 32]>,
}

impl AdminToken {
    /// Reads the token from the first line of `file`, relative to `base`
    /// (the state directory, as for the RADIUS secret files).
    pub fn read(base: &Path, file: &Path) -> Result<AdminToken, AdminTokenError> {
        let path = base.join(file);
        let text = Zeroizing::new(std::fs::read(&path).map_err(|source| AdminTokenError::Io {
            path: path.clone(),
            source,
        })?);
        let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        AdminToken::new(line).map_err(|e| match e {
            TokenRule::TooShort(len) => AdminTokenError::TooShort { path, len },
            TokenRule::NotPrintable => AdminTokenError::NotPrintable { path },
        })
    }

    /// The token `token` itself, checked as a file's would be.
    pub fn new(token: &[u8]) -> Result<AdminToken, TokenRule> {
        // RFC 6750 §2.1: b64token characters only reach us in a header;
        // any visible ASCII is accepted, nothing a header cannot carry.
        if !token.iter().all(|b| b.is_ascii_graphic()) {
            return Err(TokenRule::NotPrintable);
        }
        if token.len() < MIN_TOKEN_LEN {
            return Err(TokenRule::TooShort(token.len()));
        }
        Ok(AdminToken {
            digest: Zeroizing::new(Sha256::digest(token).into()),
        })
    }

    /// Whether `presented` is the token (constant time).
    pub fn matches(&self, presented: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented).into();
        digest.ct_eq(&*self.digest).into()
    }
}

/// Which rule a token breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRule {
    /// Shorter than [`MIN_TOKEN_LEN`]; its length.
    TooShort(usize),
    /// Holds a space, a control character or non-ASCII.
    NotPrintable,
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(redacted)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn the_token_is_the_first_line_and_matches_only_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t"), format!("{TOKEN}\r\nignored\n")).unwrap();
        let token = AdminToken::read(dir.path(), Path::new("t")).unwrap();
        assert!(token.matches(TOKEN.as_bytes()));
        assert!(!token.matches(b"0123456789abcdef0123456789abcdeF"));
        assert!(!token.matches(&TOKEN.as_bytes()[..31]));
        assert!(!token.matches(format!("{TOKEN}x").as_bytes()));
        assert!(!token.matches(b""));
        assert_eq!(format!("{token:?}"), "AdminToken(redacted)");
    }

    #[test]
    fn short_unprintable_and_missing_tokens_are_refused_with_the_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("short"), "abc\n").unwrap();
        let e = AdminToken::read(dir.path(), Path::new("short")).unwrap_err();
        assert!(matches!(e, AdminTokenError::TooShort { len: 3, .. }), "{e}");
        assert!(e.to_string().contains("short") && e.to_string().contains("at least 32"));
        assert!(
            !e.to_string().contains("abc"),
            "the token is never shown: {e}"
        );
        std::fs::write(dir.path().join("spaced"), format!("{TOKEN} {TOKEN}\n")).unwrap();
        let e = AdminToken::read(dir.path(), Path::new("spaced")).unwrap_err();
        assert!(matches!(e, AdminTokenError::NotPrintable { .. }), "{e}");
        let e = AdminToken::read(dir.path(), Path::new("missing")).unwrap_err();
        assert!(matches!(e, AdminTokenError::Io { .. }), "{e}");
        // An absolute path ignores the base.
        let abs = dir.path().join("abs");
        std::fs::write(&abs, TOKEN).unwrap();
        assert!(AdminToken::read(Path::new("/nonexistent"), &abs).is_ok());
    }
}
