//! The HTTP side: routes, the query hot path, cabinet downloads with ETag
//! and Range, posts, metrics.
//!
//! * `GET /pbserver/pbserver.dll?…` (path matched case-insensitively, as
//!   IIS does): the answer (phonebook::answer), 200; 400 for a missing or
//!   malformed parameter; 404 for an unknown phone book.
//! * `GET /pbserver/data/NAME/VERSION/{full,delta}.cab`: the cabinet, with
//!   a strong ETag, `If-None-Match` (304) and single byte ranges (206/416).
//! * `PUT /pbserver/post/NAME` (HTTPS listener only): a post bundle with
//!   `Authorization: Bearer TOKEN`.
//! * `GET /metrics`: Prometheus counters.
//!
//! The query path reads the catalog through arc-swap (no lock), answers
//! with pre-rendered `Bytes` (no copy) and touches no disk.

use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, put};
use axum::Router;
use phonebook::answer::UpdateKind;
use phonebook::post::MAX_POST;
use phonebook::publish::{DELTA_CAB, FULL_CAB};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::catalog::{
    current_version, install, load_book, validate_post, Book, Cabinet, Catalog, InstallError,
    PostedVersion,
};
use crate::decision::decide;
use crate::metrics::Metrics;
use crate::query::parse_query;
use phonebook::limits::MAX_VERSION;
use phonebook::name::MAX_NAME_LEN;

/// Shared state of all listeners.
pub struct AppState {
    pub catalog: ArcSwap<Catalog>,
    pub metrics: Metrics,
    pub data: PathBuf,
    /// SHA-256 of the posting credential; None disables posting.
    pub post_token_sha256: Option<[u8; 32]>,
    post_lock: tokio::sync::Mutex<()>,
}

impl AppState {
    pub fn new(data: PathBuf, catalog: Catalog, post_token: Option<&str>) -> AppState {
        AppState {
            catalog: ArcSwap::from_pointee(catalog),
            metrics: Metrics::default(),
            data,
            post_token_sha256: post_token.map(|t| Sha256::digest(t.as_bytes()).into()),
            post_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Picks up versions another instance installed in the shared data
    /// folder (SYSTEM.md: stateless instances reading the same folders).
    pub fn rescan(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data) else {
            return;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if phonebook::name::check_name(&name).is_err() {
                continue;
            }
            let key = name.to_ascii_lowercase();
            let on_disk = current_version(&e.path());
            let served = self.catalog.load().get(&key).map(|b| b.current.version);
            if on_disk.is_some() && on_disk > served {
                if let Ok(Some(book)) = load_book(&self.data, &name, false) {
                    self.catalog.rcu(|c| {
                        let mut c = Catalog::clone(c);
                        c.insert(key.clone(), book.clone());
                        c
                    });
                }
            }
        }
    }
}

/// The routes; `allow_post` only on the HTTPS listener.
pub fn router(state: Arc<AppState>, allow_post: bool) -> Router {
    let mut r = Router::new()
        .route("/pbserver/pbserver.dll", get(query))
        .route("/pbserver/data/{name}/{version}/{file}", get(cabinet))
        .route("/metrics", get(metrics));
    if allow_post {
        r = r
            .route("/pbserver/post/{name}", put(post))
            .layer(DefaultBodyLimit::max(MAX_POST));
    }
    r.fallback(fallback).with_state(state)
}

fn plain(status: StatusCode, body: impl Into<Body>) -> Response {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body.into())
        .expect("static headers are valid")
}

async fn fallback(state: State<Arc<AppState>>, method: Method, uri: Uri) -> Response {
    if method == Method::GET && uri.path().eq_ignore_ascii_case("/pbserver/pbserver.dll") {
        return query(state, uri).await;
    }
    plain(StatusCode::NOT_FOUND, "not found\n")
}

