//! TLS-ALPN-01 (RFC 8737) answered on the SSTP listener itself.
//!
//! While an ACME order waits for validation, the CA connects to the
//! domain's port 443 (the SSTP port) with ALPN `acme-tls/1` and the
//! domain as SNI. Such a ClientHello gets a self-signed certificate for
//! the domain carrying the critical acmeIdentifier extension (RFC 8737
//! §3: id-pe-acmeIdentifier, 1.3.6.1.5.5.7.1.31, the SHA-256 of the key
//! authorization), `acme-tls/1` is negotiated, and the connection is
//! closed after the handshake (§3: no application data). Every other
//! ClientHello (no ALPN, another ALPN) gets the server certificate as
//! before.
//!
//! Bounded: the challenge certificates are made when the ACME client
//! sets a challenge (at most one per configured domain), never per
//! connection; a ClientHello only costs a map look-up, and one that asks
//! for `acme-tls/1` without a pending challenge is dropped.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::ClientHello;
use rustls::ServerConfig;

/// The ALPN protocol of TLS-ALPN-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Why a challenge certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("cannot make the TLS-ALPN-01 certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("cannot serve the TLS-ALPN-01 certificate: {0}")]
    Tls(#[from] rustls::Error),
}

/// What a ClientHello on the SSTP port asks for.
pub enum HelloChoice {
    /// The SSTP server certificate (every ordinary client).
    Server,
    /// A TLS-ALPN-01 validation with a pending challenge: this
    /// configuration, then close.
    Challenge(Arc<ServerConfig>),
    /// `acme-tls/1` for a name with no pending challenge: drop.
    Refuse,
}

/// The pending TLS-ALPN-01 challenges, by lower-case domain.
#[derive(Default)]
pub struct Challenges {
    pending: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

impl Challenges {
    /// Serves a challenge for `domain` whose key authorization hashes to
    /// `digest` (SHA-256, 32 bytes) until [`Challenges::clear`].
    pub fn set(&self, domain: &str, digest: &[u8]) -> Result<(), ChallengeError> {
        // DNS names compare without case (RFC 4343).
        let domain = domain.to_ascii_lowercase();
        let config = challenge_config(&domain, digest)?;
        self.lock().insert(domain, config);
        Ok(())
    }

    /// No longer serves `domain`'s challenge.
    pub fn clear(&self, domain: &str) {
        self.lock().remove(&domain.to_ascii_lowercase());
    }

