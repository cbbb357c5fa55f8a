//! One PPTP connection: resolve (IPv4), then the control connection, the
//! call and its GRE/PPP session of `tunnel::pptp_client`, with the host
//! side (TUN, routes, DNS) attached through a [`Network`] when the link
//! comes up and detached when it ends.
//!
//! PPTP has no server certificate: the server is only as authentic as
//! MS-CHAPv2's mutual authentication makes it, and the data is protected
//! by MPPE-128, which is therefore required. Needs root (a raw GRE socket).

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ppp::auth::AuthProtocol;
use ppp::ccp::CcpConfig;
use ppp::link::LinkConfig;
use tokio::sync::watch;
use tunnel::pptp_client::{self, PptpClientConfig, PptpError};
use tunnel::SessionInfo;
use zeroize::Zeroizing;

use crate::network::Network;
use crate::sstp::{classify, ConnectError, ConnectedCallback, DialerHooks, SessionEnd, UpCallback};
use crate::target::Target;

/// Everything one PPTP connection needs.
#[derive(Clone)]
pub struct PptpOptions {
    pub target: Target,
    pub username: String,
    pub password: Zeroizing<String>,
    /// Negotiate IPv6CP (a link-local address on the TUN).
    pub ipv6: bool,
    /// Also accept MS-CHAP version 1 (RFC 2433), which gives MPPE keys
    /// (RFC 3079 §2) but does not authenticate the server.
    pub allow_mschapv1: bool,
    /// Ask for stateful MPPE (RFC 3078 §2, no H bit) instead of stateless;
    /// a server insisting on stateless still gets it. For servers set up
    /// for stateful mode only: pppd without `mppe-stateful` hangs up when
    /// asked (see `ppp::ccp`).
    pub mppe_stateful: bool,
    /// Limit for name resolution, TCP connect, and the control connection
    /// and call setup each.
    pub connect_timeout: Duration,
    /// Told once the link is up and the host side attached.
    pub on_up: Option<UpCallback>,
    /// Told once the server is reached and PPP starts, before the user
    /// name and password are checked.
    pub on_connected: Option<ConnectedCallback>,
}

impl fmt::Debug for PptpOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("PptpOptions")
            .field("target", &self.target)
            .field("username", &self.username)
            .field("ipv6", &self.ipv6)
            .finish_non_exhaustive()
    }
}

impl PptpOptions {
    /// Defaults: IPv6CP on, 15 s to connect.
    pub fn new(target: Target, username: &str, password: Zeroizing<String>) -> Self {
        PptpOptions {
            target,
            username: username.to_owned(),
            password,
            ipv6: true,
            allow_mschapv1: false,
            mppe_stateful: false,
            connect_timeout: Duration::from_secs(15),
            on_up: None,
            on_connected: None,
        }
    }

    /// The PPP link settings: MS-CHAPv2 (it gives the MPPE keys and
    /// authenticates the server), MS-CHAPv1 only if allowed, and MPPE-128
    /// stateless required, as Windows and pptpd do (stateful only when
    /// asked for).
    pub fn link_config(&self) -> LinkConfig {
        let mut link = LinkConfig::client(&self.username, &self.password);
        link.lcp.accept_auth = if self.allow_mschapv1 {
            vec![AuthProtocol::MsChapV2, AuthProtocol::MsChapV1]
        } else {
            vec![AuthProtocol::MsChapV2]
        };
        link.ccp = Some(if self.mppe_stateful {
            CcpConfig::require_128_stateful()
        } else {
            CcpConfig::require_128_stateless()
        });
        if !self.ipv6 {
            link.ipv6cp = None;
        }
        link
    }
}

/// Connects, runs the session until it ends or `shutdown` turns true
/// (then PPP Terminate-Request, Call-Clear-Request and
/// Stop-Control-Connection-Request are sent), and detaches the host side.
/// Errors are failures before the link came up.
pub async fn connect(
    options: &PptpOptions,
    network: Arc<dyn Network>,
    shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, ConnectError> {
    let server = resolve(&options.target, options.connect_timeout).await?;
    let (hooks, sink) = DialerHooks::new(
        network,
        server,
        options.target.clone(),
        options.on_up.clone(),
        options.on_connected.clone(),
        // The PPTP session reads the device itself (one hand-off fewer
        // per batch, as SSTP and L2TP do).
        true,
    );
    static SESSION_IDS: AtomicU64 = AtomicU64::new(1);
    let info = SessionInfo {
        id: SESSION_IDS.fetch_add(1, Ordering::Relaxed),
        peer: server.to_string(),
        user: Some(options.username.clone()),
    };
    let mut config = PptpClientConfig::new(options.link_config());
    config.setup_timeout = options.connect_timeout;
    let outcome =
        pptp_client::connect(server, config, hooks.clone(), sink, info, shutdown.clone()).await;
    // The client role gets no `down` call from the session: detach here.
    let attach_error = hooks.detach();
    let stopped = *shutdown.borrow();
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return Err(setup_error(&options.target, e)),
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

fn setup_error(target: &Target, e: PptpError) -> ConnectError {
    match e {
        PptpError::Tcp { message, .. } => ConnectError::Tcp {
            target: target.to_string(),
            message,
        },
        // Retrying cannot give us the privilege.
        e @ PptpError::RawSocket(_) => ConnectError::Network(e.to_string()),
        e => ConnectError::Failed(e.to_string()),
    }
}

/// The first IPv4 address of the target (GRE here is IPv4 only).
async fn resolve(target: &Target, limit: Duration) -> Result<SocketAddr, ConnectError> {
    let host = target.host.as_str();
    let addrs: Vec<SocketAddr> =
        match tokio::time::timeout(limit, tokio::net::lookup_host((host, target.port))).await {
            Err(_) => {
                return Err(ConnectError::Resolve {
                    host: host.into(),
                    message: format!("no answer within {limit:?}"),
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
        .into_iter()
        .find(SocketAddr::is_ipv4)
        .ok_or_else(|| ConnectError::Resolve {
            host: host.into(),
            message: "no IPv4 address (PPTP runs over IPv4)".into(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mppe_128_and_ms_chap_v2_are_required() {
        let target = Target::parse("pptp://vpn.example.com").unwrap();
        let mut o = PptpOptions::new(target, "alice", Zeroizing::new("pw".into()));
        let link = o.link_config();
        assert_eq!(link.lcp.accept_auth, vec![AuthProtocol::MsChapV2]);
        assert_eq!(link.ccp, Some(CcpConfig::require_128_stateless()));
        o.ipv6 = false;
        assert!(o.link_config().ipv6cp.is_none());
        o.mppe_stateful = true;
        assert_eq!(o.link_config().ccp, Some(CcpConfig::require_128_stateful()));
        o.allow_mschapv1 = true;
        assert_eq!(
            o.link_config().lcp.accept_auth,
            vec![AuthProtocol::MsChapV2, AuthProtocol::MsChapV1]
        );
        assert!(!format!("{o:?}").contains("pw\""), "no password in Debug");
    }

    #[test]
    fn setup_errors_are_classified() {
        let target = Target::parse("pptp://h").unwrap();
        let e = setup_error(
            &target,
            PptpError::RawSocket(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
        );
        assert!(e.is_permanent(), "{e}");
        let e = setup_error(&target, PptpError::Control("refused".into()));
        assert!(!e.is_permanent());
    }
}
