//! ACME certificates (`[certificate.acme]`, docs/ADMIN.md "ACME
//! certificates"): the server certificate obtained from an ACME CA (RFC
//! 8555) and renewed before it expires, validated with TLS-ALPN-01 (RFC
//! 8737) on the SSTP listener itself (acme_challenge.rs), and swapped in
//! through the reload path (`Reloader::refresh_certificate`), so that the
//! SSTP acceptor and its crypto-binding certificate, the IKE responders
//! and the admin HTTPS listener change together and running sessions
//! keep the certificate they were served.
//!
//! What is kept in the state directory (mode 0600): the account
//! (`acme-account.json`: the CA's directory URL, the account URL and its
//! P-256 key) and the certificate (`acme-certificate.pem`: the chain,
//! leaf first, then its key, in one file so that a crash never leaves a
//! chain with another key). Until the first certificate is issued the
//! server serves its self-signed one.
//!
//! When: at start, every [`CHECK_EVERY`], and at each reload. A check
//! orders a certificate when there is none, when the configured names
//! differ from the certificate's, or when fewer than `renew_before_days`
//! remain. A failure logs one line and is retried after a back-off
//! (5 min doubling up to the check interval); the current certificate
//! keeps serving meanwhile.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use crate::acme_challenge::{ChallengeError, Challenges};
use crate::acme_http::{AcmeHttps, HttpsError};
use crate::config::AcmeConfig;
use crate::reload::Reloader;
use crate::state::{StateDir, StateError};

/// The account, in the state directory.
pub const ACCOUNT_FILE: &str = "acme-account.json";
/// The issued chain and its key, in the state directory.
pub const CERT_FILE: &str = "acme-certificate.pem";
/// At most this many names in one certificate (Let's Encrypt's limit).
pub const MAX_DOMAINS: usize = 100;
/// How often the certificate's expiry is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(12 * 3600);
/// The first retry after a failure; doubled each time, up to
/// [`CHECK_EVERY`].
const FIRST_RETRY: Duration = Duration::from_secs(300);
/// A whole issuance (account, order, validation, finalization) must end
/// within this time.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(300);

/// Why an issuance failed.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    #[error("{0}")]
    Acme(#[from] instant_acme::Error),
    #[error(transparent)]
    Https(#[from] HttpsError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Challenge(#[from] ChallengeError),
    #[error("cannot make the key or CSR: {0}")]
    Csr(#[from] rcgen::Error),
    #[error("the stored account: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Refused(String),
    #[error("no answer from the CA within {} s", ISSUANCE_TIMEOUT.as_secs())]
    TimedOut,
    #[error("the certificate was issued but not taken: {0}")]
    Swap(String),
}

/// Whether `name` can be validated with TLS-ALPN-01 here: a DNS name
/// (RFC 1035 §2.3.1 labels), not an address or a wildcard.
pub fn check_domain(name: &str) -> Result<(), &'static str> {
    if name.parse::<std::net::IpAddr>().is_ok() {
        return Err("an IP address: ACME certificates here are for DNS names");
    }
    if name.contains('*') {
        return Err("a wildcard: TLS-ALPN-01 cannot validate wildcards (RFC 8737 §3)");
    }
    let name = name.strip_suffix('.').unwrap_or(name);
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err("not a DNS name");
    }
    Ok(())
}

/// The account as stored: the directory it belongs to, and the
/// credentials instant-acme restores it from.
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory: String,
    credentials: AccountCredentials,
}

/// What the stored certificate says of itself.
struct Stored {
    names: BTreeSet<String>,
    not_after: i64,
}

/// Obtains and renews the certificate; one per server.
pub struct AcmeManager {
    config: AcmeConfig,
    names: Vec<String>,
    state: StateDir,
    challenges: Arc<Challenges>,
    reloader: Arc<Reloader>,
    /// Notified by a reload: check now.
    check_now: Arc<Notify>,
}

impl AcmeManager {
    pub fn new(
        config: AcmeConfig,
        server_name: &str,
        state: StateDir,
        challenges: Arc<Challenges>,
        reloader: Arc<Reloader>,
        check_now: Arc<Notify>,
    ) -> AcmeManager {
        let names = config.names(server_name);
        AcmeManager {
            config,
            names,
            state,
            challenges,
            reloader,
            check_now,
        }
    }

    /// Checks at start, every [`CHECK_EVERY`] and at each reload, until
    /// `shutdown` turns true.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut failures = 0u32;
        loop {
            let wait = match self.check().await {
                Ok(()) => {
                    failures = 0;
                    CHECK_EVERY
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    let wait = retry_after(failures);
                    tracing::warn!(
                        "ACME: no certificate for {}: {e}; retrying in {} min, the current certificate keeps serving",
                        self.names.join(", "),
                        wait.as_secs() / 60
                    );
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.check_now.notified() => {}
                _ = shutdown.changed() => break,
            }
        }
    }

