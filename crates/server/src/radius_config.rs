//! `[radius]`: authentication and accounting through RADIUS servers
//! (RFC 2865, RFC 2866), and the RFC 5176 dynamic authorization listener.
//!
//! With no server listed the local user store authenticates (the default,
//! RRAS's "Windows Authentication"); with servers listed every session is
//! authenticated by them (RRAS's "RADIUS Authentication"), the primary
//! first and the alternate when the primary stops answering.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[radius]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusConfig {
    /// The RADIUS servers, primary first, then the alternate (at most two,
    /// as RRAS's seed describes). Empty (the default): local user store,
    /// no accounting.
    pub servers: Vec<RadiusServer>,
    /// Send accounting (Start, Interim-Update, Stop) to the servers'
    /// accounting ports. Default true.
    pub accounting: bool,
    /// Interim-Update interval in seconds when the server's Access-Accept
    /// carries no Acct-Interim-Interval; 0 (default) sends none.
    pub interim_interval_secs: u32,
    /// NAS-Identifier (RFC 2865 §5.32). Default: the server name.
    pub nas_identifier: Option<String>,
    /// Seconds to wait for a server before retransmitting (RFC 5080 IRT).
    pub timeout_secs: u32,
    /// Transmissions to one server before failing over to the other.
    pub tries: u32,
    /// Seconds a server that stopped answering is avoided before it is
    /// tried again.
    pub dead_time_secs: u32,
    /// RFC 5176 Disconnect-Request and CoA-Request listener.
    pub dynamic_authorization: Option<DynamicAuthorization>,
}

impl Default for RadiusConfig {
    fn default() -> Self {
        RadiusConfig {
            servers: Vec::new(),
            accounting: true,
            interim_interval_secs: 0,
            nas_identifier: None,
            timeout_secs: 2,
            tries: 3,
            dead_time_secs: 60,
            dynamic_authorization: None,
        }
    }
}

impl RadiusConfig {
    /// Whether RADIUS authenticates sessions.
    pub fn enabled(&self) -> bool {
        !self.servers.is_empty()
    }
}

/// One `[[radius.servers]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RadiusServer {
    /// The server's address (no host names: a RADIUS client must not
    /// depend on DNS to authenticate).
    pub address: IpAddr,
    /// Authentication port. Default 1812 (RFC 2865 §3).
    #[serde(default = "default_auth_port")]
    pub auth_port: u16,
    /// Accounting port. Default 1813 (RFC 2866 §3).
    #[serde(default = "default_acct_port")]
    pub acct_port: u16,
    /// File holding the shared secret (its first line). Relative paths are
    /// taken from the state directory. The secret is never written in the
    /// configuration itself, so the file can be readable by root only.
    pub secret_file: PathBuf,
}

fn default_auth_port() -> u16 {
    1812
}
fn default_acct_port() -> u16 {
    1813
}

impl RadiusServer {
    pub fn auth_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.auth_port)
    }
    pub fn acct_addr(&self) -> SocketAddr {
        SocketAddr::new(self.address, self.acct_port)
    }
}

/// `[radius.dynamic_authorization]`: RFC 5176 Disconnect/CoA.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicAuthorization {
    /// Where to listen. Default 0.0.0.0:3799 (RFC 5176 §3).
    #[serde(default = "default_dae_listen")]
    pub listen: SocketAddr,
    /// Who may send requests, each with its secret. Requests from any
    /// other address are dropped (RFC 5176 §5.1).
    pub clients: Vec<DynamicAuthorizationClient>,
}

fn default_dae_listen() -> SocketAddr {
    SocketAddr::from(([0, 0, 0, 0], 3799))
}

/// One Dynamic Authorization Client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicAuthorizationClient {
    pub address: IpAddr,
    /// File holding the shared secret (first line).
    pub secret_file: PathBuf,
}

/// A secret file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("{}: cannot read the RADIUS secret: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: line 1: the RADIUS secret is empty", path.display())]
    Empty { path: PathBuf },
}

/// Reads a shared secret: the first line of `file` (relative to `base`),
/// without its line ending.
pub fn read_secret(base: &Path, file: &Path) -> Result<radius::Secret, SecretFileError> {
    let path = base.join(file);
    let text =
        zeroize::Zeroizing::new(std::fs::read(&path).map_err(|source| SecretFileError::Io {
            path: path.clone(),
            source,
        })?);
    let line = text.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(SecretFileError::Empty { path });
    }
    Ok(radius::Secret::new(line.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_the_first_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s"), b"testing123\r\nignored\n").unwrap();
        let s = read_secret(dir.path(), Path::new("s")).unwrap();
        assert_eq!(s.as_bytes(), b"testing123");
        std::fs::write(dir.path().join("e"), b"\n").unwrap();
        let e = read_secret(dir.path(), Path::new("e")).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        let m = read_secret(dir.path(), Path::new("missing")).unwrap_err();
        assert!(m.to_string().contains("missing"), "{m}");
    }
}
