//! The client side of Connection Point Services: the "Automatically
//! download phone-book updates" post-connect action (seed, step 7.6).
//!
//! [`update_profile_phonebook`] sends the profile's phone-book version to
//! the Phone Book Service, downloads the cabinet it names, checks its size,
//! SHA-256 and contents, applies it (full replace or delta apply) and
//! records the new version. The profile directory holds `NAME.pbk`,
//! `NAME.pbr` and `NAME.vers`; the new `.pbk` and `.pbr` are renamed into
//! place first and the version file last, so a crash in between leaves the
//! old version recorded and the next update redoes the (idempotent) work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::answer::{parse_answer, UpdateKind};
use crate::cab::{read_cab, CabError, CabFile, CabLimits};
use crate::delta::{apply_delta, parse_delta, DeltaError};
use crate::field_error::FieldError;
use crate::fsutil::write_atomic;
use crate::http::{send, HttpError, Request, ServiceUrl};
use crate::name::{check_name, NameError};
use crate::pbk::{read_pbk, write_pbk, ReadNote};
use crate::pbr::read_pbr;
use crate::pop::Pop;
use crate::publish::{delta_name, pbk_name, pbr_name, vers_name};
use crate::trust::Trust;
use crate::version_file::{read_version, write_version};

/// The largest cabinet the client accepts (a 65,000-POP phone book is
/// about 4 MB uncompressed).
pub const MAX_CABINET: usize = 32 << 20;

/// What the update did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateOutcome {
    /// The service has nothing newer.
    UpToDate { version: u32 },
    /// Replaced the phone book with the full one.
    Full { from: u32, to: u32 },
    /// Applied a delta.
    Delta { from: u32, to: u32 },
}

/// In words, as users read it: "up to date at version 8", "full update
/// from version 0 to 8", "delta update from version 6 to 8".
impl std::fmt::Display for UpdateOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpdateOutcome::UpToDate { version } => write!(f, "up to date at version {version}"),
            UpdateOutcome::Full { from, to } => {
                write!(f, "full update from version {from} to {to}")
            }
            UpdateOutcome::Delta { from, to } => {
                write!(f, "delta update from version {from} to {to}")
            }
        }
    }
}

/// Why an update failed. The profile's phone book is unchanged when it
/// does.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the Phone Book Service answered HTTP {status} to {what}")]
    Status { status: u16, what: String },
    #[error(transparent)]
    Answer(#[from] FieldError),
    #[error("the service answered for phone book {got:?}, not {want:?}")]
    WrongBook { want: String, got: String },
    #[error("the downloaded cabinet does not match the answer's {0}")]
    Mismatch(&'static str),
    #[error(transparent)]
    Cab(#[from] CabError),
    #[error("the cabinet lacks {0}")]
    MissingFile(String),
    #[error("the cabinet's {0} is unusable: {1}")]
    BadContent(String, String),
    #[error(transparent)]
    Delta(#[from] DeltaError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the client reports about itself in the query (the seed's example:
/// `osarch=0&ostype=0&osver=1&cmver=1&lcid=1033`).
#[derive(Debug, Clone, Copy)]
pub struct ClientInfo {
    pub osarch: u32,
    pub ostype: u32,
    pub osver: u32,
    pub cmver: u32,
    pub lcid: u32,
}

impl Default for ClientInfo {
    fn default() -> Self {
        ClientInfo {
            osarch: 0,
            ostype: 0,
            osver: 1,
            cmver: 1,
            lcid: 1033,
        }
    }
}

/// The query path for `name` at `version` (parameter names as the seed's
/// example URL writes them).
pub fn query_target(name: &str, version: u32, info: &ClientInfo) -> String {
    format!(
        "/pbserver/pbserver.dll?osarch={}&ostype={}&osver={}&cmver={}&lcid={}&pbver={version}&pb={name}",
        info.osarch, info.ostype, info.osver, info.cmver, info.lcid
    )
}

/// The version recorded in the profile directory (0 when there is none
/// or it is unreadable: the service then sends the full phone book).
pub fn local_version(dir: &Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(vers_name(name)))
        .ok()
        .and_then(|t| read_version(&t).ok())
        .unwrap_or(0)
}

/// The profile's POPs and regions, read as a client must (MS-CPSP).
pub fn load_local(dir: &Path, name: &str) -> Result<(Vec<Pop>, Vec<String>), UpdateError> {
    let read = |f: String| {
        let path = dir.join(f);
        match std::fs::read(&path) {
            Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(source) => Err(UpdateError::Io { path, source }),
        }
    };
    let pops = read_pbk(&read(pbk_name(name))?).pops;
    // MS-CPSP §2.2: an unreadable region count voids the POPs.
    match read_pbr(&read(pbr_name(name))?) {
        Ok(regions) => Ok((pops, regions)),
        Err(_) => Ok((Vec::new(), Vec::new())),
    }
}

/// Runs the update action for phone book `pb_name` of the profile in
/// `local_dir`, currently at `current_version`.
pub async fn update_profile_phonebook(
    service_url: &str,
    pb_name: &str,
    local_dir: &Path,
    current_version: u32,
    trust: &Trust,
) -> Result<UpdateOutcome, UpdateError> {
    update_with(
        service_url,
        pb_name,
        local_dir,
        current_version,
        trust,
        &ClientInfo::default(),
    )
    .await
}

/// [`update_profile_phonebook`] with explicit client information.
pub async fn update_with(
    service_url: &str,
    pb_name: &str,
    local_dir: &Path,
    current_version: u32,
    trust: &Trust,
    info: &ClientInfo,
) -> Result<UpdateOutcome, UpdateError> {
    check_name(pb_name)?;
    let url = ServiceUrl::parse_service(service_url)?;
    let get = |target: String, max: usize| {
        let url = url.clone();
        async move {
            let resp = send(
                &url,
                trust,
                &Request {
                    method: "GET",
                    target: &target,
                    headers: &[],
                    body: &[],
                    max_response: max,
                    timeout: Duration::from_secs(120),
                    upload_rate: None,
                },
            )
            .await?;
            if resp.status != 200 {
                return Err(UpdateError::Status {
                    status: resp.status,
                    what: target,
                });
            }
            Ok(resp.body)
        }
    };
    let body = get(query_target(pb_name, current_version, info), 64 * 1024).await?;
    let answer = parse_answer(&String::from_utf8_lossy(&body))?;
    if !answer.phonebook.eq_ignore_ascii_case(pb_name) {
        return Err(UpdateError::WrongBook {
            want: pb_name.into(),
            got: answer.phonebook,
        });
    }
    let Some(cab_ref) = answer
        .cabinet
        .clone()
        .filter(|_| answer.update != UpdateKind::None)
    else {
        return Ok(UpdateOutcome::UpToDate {
            version: current_version,
        });
    };
    if cab_ref.size as usize > MAX_CABINET {
        return Err(UpdateError::Mismatch("size limit"));
    }
    let cab = get(cab_ref.url.clone(), cab_ref.size as usize).await?;
    if cab.len() as u64 != cab_ref.size {
        return Err(UpdateError::Mismatch("Size"));
    }
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&cab).into();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        &digest[..],
        &cab_ref.sha256[..],
    )) {
        return Err(UpdateError::Mismatch("SHA256"));
    }
    apply_cabinet(
        local_dir,
        pb_name,
        current_version,
        answer.update,
        &cab,
        answer.version,
    )
}

