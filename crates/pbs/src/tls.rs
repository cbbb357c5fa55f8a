//! HTTPS for the service: the certificate (given PEM files, or a
//! self-signed one kept in the data directory, the pattern of
//! crates/server/src/cert.rs) and a listener for axum that completes TLS
//! handshakes in their own tasks, so one slow client cannot hold up the
//! others.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Why the certificate could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    Pem { path: String, message: String },
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// The self-signed certificate's files in the data directory.
pub const CERT_FILE: &str = "pbs-cert.pem";
pub const KEY_FILE: &str = "pbs-key.pem";

/// A loaded certificate.
pub struct Certificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

impl Certificate {
    /// SHA-256 of the leaf, upper-case colon-separated hex.
    pub fn fingerprint(&self) -> String {
        Sha256::digest(&self.chain[0])
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// Loads PEM files.
    pub fn load(chain: &Path, key: &Path) -> Result<Certificate, TlsError> {
        let pem = |p: &Path, e: rustls::pki_types::pem::Error| TlsError::Pem {
            path: p.display().to_string(),
            message: e.to_string(),
        };
        let certs = CertificateDer::pem_file_iter(chain)
            .map_err(|e| pem(chain, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| pem(chain, e))?;
        if certs.is_empty() {
            return Err(TlsError::Pem {
                path: chain.display().to_string(),
                message: "no CERTIFICATE".into(),
            });
        }
        let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem(key, e))?;
        Ok(Certificate { chain: certs, key })
    }

    /// The data directory's self-signed certificate for `server_name`,
    /// created on first use (ECDSA P-256, EKU server authentication).
    pub fn self_signed(data: &Path, server_name: &str) -> Result<Certificate, TlsError> {
        let (cert_path, key_path) = (data.join(CERT_FILE), data.join(KEY_FILE));
        if cert_path.exists() && key_path.exists() {
            return Certificate::load(&cert_path, &key_path);
        }
        use rcgen::{
            CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair, SanType,
            PKCS_ECDSA_P256_SHA256,
        };
        let key_pair = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(DnType::CommonName, server_name);
        params.subject_alt_names = vec![match server_name.parse() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(server_name.try_into()?),
        }];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(1);
        params.not_after = now + time::Duration::days(3650);
        let cert = params.self_signed(&key_pair)?;
        let io = |p: &Path| {
            let path = p.display().to_string();
            move |source| TlsError::Io { path, source }
        };
        std::fs::create_dir_all(data).map_err(io(data))?;
        // Key first: a crash between the writes leaves no certificate and
        // the next start makes a fresh pair.
        write_private(&key_path, key_pair.serialize_pem().as_bytes()).map_err(io(&key_path))?;
        phonebook::fsutil::write_atomic(&cert_path, cert.pem().as_bytes())
            .map_err(io(&cert_path))?;
        Certificate::load(&cert_path, &key_path)
    }

    /// A rustls server configuration (aws-lc-rs; TLS 1.3 and 1.2).
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS listener for `axum::serve`.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes run in their own tasks.
    pub fn new(
        tcp: TcpListener,
        config: Arc<rustls::ServerConfig>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of descriptors and the like: back off, go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, conn_tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        let _ = conn_tx.send((tls, peer)).await;
                    }
                });
                if tx.is_closed() {
                    return;
                }
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task only ends when we are dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
