//! Certificate revocation lists (RFC 5280 §5) for the peer chains that
//! [`super::certificates::TrustAnchors::verify_peer`] checks: each
//! certificate of the chain (the end entity and every intermediate) is
//! looked up in the CRLs its issuer signed (RFC 5280 §6.3).
//!
//! The CRLs come from files the operator names (no fetch in the
//! authentication path, like strongSwan without a fetcher). A [`Revocation`]
//! is shared by everything that verifies peers and swapped as a whole on a
//! reload, so a reload takes new CRLs without touching any session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use thiserror::Error;
use x509_parser::prelude::*;
use x509_parser::revocation_list::CertificateRevocationList;

/// What to do when no current CRL of its issuer covers a certificate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrlPolicy {
    /// Accept it (strongSwan's default): a CRL is used when there is one.
    /// An expired CRL still counts, with a warning.
    #[default]
    IfAvailable,
    /// Refuse it: every issuer in the chain must have a current CRL.
    Strict,
}

impl CrlPolicy {
    pub fn name(self) -> &'static str {
        match self {
            CrlPolicy::IfAvailable => "if-available",
            CrlPolicy::Strict => "strict",
        }
    }
}

/// Why a CRL file could not be loaded (configuration).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum CrlError {
    #[error("no CRL in it (neither PEM \"X509 CRL\" blocks nor DER)")]
    NoCrl,
    #[error("CRL {index} is not a valid DER X.509 CRL: {reason}")]
    Unreadable { index: usize, reason: &'static str },
}

/// RFC 5280 §5.3.1 reason codes, as people read them.
pub(crate) fn reason_name(code: u8) -> &'static str {
    match code {
        0 => "unspecified",
        1 => "keyCompromise",
        2 => "cACompromise",
        3 => "affiliationChanged",
        4 => "superseded",
        5 => "cessationOfOperation",
        6 => "certificateHold",
        8 => "removeFromCRL",
        9 => "privilegeWithdrawn",
        10 => "aACompromise",
        _ => "unknown",
    }
}

/// A certificate found on its issuer's CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revoked {
    /// The serial number in hex, colon separated (as `openssl` shows it).
    pub serial: String,
    /// The revocation date (RFC 2822 text).
    pub date: String,
    /// The reason code's name, when the CRL entry gives one.
    pub reason: Option<&'static str>,
}

impl std::fmt::Display for Revoked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "serial {} revoked on {}", self.serial, self.date)?;
        if let Some(reason) = self.reason {
            write!(f, " ({reason})")?;
        }
        Ok(())
    }
}

/// The answer of the CRLs for one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// A current CRL of its issuer does not list it.
    Good,
    /// A CRL of its issuer lists it.
    Revoked(Revoked),
    /// Its issuer's CRLs have all passed their nextUpdate.
    Stale,
    /// No CRL signed by its issuer.
    Unknown,
}

/// Status checks the server's driver makes over the network for an end
/// entity that no current CRL file covers (RFC 6960 OCSP, RFC 5280
/// §4.2.1.13 CRL distribution points). The verifier only needs to know
/// whether they are on: when they are, it leaves the end entity's unknown
/// status to the driver (which applies the policy to what it finds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OnlineChecks {
    /// Ask the OCSP responder of the certificate's Authority Information
    /// Access (or `ocsp_responder`).
    pub ocsp: bool,
    /// This responder instead of the certificate's.
    pub ocsp_responder: Option<String>,
    /// Fetch the CRL of the certificate's http:// distribution points.
    pub fetch_crls: bool,
}

impl OnlineChecks {
    pub fn enabled(&self) -> bool {
        self.ocsp || self.fetch_crls
    }
}

/// The CRLs loaded from the configured files (DER each), and their policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrlSet {
    crls: Vec<Vec<u8>>,
    policy: CrlPolicy,
    online: OnlineChecks,
}

impl CrlSet {
    pub fn new(policy: CrlPolicy) -> Self {
        CrlSet {
            crls: Vec::new(),
            policy,
            online: OnlineChecks::default(),
        }
    }

    /// This set with network checks for end entities it does not cover.
    pub fn with_online(mut self, online: OnlineChecks) -> Self {
        self.online = online;
        self
    }

    pub fn online(&self) -> &OnlineChecks {
        &self.online
    }

    pub fn policy(&self) -> CrlPolicy {
        self.policy
    }

    pub fn len(&self) -> usize {
        self.crls.len()
    }

    pub fn is_empty(&self) -> bool {
        self.crls.is_empty()
    }

