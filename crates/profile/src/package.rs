//! The installable package: one file, `<short>.rasprofile`, that carries a profile's files
//! and proves who built it (ours; the Windows equivalent is an IExpress .exe, CM-FORMATS §6).
//!
//! A POSIX ustar archive (`tar tf` lists it) holding, in this order:
//! - `manifest.toml`: format, service and short name, and each file's name, size and SHA-256;
//! - `manifest.sig`: `algorithm = "ed25519"`, the signer's `public_key` and the `signature`
//!   of the exact bytes of `manifest.toml` (absent in an unsigned package);
//! - `files/<name>`: the profile's files, flat.
//!
//! Opening checks that every file matches the manifest and nothing is missing or extra
//! (always), and that the signature is valid and by a trusted key. The only thing a caller
//! may explicitly allow is a package that carries no signature at all: a signature that
//! does not verify, or one by a key nobody trusts, is never accepted.
//!
//! A file's executable bit is part of the manifest (`executable = true`), so it is signed
//! with the rest: custom-action scripts stay runnable through build, package and install.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ProfileError;
use crate::parse::{validate_service_name, validate_short_name};
use crate::signing::{PublicKey, SigningKey};
use crate::tar::{self, TarError};

/// Name of the manifest entry.
pub const MANIFEST: &str = "manifest.toml";
/// Name of the signature entry.
pub const SIGNATURE: &str = "manifest.sig";
/// Directory of the profile files inside the archive.
pub const FILES_PREFIX: &str = "files/";
/// File name extension of packages.
pub const EXTENSION: &str = "rasprofile";
const FORMAT: u32 = 1;

/// The package manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Package format version (1).
    pub format: u32,
    /// `ServiceName` of the profile.
    pub service_name: String,
    /// The short service name.
    pub short_name: String,
    /// Each file of the profile.
    pub files: Vec<ManifestFile>,
}

/// One file in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// The file name (flat).
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its SHA-256, lowercase hex.
    pub sha256: String,
    /// The file is a program (a custom action): installed with mode 0755, else 0644.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub executable: bool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureFile {
    algorithm: String,
    public_key: String,
    signature: String,
}

/// How the package's signature stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureStatus {
    /// Signed by one of the trusted keys.
    Trusted(PublicKey),
    /// No signature at all.
    Unsigned,
    /// A valid signature by a key that is not trusted.
    UntrustedSigner(PublicKey),
    /// A signature that does not verify: the manifest was changed after signing.
    Invalid,
}

impl SignatureStatus {
    /// A short description for listings and messages.
    pub fn describe(&self) -> String {
        match self {
            SignatureStatus::Trusted(k) => format!("signed by trusted key {}", k.to_hex()),
            SignatureStatus::Unsigned => "unsigned".to_owned(),
            SignatureStatus::UntrustedSigner(k) => {
                format!("signed by untrusted key {}", k.to_hex())
            }
            SignatureStatus::Invalid => "signature does not verify (tampered)".to_owned(),
        }
    }
}

