//! One L2TP connection: resolve, then IPsec (L2TP/IPsec, RFC 3193: an
//! IKEv1 pre-shared key, transport-mode ESP) unless plain L2TP was asked
//! for, then the tunnel, the call and the PPP session of
//! `tunnel::l2tp_client`, with the host side (TUN, routes, DNS) attached
//! through a [`Network`] when the link comes up and detached when it ends.
//!
//! IPsec authenticates the machine with the pre-shared key (IKE
//! certificates are not supported) and encrypts everything; PPP then
//! authenticates the user. Plain L2TP has neither: PPP travels in the
//! clear, so the password never does (no PAP) and MS-CHAPv2 is the
//! default, as for PPTP.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::link::LinkConfig;
use tokio::sync::watch;
use tunnel::l2tp_client::{self, L2tpClientConfig, L2tpClientError};
use tunnel::l2tp_client_transport::L2tpTransport;
use tunnel::l2tp_ipsec_client::{IpsecClientError, IpsecClientOptions, IpsecL2tpClient};
use tunnel::SessionInfo;
use zeroize::Zeroizing;

use crate::network::Network;
use crate::sstp::{classify, ConnectError, ConnectedCallback, DialerHooks, SessionEnd, UpCallback};
use crate::target::Target;

/// IKE's UDP port (RFC 2409): IPsec is negotiated there whatever L2TP
/// port the target names.
const IKE_PORT: u16 = 500;

/// Everything one L2TP connection needs.
#[derive(Clone)]
pub struct L2tpOptions {
    pub target: Target,
    pub username: String,
    pub password: Zeroizing<String>,
    /// The IPsec pre-shared key; `None` (and no `ipsec_certificates`):
    /// plain L2TP, nothing encrypted.
    pub psk: Option<Zeroizing<Vec<u8>>>,
    /// IPsec with our certificate instead of a pre-shared key.
    pub ipsec_certificates: Option<ipsec::ikev1::certificates::CertificateAuth>,
    /// Negotiate IPv6CP (a link-local address on the TUN).
    pub ipv6: bool,
    /// Also allow MS-CHAP version 1 and CHAP-MD5, and inside IPsec PAP,
    /// for servers that offer nothing else. Never PAP in the clear.
    pub allow_weak_auth: bool,
    /// UDP-encapsulate ESP even without a NAT (RFC 3948).
    pub force_udp_encapsulation: bool,
    /// The ESP suites to offer, in order (empty: the defaults).
    pub esp_suites: Vec<ipsec::esp::CipherSuite>,
    /// Limit for name resolution, IPsec, and the tunnel and call setup
    /// each.
    pub connect_timeout: Duration,
    /// Told once the link is up and the host side attached.
    pub on_up: Option<UpCallback>,
    /// Told once the call is up and PPP starts.
    pub on_connected: Option<ConnectedCallback>,
}

impl fmt::Debug for L2tpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password or the key.
        f.debug_struct("L2tpOptions")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("ipsec", &self.uses_ipsec())
            .field("ipv6", &self.ipv6)
            .finish_non_exhaustive()
    }
}

impl L2tpOptions {
    /// Defaults: IPsec with `psk` (or plain L2TP with `None`), IPv6CP
    /// on, 15 s to connect.
    pub fn new(
        target: Target,
        username: &str,
        password: Zeroizing<String>,
        psk: Option<Zeroizing<Vec<u8>>>,
    ) -> Self {
        L2tpOptions {
            target,
            username: username.to_owned(),
            password,
            psk,
            ipsec_certificates: None,
            ipv6: true,
            allow_weak_auth: false,
            force_udp_encapsulation: false,
            esp_suites: Vec::new(),
            connect_timeout: Duration::from_secs(15),
            on_up: None,
            on_connected: None,
        }
    }

    /// IPsec protects the L2TP traffic (a pre-shared key or a certificate).
    pub fn uses_ipsec(&self) -> bool {
        self.psk.is_some() || self.ipsec_certificates.is_some()
    }