async fn query(State(s): State<Arc<AppState>>, uri: Uri) -> Response {
    let q = match parse_query(uri.query()) {
        Ok(q) => q,
        Err(e) => {
            s.metrics.error_hits.inc();
            return plain(StatusCode::BAD_REQUEST, format!("{e}\n"));
        }
    };
    let catalog = s.catalog.load();
    // Names are 8 ASCII characters at most: lower-case them on the stack.
    let mut key = [0u8; 8];
    key[..q.pb.len()].copy_from_slice(q.pb.as_bytes());
    key.make_ascii_lowercase();
    let key = std::str::from_utf8(&key[..q.pb.len()]).expect("ASCII");
    let Some(book) = catalog.get(key) else {
        s.metrics.error_hits.inc();
        return plain(StatusCode::NOT_FOUND, "unknown phone book\n");
    };
    let v = &book.current;
    let body = match decide(v.version, q.pbver, v.delta.is_some()) {
        UpdateKind::None => {
            s.metrics.no_update_hits.inc();
            v.answer_none.clone()
        }
        UpdateKind::Delta => {
            s.metrics.delta_hits.inc();
            v.answer_delta
                .clone()
                .unwrap_or_else(|| v.answer_full.clone())
        }
        UpdateKind::Full => {
            s.metrics.full_hits.inc();
            v.answer_full.clone()
        }
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .expect("static headers are valid")
}

/// A single byte range of `len` bytes: Ok(None) = whole, Err = 416.
fn byte_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: RFC 9110 §14.2 lets a server ignore Range.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let range = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.checked_sub(1).ok_or(())?)
    } else {
        let start: u64 = a.parse().map_err(|_| ())?;
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse::<u64>().map_err(|_| ())?.min(len.saturating_sub(1))
        };
        (start, end)
    };
    if range.0 >= len || range.0 > range.1 {
        return Err(());
    }
    Ok(Some(range))
}

async fn cabinet(State(s): State<Arc<AppState>>, uri: Uri, headers: HeaderMap) -> Response {
    // /pbserver/data/NAME/VERSION/FILE, split by hand: no allocation.
    let mut parts = uri.path().trim_start_matches("/pbserver/data/").split('/');
    let (name, version, file) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(n), Some(v), Some(f), None) if n.len() <= MAX_NAME_LEN => (n, v, f),
        _ => return plain(StatusCode::NOT_FOUND, "no such cabinet\n"),
    };
    let mut key = [0u8; MAX_NAME_LEN];
    key[..name.len()].copy_from_slice(name.as_bytes());
    key.make_ascii_lowercase();
    let catalog = s.catalog.load();
    let book: Option<&Book> = std::str::from_utf8(&key[..name.len()])
        .ok()
        .and_then(|k| catalog.get(k));
    let version = version
        .parse::<u32>()
        .ok()
        .filter(|v| (1..=MAX_VERSION).contains(v));
    let (Some(book), Some(version), true) = (book, version, file == FULL_CAB || file == DELTA_CAB)
    else {
        return plain(StatusCode::NOT_FOUND, "no such cabinet\n");
    };
    let in_memory = book.version(version).and_then(|v| match file {
        FULL_CAB => Some(v.full.clone()),
        _ => v.delta.clone(),
    });
    let cab = match in_memory {
        Some(c) => c,
        None => {
            // An older version (a client told about it just before several
            // posts): from its folder, which posts never change.
            let path = s
                .data
                .join(&book.dir_name)
                .join(version.to_string())
                .join(file);
            match tokio::task::spawn_blocking(move || std::fs::read(path)).await {
                Ok(Ok(bytes)) => Cabinet::new(bytes),
                _ => return plain(StatusCode::NOT_FOUND, "no such cabinet\n"),
            }
        }
    };
    s.metrics.cabinet_downloads.inc();
    let etag = cab.etag_header.clone();
    let matches_etag = |h: &HeaderValue| {
        h.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|t| t.trim() == cab.etag || t.trim() == "*")
        })
    };
    if headers.get(header::IF_NONE_MATCH).is_some_and(matches_etag) {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .header(header::ETAG, etag)
            .body(Body::empty())
            .expect("valid");
    }
    let len = cab.bytes.len() as u64;
    let builder = Response::builder()
        .header(header::CONTENT_TYPE, "application/vnd.ms-cab-compressed")
        .header(header::ETAG, etag)
        .header(header::ACCEPT_RANGES, "bytes");
    // If-Range with another tag: send the whole (RFC 9110 §13.1.5).
    let if_range_ok = headers.get(header::IF_RANGE).is_none_or(matches_etag);
    let range = match headers.get(header::RANGE).and_then(|r| r.to_str().ok()) {
        Some(r) if if_range_ok => byte_range(r, len),
        _ => Ok(None),
    };
    match range {
        Ok(None) => builder.body(Body::from(cab.bytes.clone())).expect("valid"),
        Ok(Some((a, b))) => builder
            .status(StatusCode::PARTIAL_CONTENT)
            .header(header::CONTENT_RANGE, format!("bytes {a}-{b}/{len}"))
            .body(Body::from(cab.bytes.slice(a as usize..=b as usize)))
            .expect("valid"),
        Err(()) => Response::builder()
            .status(StatusCode::RANGE_NOT_SATISFIABLE)
            .header(header::CONTENT_RANGE, format!("bytes */{len}"))
            .body(Body::empty())
            .expect("valid"),
    }
}