/// Why a package could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The profile to package is invalid.
    #[error(transparent)]
    Profile(#[from] ProfileError),
    /// The archive is malformed.
    #[error("not a valid profile package: {0}")]
    Archive(#[from] TarError),
    /// The manifest is missing or malformed.
    #[error("not a valid profile package: {0}")]
    Manifest(String),
    /// A file differs from the manifest, or is missing or extra: the package was altered
    /// or damaged. Never overridable.
    #[error("the package content does not match its manifest ({0}): it was altered or damaged; refusing to install")]
    Tampered(String),
    /// The package carries no signature and the caller did not allow that.
    #[error("refusing an unsigned package: nobody vouches for it; pass --allow-unsigned to install it anyway")]
    Unsigned,
    /// A valid signature by a key that is not trusted. Never overridden by
    /// `allow_unsigned`: trusting a signer is a decision about that key.
    #[error("refusing a package signed by an untrusted key {0}: if you trust its builder, --trust their public key file (or put it in the trusted-keys directory)")]
    UntrustedSigner(String),
    /// The signature does not verify: the manifest was changed after signing, or the
    /// signature is damaged. Never overridable.
    #[error("refusing a package whose signature does not verify: it was altered after signing or is damaged, and is never installed")]
    BadSignature,
}

/// What is trusted when opening a package.
#[derive(Debug, Clone, Default)]
pub struct TrustPolicy {
    /// Keys whose signatures are accepted.
    pub keys: Vec<PublicKey>,
    /// Accept a package that carries no signature at all (explicit opt-in). Never
    /// accepts an invalid signature or an untrusted signer.
    pub allow_unsigned: bool,
}

/// A package whose content matched its manifest.
#[derive(Debug, Clone)]
pub struct OpenedPackage {
    /// Its manifest.
    pub manifest: Manifest,
    /// The profile files, `(name, bytes)`, in manifest order (see `manifest.files` for
    /// each one's executable bit).
    pub files: Vec<(String, Vec<u8>)>,
    /// The signature check's outcome.
    pub signature: SignatureStatus,
}

/// Largest manifest or signature file we parse.
const MAX_TOML_BYTES: usize = 1024 * 1024;
/// Deepest `[`/`{` nesting we let the TOML parser see: ours never exceed 3, and a
/// deeply nested document from elsewhere must not exhaust the stack.
const MAX_TOML_NESTING: usize = 8;

/// Parses a small TOML document from a package, bounded in size and nesting.
fn parse_bounded_toml<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: &str,
) -> Result<T, String> {
    if bytes.len() > MAX_TOML_BYTES {
        return Err(format!("{what} is larger than {MAX_TOML_BYTES} bytes"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| format!("{what} is not UTF-8"))?;
    // Counts brackets outside strings and comments (an over-estimate is harmless here).
    let (mut depth, mut quote, mut escaped, mut comment) = (0usize, None, false, false);
    for ch in text.chars() {
        if comment {
            comment = ch != '\n';
            continue;
        }
        match quote {
            Some(_) if escaped => escaped = false,
            Some('"') if ch == '\\' => escaped = true,
            Some(q) if ch == q || ch == '\n' => quote = None,
            Some(_) => {}
            None => match ch {
                '"' | '\'' => quote = Some(ch),
                '#' => comment = true,
                '[' | '{' => {
                    depth += 1;
                    if depth > MAX_TOML_NESTING {
                        return Err(format!("{what} is nested too deeply"));
                    }
                }
                ']' | '}' => depth = depth.saturating_sub(1),
                _ => {}
            },
        }
    }
    toml::from_str(text).map_err(|e| format!("{what}: {e}"))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Packs the profile in `dir` (validated with [`crate::load`] first). Every regular file
/// not starting with `.` is included; subdirectories are refused.
pub fn create(dir: &Path, key: Option<&SigningKey>) -> Result<Vec<u8>, PackageError> {
    let profile = crate::load(dir)?;
    if profile.files.dir != dir {
        // `load` accepts a .cms path too; packages are made from directories only.
        return Err(ProfileError::layout(dir, "package a profile directory").into());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| ProfileError::io(dir, e))? {
        let entry = entry.map_err(|e| ProfileError::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        if !path.is_file() {
            return Err(ProfileError::layout(&path, "profiles are flat: no subdirectories").into());
        }
        if !tar::is_safe_name(&name) || name.contains('/') {
            return Err(ProfileError::layout(
                &path,
                "file names in a profile use only A-Z a-z 0-9 . _ - (at most 64)",
            )
            .into());
        }
        names.push(name);
    }
    names.sort();
    let mut files = Vec::new();
    let mut manifest = Manifest {
        format: FORMAT,
        service_name: profile.connection_manager.service_name.clone(),
        short_name: profile.short_name.clone(),
        files: Vec::new(),
    };
    for name in names {
        let path = dir.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| ProfileError::io(&path, e))?;
        let executable = is_executable(&path)?;
        manifest.files.push(ManifestFile {
            name: name.clone(),
            size: bytes.len() as u64,
            sha256: sha256_hex(&bytes),
            executable,
        });
        let mode = if executable { 0o755 } else { 0o644 };
        files.push((format!("{FILES_PREFIX}{name}"), bytes, mode));
    }
    let manifest_text =
        toml::to_string(&manifest).map_err(|e| PackageError::Manifest(e.to_string()))?;
    let mut entries = vec![(
        MANIFEST.to_owned(),
        manifest_text.clone().into_bytes(),
        0o644,
    )];
    if let Some(key) = key {
        let sig = SignatureFile {
            algorithm: "ed25519".to_owned(),
            public_key: key.public_key().to_hex(),
            signature: hex::encode(key.sign(manifest_text.as_bytes())),
        };
        let text = toml::to_string(&sig).map_err(|e| PackageError::Manifest(e.to_string()))?;
        entries.push((SIGNATURE.to_owned(), text.into_bytes(), 0o644));
    }
    entries.extend(files);
    Ok(tar::write_with_modes(&entries))
}

/// Whether any execute bit of `path` is set (the owner's, group's or others').
pub fn is_executable(path: &Path) -> Result<bool, ProfileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| ProfileError::io(path, e))?;
    Ok(meta.permissions().mode() & 0o111 != 0)
}

/// Writes `bytes` to `path` with mode 0755 when `executable`, else 0644 (whatever the
/// umask would have given).
pub fn write_file(path: &Path, bytes: &[u8], executable: bool) -> Result<(), ProfileError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, bytes).map_err(|e| ProfileError::io(path, e))?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| ProfileError::io(path, e))
}