    /// Orders a certificate if one is due, and makes sure the stored one
    /// is the one served.
    async fn check(&self) -> Result<(), AcmeError> {
        let path = self.state.file(CERT_FILE);
        let stored = read_stored(&path);
        let window = self.config.renew_before_days;
        if let Some(reason) = due(&self.names, window, stored.as_ref(), unix_now()) {
            tracing::info!(
                "ACME: ordering a certificate for {} from {}: {reason}",
                self.names.join(", "),
                self.config.directory
            );
            match tokio::time::timeout(ISSUANCE_TIMEOUT, self.issue()).await {
                Ok(result) => result?,
                Err(_) => return Err(AcmeError::TimedOut),
            }
        }
        let reloader = self.reloader.clone();
        let swapped = tokio::task::spawn_blocking(move || reloader.refresh_certificate())
            .await
            .map_err(|e| AcmeError::Swap(e.to_string()))?
            .map_err(|e| AcmeError::Swap(e.to_string()))?;
        if swapped {
            if let Some(s) = read_stored(&path) {
                tracing::info!(
                    "ACME: certificate for {} installed, valid until {} UTC; new connections get it",
                    s.names.iter().cloned().collect::<Vec<_>>().join(", "),
                    date(s.not_after)
                );
            }
        }
        Ok(())
    }

    /// The account: the stored one if it belongs to this directory, else
    /// a new one (stored).
    async fn account(&self) -> Result<Account, AcmeError> {
        let https = || AcmeHttps::new(self.config.ca_file.as_deref()).map(Box::new);
        let file = self.state.file(ACCOUNT_FILE);
        if let Ok(text) = std::fs::read_to_string(&file) {
            match serde_json::from_str::<StoredAccount>(&text) {
                Ok(stored) if stored.directory == self.config.directory => {
                    return Ok(Account::builder_with_http(https()?)
                        .from_credentials(stored.credentials)
                        .await?);
                }
                Ok(_) => tracing::info!(
                    "ACME: the stored account is for another directory; creating one at {}",
                    self.config.directory
                ),
                Err(e) => tracing::warn!(
                    "ACME: {} is unreadable ({e}); creating a new account",
                    file.display()
                ),
            }
        }
        let contact = self
            .config
            .contact
            .as_ref()
            .map(|c| match c.starts_with("mailto:") {
                true => c.clone(),
                false => format!("mailto:{c}"),
            });
        let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
        let (account, credentials) = Account::builder_with_http(https()?)
            .create(
                &NewAccount {
                    contact: &contacts,
                    // Configuring the CA is agreeing to its terms
                    // (docs/ADMIN.md says so).
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                self.config.directory.clone(),
                None,
            )
            .await?;
        let stored = StoredAccount {
            directory: self.config.directory.clone(),
            credentials,
        };
        self.state
            .write_private(ACCOUNT_FILE, &serde_json::to_vec(&stored)?)?;
        tracing::info!("ACME: account {} created", account.id());
        Ok(account)
    }

    /// One issuance: order, TLS-ALPN-01 for each name, finalize with a
    /// fresh P-256 key, download the chain, store it with its key.
    async fn issue(&self) -> Result<(), AcmeError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .names
            .iter()
            .map(|n| Identifier::Dns(n.clone()))
            .collect();
        let mut order = account.new_order(&NewOrder::new(&identifiers)).await?;
        // The challenge certificates are served only while this runs.
        let _served = ClearOnDrop {
            challenges: &self.challenges,
            names: &self.names,
        };
        let mut authorizations = order.authorizations();
        while let Some(authorization) = authorizations.next().await {
            let mut authorization = authorization?;
            match authorization.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                other => {
                    return Err(AcmeError::Refused(format!(
                        "the authorization for {} is {}",
                        authorization.identifier(),
                        authorization_word(other)
                    )))
                }
            }
            let mut challenge = authorization
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| {
                    AcmeError::Refused("the CA offers no tls-alpn-01 challenge".into())
                })?;
            let domain = challenge.identifier().to_string();
            if !self.names.iter().any(|n| n.eq_ignore_ascii_case(&domain)) {
                return Err(AcmeError::Refused(format!(
                    "the CA asks to validate {domain:?}, which was not ordered"
                )));
            }
            self.challenges
                .set(&domain, challenge.key_authorization().digest().as_ref())?;
            challenge.set_ready().await?;
        }
        let patience = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order.poll_ready(&patience).await?;
        if status != OrderStatus::Ready {
            let why = match order.state().error.as_ref() {
                Some(problem) => problem.to_string(),
                None => challenge_problems(&mut order).await,
            };
            return Err(AcmeError::Refused(format!(
                "the order is {}: {why}",
                order_word(status)
            )));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = rcgen::CertificateParams::new(self.names.clone())?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&key)?;
        order.finalize_csr(csr.der()).await?;
        let chain = order.poll_certificate(&patience).await?;
        let both = zeroize::Zeroizing::new(format!("{chain}{}", key.serialize_pem()));
        self.state.write_private(CERT_FILE, both.as_bytes())?;
        Ok(())
    }
}

