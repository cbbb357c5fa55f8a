//! Least privilege once the server is up: after [`crate::server::Server::start`]
//! has bound its sockets, opened the raw GRE and ESP sockets and created
//! the TUN device, a server started as root becomes the configured `user`
//! (default `ras`) with only the capabilities it still needs:
//!
//! - CAP_NET_ADMIN: per-session routes and addresses on the TUN device
//!   (netdev runs `ip route`, which gets it through the ambient set), the
//!   DHCP client's proxy ARP and route changes;
//! - CAP_NET_RAW: raw GRE (PPTP) and ESP sockets opened again.
//!
//! Everything else goes: the uid, gid and supplementary groups (the
//! user's own, so that e.g. membership of `dialout` still opens serial
//! lines), every other capability from the permitted, effective,
//! inheritable, ambient and bounding sets, and `no_new_privs` is set. The
//! state directory (ras.db and its journal, the accounting spool, the
//! generated key and certificate) is given to the user first, so the
//! server can still write it.
//!
//! Started as a user other than root (systemd's `User=ras` with
//! `AmbientCapabilities=`), the server has nothing to change ids with: it
//! only trims its capability sets to the two above (CAP_NET_BIND_SERVICE
//! is needed only for binding), leaving the bounding set to systemd.
//!
//! The change is made on every thread (see [`crate::privilege_threads`]).

use std::io;
use std::path::{Path, PathBuf};

use crate::privilege_threads::{apply_to_every_thread, Ids, ThreadDropError, ThreadPlan};
use crate::proc_status::{capability_names, ThreadCredentials, CAP_NET_ADMIN, CAP_NET_RAW};

/// The capabilities the server keeps.
pub const KEPT: u64 = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);

/// What the drop did, for the one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Now running as `user` with `capabilities`.
    Dropped {
        user: String,
        uid: u32,
        capabilities: u64,
    },
    /// `user` does not exist (a plain `cargo run`): still root.
    NoSuchUser { user: String },
    /// `user = ""` or `"root"` (or a user whose uid is 0): root by choice.
    StayedRoot { user: String },
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Dropped {
                user,
                uid,
                capabilities,
            } => write!(
                f,
                "running as user {user} (uid {uid}) with {}",
                capability_names(*capabilities)
            ),
            Outcome::NoSuchUser { user } => write!(
                f,
                "user \"{user}\" does not exist: staying root (create it, or set user = \"\")"
            ),
            Outcome::StayedRoot { user } => write!(f, "running as root (user = \"{user}\")"),
        }
    }
}

/// Why the drop failed. The server must stop: some threads may already
/// have changed.
#[derive(Debug, thiserror::Error)]
pub enum PrivilegeError {
    #[error("looking up user \"{user}\" (user): {source}")]
    Lookup {
        user: String,
        #[source]
        source: io::Error,
    },
    #[error("giving the state directory to user \"{user}\": {}: {source}", path.display())]
    Chown {
        user: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("reading this thread's capabilities: {0}")]
    Capabilities(#[source] io::Error),
    #[error(transparent)]
    Threads(#[from] ThreadDropError),
}

/// Drops to `user` (see the module doc). `user` empty or "root" keeps
/// root; a user that does not exist is reported in the [`Outcome`].
pub fn drop_privileges(user: &str, state_dir: &Path) -> Result<Outcome, PrivilegeError> {
    let me = ThreadCredentials::read(Path::new("/proc/thread-self/status"))
        .map_err(PrivilegeError::Capabilities)?;
    let last_cap = last_capability();
    if me.uid[1] != 0 {
        // Not root: systemd (or a caller) chose the user; keep what is
        // needed of what we were given.
        let keep = KEPT & me.cap_permitted;
        apply_to_every_thread(ThreadPlan {
            ids: None,
            keep,
            last_cap,
        })?;
        let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(me.uid[1]))
            .ok()
            .flatten()
            .map_or_else(|| me.uid[1].to_string(), |u| u.name);
        return Ok(Outcome::Dropped {
            user: name,
            uid: me.uid[1],
            capabilities: keep,
        });
    }
    if user.is_empty() || user == "root" {
        return Ok(Outcome::StayedRoot {
            user: user.to_owned(),
        });
    }
    let lookup_err = |e: nix::Error| PrivilegeError::Lookup {
        user: user.to_owned(),
        source: io::Error::from(e),
    };
    let Some(account) = nix::unistd::User::from_name(user).map_err(lookup_err)? else {
        return Ok(Outcome::NoSuchUser {
            user: user.to_owned(),
        });
    };
    if account.uid.is_root() {
        return Ok(Outcome::StayedRoot {
            user: user.to_owned(),
        });
    }
    let name = std::ffi::CString::new(user).map_err(|_| PrivilegeError::Lookup {
        user: user.to_owned(),
        source: io::Error::new(io::ErrorKind::InvalidInput, "the name contains a NUL"),
    })?;
    let mut groups: Vec<u32> = nix::unistd::getgrouplist(&name, account.gid)
        .map_err(lookup_err)?
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.sort_unstable();
    groups.dedup();
    let (uid, gid) = (account.uid.as_raw(), account.gid.as_raw());
    give_tree(state_dir, uid, gid).map_err(|(path, source)| PrivilegeError::Chown {
        user: user.to_owned(),
        path,
        source,
    })?;
    apply_to_every_thread(ThreadPlan {
        ids: Some(Ids { uid, gid, groups }),
        keep: KEPT,
        last_cap,
    })?;
    Ok(Outcome::Dropped {
        user: user.to_owned(),
        uid,
        capabilities: KEPT,
    })
}

/// `/proc/sys/kernel/cap_last_cap` (capabilities(7)); 40 (CAP_CHECKPOINT_RESTORE,
/// Linux 5.9) when it cannot be read.
fn last_capability() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(40)
}

