//! How the client decides to trust the server's TLS certificate.
//!
//! Two ways, and nothing implicit: a CA file (`--ca`, WebPKI path and name
//! checks against the host or IP address dialled) or the SHA-256
//! fingerprint of the server's own certificate (`--fingerprint`, what the
//! server prints at start for its self-signed certificate). With neither,
//! [`Trust::from_options`] refuses: a VPN client that silently accepts any
//! certificate would hand its MS-CHAPv2 exchange to whoever sits in the
//! middle.
//!
//! Whatever the mode, the handshake signatures are checked with the
//! aws-lc-rs provider's algorithms, so a pinned certificate proves that the
//! server holds its private key. SSTP also needs the leaf certificate's
//! DER after the handshake (crypto binding, MS-SSTP §3.2.5.2): it is read
//! from the connection with `peer_certificates()`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why trust could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(
        "no way to check the server certificate: give --ca FILE (the CA that signed it) \
         or --fingerprint SHA256 (of the server certificate, as `ras server` prints it)"
    )]
    NoTrust,
    #[error("give either --ca or --fingerprint, not both")]
    Both,
    #[error("bad fingerprint: {0}")]
    Fingerprint(String),
    #[error("{}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// A SHA-256 certificate fingerprint.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Parses 64 hex digits, with or without colons (or spaces) between
    /// bytes, in either case: `AB:CD:…` as Windows, `openssl x509
    /// -fingerprint -sha256` and `ras server` print it, or plain hex.
    pub fn parse(text: &str) -> Result<Fingerprint, VerifyError> {
        let text = text.trim();
        let text = text
            .strip_prefix("sha256:")
            .or_else(|| text.strip_prefix("SHA256:"))
            .unwrap_or(text);
        let digits: String = text
            .chars()
            .filter(|c| !matches!(c, ':' | ' ' | '-'))
            .collect();
        if digits.len() != 64 {
            return Err(VerifyError::Fingerprint(format!(
                "expected 32 bytes (64 hex digits) of SHA-256, got {} digits",
                digits.len()
            )));
        }
        let mut out = [0u8; 32];
        hex::decode_to_slice(&digits, &mut out)
            .map_err(|e| VerifyError::Fingerprint(e.to_string()))?;
        Ok(Fingerprint(out))
    }

    /// The fingerprint of a DER certificate.
    pub fn of(der: &[u8]) -> Fingerprint {
        Fingerprint(Sha256::digest(der).into())
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// What the client trusts.
#[derive(Clone)]
pub enum Trust {
    /// Certificates signed by one of these CAs, for the dialled name.
    Ca(Vec<CertificateDer<'static>>),
    /// Exactly the server certificate with this fingerprint (names and
    /// dates are not checked: the pin is the trust decision).
    Pin(Fingerprint),
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::Ca(certs) => write!(f, "Trust::Ca({} certificates)", certs.len()),
            Trust::Pin(fp) => write!(f, "Trust::Pin({fp})"),
        }
    }
}

impl Trust {
    /// From the command line: exactly one of a CA file and a fingerprint.
    pub fn from_options(
        ca: Option<&Path>,
        fingerprint: Option<&str>,
    ) -> Result<Trust, VerifyError> {
        match (ca, fingerprint) {
            (Some(_), Some(_)) => Err(VerifyError::Both),
            (None, None) => Err(VerifyError::NoTrust),
            (Some(path), None) => Trust::ca_file(path),
            (None, Some(fp)) => Ok(Trust::Pin(Fingerprint::parse(fp)?)),
        }
    }

