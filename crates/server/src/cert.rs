//! The server certificate: loaded from the configured PEM files, or
//! self-signed on first start and kept in the state directory.
//!
//! MS-SSTP needs a certificate whose Extended Key Usage includes Server
//! Authentication (the Windows client refuses others), whose name matches
//! the name the client dials, and whose hash (SHA-1 or SHA-256 of the DER)
//! enters the SSTP crypto binding; IKEv2 will reuse it. So the self-signed
//! certificate has Subject CN = the server name, SANs = the server name and
//! every specific (non-wildcard) listener IP, EKU = Server Authentication,
//! an ECDSA P-256 key (Windows SSTP clients accept ECDSA and RSA; P-256 is
//! smaller and faster), and ten years of validity. It is created once and
//! reused, so clients that trusted it keep trusting it; delete
//! `server-cert.pem` and `server-key.pem` from the state directory to make
//! a new one (after changing `server_name`, say).
//!
//! The operator installs the self-signed certificate into the clients'
//! Trusted Root store; the SHA-256 fingerprint printed at start lets them
//! check it.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::Digest;

use crate::state::{StateDir, StateError};

/// File name of the self-signed certificate in the state directory.
pub const SELF_SIGNED_CERT_FILE: &str = "server-cert.pem";
/// File name of its private key (mode 0600).
pub const SELF_SIGNED_KEY_FILE: &str = "server-key.pem";

