//! Certificate revocation lists for the client certificates checked
//! against `ipsec.ca_file` and `ikev2.client_ca`: `[certificate]
//! crl_files` and `crl_policy` (docs/ADMIN.md, "Revocation").
//!
//! One [`Revocation`] serves every verifier in the process: the IKEv1 and
//! IKEv2 trust anchors hold it, and a reload replaces its CRLs in place,
//! so new CRLs reach the next login without rebuilding a responder or
//! dropping a session.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ipsec::ikev1::revocation::{CrlError, CrlPolicy, CrlSet, OnlineChecks, Revocation};
use serde::Deserialize;
use thiserror::Error;

use crate::config::CertificateConfig;

/// `certificate.crl_policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrlPolicyConfig {
    /// A certificate whose issuer has no current CRL is accepted (an
    /// expired CRL still counts, with a warning in the log).
    #[default]
    IfAvailable,
    /// Every issuer in a client's chain must have a current CRL.
    Strict,
}

impl From<CrlPolicyConfig> for CrlPolicy {
    fn from(p: CrlPolicyConfig) -> Self {
        match p {
            CrlPolicyConfig::IfAvailable => CrlPolicy::IfAvailable,
            CrlPolicyConfig::Strict => CrlPolicy::Strict,
        }
    }
}

/// `certificate.ocsp`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OcspConfig {
    /// No OCSP request (the default: no login waits on a responder the
    /// operator did not choose).
    #[default]
    Off,
    /// Ask the responder the certificate names (or `ocsp_responder`).
    IfPresent,
}

/// A CRL file that could not be used.
#[derive(Debug, Error)]
pub enum CrlFileError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Crl { path: PathBuf, source: CrlError },
}

/// The CRLs `config` names, read and parsed.
pub fn load(config: &CertificateConfig) -> Result<CrlSet, CrlFileError> {
    let mut set = CrlSet::new(config.crl_policy.into()).with_online(OnlineChecks {
        ocsp: config.ocsp == OcspConfig::IfPresent,
        ocsp_responder: config.ocsp_responder.clone(),
        fetch_crls: config.fetch_crls,
    });
    for path in &config.crl_files {
        add_file(&mut set, path)?;
    }
    Ok(set)
}

fn add_file(set: &mut CrlSet, path: &Path) -> Result<(), CrlFileError> {
    let contents = std::fs::read(path).map_err(|source| CrlFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    set.add(&contents).map_err(|source| CrlFileError::Crl {
        path: path.to_owned(),
        source,
    })?;
    Ok(())
}

/// The process's CRLs (empty, "if-available", until [`install`]).
pub fn shared() -> &'static Revocation {
    static SHARED: OnceLock<Revocation> = OnceLock::new();
    SHARED.get_or_init(|| {
        let r = Revocation::default();
        r.set_warning_sink(|line| tracing::warn!("{line}"));
        r
    })
}

/// Puts `set` in force (at start; a reload replaces it).
pub fn install(set: CrlSet) {
    shared().replace(set);
}

/// One phrase for the reload line.
pub fn describe(set: &CrlSet) -> String {
    let online = set.online();
    let mut text = format!("CRLs {} ({})", set.len(), set.policy().name());
    if online.ocsp {
        text.push_str(", OCSP");
    }
    if online.fetch_crls {
        text.push_str(", CRLs fetched");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_no_crl_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.crl");
        std::fs::write(
            &bad,
            b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let config = CertificateConfig {
            crl_files: vec![bad.clone()],
            ..CertificateConfig::default()
        };
        let e = load(&config).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}: no CRL in it (neither PEM \"X509 CRL\" blocks nor DER)",
                bad.display()
            )
        );
        let config = CertificateConfig {
            crl_files: vec![dir.path().join("missing.crl")],
            ..CertificateConfig::default()
        };
        assert!(load(&config)
            .unwrap_err()
            .to_string()
            .contains("missing.crl: "));
    }
}