    /// Whether any challenge is pending.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// What `hello` gets.
    pub fn choose(&self, hello: &ClientHello<'_>) -> HelloChoice {
        let wants_acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if !wants_acme {
            return HelloChoice::Server;
        }
        // RFC 8737 §3: the SNI names the identifier being validated.
        let Some(name) = hello.server_name() else {
            return HelloChoice::Refuse;
        };
        match self.lock().get(&name.to_ascii_lowercase()) {
            Some(config) => HelloChoice::Challenge(config.clone()),
            None => HelloChoice::Refuse,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ServerConfig>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The validation certificate for `domain` (RFC 8737 §3): self-signed,
/// SAN = the domain, the critical acmeIdentifier extension holding
/// `digest`; served only with ALPN `acme-tls/1`.
fn challenge_config(domain: &str, digest: &[u8]) -> Result<Arc<ServerConfig>, ChallengeError> {
    use rcgen::{CertificateParams, CustomExtension, KeyPair, PKCS_ECDSA_P256_SHA256};
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(vec![domain.to_owned()])?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // Not `with_single_cert`: it parses the certificate with webpki, which
    // refuses the critical extension it does not know.
    let signing_key = provider.key_provider.load_private_key(key_der)?;
    let certified = Arc::new(rustls::sign::CertifiedKey::new(
        vec![CertificateDer::from(cert.der().to_vec())],
        signing_key,
    ));
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Always(certified)));
    config.alpn_protocols = vec![ACME_TLS_ALPN.to_vec()];
    config.send_tls13_tickets = 0;
    Ok(Arc::new(config))
}

/// Serves the one challenge certificate.
#[derive(Debug)]
struct Always(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Always {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// DER of OID 1.3.6.1.5.5.7.1.31 (id-pe-acmeIdentifier).
    const ACME_ID_OID: &[u8] = &[0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x1F];

    /// A client offering `alpn` to `name` against a listener choosing by
    /// `challenges`; what it was served: (negotiated ALPN, leaf DER), or
    /// `None` when the handshake failed.
    async fn hello(
        challenges: Arc<Challenges>,
        name: &str,
        alpn: Vec<Vec<u8>>,
    ) -> Option<(Option<Vec<u8>>, Vec<u8>)> {
        // The ordinary certificate, as the SSTP service has it.
        let tmp = tempfile::tempdir().unwrap();
        let state = crate::state::StateDir::open(tmp.path()).unwrap();
        let server_cert =
            crate::cert::ServerCertificate::load_or_create_self_signed(&state, "vpn.test", &[])
                .unwrap();
        let server_cfg = server_cert.rustls_config().unwrap();
        let (c, s) = tokio::io::duplex(16 * 1024);
        let server = tokio::spawn(async move {
            let start =
                tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), s)
                    .await
                    .ok()?;
            let config = match challenges.choose(&start.client_hello()) {
                HelloChoice::Server => server_cfg,
                HelloChoice::Challenge(config) => config,
                HelloChoice::Refuse => return None,
            };
            let mut tls = start.into_stream(config).await.ok()?;
            let _ = tls.shutdown().await;
            Some(())
        });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        // The CA's validator does not check the chain (RFC 8737 §3: it
        // checks the extension); this client accepts anything, too.
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny))
            .with_no_client_auth();
        config.alpn_protocols = alpn;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from(name.to_owned()).unwrap();
        let tls = connector.connect(name, c).await.ok();
        let _ = server.await;
        let tls = tls?;
        let conn = tls.get_ref().1;
        Some((
            conn.alpn_protocol().map(<[u8]>::to_vec),
            conn.peer_certificates()?[0].to_vec(),
        ))
    }

    #[derive(Debug)]
    struct AcceptAny;
    impl rustls::client::danger::ServerCertVerifier for AcceptAny {
        fn verify_server_cert(
            &self,
            _: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &rustls::pki_types::ServerName<'_>,
            _: &[u8],
            _: rustls::pki_types::UnixTime,
        ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        }
        fn verify_tls12_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn verify_tls13_signature(
            &self,
            _: &[u8],
            _: &CertificateDer<'_>,
            _: &rustls::DigitallySignedStruct,
        ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
            Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
        }
        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            rustls::crypto::aws_lc_rs::default_provider()
                .signature_verification_algorithms
                .supported_schemes()
        }
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[tokio::test]
    async fn the_challenge_certificate_goes_only_to_acme_tls_for_a_pending_name() {
        let challenges = Arc::new(Challenges::default());
        let digest = [0xA5u8; 32];
        challenges.set("VPN.test", &digest).unwrap();
        let acme = vec![ACME_TLS_ALPN.to_vec()];

        // The validator: acme-tls/1 negotiated, the extension with the
        // digest, the name in the SAN.
        let (alpn, leaf) = hello(challenges.clone(), "vpn.test", acme.clone())
            .await
            .expect("the challenge handshake");
        assert_eq!(alpn.as_deref(), Some(ACME_TLS_ALPN));
        assert!(contains(&leaf, ACME_ID_OID), "acmeIdentifier extension");
        assert!(contains(&leaf, &digest), "the key authorization digest");
        assert!(contains(&leaf, b"vpn.test"));

        // An ordinary client (no ALPN, or another one): the server
        // certificate, no extension, no ALPN.
        for alpn in [vec![], vec![b"http/1.1".to_vec()]] {
            let (got, leaf) = hello(challenges.clone(), "vpn.test", alpn).await.unwrap();
            assert_eq!(got, None);
            assert!(!contains(&leaf, ACME_ID_OID));
        }
        // acme-tls/1 for another name, or after the challenge is over:
        // refused.
        assert!(hello(challenges.clone(), "other.test", acme.clone())
            .await
            .is_none());
        challenges.clear("vpn.test");
        assert!(challenges.is_empty());
        assert!(hello(challenges, "vpn.test", acme).await.is_none());
    }
}