    /// The PPP link settings: MS-CHAPv2 (it authenticates the server
    /// too), weaker methods only if allowed, PAP never in the clear.
    /// MPPE is accepted when the server wants it but not demanded: IPsec
    /// encrypts (Windows L2TP/IPsec negotiates no MPPE), and a plain
    /// L2TP server (xl2tpd) usually has none.
    pub fn link_config(&self) -> LinkConfig {
        let mut link = LinkConfig::client(&self.username, &self.password);
        link.lcp.accept_auth = match (self.allow_weak_auth, self.uses_ipsec()) {
            (false, _) => vec![AuthProtocol::MsChapV2],
            (true, true) => vec![
                AuthProtocol::MsChapV2,
                AuthProtocol::MsChapV1,
                AuthProtocol::ChapMd5,
                AuthProtocol::Pap,
            ],
            (true, false) => vec![
                AuthProtocol::MsChapV2,
                AuthProtocol::MsChapV1,
                AuthProtocol::ChapMd5,
            ],
        };
        link.ccp = Some(CcpConfig::optional());
        if !self.ipv6 {
            link.ipv6cp = None;
        }
        link
    }
}

/// Connects, runs the session until it ends or `shutdown` turns true
/// (then PPP Terminate-Request, CDN, StopCCN and the IPsec Deletes are
/// sent), and detaches the host side. Errors are failures before the
/// link came up.
pub async fn connect(
    options: &L2tpOptions,
    network: Arc<dyn Network>,
    shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, ConnectError> {
    let server = resolve(&options.target, options.connect_timeout).await?;
    let transport = match options.uses_ipsec() {
        true => {
            let psk: &[u8] = options.psk.as_deref().map_or(&[], |k| k.as_slice());
            let ike = SocketAddr::new(server.ip(), IKE_PORT);
            let ipsec = IpsecClientOptions {
                force_udp_encapsulation: options.force_udp_encapsulation,
                esp_suites: options.esp_suites.clone(),
                certificates: options.ipsec_certificates.clone(),
                ..IpsecClientOptions::default()
            };
            let limit = options.connect_timeout;
            let mut stop = shutdown.clone();
            let connected = tokio::select! {
                r = tokio::time::timeout(limit, IpsecL2tpClient::connect(ike, psk, ipsec)) => r,
                _ = stop.wait_for(|v| *v) => {
                    return Err(ConnectError::Failed("stopped".into()))
                }
            };
            match connected {
                Err(_) => {
                    return Err(ConnectError::Failed(format!(
                        "IPsec: no IKE answer from {ike} within {limit:?}"
                    )))
                }
                Ok(Err(e)) => return Err(ipsec_error(e)),
                Ok(Ok(c)) => L2tpTransport::Ipsec(c),
            }
        }
        false => L2tpTransport::udp(server)
            .await
            .map_err(|e| ConnectError::Network(format!("cannot open a UDP socket: {e}")))?,
    };
    // The L2TP session reads the TUN itself.
    let (hooks, sink) = DialerHooks::new(
        network,
        server,
        options.target.clone(),
        options.on_up.clone(),
        options.on_connected.clone(),
        true,
    );
    static SESSION_IDS: AtomicU64 = AtomicU64::new(1);
    let info = SessionInfo {
        id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
        peer: server.to_string(),
        user: Some(options.username.clone()),
    };
    let mut config = L2tpClientConfig::new(options.link_config());
    config.setup_timeout = options.connect_timeout;
    let outcome = l2tp_client::connect(
        transport,
        config,
        hooks.clone(),
        sink,
        info,
        shutdown.clone(),
    )
    .await;
    // The client role gets no `down` call from the session: detach here.
    let attach_error = hooks.detach();
    let stopped = *shutdown.borrow();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(setup_error(e)),
    };
    if let Some(e) = attach_error {
        return Err(ConnectError::Network(e));
    }
    if outcome.was_up || stopped {
        Ok(SessionEnd {
            reason: if stopped {
                "disconnected".into()
            } else {
                outcome.reason.to_string()
            },
            stats: outcome.stats,
            was_up: outcome.was_up,
            stopped,
        })
    } else {
        Err(classify(outcome.reason.to_string()))
    }
}

