//! Where `ras client provision` keeps what it was given, and where the
//! daemon keeps what it learned:
//!
//! - `DIR/connections/NAME.toml`: one provisioned connection (its part of
//!   the policy document, re-serialized; it may hold the password), mode
//!   0600, directory 0700: root only.
//! - `DIR/state/NAME.json`: the daemon's memory of the connection (the
//!   protocol that last worked, tried first next time), 0600.
//! - `DIR/network/nat-timeouts.json`: NAT timeouts measured per network
//!   (nat_probe.rs), 0600.
//!
//! Every file is written under a temporary name and renamed into place, so
//! that a reader (or a crash) never sees half a file, and a refused
//! document leaves what was stored before untouched.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::Context;
use client::vpn_policy::{self, ConnectionPolicy, PolicyDocument};
use serde::{Deserialize, Serialize};

/// The default store (`--state` or RAS_CLIENT_STATE override it).
pub const DEFAULT_DIR: &str = "/etc/ras/client";

/// The provisioning store at `dir`.
#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

/// What the daemon remembers about a connection between runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionState {
    /// The protocol (`ikev2`, `sstp`, …) whose link last came up.
    #[serde(default)]
    pub last_protocol: Option<String>,
}

impl Store {
    pub fn new(dir: PathBuf) -> Store {
        Store { dir }
    }

    pub fn connections_dir(&self) -> PathBuf {
        self.dir.join("connections")
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    pub fn connection_file(&self, name: &str) -> PathBuf {
        self.connections_dir().join(format!("{name}.toml"))
    }

    pub fn state_file(&self, name: &str) -> PathBuf {
        self.state_dir().join(format!("{name}.json"))
    }

    /// Stores every connection of `doc` (replacing ones of the same name).
    /// All files are written first under temporary names, then renamed: a
    /// failure before the renames changes nothing.
    pub fn store(&self, doc: &PolicyDocument) -> anyhow::Result<Vec<PathBuf>> {
        private_dir(&self.dir)?;
        private_dir(&self.connections_dir())?;
        let mut staged = Vec::new();
        let result = (|| {
            for c in &doc.connections {
                let single = PolicyDocument {
                    connections: vec![c.clone()],
                };
                let text = toml::to_string(&single).context("serializing the connection")?;
                let path = self.connection_file(&c.name);
                let tmp = write_temporary(&path, text.as_bytes())?;
                staged.push((tmp, path));
            }
            Ok::<(), anyhow::Error>(())
        })();
        if let Err(e) = result {
            for (tmp, _) in &staged {
                let _ = std::fs::remove_file(tmp);
            }
            return Err(e);
        }
        let mut stored = Vec::new();
        for (tmp, path) in staged {
            std::fs::rename(&tmp, &path).with_context(|| format!("storing {}", path.display()))?;
            stored.push(path);
        }
        Ok(stored)
    }

    /// The names of the provisioned connections, sorted.
    pub fn names(&self) -> anyhow::Result<Vec<String>> {
        let dir = self.connections_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("reading {}", dir.display()))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".toml")) else {
                continue;
            };
            names.push(name.to_owned());
        }
        names.sort();
        Ok(names)
    }

    /// Every provisioned connection, checked again (a file edited by hand
    /// is refused with its line and field, like a document).
    pub fn load(&self) -> anyhow::Result<Vec<ConnectionPolicy>> {
        let mut out = Vec::new();
        for name in self.names()? {
            let path = self.connection_file(&name);
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            let doc = vpn_policy::parse(&text, &path)?;
            out.extend(doc.connections);
        }
        Ok(out)
    }

    /// Removes connection `name` and its state; false if it was not
    /// provisioned.
    pub fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let path = self.connection_file(name);
        let existed = match std::fs::remove_file(&path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
            Err(e) => return Err(e).with_context(|| format!("removing {}", path.display())),
        };
        let _ = std::fs::remove_file(self.state_file(name));
        Ok(existed)
    }

    /// Removes the directories provisioning created, if nothing else is
    /// left in them (a file someone else put there is kept, and so is its
    /// directory).
    pub fn remove_empty_dirs(&self) {
        for dir in [self.connections_dir(), self.state_dir(), self.dir.clone()] {
            let _ = std::fs::remove_dir(dir);
        }
    }

    pub fn read_state(&self, name: &str) -> ConnectionState {
        std::fs::read(self.state_file(name))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    pub fn write_state(&self, name: &str, state: &ConnectionState) -> anyhow::Result<()> {
        private_dir(&self.state_dir())?;
        let path = self.state_file(name);
        let text = serde_json::to_vec(state).context("serializing the state")?;
        let tmp = write_temporary(&path, &text)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Writes `bytes` to `path` (0600, in a 0700 directory) all at once.
pub(super) fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        private_dir(dir)?;
    }
    let tmp = write_temporary(path, bytes)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Creates `dir` (0700) if needed, and makes sure it is not open to others.
fn private_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.exists() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("restricting {}", dir.display()))
}

/// Writes `bytes` to a new file beside `path` (mode 0600 from the start,
/// so the password is never readable by others, not even briefly).
fn write_temporary(path: &Path, bytes: &[u8]) -> anyhow::Result<PathBuf> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    Ok(tmp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    const DOC: &str = "[[connection]]\nname = \"a\"\nservers = [\"h\"]\nprotocols = [\"pptp\"]\n[connection.auth]\nuser = \"u\"\npassword = \"pw\"\n";

    #[test]
    fn stores_private_files_and_removes_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("client"));
        let doc = vpn_policy::parse(DOC, Path::new("d.toml")).unwrap();
        let files = store.store(&doc).unwrap();
        assert_eq!(files, vec![store.connection_file("a")]);
        assert_eq!(std::fs::metadata(&files[0]).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&store.dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(store.load().unwrap(), doc.connections);
        store
            .write_state(
                "a",
                &ConnectionState {
                    last_protocol: Some("pptp".into()),
                },
            )
            .unwrap();
        assert_eq!(store.read_state("a").last_protocol.as_deref(), Some("pptp"));
        // A stranger's file in the store survives unprovisioning.
        std::fs::write(store.dir.join("notes"), "keep").unwrap();
        assert!(store.remove("a").unwrap());
        assert!(!store.remove("a").unwrap());
        store.remove_empty_dirs();
        assert!(store.dir.join("notes").exists());
        assert!(!store.connections_dir().exists());
        assert_eq!(store.read_state("a"), ConnectionState::default());
    }
}