/// What the CA said of the failed challenges (RFC 8555 §8: a
/// challenge's `error`), for the log line.
async fn challenge_problems(order: &mut instant_acme::Order) -> String {
    let mut problems = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(authorization)) = authorizations.next().await {
        for challenge in &authorization.challenges {
            if let Some(problem) = &challenge.error {
                problems.push(format!("{}: {problem}", authorization.identifier()));
            }
        }
    }
    match problems.is_empty() {
        true => "the CA gave no reason".to_owned(),
        false => problems.join("; "),
    }
}

fn authorization_word(status: AuthorizationStatus) -> &'static str {
    match status {
        AuthorizationStatus::Pending => "pending",
        AuthorizationStatus::Valid => "valid",
        AuthorizationStatus::Invalid => "invalid",
        AuthorizationStatus::Revoked => "revoked",
        AuthorizationStatus::Expired => "expired",
        AuthorizationStatus::Deactivated => "deactivated",
    }
}

fn order_word(status: OrderStatus) -> &'static str {
    match status {
        OrderStatus::Pending => "still pending",
        OrderStatus::Ready => "ready",
        OrderStatus::Processing => "processing",
        OrderStatus::Valid => "already valid",
        OrderStatus::Invalid => "invalid",
    }
}

/// Takes the challenge certificates down however an issuance ends.
struct ClearOnDrop<'a> {
    challenges: &'a Challenges,
    names: &'a [String],
}

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        for name in self.names {
            self.challenges.clear(name);
        }
    }
}

/// Why a new certificate for `names` is needed at `now` (Unix seconds)
/// with a renewal window of `renew_before_days`, or `None`.
fn due(
    names: &[String],
    renew_before_days: u32,
    stored: Option<&Stored>,
    now: i64,
) -> Option<String> {
    let Some(stored) = stored else {
        return Some("no certificate yet".into());
    };
    let wanted: BTreeSet<String> = names.iter().map(|n| n.to_ascii_lowercase()).collect();
    if wanted != stored.names {
        return Some("the configured names changed".into());
    }
    let window = i64::from(renew_before_days) * 86_400;
    if stored.not_after - now < window {
        return Some(format!(
            "it expires on {} UTC, within {renew_before_days} days",
            date(stored.not_after)
        ));
    }
    None
}

/// The back-off after `failures` failures in a row.
fn retry_after(failures: u32) -> Duration {
    let doubled = FIRST_RETRY.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    doubled.min(CHECK_EVERY)
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `YYYY-MM-DD` of Unix time `t`.
fn date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// The stored certificate's DNS names (lower case) and notAfter, if it
/// is there and parses.
fn read_stored(path: &std::path::Path) -> Option<Stored> {
    use rustls::pki_types::pem::PemObject;
    use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
    let leaf = rustls::pki_types::CertificateDer::pem_file_iter(path)
        .ok()?
        .next()?
        .ok()?;
    let (_, cert) = X509Certificate::from_der(&leaf).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    Some(Stored {
        names,
        not_after: cert.validity().not_after.timestamp(),
    })
}

/// Where the issued certificate is, for `cert.rs`.
pub fn certificate_path(state: &StateDir) -> PathBuf {
    state.file(CERT_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_that_tls_alpn_can_validate() {
        for good in ["vpn.example.com", "VPN.test", "a-b.c", "host.", "x"] {
            assert_eq!(check_domain(good), Ok(()), "{good}");
        }
        for bad in [
            "192.0.2.1",
            "2001:db8::1",
            "*.example.com",
            "",
            "a..b",
            "-a.b",
            "a_b.c",
            "vpn example.com",
        ] {
            assert!(check_domain(bad).is_err(), "{bad}");
        }
        assert!(check_domain(&format!("{}.com", "a".repeat(64))).is_err());
    }

    #[test]
    fn a_certificate_is_due_when_missing_for_other_names_or_in_its_window() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join(CERT_FILE);
        assert!(read_stored(&path).is_none());
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(vec!["VPN.example.com".into(), "b.example.com".into()])
                .unwrap();
        let now = time::OffsetDateTime::now_utc();
        params.not_after = now + time::Duration::days(40);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(&path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
        let stored = read_stored(&path).expect("parses");
        let names = vec!["b.example.com".to_owned(), "vpn.example.com".to_owned()];
        let t = now.unix_timestamp();
        assert_eq!(due(&names, 30, Some(&stored), t), None, "40 days left");
        let why = due(&names, 45, Some(&stored), t).expect("inside 45 days");
        assert!(why.contains("within 45 days"), "{why}");
        assert!(due(&names, 30, Some(&stored), t + 11 * 86_400).is_some());
        assert_eq!(
            due(&names[..1], 30, Some(&stored), t).as_deref(),
            Some("the configured names changed")
        );
        assert_eq!(
            due(&names, 30, None, t).as_deref(),
            Some("no certificate yet")
        );
    }

    #[test]
    fn retries_back_off_up_to_the_check_interval() {
        assert_eq!(retry_after(1), Duration::from_secs(300));
        assert_eq!(retry_after(2), Duration::from_secs(600));
        assert_eq!(retry_after(3), Duration::from_secs(1200));
        assert_eq!(retry_after(100), CHECK_EVERY);
    }
}