/// Applies a downloaded cabinet (no network): checks that it holds
/// version `expect_version` of `name`, then installs it.
pub fn apply_cabinet(
    dir: &Path,
    name: &str,
    current_version: u32,
    kind: UpdateKind,
    cab: &[u8],
    expect_version: u32,
) -> Result<UpdateOutcome, UpdateError> {
    let files = read_cab(
        cab,
        CabLimits {
            max_uncompressed: 64 << 20,
            max_files: 8,
        },
    )?;
    let file = |n: String| -> Result<String, UpdateError> {
        files
            .iter()
            .find(|f: &&CabFile| f.name.eq_ignore_ascii_case(&n))
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .ok_or(UpdateError::MissingFile(n))
    };
    let vers = read_version(&file(vers_name(name))?)
        .map_err(|e| UpdateError::BadContent(vers_name(name), e.to_string()))?;
    if vers != expect_version {
        return Err(UpdateError::Mismatch("Version"));
    }
    let pbr = file(pbr_name(name))?;
    read_pbr(&pbr).map_err(|e| UpdateError::BadContent(pbr_name(name), e.to_string()))?;
    let pbk = match kind {
        UpdateKind::None => {
            return Ok(UpdateOutcome::UpToDate {
                version: current_version,
            })
        }
        UpdateKind::Full => {
            let text = file(pbk_name(name))?;
            if let Some(ReadNote::FileIgnored { line, why }) = read_pbk(&text)
                .notes
                .iter()
                .find(|n| matches!(n, ReadNote::FileIgnored { .. }))
            {
                return Err(UpdateError::BadContent(
                    pbk_name(name),
                    format!("line {line}: {why}"),
                ));
            }
            text
        }
        UpdateKind::Delta => {
            let delta = parse_delta(&file(delta_name(name))?, &delta_name(name))?;
            if delta.to != expect_version {
                return Err(UpdateError::Mismatch("Version"));
            }
            let (pops, _) = load_local(dir, name)?;
            write_pbk(&apply_delta(&pops, &delta, current_version)?)
        }
    };
    std::fs::create_dir_all(dir).map_err(|source| UpdateError::Io {
        path: dir.to_owned(),
        source,
    })?;
    for (f, data) in [
        (pbk_name(name), pbk.as_bytes()),
        (pbr_name(name), pbr.as_bytes()),
    ] {
        let path = dir.join(f);
        write_atomic(&path, data).map_err(|source| UpdateError::Io { path, source })?;
    }
    // The version file last: it is the commit point.
    let path = dir.join(vers_name(name));
    write_atomic(&path, write_version(expect_version).as_bytes())
        .map_err(|source| UpdateError::Io { path, source })?;
    Ok(match kind {
        UpdateKind::Delta => UpdateOutcome::Delta {
            from: current_version,
            to: expect_version,
        },
        _ => UpdateOutcome::Full {
            from: current_version,
            to: expect_version,
        },
    })
}