    /// Every certificate of a PEM file.
    pub fn ca_file(path: &Path) -> Result<Trust, VerifyError> {
        let err = |message: String| VerifyError::CaFile {
            path: path.to_owned(),
            message,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| err(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no CERTIFICATE in the file".into()));
        }
        Ok(Trust::Ca(certs))
    }

    /// A rustls client configuration (TLS 1.3 and 1.2, aws-lc-rs) that
    /// checks the server this way.
    pub fn client_config(&self) -> Result<Arc<rustls::ClientConfig>, VerifyError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match self {
            Trust::Ca(certs) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs {
                    roots.add(cert.clone())?;
                }
                rustls::client::WebPkiServerVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider.clone(),
                )
                .build()
                .map_err(|e| VerifyError::Tls(rustls::Error::General(e.to_string())))?
            }
            Trust::Pin(fp) => Arc::new(PinnedVerifier::new(*fp, &provider)),
        };
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        Ok(Arc::new(config))
    }
}

/// The server certificate is not the pinned one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("certificate fingerprint mismatch: the server presented SHA-256 {presented}, expected {expected}")]
pub struct FingerprintMismatch {
    pub presented: Fingerprint,
    pub expected: Fingerprint,
}

/// Accepts exactly one leaf certificate, by SHA-256 fingerprint.
#[derive(Debug)]
pub struct PinnedVerifier {
    expected: Fingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedVerifier {
    pub fn new(expected: Fingerprint, provider: &CryptoProvider) -> Self {
        PinnedVerifier {
            expected,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = Fingerprint::of(end_entity);
        // Constant time: the comparison should not tell an active attacker
        // how many leading bytes of a forged certificate's hash matched.
        if bool::from(presented.0.ct_eq(&self.expected.0)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(FingerprintMismatch {
                    presented,
                    expected: self.expected,
                })),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The name TLS checks the certificate against: the host as dialled (a DNS
/// name or an IP address).
pub fn server_name(host: &str) -> Result<ServerName<'static>, VerifyError> {
    ServerName::try_from(host.to_owned())
        .map_err(|e| VerifyError::Tls(rustls::Error::General(format!("server name {host:?}: {e}"))))
}

/// Whether a TLS failure means the certificate was refused (a permanent
/// failure: retrying cannot help), and a description of it.
pub fn certificate_refusal(error: &std::io::Error) -> Option<String> {
    let inner = error.get_ref()?.downcast_ref::<rustls::Error>()?;
    match inner {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<FingerprintMismatch>() {
                Some(m) => Some(m.to_string()),
                None => Some(format!("server certificate refused: {}", other.0)),
            }
        }
        rustls::Error::InvalidCertificate(e) => Some(format!(
            "server certificate refused: {}",
            rustls::Error::InvalidCertificate(e.clone())
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct ServerCert {
        der: CertificateDer<'static>,
        key: KeyPair,
    }

    fn self_signed(names: &[&str]) -> ServerCert {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .self_signed(&key)
            .unwrap();
        ServerCert {
            der: cert.der().clone(),
            key,
        }
    }

    fn server_config(cert: &ServerCert) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key.serialize_der()));
        Arc::new(
            rustls::ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der.clone()], key)
                .unwrap(),
        )
    }

    /// A real handshake over a loopback TCP socket; returns the leaf the
    /// client saw, or the client's error.
    async fn handshake(
        server: Arc<rustls::ServerConfig>,
        trust: &Trust,
        host: &str,
    ) -> Result<Vec<u8>, std::io::Error> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server);
        let srv = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            if let Ok(mut tls) = acceptor.accept(tcp).await {
                let mut b = [0u8; 4];
                let _ = tls.read_exact(&mut b).await;
                let _ = tls.write_all(&b).await;
                let _ = tls.shutdown().await;
            }
        });
        let connector = tokio_rustls::TlsConnector::from(trust.client_config().unwrap());
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let result = connector.connect(server_name(host).unwrap(), tcp).await;
        let out = match result {
            Ok(mut tls) => {
                tls.write_all(b"ping").await?;
                let mut b = [0u8; 4];
                tls.read_exact(&mut b).await?;
                assert_eq!(&b, b"ping");
                Ok(tls.get_ref().1.peer_certificates().unwrap()[0].to_vec())
            }
            Err(e) => Err(e),
        };
        srv.await.unwrap();
        out
    }

    #[test]
    fn fingerprints_parse_in_every_usual_spelling() {
        let bytes: Vec<u8> = (0..32).collect();
        let plain = hex::encode(&bytes);
        let expected = Fingerprint(bytes.clone().try_into().unwrap());
        assert_eq!(Fingerprint::parse(&plain).unwrap(), expected);
        assert_eq!(Fingerprint::parse(&plain.to_uppercase()).unwrap(), expected);
        let colons = expected.to_string();
        assert!(colons.starts_with("00:01:02:") && colons.len() == 95);
        assert_eq!(Fingerprint::parse(&colons).unwrap(), expected);
        assert_eq!(
            Fingerprint::parse(&format!(" sha256:{colons}\n")).unwrap(),
            expected
        );
        assert!(matches!(
            Fingerprint::parse(&plain[2..]),
            Err(VerifyError::Fingerprint(_))
        ));
        assert!(matches!(
            Fingerprint::parse(&format!("{}zz", &plain[2..])),
            Err(VerifyError::Fingerprint(_))
        ));
        assert!(Fingerprint::parse("").is_err());
    }

    #[test]
    fn no_trust_is_refused() {
        assert!(matches!(
            Trust::from_options(None, None),
            Err(VerifyError::NoTrust)
        ));
        let msg = VerifyError::NoTrust.to_string();
        assert!(
            msg.contains("--ca") && msg.contains("--fingerprint"),
            "{msg}"
        );
        assert!(matches!(
            Trust::from_options(Some(Path::new("x")), Some("00")),
            Err(VerifyError::Both)
        ));
    }

    #[tokio::test]
    async fn pinned_certificate_is_accepted_and_another_refused() {
        let cert = self_signed(&["vpn.example.com"]);
        let pin = Trust::Pin(Fingerprint::of(&cert.der));
        // The name does not matter with a pin (dialled by IP address here).
        let leaf = handshake(server_config(&cert), &pin, "127.0.0.1")
            .await
            .unwrap();
        assert_eq!(leaf, cert.der.to_vec(), "the leaf is kept for SSTP");

        let other = self_signed(&["vpn.example.com"]);
        let err = handshake(server_config(&other), &pin, "vpn.example.com")
            .await
            .unwrap_err();
        let why = certificate_refusal(&err).expect("a certificate refusal");
        assert!(why.contains("fingerprint mismatch"), "{why}");
        assert!(
            why.contains(&Fingerprint::of(&other.der).to_string()),
            "{why}"
        );
    }

    #[tokio::test]
    async fn ca_file_checks_chain_and_name() {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["vpn.example.com".into(), "127.0.0.1".into()])
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        let server = ServerCert {
            der: leaf.der().clone(),
            key,
        };

        let dir = std::env::temp_dir().join(format!("ras-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, ca_cert.pem()).unwrap();
        let trust = Trust::from_options(Some(&ca_path), None).unwrap();

        handshake(server_config(&server), &trust, "vpn.example.com")
            .await
            .unwrap();
        handshake(server_config(&server), &trust, "127.0.0.1")
            .await
            .unwrap();
        // Wrong name.
        let err = handshake(server_config(&server), &trust, "other.example.com")
            .await
            .unwrap_err();
        assert!(certificate_refusal(&err).is_some(), "{err}");
        // Not signed by the CA.
        let stranger = self_signed(&["vpn.example.com"]);
        let err = handshake(server_config(&stranger), &trust, "vpn.example.com")
            .await
            .unwrap_err();
        assert!(certificate_refusal(&err).is_some(), "{err}");

        // A file without certificates is refused up front.
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "nothing here\n").unwrap();
        assert!(matches!(
            Trust::ca_file(&empty),
            Err(VerifyError::CaFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