/// Opens a package: checks its content against the manifest, then its signature against
/// `trust`.
pub fn open(bytes: &[u8], trust: &TrustPolicy) -> Result<OpenedPackage, PackageError> {
    let mut entries = tar::read(bytes)?;
    let take = |entries: &mut Vec<(String, Vec<u8>)>, name: &str| {
        entries
            .iter()
            .position(|(n, _)| n == name)
            .map(|i| entries.remove(i).1)
    };
    let manifest_bytes = take(&mut entries, MANIFEST)
        .ok_or_else(|| PackageError::Manifest(format!("no {MANIFEST}")))?;
    let signature_bytes = take(&mut entries, SIGNATURE);
    let manifest: Manifest =
        parse_bounded_toml(&manifest_bytes, MANIFEST).map_err(PackageError::Manifest)?;
    if manifest.format != FORMAT {
        return Err(PackageError::Manifest(format!(
            "package format {} is not supported (only {FORMAT})",
            manifest.format
        )));
    }
    validate_short_name(&manifest.short_name).map_err(PackageError::Manifest)?;
    validate_service_name(&manifest.service_name).map_err(PackageError::Manifest)?;

    let mut files = Vec::new();
    for wanted in &manifest.files {
        let entry = format!("{FILES_PREFIX}{}", wanted.name);
        let data = take(&mut entries, &entry)
            .ok_or_else(|| PackageError::Tampered(format!("{} is missing", wanted.name)))?;
        if data.len() as u64 != wanted.size || sha256_hex(&data) != wanted.sha256 {
            return Err(PackageError::Tampered(format!(
                "{} differs from the manifest",
                wanted.name
            )));
        }
        files.push((wanted.name.clone(), data));
    }
    if let Some((extra, _)) = entries.first() {
        return Err(PackageError::Tampered(format!(
            "{extra} is not in the manifest"
        )));
    }
    let cms = format!("{}.cms", manifest.short_name);
    if !files.iter().any(|(n, _)| n.eq_ignore_ascii_case(&cms)) {
        return Err(PackageError::Manifest(format!("no {cms} in the package")));
    }

    let signature = match signature_bytes {
        None => SignatureStatus::Unsigned,
        Some(bytes) => {
            let parsed: Option<(PublicKey, Vec<u8>)> =
                parse_bounded_toml::<SignatureFile>(&bytes, SIGNATURE)
                    .ok()
                    .filter(|s| s.algorithm == "ed25519")
                    .and_then(|s| {
                        Some((
                            PublicKey::parse(&s.public_key)?,
                            hex::decode(&s.signature).ok()?,
                        ))
                    });
            match parsed {
                None => SignatureStatus::Invalid,
                Some((key, sig)) if key.verify(&manifest_bytes, &sig) => {
                    if trust.keys.contains(&key) {
                        SignatureStatus::Trusted(key)
                    } else {
                        SignatureStatus::UntrustedSigner(key)
                    }
                }
                Some(_) => SignatureStatus::Invalid,
            }
        }
    };
    match &signature {
        SignatureStatus::Trusted(_) => {}
        SignatureStatus::Unsigned if trust.allow_unsigned => {}
        SignatureStatus::Unsigned => return Err(PackageError::Unsigned),
        SignatureStatus::UntrustedSigner(key) => {
            return Err(PackageError::UntrustedSigner(key.to_hex()))
        }
        SignatureStatus::Invalid => return Err(PackageError::BadSignature),
    }
    Ok(OpenedPackage {
        manifest,
        files,
        signature,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deeply_nested_toml_is_refused_before_parsing() {
        let deep = format!("files = {}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_bounded_toml::<Manifest>(deep.as_bytes(), MANIFEST).unwrap_err();
        assert!(err.contains("nested too deeply"), "{err}");
        // Brackets inside strings and comments do not count.
        let ok = format!(
            "format = 1 # {}\nservice_name = \"{}\"\nshort_name = 'a'\nfiles = []\n",
            "[".repeat(50),
            "[".repeat(50)
        );
        let m: Manifest = parse_bounded_toml(ok.as_bytes(), MANIFEST).unwrap();
        assert_eq!(m.service_name.len(), 50);
    }
}