/// Gives `dir` and everything under it to `uid`:`gid`. Symbolic links are
/// changed themselves, never followed, so a link in the state directory
/// cannot hand the user a file elsewhere.
pub fn give_tree(dir: &Path, uid: u32, gid: u32) -> Result<(), (PathBuf, io::Error)> {
    let at = |p: &Path| {
        let p = p.to_owned();
        move |e| (p, e)
    };
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid)).map_err(at(dir))?;
    let meta = std::fs::symlink_metadata(dir).map_err(at(dir))?;
    if !meta.is_dir() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir).map_err(at(dir))? {
        let path = entry.map_err(at(dir))?.path();
        give_tree(&path, uid, gid)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn the_log_lines_say_who_and_with_what() {
        let dropped = Outcome::Dropped {
            user: "ras".into(),
            uid: 998,
            capabilities: KEPT,
        };
        assert_eq!(
            dropped.to_string(),
            "running as user ras (uid 998) with CAP_NET_ADMIN, CAP_NET_RAW"
        );
        assert_eq!(
            Outcome::NoSuchUser { user: "ras".into() }.to_string(),
            "user \"ras\" does not exist: staying root (create it, or set user = \"\")"
        );
    }

    #[test]
    fn the_whole_tree_changes_owner_and_links_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::NamedTempFile::new().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/ras.db"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("link")).unwrap();
        let before_outside = std::fs::metadata(outside.path()).unwrap();
        // Giving it to the current owner works unprivileged; as root the
        // test uses another id so that a change is visible.
        let (uid, gid) = if nix::unistd::geteuid().is_root() {
            (65534, 65534)
        } else {
            (before_outside.uid(), before_outside.gid())
        };
        give_tree(dir.path(), uid, gid).unwrap();
        for p in ["", "sub", "sub/ras.db", "link"] {
            let m = std::fs::symlink_metadata(dir.path().join(p)).unwrap();
            assert_eq!((m.uid(), m.gid()), (uid, gid), "{p}");
        }
        let after_outside = std::fs::metadata(outside.path()).unwrap();
        assert_eq!(after_outside.uid(), before_outside.uid());
    }

    #[test]
    fn an_empty_user_keeps_root_and_changes_nothing() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        for user in ["", "root"] {
            let outcome = drop_privileges(user, dir.path()).unwrap();
            assert_eq!(
                outcome,
                Outcome::StayedRoot {
                    user: user.to_owned()
                }
            );
            assert_eq!(
                outcome.to_string(),
                format!("running as root (user = \"{user}\")")
            );
        }
        assert_eq!(
            drop_privileges("no-such-user-ras-test", dir.path()).unwrap(),
            Outcome::NoSuchUser {
                user: "no-such-user-ras-test".into()
            }
        );
        assert_eq!(nix::unistd::geteuid().as_raw(), 0);
    }
}
