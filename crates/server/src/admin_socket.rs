//! The admin API's Unix socket: who may reach it and how it is claimed.
//!
//! - Mode 0660, owner root (whoever runs the server), group `ras` when
//!   that group exists, else the server's own group: root and the `ras`
//!   group only. The socket is bound under a temporary name, given its
//!   mode and group, and renamed into place, so it is never reachable
//!   with looser permissions.
//! - A socket file another live server answers on is not taken: the
//!   server refuses to start. One nobody answers on (a server that was
//!   killed) is stale and replaced. A path that is not a socket is never
//!   removed.
//! - [`AdminSocket`] removes the file when the server stops (or when
//!   dropped), if it is still ours.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// The group that may use the admin socket besides root.
pub const ADMIN_GROUP: &str = "ras";

/// Why the admin socket could not be claimed.
#[derive(Debug, thiserror::Error)]
pub enum AdminSocketError {
    #[error("another ras server answers on the admin socket {} ([admin] socket; stop it first)", path.display())]
    InUse { path: PathBuf },
    #[error("{} exists and is not a socket ([admin] socket): not replacing it", path.display())]
    NotASocket { path: PathBuf },
    #[error("admin socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The bound socket; removes its file when dropped.
#[derive(Debug)]
pub struct AdminSocket {
    listener: Option<UnixListener>,
    path: PathBuf,
    /// The inode bound, so that only our own file is removed.
    inode: u64,
}

impl AdminSocket {
    /// Claims `path` (see the module comment).
    pub fn bind(path: &Path) -> Result<AdminSocket, AdminSocketError> {
        let io_err = |source| AdminSocketError::Io {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io_err)?;
                // The directory is public; the socket's mode guards it.
                let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
            }
        }
        match std::fs::symlink_metadata(path) {
            Ok(meta) if !meta.file_type().is_socket() => {
                return Err(AdminSocketError::NotASocket {
                    path: path.to_owned(),
                })
            }
            Ok(_) => match UnixStream::connect(path) {
                Ok(_) => {
                    return Err(AdminSocketError::InUse {
                        path: path.to_owned(),
                    })
                }
                // Nobody listens: a stale file from a server that died.
                Err(_) => {
                    tracing::info!("replacing the stale admin socket {}", path.display());
                    std::fs::remove_file(path).map_err(io_err)?;
                }
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }
        let mut temporary = path.as_os_str().to_owned();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let temporary = PathBuf::from(temporary);
        let _ = std::fs::remove_file(&temporary);
        let listener = UnixListener::bind(&temporary).map_err(io_err)?;
        let claimed = (|| {
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o660))?;
            if let Some(gid) = group_id(ADMIN_GROUP) {
                std::os::unix::fs::chown(&temporary, None, Some(gid))?;
            }
            std::fs::rename(&temporary, path)?;
            std::fs::symlink_metadata(path).map(|m| m.ino())
        })();
        match claimed {
            Ok(inode) => Ok(AdminSocket {
                listener: Some(listener),
                path: path.to_owned(),
                inode,
            }),
            Err(e) => {
                let _ = std::fs::remove_file(&temporary);
                Err(io_err(e))
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The listener, for tokio (once).
    pub fn take_listener(&mut self) -> Option<UnixListener> {
        self.listener.take()
    }

    /// Removes the socket file if it is still the one bound here.
    pub fn remove(&self) {
        let ours = std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.inode);
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The id of group `name` from /etc/group, if it exists.
pub fn group_id(name: &str) -> Option<u32> {
    let text = std::fs::read_to_string("/etc/group").ok()?;
    group_id_in(&text, name)
}

/// `name`'s id in the text of an /etc/group file (`name:x:gid:members`).
fn group_id_in(text: &str, name: &str) -> Option<u32> {
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        (fields.next()? == name)
            .then(|| fields.nth(1)?.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_ids_come_from_the_group_file() {
        let text = "root:x:0:\nrasx:x:998:\nras:x:999:alice,bob\n";
        assert_eq!(group_id_in(text, "ras"), Some(999));
        assert_eq!(group_id_in(text, "root"), Some(0));
        assert_eq!(group_id_in(text, "nobody"), None);
    }

    #[test]
    fn a_socket_is_claimed_private_refused_while_live_and_replaced_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run/admin.sock");
        let mut first = AdminSocket::bind(&path).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o660);
        // A second server while the first one listens: refused.
        match AdminSocket::bind(&path) {
            Err(AdminSocketError::InUse { .. }) => {}
            other => panic!("expected InUse, got {other:?}"),
        }
        // The first one dies without cleaning up: its file is stale.
        drop(first.take_listener());
        std::mem::forget(first);
        assert!(path.exists());
        let second = AdminSocket::bind(&path).unwrap();
        assert!(UnixStream::connect(&path).is_ok());
        drop(second);
        assert!(!path.exists(), "removed when the server stops");
        // Not a socket: left alone.
        std::fs::write(&path, "precious").unwrap();
        match AdminSocket::bind(&path) {
            Err(AdminSocketError::NotASocket { .. }) => {}
            other => panic!("expected NotASocket, got {other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
    }
}
