//! What the service serves: for every phone book, its current version (and
//! the previous one, so that a client that was told about it a moment
//! before a post can still download it), with the cabinets in memory as
//! `Bytes` and the three possible answers pre-rendered. The whole catalog
//! is swapped atomically (arc-swap): a reader sees the old or the new
//! version, never half of one.
//!
//! On disk (`DATA/NAME/VERSION/{version,full.cab[,delta.cab]}` and
//! `DATA/NAME/current`), a version is installed by writing its folder under
//! a temporary name, fsyncing, renaming it into place, then replacing
//! `current` the same way: a crash at any point leaves the previous
//! version current.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use phonebook::answer::{write_answer, Answer, CabinetRef, UpdateKind};
use phonebook::bundle::decode_bundle;
use phonebook::cab::{read_cab, CabLimits};
use phonebook::fsutil::{sync_dir, write_atomic, write_dir_atomic};
use phonebook::name::check_name;
use phonebook::publish::{
    delta_name, pbk_name, pbr_name, vers_name, DELTA_CAB, FULL_CAB, VERSION_ENTRY,
};
use phonebook::version_file::read_version;
use sha2::{Digest, Sha256};

/// A cabinet ready to serve.
#[derive(Debug, Clone)]
pub struct Cabinet {
    pub bytes: Bytes,
    /// Strong entity tag: a quoted prefix of the SHA-256.
    pub etag: String,
    /// The same, ready to send.
    pub etag_header: axum::http::HeaderValue,
    pub sha256: [u8; 32],
}

impl Cabinet {
    pub fn new(bytes: Vec<u8>) -> Cabinet {
        let sha256: [u8; 32] = Sha256::digest(&bytes).into();
        let etag = format!("\"{}\"", hex::encode(&sha256[..16]));
        Cabinet {
            etag_header: axum::http::HeaderValue::from_str(&etag)
                .expect("hex is a valid header value"),
            etag,
            bytes: Bytes::from(bytes),
            sha256,
        }
    }
}

/// One version of one phone book.
#[derive(Debug)]
pub struct Version {
    pub name: String,
    pub version: u32,
    pub full: Cabinet,
    pub delta: Option<Cabinet>,
    pub answer_none: Bytes,
    pub answer_full: Bytes,
    pub answer_delta: Option<Bytes>,
}

impl Version {
    fn new(name: &str, version: u32, full: Cabinet, delta: Option<Cabinet>) -> Version {
        let answer = |kind: UpdateKind, file: &str, cab: Option<&Cabinet>| {
            Bytes::from(write_answer(&Answer {
                phonebook: name.to_owned(),
                update: kind,
                version,
                cabinet: cab.map(|c| CabinetRef {
                    url: format!("/pbserver/data/{name}/{version}/{file}"),
                    size: c.bytes.len() as u64,
                    sha256: c.sha256,
                }),
            }))
        };
        Version {
            answer_none: answer(UpdateKind::None, "", None),
            answer_full: answer(UpdateKind::Full, FULL_CAB, Some(&full)),
            answer_delta: delta
                .as_ref()
                .map(|d| answer(UpdateKind::Delta, DELTA_CAB, Some(d))),
            name: name.to_owned(),
            version,
            full,
            delta,
        }
    }
}

/// A phone book's served versions.
#[derive(Debug, Clone)]
pub struct Book {
    /// Directory name on disk (the name as first posted).
    pub dir_name: String,
    pub current: Arc<Version>,
    pub previous: Option<Arc<Version>>,
}

impl Book {
    pub fn version(&self, v: u32) -> Option<&Arc<Version>> {
        if self.current.version == v {
            Some(&self.current)
        } else {
            self.previous.as_ref().filter(|p| p.version == v)
        }
    }
}

/// Phone books by lower-case name.
pub type Catalog = HashMap<String, Book>;

/// Why a post or a load was refused.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{0}")]
    Invalid(String),
    #[error("the service already has version {have} of {name} (posted {posted})")]
    NotNewer {
        name: String,
        have: u32,
        posted: u32,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn invalid(e: impl std::fmt::Display) -> InstallError {
    InstallError::Invalid(e.to_string())
}

/// The cabinet limits the service enforces on posts.
const LIMITS: CabLimits = CabLimits {
    max_uncompressed: 64 << 20,
    max_files: 8,
};

/// Checks that `bytes` is a cabinet holding `files` with the version file
/// saying `version`.
fn check_cabinet(
    bytes: &[u8],
    what: &str,
    files: &[String],
    vers: &str,
    version: u32,
) -> Result<(), InstallError> {
    let cab = read_cab(bytes, LIMITS).map_err(|e| invalid(format!("{what}: {e}")))?;
    for f in files {
        if !cab.iter().any(|c| c.name.eq_ignore_ascii_case(f)) {
            return Err(invalid(format!("{what} lacks {f}")));
        }
    }
    let v = cab
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(vers))
        .map(|c| read_version(&String::from_utf8_lossy(&c.data)));
    match v {
        Some(Ok(v)) if v == version => Ok(()),
        _ => Err(invalid(format!(
            "{what}'s {vers} does not say version {version}"
        ))),
    }
}

/// A posted version, checked.
#[derive(Debug)]
pub struct PostedVersion {
    pub version: u32,
    pub full: Vec<u8>,
    pub delta: Option<Vec<u8>>,
}