fn ipsec_error(e: IpsecClientError) -> ConnectError {
    match e {
        // Sockets: a privilege or a port in use; retrying will not help.
        IpsecClientError::Io(e) => {
            ConnectError::Network(format!("IPsec: cannot open the IKE sockets: {e}"))
        }
        IpsecClientError::Refused(why) => ConnectError::Failed(format!("IPsec: {why}")),
    }
}

fn setup_error(e: L2tpClientError) -> ConnectError {
    ConnectError::Failed(e.to_string())
}

/// The first address of the target, IPv4 preferred (L2TP/IPsec servers
/// mostly listen on IPv4).
pub(crate) async fn resolve(target: &Target, limit: Duration) -> Result<SocketAddr, ConnectError> {
    let host = target.host.as_str();
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(limit, tokio::net::lookup_host((host, target.port))).await {
            Err(_) => {
                return Err(ConnectError::Resolve {
                    host: host.into(),
                    message: format!("no answer within {} s", limit.as_secs()),
                })
            }
            Ok(Err(e)) => {
                return Err(ConnectError::Resolve {
                    host: host.into(),
                    message: e.to_string(),
                })
            }
            Ok(Ok(addrs)) => addrs.collect(),
        };
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| ConnectError::Resolve {
            host: host.into(),
            message: "no address".into(),
        })
}

/// An ESP suite by the name `[ipsec] esp` uses on the server
/// (aes128gcm16, aes256gcm16, aes128-sha1, aes256-sha1, aes128-sha256,
/// aes256-sha256).
pub fn esp_suite(name: &str) -> Result<ipsec::esp::CipherSuite, String> {
    use ipsec::esp::{CipherSuite, Integrity};
    Ok(match name {
        "aes128gcm16" => CipherSuite::Aes128Gcm16,
        "aes256gcm16" => CipherSuite::Aes256Gcm16,
        "aes128-sha1" => CipherSuite::Aes128Cbc(Integrity::HmacSha1_96),
        "aes256-sha1" => CipherSuite::Aes256Cbc(Integrity::HmacSha1_96),
        "aes128-sha256" => CipherSuite::Aes128Cbc(Integrity::HmacSha256_128),
        "aes256-sha256" => CipherSuite::Aes256Cbc(Integrity::HmacSha256_128),
        other => {
            return Err(format!(
                "unknown ESP suite {other:?} (aes128gcm16, aes256gcm16, aes128-sha1, aes256-sha1, aes128-sha256, aes256-sha256)"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_chap_v2_by_default_and_never_pap_in_the_clear() {
        let target = Target::parse("l2tp://vpn.example.com").unwrap();
        let psk = Some(Zeroizing::new(b"key".to_vec()));
        let mut o = L2tpOptions::new(target, "alice", Zeroizing::new("pw".into()), psk);
        assert_eq!(
            o.link_config().lcp.accept_auth,
            vec![AuthProtocol::MsChapV2]
        );
        assert_eq!(o.link_config().ccp, Some(CcpConfig::optional()));
        o.allow_weak_auth = true;
        assert!(o.link_config().lcp.accept_auth.contains(&AuthProtocol::Pap));
        o.psk = None;
        let plain = o.link_config().lcp.accept_auth;
        assert!(!plain.contains(&AuthProtocol::Pap), "{plain:?}");
        assert!(plain.contains(&AuthProtocol::ChapMd5));
        o.ipv6 = false;
        assert!(o.link_config().ipv6cp.is_none());
        let shown = format!("{o:?}");
        assert!(!shown.contains("pw\"") && !shown.contains("key"), "{shown}");
    }

    #[test]
    fn ipsec_failures_are_classified() {
        let e = ipsec_error(IpsecClientError::Io(std::io::Error::from(
            std::io::ErrorKind::PermissionDenied,
        )));
        assert!(e.is_permanent(), "{e}");
        let e = ipsec_error(IpsecClientError::Refused("no proposal chosen".into()));
        assert!(e.to_string().contains("no proposal chosen"), "{e}");
    }
}
