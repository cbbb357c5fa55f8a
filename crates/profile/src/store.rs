//! Installed profiles: per user or for all users, installed atomically.
//!
//! Roots (like Connection Manager's per-user and all-users profile directories, seed
//! "Physical Structure"): per user `$XDG_DATA_HOME/ras/profiles` (else
//! `~/.local/share/ras/profiles`), all users `/etc/ras/profiles`. `RAS_PROFILE_ROOT=<dir>`
//! replaces both with `<dir>/user` and `<dir>/all-users` (for tests). Each profile is a
//! directory `<root>/<short>/` holding its files and `.installed.toml`.
//!
//! Trusted signing keys (`*.pub`) are read from `RAS_TRUSTED_KEYS` if set; otherwise from
//! `<dir>/trusted-keys` under `RAS_PROFILE_ROOT`, or else `/etc/ras/trusted-keys` and, per
//! user, `$XDG_CONFIG_HOME/ras/trusted-keys` (else `~/.config/ras/trusted-keys`).

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ProfileError;
use crate::model::sections;
use crate::package::{self, OpenedPackage, PackageError, TrustPolicy};
use crate::signing::PublicKey;

/// Who a profile is installed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The current user only.
    User,
    /// Every user of the machine.
    AllUsers,
}

impl Scope {
    /// `user` / `all-users`.
    pub fn name(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::AllUsers => "all-users",
        }
    }
}

/// The metadata file written into each installed profile.
pub const INSTALLED_FILE: &str = ".installed.toml";

/// What `.installed.toml` records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstallRecord {
    /// `ServiceName`.
    pub service_name: String,
    /// The short name.
    pub short_name: String,
    /// How the signature stood at install time.
    pub signature: String,
    /// SHA-256 of the package file.
    pub package_sha256: String,
    /// The files the package brought (absent in records written before this was kept).
    /// A reinstall replaces these and keeps every other file of the directory: the
    /// dialer's log and state, a phone-book update's version file.
    #[serde(default)]
    pub files: Vec<String>,
}

/// One installed profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstalledProfile {
    /// Its directory (load it with [`crate::load`]).
    pub dir: PathBuf,
    /// Which root it is in.
    pub scope: Scope,
    /// Its install record.
    pub record: InstallRecord,
}

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The package was refused.
    #[error(transparent)]
    Package(#[from] PackageError),
    /// A file of the store or of the profile.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// No home directory to put a per-user root in.
    #[error("cannot find the per-user profile directory: set XDG_DATA_HOME or HOME")]
    NoHome,
    /// `remove` of something not installed.
    #[error("no profile {0:?} is installed ({1})")]
    NotInstalled(String, &'static str),
    /// Neither a path nor the name of an installed profile.
    #[error("no profile {0:?}: not a path, and not installed (see `ras profile list`)")]
    NotFound(String),
    /// Another installed profile already has this service name.
    #[error("the service name {service:?} is already used by the installed profile {other:?}")]
    ServiceNameTaken {
        /// The service name.
        service: String,
        /// The short name of the profile that has it.
        other: String,
    },
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// The directory profiles of `scope` are installed in.
pub fn root(scope: Scope) -> Result<PathBuf, StoreError> {
    if let Some(base) = env_path("RAS_PROFILE_ROOT") {
        return Ok(base.join(scope.name()));
    }
    match scope {
        Scope::AllUsers => Ok(PathBuf::from("/etc/ras/profiles")),
        Scope::User => env_path("XDG_DATA_HOME")
            .or_else(|| env_path("HOME").map(|h| h.join(".local/share")))
            .map(|d| d.join("ras/profiles"))
            .ok_or(StoreError::NoHome),
    }
}

/// The directories whose `*.pub` files are trusted signers.
pub fn trusted_key_dirs(scope: Scope) -> Vec<PathBuf> {
    if let Some(dir) = env_path("RAS_TRUSTED_KEYS") {
        return vec![dir];
    }
    if let Some(base) = env_path("RAS_PROFILE_ROOT") {
        return vec![base.join("trusted-keys")];
    }
    let mut dirs = vec![PathBuf::from("/etc/ras/trusted-keys")];
    if scope == Scope::User {
        if let Some(d) =
            env_path("XDG_CONFIG_HOME").or_else(|| env_path("HOME").map(|h| h.join(".config")))
        {
            dirs.push(d.join("ras/trusted-keys"));
        }
    }
    dirs
}

/// Every key in the trusted-key directories of `scope` (unreadable files are skipped
/// with no error: a missing directory simply trusts nothing).
pub fn trusted_keys(scope: Scope) -> Vec<PublicKey> {
    let mut keys = Vec::new();
    for dir in trusted_key_dirs(scope) {
        let Ok(read) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in read.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "pub") {
                if let Ok(key) = PublicKey::read(&path) {
                    keys.push(key);
                }
            }
        }
    }
    keys
}

