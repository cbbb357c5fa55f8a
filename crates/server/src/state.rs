//! The state directory (`state_dir`, default `/var/lib/ras`): where the
//! server keeps what must survive a restart.
//!
//! Files it holds: `ras.db` (user store, see [`crate::users`]),
//! `server-cert.pem` and `server-key.pem` (the self-signed certificate, see
//! [`crate::cert`]), `reversible.key` (the key for reversibly stored
//! passwords), `ula-global-id` (the stored RFC 4193 Global ID),
//! `dhcp-leases` (the DHCP leases held, see [`crate::dhcp_leftovers`]).
//!
//! The directory is created with mode 0700 and secret files with 0600, and
//! secret files are written atomically (temporary file, fsync, rename), so
//! a crash never leaves a half-written key that would be reused on the next
//! start.

use std::fs;
use std::io::{self, Write};
use std::net::Ipv6Addr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::Zeroizing;

use crate::config::Ipv6PrefixSetting;

/// A state-directory operation failed.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct StateError {
    /// The file or directory concerned.
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

fn at(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError {
        path: path.to_owned(),
        source,
    }
}

/// The state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    path: PathBuf,
}

impl StateDir {
    /// Opens the directory, creating it (and its parents) with mode 0700 if
    /// it does not exist. An existing directory keeps its mode.
    pub fn open(path: &Path) -> Result<StateDir, StateError> {
        if !path.is_dir() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .map_err(at(path))?;
        }
        Ok(StateDir {
            path: path.to_owned(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The path of file `name` inside the directory.
    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes file `name` with mode 0600, atomically: readers see the old
    /// content or the new one, never a part.
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), StateError> {
        let target = self.file(name);
        let tmp = self.file(&format!(".{name}.tmp{}", std::process::id()));
        let result = (|| {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            // The mode given to open() is filtered by the umask and ignored
            // for an existing file: set it explicitly.
            f.set_permissions(fs::Permissions::from_mode(0o600))?;
            f.write_all(bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &target)?;
            // Make the rename itself durable.
            fs::File::open(&self.path)?.sync_all()
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(at(&target))
    }

    /// Reads the secret in file `name`, or creates it with `len` random
    /// bytes (mode 0600) if it does not exist. A file of the wrong length
    /// is an error rather than silently replaced: what it protects would
    /// become unreadable.
    pub fn read_or_create_secret(
        &self,
        name: &str,
        len: usize,
    ) -> Result<Zeroizing<Vec<u8>>, StateError> {
        let path = self.file(name);
        match fs::read(&path) {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                if bytes.len() != len {
                    return Err(StateError {
                        path,
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("expected {len} bytes, found {}", bytes.len()),
                        ),
                    });
                }
                Ok(bytes)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut bytes = Zeroizing::new(vec![0u8; len]);
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                self.write_private(name, &bytes)?;
                Ok(bytes)
            }
            Err(e) => Err(StateError { path, source: e }),
        }
    }

    /// The ULA /64 for clients (RFC 4193 §3.2): `fd` + a 40-bit random
    /// Global ID stored in `ula-global-id` + subnet ID 0. Random and stored,
    /// so it is unique per server and stable across restarts.
    pub fn ula_prefix(&self) -> Result<Ipv6Addr, StateError> {
        let id = self.read_or_create_secret("ula-global-id", 5)?;
        let mut octets = [0u8; 16];
        octets[0] = 0xfd;
        octets[1..6].copy_from_slice(&id);
        Ok(Ipv6Addr::from(octets))
    }

    /// The /64 prefix clients get, per `addresses.ipv6_prefix`: `None` when
    /// IPv6 is off.
    pub fn client_ipv6_prefix(
        &self,
        setting: Ipv6PrefixSetting,
    ) -> Result<Option<Ipv6Addr>, StateError> {
        match setting {
            Ipv6PrefixSetting::Off => Ok(None),
            Ipv6PrefixSetting::Prefix(p) => Ok(Some(p)),
            Ipv6PrefixSetting::Auto => self.ula_prefix().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_directory_and_private_files() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        let state = StateDir::open(&dir).unwrap();
        assert_eq!(
            fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        state.write_private("x", b"hello").unwrap();
        let meta = fs::metadata(state.file("x")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read(state.file("x")).unwrap(), b"hello");
        state.write_private("x", b"again").unwrap();
        assert_eq!(fs::read(state.file("x")).unwrap(), b"again");
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
    }

    #[test]
    fn secret_is_created_once_and_reused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let a = state.read_or_create_secret("k", 32).unwrap();
        let b = state.read_or_create_secret("k", 32).unwrap();
        assert_eq!(*a, *b);
        assert!(state.read_or_create_secret("k", 16).is_err());
    }

    #[test]
    fn ula_prefix_is_stable_and_well_formed() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let p = state.ula_prefix().unwrap();
        assert_eq!(p.octets()[0], 0xfd);
        assert_eq!(&p.octets()[6..], &[0; 10]);
        assert_eq!(state.ula_prefix().unwrap(), p);
        assert_eq!(
            state.client_ipv6_prefix(Ipv6PrefixSetting::Auto).unwrap(),
            Some(p)
        );
        assert_eq!(
            state.client_ipv6_prefix(Ipv6PrefixSetting::Off).unwrap(),
            None
        );
    }
}
