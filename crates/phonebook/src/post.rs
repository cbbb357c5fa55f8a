//! Posting a published version to the Phone Book Service: one HTTPS
//! request carrying the whole version (see [`crate::bundle`]), so the
//! service installs it whole or not at all.
//!
//! `PUT /pbserver/post/NAME` with `Authorization: Bearer TOKEN` (the
//! posting credential); the service answers 201 when installed, 409 when
//! it already has this or a later version, 401 for a bad credential.

use std::path::Path;
use std::time::Duration;

use crate::bundle::encode_bundle;
use crate::http::{send, HttpError, Request, ServiceUrl};
use crate::publish::{DELTA_CAB, FULL_CAB, VERSION_ENTRY};
use crate::trust::Trust;
use crate::version_file::write_version;

/// Why a post failed.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{}: {source}", path.display())]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the service refused the post: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// The URL is not `https://`: the posting credential never crosses a
    /// network unencrypted, so nothing is sent (no connection is made).
    #[error("refusing to post to {0}: the posting credential is only ever sent over HTTPS (use https://)")]
    NotHttps(String),
}

/// The largest post body we send or the service accepts.
pub const MAX_POST: usize = 256 << 20;

/// Posts version `version` of phone book `name` from its folder
/// `book_dir/VERSION`.
pub async fn post_version(
    service: &ServiceUrl,
    trust: &Trust,
    token: &str,
    book_dir: &Path,
    name: &str,
    version: u32,
    upload_rate: Option<u64>,
) -> Result<(), PostError> {
    // Checked before anything else, so not even a TCP connection is made.
    if !service.tls {
        return Err(PostError::NotHttps(service.to_string()));
    }
    let dir = book_dir.join(version.to_string());
    let read = |f: &str| {
        let path = dir.join(f);
        std::fs::read(&path).map_err(|source| PostError::Io { path, source })
    };
    let full = read(FULL_CAB)?;
    let delta = match read(DELTA_CAB) {
        Ok(d) => Some(d),
        Err(PostError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    let vers = write_version(version);
    let mut entries: Vec<(&str, &[u8])> = vec![(VERSION_ENTRY, vers.as_bytes()), (FULL_CAB, &full)];
    if let Some(d) = &delta {
        entries.push((DELTA_CAB, d));
    }
    let body = encode_bundle(&entries);
    let auth = format!("Bearer {token}");
    let target = format!("/pbserver/post/{name}");
    let resp = send(
        service,
        trust,
        &Request {
            method: "PUT",
            target: &target,
            headers: &[
                ("Authorization", &auth),
                ("Content-Type", "application/octet-stream"),
            ],
            body: &body,
            max_response: 64 * 1024,
            timeout: Duration::from_secs(600),
            upload_rate,
        },
    )
    .await?;
    if resp.status == 201 {
        Ok(())
    } else {
        Err(PostError::Refused {
            status: resp.status,
            message: String::from_utf8_lossy(&resp.body)
                .trim()
                .chars()
                .take(300)
                .collect(),
        })
    }
}