    /// Adds every CRL of a file's contents: PEM ("X509 CRL" blocks) or one
    /// DER CRL. Each is parsed now, so a bad file is a configuration error
    /// at start and at reload rather than a surprise at a login.
    pub fn add(&mut self, contents: &[u8]) -> Result<usize, CrlError> {
        let mut found = Vec::new();
        if contents.starts_with(b"-----") || contents.trim_ascii_start().starts_with(b"-----") {
            for block in x509_parser::pem::Pem::iter_from_buffer(contents) {
                let Ok(block) = block else { break };
                if block.label == "X509 CRL" {
                    found.push(block.contents);
                }
            }
        } else {
            found.push(contents.to_vec());
        }
        if found.is_empty() {
            return Err(CrlError::NoCrl);
        }
        for (index, der) in found.iter().enumerate() {
            match CertificateRevocationList::from_der(der) {
                Ok(([], _)) => {}
                Ok(_) => {
                    return Err(CrlError::Unreadable {
                        index,
                        reason: "trailing bytes after the CRL",
                    })
                }
                // x509-parser's error text is its parser's internals
                // (nom's), not words for an operator.
                Err(_) => {
                    return Err(CrlError::Unreadable {
                        index,
                        reason: "truncated or malformed DER",
                    })
                }
            }
        }
        let n = found.len();
        self.crls.extend(found);
        Ok(n)
    }

    /// RFC 5280 §6.3.3: the status of `cert`, issued by `issuer` (whose
    /// key verified `cert`'s signature), at `now`. Only CRLs naming the
    /// issuer and signed by its key count (a CRL signed by another key is
    /// ignored as if absent); an issuer whose keyUsage lacks cRLSign signs
    /// no CRL we accept. A CRL whose thisUpdate is in the future is ignored.
    pub fn status(
        &self,
        cert: &X509Certificate<'_>,
        issuer: &X509Certificate<'_>,
        now: ASN1Time,
    ) -> Status {
        if let Ok(Some(ku)) = issuer.key_usage() {
            if !ku.value.crl_sign() {
                return Status::Unknown;
            }
        }
        let mut current = false;
        let mut stale = false;
        for der in &self.crls {
            let Ok((_, crl)) = CertificateRevocationList::from_der(der) else {
                continue;
            };
            if crl.issuer().as_raw() != cert.issuer().as_raw()
                || !crate::ike_crypto::x509_signature::crl_signed_by(&crl, issuer.public_key())
                || crl.last_update() > now
            {
                continue;
            }
            // A listed certificate is revoked whatever the CRL's age: a
            // revocation is never undone by time (certificateHold entries
            // leave a newer CRL with removeFromCRL, which we honour).
            let entry = crl
                .iter_revoked_certificates()
                .find(|r| r.raw_serial() == cert.raw_serial());
            if let Some(entry) = entry {
                let reason = entry.reason_code().map(|(_, code)| code.0);
                if reason != Some(8) {
                    return Status::Revoked(Revoked {
                        serial: cert.raw_serial_as_string(),
                        date: entry
                            .revocation_date
                            .to_rfc2822()
                            .unwrap_or_else(|_| entry.revocation_date.to_string()),
                        reason: reason.map(reason_name),
                    });
                }
            }
            match crl.next_update() {
                Some(next) if next < now => stale = true,
                _ => current = true,
            }
        }
        if current {
            Status::Good
        } else if stale {
            Status::Stale
        } else {
            Status::Unknown
        }
    }
}

/// Called with a warning line (an expired CRL accepted); the server
/// routes it to its log.
pub type WarningSink = fn(&str);

/// How often the same issuer's expired CRL is warned about.
const WARN_EVERY_SECS: i64 = 3600;

/// The CRLs in force, shared by every verifier and swapped on reload.
#[derive(Clone, Default)]
pub struct Revocation {
    inner: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    set: RwLock<Arc<CrlSet>>,
    warn: Mutex<Option<WarningSink>>,
    /// Issuer DN -> unix time of the last warning about it.
    warned: Mutex<HashMap<Vec<u8>, i64>>,
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current();
        f.debug_struct("Revocation")
            .field("crls", &set.len())
            .field("policy", &set.policy().name())
            .finish()
    }
}

impl Revocation {
    pub fn new(set: CrlSet) -> Self {
        let r = Revocation::default();
        r.replace(set);
        r
    }

    /// Where warnings go (default: nowhere).
    pub fn set_warning_sink(&self, sink: WarningSink) {
        *self.inner.warn.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// The CRLs in force now.
    pub fn current(&self) -> Arc<CrlSet> {
        self.inner
            .set
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Swaps in new CRLs (a reload): the next verification uses them.
    pub fn replace(&self, set: CrlSet) {
        *self.inner.set.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(set);
        self.inner
            .warned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Warns about `issuer`'s expired CRL at most once an hour.
    pub(crate) fn warn_stale(&self, issuer: &X509Name<'_>, unix_time: i64) {
        let Some(sink) = *self.inner.warn.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let mut warned = self.inner.warned.lock().unwrap_or_else(|e| e.into_inner());
        let key = issuer.as_raw().to_vec();
        if warned
            .get(&key)
            .is_some_and(|&at| unix_time - at < WARN_EVERY_SECS && unix_time >= at)
        {
            return;
        }
        // Bounded by the operator's CAs: only issuers that verified a
        // chain get here.
        warned.insert(key, unix_time);
        drop(warned);
        sink(&format!(
            "the CRL of \"{issuer}\" is past its nextUpdate; accepting its certificates \
             (crl_policy \"if-available\"), update the CRL file and reload"
        ));
    }
}