async fn metrics(State(s): State<Arc<AppState>>) -> Response {
    Response::builder()
        .header(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(Body::from(s.metrics.render()))
        .expect("valid")
}

async fn post(
    State(s): State<Arc<AppState>>,
    UrlPath(name): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(expected) = s.post_token_sha256 else {
        return plain(
            StatusCode::FORBIDDEN,
            "posting is disabled (no --post-token-file)\n",
        );
    };
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let got: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    if !bool::from(got.ct_eq(&expected)) {
        tracing::warn!(phonebook = %name, "post refused: bad credential");
        return plain(StatusCode::UNAUTHORIZED, "bad posting credential\n");
    }
    let _serial = s.post_lock.lock().await;
    let state = s.clone();
    let result = tokio::task::spawn_blocking(
        move || -> Result<(String, Arc<crate::catalog::Version>), InstallError> {
            let PostedVersion {
                version,
                full,
                delta,
            } = validate_post(&name, &body)?;
            let key = name.to_ascii_lowercase();
            let catalog = state.catalog.load();
            let existing = catalog.get(&key);
            if let Some(b) = existing {
                if version <= b.current.version {
                    return Err(InstallError::NotNewer {
                        name,
                        have: b.current.version,
                        posted: version,
                    });
                }
            }
            let dir_name = existing.map_or(name.clone(), |b| b.dir_name.clone());
            let v = install(&state.data, &dir_name, version, full, delta)?;
            Ok((key, Arc::new(v)))
        },
    )
    .await;
    match result {
        Ok(Ok((key, v))) => {
            let version = v.version;
            s.catalog.rcu(|c| {
                let mut c = Catalog::clone(c);
                let previous = c.get(&key).map(|b| b.current.clone());
                c.insert(
                    key.clone(),
                    Book {
                        dir_name: v.name.clone(),
                        current: v.clone(),
                        previous,
                    },
                );
                c
            });
            s.metrics.posts.inc();
            tracing::info!(phonebook = %v.name, version, "installed a posted version");
            plain(
                StatusCode::CREATED,
                format!("installed version {version}\n"),
            )
        }
        Ok(Err(e @ InstallError::NotNewer { .. })) => plain(StatusCode::CONFLICT, format!("{e}\n")),
        Ok(Err(e @ InstallError::Invalid(_))) => plain(StatusCode::BAD_REQUEST, format!("{e}\n")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "installing a post failed");
            plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not store the version\n",
            )
        }
        Err(_) => plain(StatusCode::INTERNAL_SERVER_ERROR, "post task failed\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::byte_range;

    #[test]
    fn ranges() {
        assert_eq!(byte_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(byte_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(byte_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(byte_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(byte_range("bytes=100-", 100), Err(()));
        assert_eq!(byte_range("bytes=5-2", 100), Err(()));
        assert_eq!(byte_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(byte_range("items=0-1", 100), Ok(None));
        assert_eq!(byte_range("bytes=x-1", 100), Err(()));
    }
}
