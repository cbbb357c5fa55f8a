//! The L2TP/IPsec service: binds UDP 500, the NAT-T port and the raw ESP
//! socket, loads the pre-shared keys, and runs the IPsec front end
//! ([`tunnel::l2tp_ipsec`]) in front of the server's LNS.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ipsec::ike_crypto::signature::PrivateKey;
use ipsec::ikev1::certificates::{CertificateAuth, LocalCertificate, TrustAnchors};
use ipsec::ikev1::{PskTable, ResponderConfig};
use rand::distributions::{Alphanumeric, DistString};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use tunnel::l2tp_ipsec::{open_esp_socket, serve_ipsec_l2tp, IpsecSockets};
use tunnel::l2tp_server::L2tpFront;
use zeroize::Zeroizing;

use crate::cert::ServerCertificate;
use crate::ipsec_config::IpsecConfig;

/// The file of the generated pre-shared key in the state directory.
pub const GENERATED_PSK_FILE: &str = "ipsec-psk";

/// Why the IPsec service could not start.
#[derive(Debug, thiserror::Error)]
pub enum IpsecError {
    #[error("{}: cannot read the pre-shared key: {source}", path.display())]
    ReadPsk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: the pre-shared key file is empty", path.display())]
    EmptyPsk { path: PathBuf },
    #[error("{}: cannot create the pre-shared key: {source}", path.display())]
    WritePsk {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ipsec.ca_file {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("ipsec.auth lists \"certificate\" but ipsec.ca_file is not set")]
    NoCaFile,
    #[error("ipsec.auth accepts nothing: list \"psk\", \"certificate\" or both")]
    NoAuth,
    #[error("[certificate] cannot sign IKE messages: {0}")]
    Certificate(String),
    #[error("cannot bind IPsec UDP port {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Sockets bound before privileges are dropped.
pub struct BoundIpsec {
    sockets: IpsecSockets,
    /// Why raw ESP is unavailable (clients not behind NAT cannot connect).
    pub raw_esp_error: Option<String>,
}

impl BoundIpsec {
    pub fn ike_addr(&self) -> Option<SocketAddr> {
        self.sockets.ike.local_addr().ok()
    }

    pub fn nat_t_addr(&self) -> Option<SocketAddr> {
        self.sockets.nat_t.local_addr().ok()
    }

    /// What the front end will drop, by protocol and reason (for
    /// `ras_ipsec_dropped_total`).
    pub fn counters(&self) -> Arc<tunnel::ipsec_drops::IpsecCounters> {
        self.sockets.counters.clone()
    }
}

/// Binds UDP 500, the NAT-T port and (if the OS lets us) raw ESP.
pub fn bind(config: &IpsecConfig) -> Result<BoundIpsec, IpsecError> {
    let udp = |port: u16| -> Result<Arc<UdpSocket>, IpsecError> {
        let addr = SocketAddr::new(config.listen, port);
        let socket = std::net::UdpSocket::bind(addr)
            .and_then(|s| {
                // A reconnect storm (every client of a site after an
                // outage) lands as one burst of IKE_SA_INITs, each costing
                // a key exchange before the next is read: the default
                // receive buffer (~200 KiB, ~170 datagrams) dropped a third
                // of a 250-client burst, which then waited 2 s for its
                // retransmission. 4 MiB, as the ESP socket.
                large_receive_buffer(&s);
                s.set_nonblocking(true)?;
                UdpSocket::from_std(s)
            })
            .map_err(|source| IpsecError::Bind { addr, source })?;
        Ok(Arc::new(socket))
    };
    let ike = udp(config.ike_port)?;
    let nat_t = udp(config.nat_t_port)?;
    let (esp, raw_esp_error) = match open_esp_socket(config.listen) {
        Ok(s) => (Some(Arc::new(s)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(BoundIpsec {
        sockets: IpsecSockets {
            ike,
            nat_t,
            esp,
            bound: config.listen,
            counters: Default::default(),
        },
        raw_esp_error,
    })
}

/// Asks for a 4 MiB receive buffer: past net.core.rmem_max while we still
/// have CAP_NET_ADMIN (SO_RCVBUFFORCE, socket(7); the server binds before
/// dropping privileges), else as much as rmem_max allows.
fn large_receive_buffer(socket: &std::net::UdpSocket) {
    use nix::sys::socket::{setsockopt, sockopt};
    const SIZE: usize = 4 << 20;
    if setsockopt(socket, sockopt::RcvBufForce, &SIZE).is_err() {
        let _ = socket2::SockRef::from(socket).set_recv_buffer_size(SIZE);
    }
}

/// Reads a key file: its first line, without surrounding white space.
fn read_psk(path: &Path) -> Result<Zeroizing<Vec<u8>>, IpsecError> {
    let text =
        Zeroizing::new(
            std::fs::read_to_string(path).map_err(|source| IpsecError::ReadPsk {
                path: path.to_path_buf(),
                source,
            })?,
        );
    let key = text.lines().next().unwrap_or("").trim();
    if key.is_empty() {
        return Err(IpsecError::EmptyPsk {
            path: path.to_path_buf(),
        });
    }
    Ok(Zeroizing::new(key.as_bytes().to_vec()))
}

/// A key, and its text when it was just created (to be shown once).
pub type LoadedPsk = (Zeroizing<Vec<u8>>, Option<Zeroizing<String>>);

/// The wildcard key: from `psk_file`, else the state directory's, created
/// on first start (returned as `Some` then, to be shown once).
pub fn load_or_create_psk(config: &IpsecConfig, state_dir: &Path) -> Result<LoadedPsk, IpsecError> {
    if let Some(path) = &config.psk_file {
        return Ok((read_psk(path)?, None));
    }
    let path = state_dir.join(GENERATED_PSK_FILE);
    if path.exists() {
        return Ok((read_psk(&path)?, None));
    }
    let key = Zeroizing::new(Alphanumeric.sample_string(&mut rand::thread_rng(), 24));
    write_private(&path, format!("{}\n", key.as_str()).as_bytes()).map_err(|source| {
        IpsecError::WritePsk {
            path: path.clone(),
            source,
        }
    })?;
    Ok((Zeroizing::new(key.as_bytes().to_vec()), Some(key)))
}

/// Writes a file only its owner can read, never replacing one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// The responder's settings from `[ipsec]` and the keys.
pub fn responder_config(
    config: &IpsecConfig,
    wildcard_psk: &[u8],
    server_cert: &ServerCertificate,
) -> Result<ResponderConfig, IpsecError> {
    let mut psks = PskTable::new();
    if config.psk_auth() {
        psks = psks.with_wildcard(wildcard_psk);
        for peer in &config.peers {
            psks.insert(peer.address, &read_psk(&peer.psk_file)?);
        }
    }
    let certificates = if config.certificate_auth() {
        Some(certificate_auth(config, server_cert)?)
    } else {
        None
    };
    if psks.is_empty() && certificates.is_none() {
        return Err(IpsecError::NoAuth);
    }
    Ok(ResponderConfig {
        psks,
        certificates,
        fragmentation: config.fragmentation,
        fragment_size: config.fragment_size.max(256).into(),
        proposals: config.proposal_policy(),
        nat_t_port: config.nat_t_port,
        hide_server_nat: config.hide_server_nat,
        dpd_delay: config.dpd_delay(),
        dpd_timeout: config.dpd_timeout(),
        ..ResponderConfig::default()
    })
}

/// Signature authentication: the `[certificate]` chain and key sign, the
/// CAs of `ca_file` verify clients.
fn certificate_auth(
    config: &IpsecConfig,
    server_cert: &ServerCertificate,
) -> Result<CertificateAuth, IpsecError> {
    let path = config.ca_file.as_ref().ok_or(IpsecError::NoCaFile)?;
    let ca_err = |message: String| IpsecError::CaFile {
        path: path.clone(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let trust = TrustAnchors::from_pem(&pem)
        .map_err(|e| ca_err(e.to_string()))?
        .with_revocation(crate::crl::shared().clone());
    let key = PrivateKey::from_der(server_cert.key_der())
        .map_err(|e| IpsecError::Certificate(e.to_string()))?;
    let chain = server_cert.chain().iter().map(|c| c.to_vec()).collect();
    let local =
        LocalCertificate::new(chain, key).map_err(|e| IpsecError::Certificate(e.to_string()))?;
    Ok(CertificateAuth::new(local, trust))
}

/// Runs the front end until `shutdown`.
pub fn spawn(
    bound: BoundIpsec,
    responder: ResponderConfig,
    front: L2tpFront,
    ikev2: Option<tunnel::ikev2_server::Ikev2Service>,
    ikev1: bool,
    reconfigure: tokio::sync::mpsc::UnboundedReceiver<tunnel::l2tp_ipsec::IkeConfigs>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(serve_ipsec_l2tp(
        bound.sockets,
        responder,
        front,
        ikev2,
        ikev1,
        reconfigure,
        shutdown,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_key_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = IpsecConfig::default();
        let (key, shown) = load_or_create_psk(&config, dir.path()).unwrap();
        let shown = shown.expect("created on first start");
        assert_eq!(key.as_slice(), shown.as_bytes());
        assert_eq!(shown.len(), 24);
        let (again, shown_again) = load_or_create_psk(&config, dir.path()).unwrap();
        assert_eq!(again, key);
        assert!(shown_again.is_none(), "shown once");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join(GENERATED_PSK_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "only the owner reads the key");
    }

    /// A burst of IKE_SA_INITs needs room (see `bind`): as root the IKE
    /// sockets get 4 MiB whatever net.core.rmem_max says.
    #[test]
    fn ike_sockets_get_a_large_receive_buffer() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: SO_RCVBUFFORCE needs root");
            return;
        }
        let config = IpsecConfig {
            listen: "127.0.0.1".parse().unwrap(),
            ike_port: 0,
            nat_t_port: 0,
            ..Default::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let bound = rt.block_on(async { bind(&config) }).unwrap();
        for socket in [&bound.sockets.ike, &bound.sockets.nat_t] {
            let size = socket2::SockRef::from(socket.as_ref())
                .recv_buffer_size()
                .unwrap();
            // The kernel reports twice what was asked (socket(7)).
            assert!(size >= 4 << 20, "receive buffer {size}");
        }
    }

    #[test]
    fn an_empty_key_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("psk");
        std::fs::write(&path, "\n  \n").unwrap();
        let config = IpsecConfig {
            psk_file: Some(path.clone()),
            ..Default::default()
        };
        let e = load_or_create_psk(&config, dir.path()).unwrap_err();
        assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    }

    fn self_signed(dir: &Path) -> ServerCertificate {
        let state = crate::state::StateDir::open(dir).unwrap();
        ServerCertificate::load_or_create_self_signed(&state, "vpn.example.com", &[]).unwrap()
    }

    /// With a CA file, the self-signed ECDSA certificate signs IKE and
    /// certificates are accepted next to the pre-shared key.
    #[test]
    fn a_ca_file_turns_certificates_on_next_to_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        let ca = dir.path().join("ca.pem");
        std::fs::copy(dir.path().join(crate::cert::SELF_SIGNED_CERT_FILE), &ca).unwrap();
        let config = IpsecConfig {
            ca_file: Some(ca),
            ..Default::default()
        };
        let r = responder_config(&config, b"key", &cert).unwrap();
        let c = r.certificates.expect("certificates on");
        assert_eq!(
            c.local.kind(),
            ipsec::ike_crypto::signature::KeyKind::EcdsaP256
        );
        assert!(!r.psks.is_empty());
        // Without a CA file: pre-shared keys only.
        let r = responder_config(&IpsecConfig::default(), b"key", &cert).unwrap();
        assert!(r.certificates.is_none());
        // Certificates only.
        let config = IpsecConfig {
            auth: Some(vec![crate::ipsec_config::IpsecAuthName::Certificate]),
            ..config
        };
        let r = responder_config(&config, b"key", &cert).unwrap();
        assert!(r.psks.is_empty() && r.certificates.is_some());
    }

    #[test]
    fn bad_certificate_settings_name_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        let ca = dir.path().join("not-a-ca.pem");
        std::fs::write(&ca, "hello\n").unwrap();
        let config = IpsecConfig {
            ca_file: Some(ca.clone()),
            ..Default::default()
        };
        let e = responder_config(&config, b"key", &cert)
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            format!(
                "ipsec.ca_file {}: no certificate in the PEM text",
                ca.display()
            )
        );
        let config = IpsecConfig {
            ca_file: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        let e = responder_config(&config, b"key", &cert)
            .err()
            .expect("refused");
        assert!(e.to_string().starts_with("ipsec.ca_file "), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let config = IpsecConfig {
            auth: Some(vec![crate::ipsec_config::IpsecAuthName::Certificate]),
            ..Default::default()
        };
        let e = responder_config(&config, b"key", &cert)
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "ipsec.auth lists \"certificate\" but ipsec.ca_file is not set"
        );
        let config = IpsecConfig {
            auth: Some(vec![]),
            ..Default::default()
        };
        assert!(matches!(
            responder_config(&config, b"key", &cert),
            Err(IpsecError::NoAuth)
        ));
    }
}
