//! A client certificate's status over the network, for an end entity that
//! no current CRL file covers: OCSP (RFC 6960) at the responder of its
//! Authority Information Access (RFC 5280 §4.2.2.1) or at
//! `certificate.ocsp_responder`, then the CRL of its http:// distribution
//! points (RFC 5280 §4.2.1.13) with `certificate.fetch_crls`. What nobody
//! could answer goes to `crl_policy` (docs/ADMIN.md, "Revocation").
//!
//! It runs in the IKEv2 front end's authorization task, so a slow
//! responder holds only the login that needs it (each fetch has a
//! deadline). Answers are cached until their nextUpdate, in bounded caches.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ipsec::ikev1::certificates::PeerCertificate;
use ipsec::ikev1::ocsp::{self, CertificateStatus};
use ipsec::ikev1::revocation::{CrlPolicy, CrlSet, Status};
use x509_parser::prelude::*;

/// How long one fetch may take.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(5);
/// The largest OCSP answer taken (RFC 6960 answers are a few KiB).
const MAX_OCSP_ANSWER: usize = 64 * 1024;
/// The largest CRL taken.
const MAX_CRL: usize = 1024 * 1024;
/// Cached OCSP answers (one per certificate).
const MAX_OCSP_CACHE: usize = 4096;
/// Cached CRLs (one per URL).
const MAX_CRL_CACHE: usize = 16;
/// How long an answer without nextUpdate is kept (RFC 6960 §4.2.2.1:
/// newer information is always available), and a stale CRL.
const SHORT_CACHE_SECS: i64 = 300;
/// The most responders or distribution points tried per certificate.
const MAX_URLS: usize = 2;
/// How often the same issuer's unknown status is warned about.
const WARN_EVERY_SECS: i64 = 3600;
/// At most this many issuers remembered for warnings.
const MAX_WARNED: usize = 1024;

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

struct Caches {
    /// SHA-256 of the certificate -> its status, until when, from where.
    ocsp: HashMap<Vec<u8>, (CertificateStatus, i64)>,
    /// URL -> the CRL, until when.
    crls: HashMap<String, (CrlSet, i64)>,
    /// Issuer DN -> when its unknown status was last warned about.
    warned: HashMap<Vec<u8>, i64>,
}

fn caches() -> &'static Mutex<Caches> {
    static CACHES: OnceLock<Mutex<Caches>> = OnceLock::new();
    CACHES.get_or_init(|| {
        Mutex::new(Caches {
            ocsp: HashMap::new(),
            crls: HashMap::new(),
            warned: HashMap::new(),
        })
    })
}

/// Makes room for one more entry: drops what expired, then (still full)
/// the entry that expires first.
fn make_room<K: Clone + Eq + std::hash::Hash, V>(
    map: &mut HashMap<K, (V, i64)>,
    max: usize,
    now: i64,
) {
    if map.len() < max {
        return;
    }
    map.retain(|_, (_, until)| *until > now);
    while map.len() >= max {
        let Some(first) = map
            .iter()
            .min_by_key(|(_, (_, u))| *u)
            .map(|(k, _)| k.clone())
        else {
            break;
        };
        map.remove(&first);
    }
}

/// The decision on `cert` (verified already against the trust anchors and
/// CRL files): `Ok` to accept, `Err` with the reason for the log.
pub async fn check(cert: &PeerCertificate) -> Result<(), String> {
    let set = crate::crl::shared().current();
    let online = set.online().clone();
    if !online.enabled() {
        return Ok(());
    }
    let now = unix_now();
    let (Ok((_, leaf)), Ok((_, issuer))) = (
        X509Certificate::from_der(&cert.der),
        X509Certificate::from_der(&cert.issuer),
    ) else {
        return Err("its certificate cannot be read again".into());
    };
    let serial = leaf.raw_serial_as_string();
    let Ok(asn1_now) = ASN1Time::from_timestamp(now) else {
        return Err("the clock is out of range".into());
    };
    // A current CRL file answered in the verifier (a listed certificate
    // never gets here).
    if set.status(&leaf, &issuer, asn1_now) == Status::Good {
        return Ok(());
    }
    let mut failures = Vec::new();
    if online.ocsp {
        let urls = match &online.ocsp_responder {
            Some(url) => vec![url.clone()],
            None => ocsp::ocsp_urls(&cert.der),
        };
        for url in urls.iter().take(MAX_URLS) {
            match ocsp_status(url, cert, now).await {
                Ok((CertificateStatus::Good, cached)) => {
                    tracing::info!(
                        "certificate serial {serial}: good, by OCSP at {url}{}",
                        if cached { " (cached answer)" } else { "" }
                    );
                    return Ok(());
                }
                Ok((CertificateStatus::Revoked { time, reason }, cached)) => {
                    return Err(format!(
                        "certificate serial {serial} revoked on {time}{}, by OCSP at {url}{}",
                        reason.map(|r| format!(" ({r})")).unwrap_or_default(),
                        if cached { " (cached answer)" } else { "" }
                    ));
                }
                Ok((CertificateStatus::Unknown, _)) => {
                    failures.push(format!("OCSP at {url}: unknown to the responder"))
                }
                Err(e) => failures.push(format!("OCSP at {url}: {e}")),
            }
        }
    }
    if online.fetch_crls {
        for url in ocsp::crl_urls(&cert.der).iter().take(MAX_URLS) {
            match crl_status(url, &leaf, &issuer, now, asn1_now).await {
                Ok(Status::Good) => {
                    tracing::info!(
                        "certificate serial {serial}: not revoked, by the CRL from {url}"
                    );
                    return Ok(());
                }
                Ok(Status::Revoked(revoked)) => {
                    return Err(format!("certificate {revoked}, by the CRL from {url}"));
                }
                Ok(Status::Stale) => {
                    failures.push(format!("the CRL from {url} is past its nextUpdate"))
                }
                Ok(Status::Unknown) => {
                    failures.push(format!("the CRL from {url} is not its issuer's"))
                }
                Err(e) => failures.push(format!("CRL from {url}: {e}")),
            }
        }
    }
    if failures.is_empty() {
        failures.push("it names no OCSP responder or http:// CRL distribution point".into());
    }
    let why = failures.join("; ");
    if set.policy() == CrlPolicy::Strict {
        return Err(format!(
            "certificate serial {serial}: revocation status unknown ({why}); refused (crl_policy \"strict\")"
        ));
    }
    warn_unknown(&issuer, &serial, &why, now);
    Ok(())
}