fn read_record(dir: &Path) -> Option<InstallRecord> {
    let text = fs::read_to_string(dir.join(INSTALLED_FILE)).ok()?;
    toml::from_str(&text).ok()
}

/// The profiles installed in `scope`, by short name.
pub fn list(scope: Scope) -> Result<Vec<InstalledProfile>, StoreError> {
    let root = root(scope)?;
    let mut out = Vec::new();
    let Ok(read) = fs::read_dir(&root) else {
        return Ok(out);
    };
    for entry in read.flatten() {
        let dir = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') || !dir.is_dir() {
            continue;
        }
        if let Some(record) = read_record(&dir) {
            out.push(InstalledProfile { dir, scope, record });
        }
    }
    out.sort_by(|a, b| a.record.short_name.cmp(&b.record.short_name));
    Ok(out)
}

/// The directory of an installed profile named by short name or service name
/// (case-insensitive), per-user profiles first.
pub fn find_installed(name: &str) -> Result<Option<InstalledProfile>, StoreError> {
    for scope in [Scope::User, Scope::AllUsers] {
        let found = match list(scope) {
            Ok(l) => l,
            Err(StoreError::NoHome) => continue,
            Err(e) => return Err(e),
        };
        if let Some(p) = found.into_iter().find(|p| {
            p.record.short_name.eq_ignore_ascii_case(name)
                || p.record.service_name.eq_ignore_ascii_case(name)
        }) {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// A profile as every command names one (`ras dial`, `ras profile check`): a path to its
/// directory, `.cms` or `.cmp` when that exists, else an installed profile's short or
/// service name (per-user first). Gives the path to [`crate::load`].
pub fn locate(name: &str) -> Result<PathBuf, StoreError> {
    let path = Path::new(name);
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    match find_installed(name)? {
        Some(installed) => Ok(installed.dir),
        None => Err(StoreError::NotFound(name.to_owned())),
    }
}

/// The `.cmp` keys that hold the user's saved values: kept across a reinstall.
const USER_KEYS: [&str; 9] = [
    "UserName",
    "Domain",
    "InternetUserName",
    "RememberPassword",
    "DialAutomatically",
    "Password",
    "PhoneNumber0",
    "Device",
    "ConnectionType",
];

/// Installs a package: verify, stage in `<root>/.staging-<short>-<pid>`, validate the
/// profile there, carry over the user's saved `.cmp` values and the files the profile
/// gathered while in use (its log, its state, see [`carried_over`]) from an installed
/// copy, then swap directories with renames. A failure at any step leaves the installed profile (if
/// any) as it was and removes the staging directory.
pub fn install(
    package_bytes: &[u8],
    scope: Scope,
    trust: &TrustPolicy,
) -> Result<InstalledProfile, StoreError> {
    let opened = package::open(package_bytes, trust)?;
    let root = root(scope)?;
    fs::create_dir_all(&root).map_err(|e| ProfileError::io(&root, e))?;
    let short = opened.manifest.short_name.clone();
    for other in list(scope)? {
        if other
            .record
            .service_name
            .eq_ignore_ascii_case(&opened.manifest.service_name)
            && !other.record.short_name.eq_ignore_ascii_case(&short)
        {
            return Err(StoreError::ServiceNameTaken {
                service: opened.manifest.service_name.clone(),
                other: other.record.short_name,
            });
        }
    }
    let pid = std::process::id();
    let staging = root.join(format!(".staging-{short}-{pid}"));
    let result = stage(&opened, package_bytes, &staging, &root.join(&short));
    let record = match result {
        Ok(r) => r,
        Err(e) => {
            let _ = fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let target = root.join(&short);
    let old = root.join(format!(".old-{short}-{pid}"));
    let had_old = target.exists();
    if had_old {
        if let Err(e) = fs::rename(&target, &old) {
            let _ = fs::remove_dir_all(&staging);
            return Err(ProfileError::io(&target, e).into());
        }
    }
    if let Err(e) = fs::rename(&staging, &target) {
        if had_old {
            let _ = fs::rename(&old, &target);
        }
        let _ = fs::remove_dir_all(&staging);
        return Err(ProfileError::io(&target, e).into());
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(InstalledProfile {
        dir: target,
        scope,
        record,
    })
}

fn stage(
    opened: &OpenedPackage,
    package_bytes: &[u8],
    staging: &Path,
    installed: &Path,
) -> Result<InstallRecord, StoreError> {
    if staging.exists() {
        fs::remove_dir_all(staging).map_err(|e| ProfileError::io(staging, e))?;
    }
    fs::create_dir(staging).map_err(|e| ProfileError::io(staging, e))?;
    for ((name, bytes), listed) in opened.files.iter().zip(&opened.manifest.files) {
        let path = staging.join(name);
        package::write_file(&path, bytes, listed.executable)?;
    }
    let short = &opened.manifest.short_name;
    let new_files: Vec<String> = opened.files.iter().map(|(n, _)| n.clone()).collect();
    for name in carried_over(installed, short, &new_files) {
        let (from, to) = (installed.join(&name), staging.join(&name));
        fs::copy(&from, &to).map_err(|e| ProfileError::io(&from, e))?;
    }
    // Keep what the user saved: their .cmp values win over the package's first-run ones.
    let old_cmp = installed.join(format!("{short}.cmp"));
    if old_cmp.is_file() {
        let old = crate::load::read_ini(&old_cmp)?;
        let new_cmp = staging.join(format!("{short}.cmp"));
        let mut doc = if new_cmp.is_file() {
            crate::load::read_ini(&new_cmp)?
        } else {
            old.clone()
        };
        for key in USER_KEYS {
            if let Some(e) = old.get(sections::CONNECTION_MANAGER, key) {
                doc.set(sections::CONNECTION_MANAGER, key, e.value)
                    .map_err(|source| ProfileError::Ini {
                        file: new_cmp.clone(),
                        source,
                    })?;
            }
        }
        crate::load::write_ini(&new_cmp, &doc)?;
    }
    // Refuse a package whose profile does not load: better now than at dial time.
    crate::load::load(staging)?;
    let record = InstallRecord {
        service_name: opened.manifest.service_name.clone(),
        short_name: short.clone(),
        signature: opened.signature.describe(),
        package_sha256: hex::encode(Sha256::digest(package_bytes)),
        files: new_files,
    };
    let text = toml::to_string(&record).expect("a record always serialises");
    let path = staging.join(crate::store::INSTALLED_FILE);
    fs::write(&path, text).map_err(|e| ProfileError::io(&path, e))?;
    Ok(record)
}

/// The files of an installed profile that a reinstall keeps: every regular file the old
/// package did not bring and the new one does not bring either (the dialer's
/// `<short>.log` and `<short>.state`, a phone-book update's `NAME.vers`, ...). A
/// `NAME.vers` is dropped when the new package brings `NAME.pbk`: the version belongs to
/// the phone book it describes. An install record from before the file list was kept
/// only lets the log and the state through.
pub fn carried_over(installed: &Path, short: &str, new_files: &[String]) -> Vec<String> {
    let Ok(read) = fs::read_dir(installed) else {
        return Vec::new();
    };
    let old_files = read_record(installed).map(|r| r.files).unwrap_or_default();
    let runtime = [format!("{short}.log"), format!("{short}.state")];
    let brings = |name: &str| new_files.iter().any(|n| n.eq_ignore_ascii_case(name));
    let mut out: Vec<String> = read
        .flatten()
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| !name.starts_with('.') && !brings(name))
        .filter(|name| {
            if old_files.is_empty() {
                return runtime.iter().any(|r| r.eq_ignore_ascii_case(name));
            }
            !old_files.iter().any(|o| o.eq_ignore_ascii_case(name))
        })
        .filter(|name| match name.strip_suffix(".vers") {
            Some(stem) => !brings(&format!("{stem}.pbk")),
            None => true,
        })
        .collect();
    out.sort();
    out
}

/// Removes an installed profile (by short or service name) from `scope`.
pub fn remove(name: &str, scope: Scope) -> Result<PathBuf, StoreError> {
    let found = list(scope)?
        .into_iter()
        .find(|p| {
            p.record.short_name.eq_ignore_ascii_case(name)
                || p.record.service_name.eq_ignore_ascii_case(name)
        })
        .ok_or(StoreError::NotInstalled(name.to_owned(), scope.name()))?;
    // Rename first so a half-deleted directory never looks like an installed profile.
    let root = found.dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let doomed = root.join(format!(
        ".removing-{}-{}",
        found.record.short_name,
        std::process::id()
    ));
    fs::rename(&found.dir, &doomed).map_err(|e| ProfileError::io(&found.dir, e))?;
    fs::remove_dir_all(&doomed).map_err(|e| ProfileError::io(&doomed, e))?;
    Ok(found.dir)
}