/// Validates a posted bundle for phone book `name`: (version, full, delta).
pub fn validate_post(name: &str, body: &[u8]) -> Result<PostedVersion, InstallError> {
    check_name(name).map_err(invalid)?;
    let entries = decode_bundle(body).map_err(invalid)?;
    let get = |n: &str| entries.iter().find(|(e, _)| e == n).map(|(_, d)| *d);
    let version = read_version(&String::from_utf8_lossy(
        get(VERSION_ENTRY).ok_or_else(|| invalid("no version entry"))?,
    ))
    .map_err(invalid)?;
    let full = get(FULL_CAB).ok_or_else(|| invalid("no full.cab"))?;
    check_cabinet(
        full,
        FULL_CAB,
        &[pbk_name(name), pbr_name(name)],
        &vers_name(name),
        version,
    )?;
    let delta = get(DELTA_CAB);
    if let Some(d) = delta {
        check_cabinet(
            d,
            DELTA_CAB,
            &[delta_name(name), pbr_name(name)],
            &vers_name(name),
            version,
        )?;
    }
    if let Some((n, _)) = entries
        .iter()
        .find(|(n, _)| ![VERSION_ENTRY, FULL_CAB, DELTA_CAB].contains(&n.as_str()))
    {
        return Err(invalid(format!("unknown entry {n}")));
    }
    Ok(PostedVersion {
        version,
        full: full.to_vec(),
        delta: delta.map(<[u8]>::to_vec),
    })
}

const CURRENT: &str = "current";

/// Installs a validated version on disk, atomically, and returns it ready
/// to serve. `dir_name` is the phone book's directory under `data`.
pub fn install(
    data: &Path,
    dir_name: &str,
    version: u32,
    full: Vec<u8>,
    delta: Option<Vec<u8>>,
) -> Result<Version, InstallError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| InstallError::Io { path, source }
    };
    let book = data.join(dir_name);
    std::fs::create_dir_all(&book).map_err(io(&book))?;
    let vdir = book.join(version.to_string());
    let vers = phonebook::version_file::write_version(version);
    let mut files: Vec<(&str, &[u8])> = vec![(VERSION_ENTRY, vers.as_bytes()), (FULL_CAB, &full)];
    if let Some(d) = &delta {
        files.push((DELTA_CAB, d));
    }
    write_dir_atomic(&vdir, &files).map_err(io(&vdir))?;
    // The commit point: `current` names the new version.
    let cur = book.join(CURRENT);
    write_atomic(&cur, vers.as_bytes()).map_err(io(&cur))?;
    sync_dir(data).map_err(io(data))?;
    Ok(Version::new(
        dir_name,
        version,
        Cabinet::new(full),
        delta.map(Cabinet::new),
    ))
}

/// Loads one version folder.
fn load_version(book: &Path, name: &str, version: u32) -> Result<Version, InstallError> {
    let vdir = book.join(version.to_string());
    let read = |f: &str| {
        let path = vdir.join(f);
        std::fs::read(&path).map_err(|source| InstallError::Io { path, source })
    };
    let full = read(FULL_CAB)?;
    let delta = match read(DELTA_CAB) {
        Ok(d) => Some(d),
        Err(InstallError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            None
        }
        Err(e) => return Err(e),
    };
    Ok(Version::new(
        name,
        version,
        Cabinet::new(full),
        delta.map(Cabinet::new),
    ))
}

/// The version `current` names in a book directory.
pub fn current_version(book: &Path) -> Option<u32> {
    std::fs::read_to_string(book.join(CURRENT))
        .ok()
        .and_then(|t| read_version(&t).ok())
}

/// Loads one book directory (None when it has no current version).
pub fn load_book(data: &Path, dir_name: &str, cleanup: bool) -> Result<Option<Book>, InstallError> {
    let book = data.join(dir_name);
    let Some(v) = current_version(&book) else {
        return Ok(None);
    };
    let current = Arc::new(load_version(&book, dir_name, v)?);
    let previous = (v > 1)
        .then(|| load_version(&book, dir_name, v - 1).ok())
        .flatten()
        .map(Arc::new);
    // Leftovers of posts that crashed before their rename (only at start:
    // another instance sharing the folder may be posting right now).
    if let Ok(entries) =
        std::fs::read_dir(&book)
            .map_err(|_| ())
            .and_then(|e| if cleanup { Ok(e) } else { Err(()) })
    {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') {
                let _ =
                    std::fs::remove_dir_all(e.path()).or_else(|_| std::fs::remove_file(e.path()));
            }
        }
    }
    Ok(Some(Book {
        dir_name: dir_name.to_owned(),
        current,
        previous,
    }))
}

/// Loads every phone book under `data`.
pub fn load_catalog(data: &Path) -> Result<Catalog, InstallError> {
    std::fs::create_dir_all(data).map_err(|source| InstallError::Io {
        path: data.to_owned(),
        source,
    })?;
    let mut catalog = Catalog::new();
    let entries = std::fs::read_dir(data).map_err(|source| InstallError::Io {
        path: data.to_owned(),
        source,
    })?;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !e.path().is_dir() || check_name(&name).is_err() {
            continue;
        }
        if let Some(book) = load_book(data, &name, true)? {
            catalog.insert(name.to_ascii_lowercase(), book);
        }
    }
    Ok(catalog)
}
