//! How the phone-book clients (posting, updating) trust the service's TLS
//! certificate: a CA file, or the SHA-256 fingerprint of the service's own
//! certificate (what `ras pbs` prints for its self-signed one). Nothing
//! implicit: an update from an impostor would hand users its numbers.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why trust could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("bad fingerprint {0:?}: expected 64 hex digits (colons allowed)")]
    Fingerprint(String),
    #[error("{path}: {message}")]
    CaFile { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// How to check the service's certificate (ignored for `http://` URLs).
#[derive(Clone, Debug)]
pub enum Trust {
    /// WebPKI path and name checks against these roots.
    Roots(Vec<CertificateDer<'static>>),
    /// The leaf certificate's SHA-256 must be this.
    Pinned([u8; 32]),
}

impl Trust {
    /// Parses `AB:CD:…` or plain hex.
    pub fn fingerprint(text: &str) -> Result<Trust, TrustError> {
        let hex: String = text.chars().filter(|c| !matches!(c, ':' | ' ')).collect();
        let mut out = [0u8; 32];
        hex::decode_to_slice(&hex, &mut out)
            .map_err(|_| TrustError::Fingerprint(text.to_owned()))?;
        Ok(Trust::Pinned(out))
    }

    /// Loads CA certificates from a PEM file.
    pub fn ca_file(path: &Path) -> Result<Trust, TrustError> {
        let err = |m: String| TrustError::CaFile {
            path: path.display().to_string(),
            message: m,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no CERTIFICATE section".into()));
        }
        Ok(Trust::Roots(certs))
    }

    /// A rustls client configuration (aws-lc-rs, TLS 1.3 and 1.2).
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, TrustError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?;
        let config = match self {
            Trust::Roots(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in certs {
                    roots.add(c.clone())?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pinned(fp) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Pinned {
                    expected: *fp,
                    provider,
                }))
                .with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }
}

/// Accepts exactly the certificate with the pinned SHA-256, and still
/// checks the handshake signatures (so the peer holds its private key).
#[derive(Debug)]
struct Pinned {
    expected: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        if bool::from(got.ct_eq(&self.expected)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the service certificate's SHA-256 is {}, not the pinned one",
                hex::encode_upper(got)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