/// One warning per issuer per hour for certificates accepted without a
/// status (if-available).
fn warn_unknown(issuer: &X509Certificate<'_>, serial: &str, why: &str, now: i64) {
    let key = issuer.subject().as_raw().to_vec();
    let mut c = caches().lock().unwrap_or_else(|e| e.into_inner());
    if c.warned
        .get(&key)
        .is_some_and(|&at| now >= at && now - at < WARN_EVERY_SECS)
    {
        return;
    }
    if c.warned.len() >= MAX_WARNED {
        c.warned
            .retain(|_, at| now >= *at && now - *at < WARN_EVERY_SECS);
        if c.warned.len() >= MAX_WARNED {
            c.warned.clear();
        }
    }
    c.warned.insert(key, now);
    drop(c);
    tracing::warn!(
        "certificate serial {serial} of \"{}\": revocation status unknown ({why}); accepted (crl_policy \"if-available\"), again in an hour at the earliest for this issuer",
        issuer.subject()
    );
}

fn cache_key(cert: &PeerCertificate) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert.der)
        .as_ref()
        .to_vec()
}

/// RFC 6960: the cached answer, or a POST to `url`; and whether it was
/// the cached one.
async fn ocsp_status(
    url: &str,
    cert: &PeerCertificate,
    now: i64,
) -> Result<(CertificateStatus, bool), String> {
    let key = cache_key(cert);
    {
        let c = caches().lock().unwrap_or_else(|e| e.into_inner());
        if let Some((status, until)) = c.ocsp.get(&key) {
            if *until > now {
                return Ok((status.clone(), true));
            }
        }
    }
    let mut nonce = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
    let query = ocsp::request(&cert.der, &cert.issuer, Some(&nonce)).map_err(|e| e.to_string())?;
    let der = crate::http_fetch::fetch(
        url,
        Some(("application/ocsp-request", query.der.clone())),
        MAX_OCSP_ANSWER,
        FETCH_DEADLINE,
    )
    .await
    .map_err(|e| e.to_string())?;
    let answer = ocsp::check(&query, &der, unix_now()).map_err(|e| e.to_string())?;
    let until = answer.next_update.unwrap_or(now + SHORT_CACHE_SECS);
    let mut c = caches().lock().unwrap_or_else(|e| e.into_inner());
    make_room(&mut c.ocsp, MAX_OCSP_CACHE, now);
    c.ocsp.insert(key, (answer.status.clone(), until));
    Ok((answer.status, false))
}

/// RFC 5280 §6.3: `leaf` against the CRL at `url` (cached until its
/// nextUpdate).
async fn crl_status(
    url: &str,
    leaf: &X509Certificate<'_>,
    issuer: &X509Certificate<'_>,
    now: i64,
    asn1_now: ASN1Time,
) -> Result<Status, String> {
    let cached = {
        let c = caches().lock().unwrap_or_else(|e| e.into_inner());
        c.crls
            .get(url)
            .filter(|(_, until)| *until > now)
            .map(|(set, _)| set.clone())
    };
    let set = match cached {
        Some(set) => set,
        None => {
            let body = crate::http_fetch::fetch(url, None, MAX_CRL, FETCH_DEADLINE)
                .await
                .map_err(|e| e.to_string())?;
            let mut set = CrlSet::new(CrlPolicy::IfAvailable);
            set.add(&body).map_err(|e| e.to_string())?;
            let until = next_update(&body)
                .filter(|&n| n > now)
                .unwrap_or(now + SHORT_CACHE_SECS);
            let mut c = caches().lock().unwrap_or_else(|e| e.into_inner());
            make_room(&mut c.crls, MAX_CRL_CACHE, now);
            c.crls.insert(url.to_owned(), (set.clone(), until));
            set
        }
    };
    Ok(set.status(leaf, issuer, asn1_now))
}

/// The nextUpdate of the first CRL in `body` (PEM or DER).
fn next_update(body: &[u8]) -> Option<i64> {
    use x509_parser::revocation_list::CertificateRevocationList;
    let der = if body.trim_ascii_start().starts_with(b"-----") {
        x509_parser::pem::Pem::iter_from_buffer(body)
            .next()?
            .ok()?
            .contents
    } else {
        body.to_vec()
    };
    let (_, crl) = CertificateRevocationList::from_der(&der).ok()?;
    crl.next_update().map(|t| t.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_cache_drops_what_expires_first() {
        let mut m: HashMap<u32, ((), i64)> = HashMap::new();
        for k in 0..4 {
            m.insert(k, ((), 100 + i64::from(k)));
        }
        make_room(&mut m, 4, 50);
        assert_eq!(m.len(), 3);
        assert!(!m.contains_key(&0));
        // Expired ones go first, all of them.
        make_room(&mut m, 3, 102);
        assert_eq!(m.len(), 1);
        assert!(m.contains_key(&3));
    }
}