/// Why the certificate could not be loaded, created or used.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{}: {message}", path.display())]
    Pem { path: PathBuf, message: String },
    /// Only one of `certificate.chain` and `certificate.key` is set.
    #[error("certificate.chain and certificate.key must be given together")]
    Incomplete,
    /// Writing the self-signed certificate.
    #[error(transparent)]
    State(#[from] StateError),
    /// rcgen could not make the certificate (an unusable server name).
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key (the key does not match, an
    /// unsupported key type).
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// The certificate chain (leaf first) and its private key.
#[derive(Debug)]
pub struct ServerCertificate {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    self_signed: bool,
}

impl ServerCertificate {
    /// Per configuration: the configured files if given, else the
    /// self-signed certificate of the state directory (created if needed).
    /// `listen_ips` are added as SANs when they are specific addresses.
    pub fn from_config(
        chain: Option<&Path>,
        key: Option<&Path>,
        state: &StateDir,
        server_name: &str,
        listen_ips: &[IpAddr],
    ) -> Result<ServerCertificate, CertError> {
        match (chain, key) {
            (Some(chain), Some(key)) => ServerCertificate::load(chain, key),
            (None, None) => {
                ServerCertificate::load_or_create_self_signed(state, server_name, listen_ips)
            }
            _ => Err(CertError::Incomplete),
        }
    }

    /// Per the whole `[certificate]` section: with `[certificate.acme]`,
    /// the certificate the CA issued (kept in the state directory by
    /// `acme.rs`), or the self-signed one until there is one; else as
    /// [`ServerCertificate::from_config`].
    pub fn for_config(
        config: &crate::config::CertificateConfig,
        state: &StateDir,
        server_name: &str,
        listen_ips: &[IpAddr],
    ) -> Result<ServerCertificate, CertError> {
        if config.acme.is_none() {
            return ServerCertificate::from_config(
                config.chain.as_deref(),
                config.key.as_deref(),
                state,
                server_name,
                listen_ips,
            );
        }
        let issued = crate::acme::certificate_path(state);
        if issued.exists() {
            // One file: the chain, then its key.
            match ServerCertificate::load(&issued, &issued) {
                Ok(cert) => return Ok(cert),
                Err(e) => tracing::warn!(
                    "the ACME certificate is unusable ({e}); serving the self-signed one until a new one is issued"
                ),
            }
        }
        ServerCertificate::load_or_create_self_signed(state, server_name, listen_ips)
    }

    /// Loads a PEM chain (leaf first) and a PEM private key.
    pub fn load(chain_path: &Path, key_path: &Path) -> Result<ServerCertificate, CertError> {
        let pem_err = |path: &Path, e: rustls::pki_types::pem::Error| CertError::Pem {
            path: path.to_owned(),
            message: e.to_string(),
        };
        let chain = CertificateDer::pem_file_iter(chain_path)
            .map_err(|e| pem_err(chain_path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem_err(chain_path, e))?;
        if chain.is_empty() {
            return Err(CertError::Pem {
                path: chain_path.to_owned(),
                message: "no CERTIFICATE section".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| pem_err(key_path, e))?;
        Ok(ServerCertificate {
            chain,
            key,
            self_signed: false,
        })
    }

    /// The state directory's self-signed certificate, created on first use.
    pub fn load_or_create_self_signed(
        state: &StateDir,
        server_name: &str,
        listen_ips: &[IpAddr],
    ) -> Result<ServerCertificate, CertError> {
        let cert_path = state.file(SELF_SIGNED_CERT_FILE);
        let key_path = state.file(SELF_SIGNED_KEY_FILE);
        if cert_path.exists() && key_path.exists() {
            let mut c = ServerCertificate::load(&cert_path, &key_path)?;
            c.self_signed = true;
            return Ok(c);
        }
        let (cert_pem, key_pem, c) = generate(server_name, listen_ips)?;
        // Key first: a crash between the two writes leaves no certificate,
        // so the next start makes a fresh pair instead of a mismatched one.
        state.write_private(SELF_SIGNED_KEY_FILE, key_pem.as_bytes())?;
        state.write_private(SELF_SIGNED_CERT_FILE, cert_pem.as_bytes())?;
        tracing::info!(path = %cert_path.display(), "created a self-signed server certificate");
        Ok(c)
    }

    /// Whether this is the generated self-signed certificate.
    pub fn is_self_signed(&self) -> bool {
        self.self_signed
    }

    /// The leaf's Subject and its notAfter (Unix seconds), for status
    /// displays and the expiry metric; `None` if the DER does not parse.
    pub fn subject_and_expiry(&self) -> Option<(String, i64)> {
        use x509_parser::prelude::{FromDer, X509Certificate};
        let (_, cert) = X509Certificate::from_der(self.leaf_der()).ok()?;
        Some((
            cert.subject().to_string(),
            cert.validity().not_after.timestamp(),
        ))
    }

    /// The leaf certificate's DER.
    pub fn leaf_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The private key's DER (PKCS#8, PKCS#1 or SEC1), for IKE signatures.
    pub fn key_der(&self) -> &[u8] {
        self.key.secret_der()
    }

    /// The chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// SHA-256 of the leaf DER (the SSTP crypto binding's certificate hash
    /// when SHA-256 is negotiated).
    pub fn sha256(&self) -> [u8; 32] {
        sha2::Sha256::digest(self.leaf_der()).into()
    }

    /// SHA-1 of the leaf DER (the SSTP certificate hash with SHA-1).
    pub fn sha1(&self) -> [u8; 20] {
        <sha1::Sha1 as sha1::Digest>::digest(self.leaf_der()).into()
    }

    /// The SHA-256 fingerprint as upper-case colon-separated hex
    /// (`AB:CD:…`), as Windows and `openssl x509 -fingerprint` show it.
    pub fn fingerprint_sha256(&self) -> String {
        self.sha256()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// A rustls server configuration: TLS 1.3 and 1.2 (Windows 8.1 and
    /// later use 1.2; no 1.0/1.1), aws-lc-rs provider, no client
    /// certificates.
    pub fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>, CertError> {
        let provider = Arc::new(aes128_first(rustls::crypto::aws_lc_rs::default_provider()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        // No TLS 1.3 session tickets: an SSTP client never resumes (each
        // connection is one tunnel, and the crypto binding is per
        // connection), so issuing them is wasted work and bytes on every
        // connect.
        config.send_tls13_tickets = 0;
        // Our order, not the client's (rustls and Windows' schannel both
        // put AES-256-GCM-SHA384 first): see `aes128_first`.
        config.ignore_client_order = true;
        Ok(Arc::new(config))
    }
}

/// The provider's cipher suites with AES-128-GCM + SHA-256 (TLS 1.3's
/// TLS_AES_128_GCM_SHA256, TLS 1.2's ECDHE_*_AES_128_GCM_SHA256) first,
/// the rest in the provider's order. aws-lc-rs lists AES-256-GCM-SHA384
/// first, whose handshake hash and key schedule run SHA-384 in software
/// here (`sha512_block_data_order_nohw` was 5 % of `ras server`'s CPU in a
/// profile of 2,000 SSTP connects), where SHA-256 uses the CPU's SHA
/// instructions; and every data record then pays 14 AES rounds instead of
/// 10. AES-128-GCM is what TLS 1.3 makes mandatory (RFC 8446 §9.1).
fn aes128_first(mut provider: rustls::crypto::CryptoProvider) -> rustls::crypto::CryptoProvider {
    use rustls::CipherSuite::{
        TLS13_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    };
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            TLS13_AES_128_GCM_SHA256
                | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
    provider
}

/// Makes a self-signed certificate: (certificate PEM, key PEM, the loaded
/// form).
fn generate(
    server_name: &str,
    listen_ips: &[IpAddr],
) -> Result<(String, zeroize::Zeroizing<String>, ServerCertificate), CertError> {
    use rcgen::{
        CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, KeyUsagePurpose, SanType,
        SerialNumber, PKCS_ECDSA_P256_SHA256,
    };
    let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, server_name);
    // The server name as a DNS SAN, or as an IP SAN when it is an address.
    let mut sans = vec![match server_name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(server_name.try_into()?),
    }];
    for ip in listen_ips {
        let san = SanType::IpAddress(*ip);
        if !ip.is_unspecified() && !sans.contains(&san) {
            sans.push(san);
        }
    }
    params.subject_alt_names = sans;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let mut serial = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut serial);
    serial[0] &= 0x7f; // a positive INTEGER
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key_pair)?;
    let key_der =
        PrivateKeyDer::try_from(key_pair.serialize_der()).map_err(|e| CertError::Pem {
            path: PathBuf::from(SELF_SIGNED_KEY_FILE),
            message: e.to_string(),
        })?;
    let loaded = ServerCertificate {
        chain: vec![cert.der().clone()],
        key: key_der,
        self_signed: true,
    };
    Ok((
        cert.pem(),
        zeroize::Zeroizing::new(key_pair.serialize_pem()),
        loaded,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// DER of OID 1.3.6.1.5.5.7.3.1 (id-kp-serverAuth).
    const SERVER_AUTH_OID: &[u8] = &[0x06, 0x08, 0x2B, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn create_then_reload_gives_the_same_certificate() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let ips = ["0.0.0.0".parse().unwrap(), "192.0.2.7".parse().unwrap()];
        let a =
            ServerCertificate::from_config(None, None, &state, "vpn.example.com", &ips).unwrap();
        assert!(a.is_self_signed());
        let der = a.leaf_der();
        assert!(contains(der, SERVER_AUTH_OID), "EKU serverAuth");
        assert!(contains(der, b"vpn.example.com"));
        assert!(contains(der, &[192, 0, 2, 7]), "listener IP SAN");
        let key_mode = std::fs::metadata(state.file(SELF_SIGNED_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(key_mode & 0o777, 0o600);

        let b = ServerCertificate::from_config(None, None, &state, "other.name", &[]).unwrap();
        assert_eq!(a.fingerprint_sha256(), b.fingerprint_sha256());
        assert_eq!(a.sha1(), b.sha1());
        let fp = a.fingerprint_sha256();
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|h| h.len() == 2
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
        a.rustls_config().unwrap();
        b.rustls_config().unwrap();
    }

    #[test]
    fn configured_files_are_loaded() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let (cert_pem, key_pem, made) = generate("10.0.0.1", &[]).unwrap();
        std::fs::write(tmp.path().join("c.pem"), cert_pem).unwrap();
        std::fs::write(tmp.path().join("k.pem"), key_pem.as_bytes()).unwrap();
        let c = ServerCertificate::from_config(
            Some(&tmp.path().join("c.pem")),
            Some(&tmp.path().join("k.pem")),
            &state,
            "ignored",
            &[],
        )
        .unwrap();
        assert!(!c.is_self_signed());
        assert_eq!(c.sha256(), made.sha256());
        c.rustls_config().unwrap();
        assert!(!state.file(SELF_SIGNED_CERT_FILE).exists());
    }

    #[test]
    fn bad_configuration_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let p = tmp.path().join("x.pem");
        assert!(matches!(
            ServerCertificate::from_config(Some(&p), None, &state, "n", &[]),
            Err(CertError::Incomplete)
        ));
        std::fs::write(&p, "not pem").unwrap();
        let e = ServerCertificate::load(&p, &p).unwrap_err();
        assert!(e.to_string().contains("x.pem"), "{e}");
        // A key that does not match the certificate.
        let (c1, _, _) = generate("a", &[]).unwrap();
        let (_, k2, _) = generate("b", &[]).unwrap();
        std::fs::write(tmp.path().join("c.pem"), c1).unwrap();
        std::fs::write(tmp.path().join("k.pem"), k2.as_bytes()).unwrap();
        let c =
            ServerCertificate::load(&tmp.path().join("c.pem"), &tmp.path().join("k.pem")).unwrap();
        assert!(matches!(c.rustls_config(), Err(CertError::Tls(_))));
    }

    #[test]
    fn tls_handshake_with_a_client_that_trusts_the_certificate() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let cert = ServerCertificate::load_or_create_self_signed(&state, "vpn.test", &[]).unwrap();
        let server_cfg = cert.rustls_config().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.chain()[0].clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let client_cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(roots.clone())
                .with_no_client_auth();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (c, s) = tokio::io::duplex(16 * 1024);
                let acceptor = tokio_rustls::TlsAcceptor::from(server_cfg.clone());
                let connector = tokio_rustls::TlsConnector::from(Arc::new(client_cfg));
                let server = tokio::spawn(async move {
                    let mut tls = acceptor.accept(s).await.unwrap();
                    let mut buf = [0u8; 5];
                    tls.read_exact(&mut buf).await.unwrap();
                    assert_eq!(&buf, b"hello");
                    let session = tls.get_ref().1;
                    (
                        session.protocol_version().unwrap(),
                        session.negotiated_cipher_suite().unwrap().suite(),
                    )
                });
                let name = rustls::pki_types::ServerName::try_from("vpn.test").unwrap();
                let mut tls = connector.connect(name, c).await.unwrap();
                tls.write_all(b"hello").await.unwrap();
                tls.flush().await.unwrap();
                // The client offers AES-256-GCM-SHA384 first (rustls's
                // default order); the server picks AES-128-GCM-SHA256.
                let (got_version, suite) = server.await.unwrap();
                assert_eq!(got_version, version.version);
                let expected = if version.version == rustls::ProtocolVersion::TLSv1_3 {
                    rustls::CipherSuite::TLS13_AES_128_GCM_SHA256
                } else {
                    rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                };
                assert_eq!(suite, expected);
            });
        }
    }
}
