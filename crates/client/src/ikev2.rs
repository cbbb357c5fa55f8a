//! One IKEv2 connection (`ras connect ikev2://HOST`): resolve, negotiate
//! with `tunnel::ikev2_client` (a pre-shared key, or EAP-MSCHAPv2 once the
//! server's certificate checked out), then attach the host side through a
//! [`Network`]: a TUN device with the address the server assigned
//! (configuration payload, RFC 7296 §3.15), its DNS servers, and routes to
//! what its narrowed traffic selectors cover (§2.9). IP packets are
//! pumped between the TUN and tunnel-mode ESP until the tunnel ends or
//! `shutdown` turns true; then the IKE SA is deleted (the server is told,
//! §1.4.1) and the host side detached.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipsec::ikev2::traffic_selectors::TrafficSelector;
use ipsec::ikev2::ServerTrust;
use tokio::sync::watch;
use tunnel::direct_path::{DirectCounters, DirectPath};
use tunnel::ikev2_client::{
    Ikev2Client, Ikev2ClientError, Ikev2ClientOptions, Ikev2Connected, Ikev2Login,
};
use tunnel::SessionStats;

use crate::network::{Connected, Network, MAX_MTU};
use crate::sstp::{ConnectError, SessionEnd, UpCallback, UpStatus};
use crate::target::Target;

/// Packets from the tunnel written to the TUN before one flush.
const INBOUND_BURST: usize = 64;

/// At most this many routes from one selector range (a range that is not
/// a CIDR block splits into several).
const MAX_ROUTES_PER_SELECTOR: usize = 32;

/// Everything one IKEv2 connection needs.
#[derive(Clone)]
pub struct Ikev2Options {
    pub target: Target,
    pub login: Ikev2Login,
    /// Our IKE identity (IDi); shown as the user in messages.
    pub identity: String,
    /// The server's CAs (required for EAP).
    pub trust: Option<ServerTrust>,
    pub esp_suites: Vec<ipsec::esp::CipherSuite>,
    /// ESP in UDP 4500 even without a NAT (RFC 7296 §2.23).
    pub force_udp_encapsulation: bool,
    /// Limit for name resolution and for the IKE negotiation each.
    pub connect_timeout: Duration,
    /// Told once the tunnel is up and the host side attached.
    pub on_up: Option<UpCallback>,
}

impl fmt::Debug for Ikev2Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password or the key.
        f.debug_struct("Ikev2Options")
            .field("target", &self.target)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// Connects, pumps packets until the tunnel ends or `shutdown` turns true,
/// then deletes the IKE SA and detaches the host side. Errors are failures
/// before the tunnel came up.
pub async fn connect(
    options: &Ikev2Options,
    network: Arc<dyn Network>,
    shutdown: watch::Receiver<bool>,
) -> Result<SessionEnd, ConnectError> {
    let server = crate::l2tp::resolve(&options.target, options.connect_timeout).await?;
    let tunnel_options = Ikev2ClientOptions {
        login: options.login.clone(),
        identity: options.identity.clone(),
        trust: options.trust.clone(),
        esp_suites: options.esp_suites.clone(),
        ephemeral_ports: false,
        force_udp_encapsulation: options.force_udp_encapsulation,
    };
    let limit = options.connect_timeout;
    let mut stop = shutdown.clone();
    let client = tokio::select! {
        r = tokio::time::timeout(limit, Ikev2Client::connect(server, tunnel_options)) => r,
        _ = stop.wait_for(|v| *v) => return Err(ConnectError::Failed("stopped".into())),
    };
    let mut client = match client {
        Err(_) => {
            return Err(ConnectError::Failed(format!(
                "IKEv2: no tunnel with {server} within {} s",
                limit.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(ike_error(e)),
        Ok(Ok(c)) => c,
    };
    let up = client.connected().clone();
    let link = link_of(server, &up);
    let full_tunnel = up.server_selectors.iter().any(covers_everything);
    if full_tunnel {
        // 0.0.0.0/0 through the tunnel would take the IKE and ESP packets
        // with it; --default-route does it safely (a host route to the
        // server stays outside).
        tracing::info!(
            "IKEv2: the server offers a full tunnel (0.0.0.0/0); --default-route uses it"
        );
    }
    let attach_network = network.clone();
    let attach_link = link.clone();
    let attached =
        tokio::task::spawn_blocking(move || attach_network.attach_direct(&attach_link)).await;
    let (mut attachment, source) = match attached {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            client.close().await;
            return Err(ConnectError::Network(e.to_string()));
        }
        Err(e) => {
            client.close().await;
            return Err(ConnectError::Network(e.to_string()));
        }
    };
    if let Some(on_up) = &options.on_up {
        on_up(&UpStatus {
            target: options.target.clone(),
            link,
            network: attachment.description.clone(),
        });
    }
    // The tunnel's task reads and writes the device itself (one task
    // hand-off and one copy fewer per packet each way); this loop then
    // only waits for the end. Without a device (other `Network`s) the
    // packets pass through here.
    let counters = Arc::new(DirectCounters::default());
    let direct = match source {
        Some(source) => client.go_direct(DirectPath {
            source,
            sink: attachment.inbound.clone(),
            counters: counters.clone(),
        }),
        None => false,
    };
    let mut stats = SessionStats::default();
    let mut stop = shutdown.clone();
    let stopped;
    let reason = loop {
        tokio::select! {
            packet = attachment.outbound.recv(), if !direct => match packet {
                Some(p) => {
                    stats.packets_out += 1;
                    stats.ip_bytes_out += p.len() as u64;
                    client.send(p.to_vec());
                }
                None => { stopped = false; break "the TUN device closed".to_string() }
            },
            packet = client.recv() => match packet {
                Some(p) => {
                    // A burst (up to a send batch of the server's) before
                    // one flush: the TUN writer coalesces consecutive TCP
                    // segments into one write (GRO on the offload device).
                    let mut next = Some(p);
                    let mut burst = 0;
                    while let Some(p) = next.take() {
                        stats.packets_in += 1;
                        stats.ip_bytes_in += p.len() as u64;
                        attachment.inbound.send(&p);
                        burst += 1;
                        if burst < INBOUND_BURST {
                            next = client.try_recv();
                        }
                    }
                    attachment.inbound.flush();
                }
                None => {
                    stopped = false;
                    break client.end_reason().unwrap_or_else(|| "the tunnel ended".into());
                }
            },
            _ = stop.wait_for(|v| *v) => { stopped = true; break "disconnected".to_string() }
        }
    };
    client.close().await;
    let moved = counters.totals();
    stats.packets_in += moved.packets_in;
    stats.ip_bytes_in += moved.bytes_in;
    stats.packets_out += moved.packets_out;
    stats.ip_bytes_out += moved.bytes_out;
    stats.bytes_in = stats.ip_bytes_in;
    stats.bytes_out = stats.ip_bytes_out;
    drop(attachment);
    Ok(SessionEnd {
        reason,
        stats,
        was_up: true,
        stopped,
    })
}

/// The link as the host side sees it: our address, the DNS servers, and
/// the server's selectors as routes.
fn link_of(server: SocketAddr, up: &Ikev2Connected) -> Connected {
    let local = up.virtual_ipv4.unwrap_or(Ipv4Addr::UNSPECIFIED);
    let server_routes: Vec<(IpAddr, u8)> = up
        .server_selectors
        .iter()
        .filter(|ts| !covers_everything(ts))
        .flat_map(selector_routes)
        .collect();
    // The "peer" host route: the first address the server lets us reach
    // (IKEv2 has no point-to-point peer address).
    let peer = server_routes
        .iter()
        .find_map(|(net, _)| match net {
            IpAddr::V4(a) => Some(*a),
            IpAddr::V6(_) => None,
        })
        .unwrap_or(local);
    Connected {
        server,
        ipv4: up.virtual_ipv4.map(|v| (v, peer)),
        dns: up
            .dns
            .iter()
            .filter_map(|d| match d {
                IpAddr::V4(a) => Some(*a),
                IpAddr::V6(_) => None,
            })
            .collect(),
        ipv6: None,
        mppe: None,
        auth: None,
        mtu: MAX_MTU,
        server_routes,
        esp: Some(up.esp_suite.clone()),
    }
}

fn covers_everything(ts: &TrafficSelector) -> bool {
    ts.start == IpAddr::V4(Ipv4Addr::UNSPECIFIED) && ts.end == IpAddr::V4(Ipv4Addr::BROADCAST)
}

/// An IPv4 selector's address range as the fewest CIDR blocks (IPv6
/// selectors are not routed: the TUN carries IPv4 only).
pub fn selector_routes(ts: &TrafficSelector) -> Vec<(IpAddr, u8)> {
    let (IpAddr::V4(start), IpAddr::V4(end)) = (ts.start, ts.end) else {
        return Vec::new();
    };
    let (mut at, end) = (u32::from(start) as u64, u32::from(end) as u64);
    let mut out = Vec::new();
    while at <= end && out.len() < MAX_ROUTES_PER_SELECTOR {
        // The largest block aligned at `at` that stays within the range.
        let mut size = if at == 0 {
            1u64 << 32
        } else {
            1u64 << at.trailing_zeros()
        };
        while at + size - 1 > end {
            size >>= 1;
        }
        let prefix = 32 - size.trailing_zeros() as u8;
        out.push((IpAddr::V4(Ipv4Addr::from(at as u32)), prefix));
        at += size;
    }
    out
}

fn ike_error(e: Ikev2ClientError) -> ConnectError {
    match e {
        // Sockets: a privilege or a port in use; retrying will not help.
        Ikev2ClientError::Io(e) => {
            ConnectError::Network(format!("IKEv2: cannot open the IKE sockets: {e}"))
        }
        Ikev2ClientError::EapWithoutTrust | Ikev2ClientError::CertificateWithoutTrust => {
            ConnectError::Certificate(e.to_string())
        }
        Ikev2ClientError::Refused(why) => {
            if why.contains("certificate") || why.contains("AUTH did not verify") {
                ConnectError::Certificate(format!("IKEv2: {why}"))
            } else if why.contains("refused the login")
                || why.contains("EAP authentication failed")
                || why.contains("AUTHENTICATION_FAILED")
            {
                ConnectError::Auth {
                    code: None,
                    reason: format!("IKEv2: {why}"),
                }
            } else {
                ConnectError::Failed(format!("IKEv2: {why}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(start: &str, end: &str) -> TrafficSelector {
        TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: start.parse().unwrap(),
            end: end.parse().unwrap(),
        }
    }

    #[test]
    fn selectors_become_cidr_routes() {
        assert_eq!(
            selector_routes(&ts("10.79.0.1", "10.79.0.1")),
            vec![("10.79.0.1".parse().unwrap(), 32)]
        );
        assert_eq!(
            selector_routes(&ts("10.0.0.0", "10.0.255.255")),
            vec![("10.0.0.0".parse().unwrap(), 16)]
        );
        assert_eq!(
            selector_routes(&ts("10.0.0.1", "10.0.0.6")),
            vec![
                ("10.0.0.1".parse().unwrap(), 32),
                ("10.0.0.2".parse().unwrap(), 31),
                ("10.0.0.4".parse().unwrap(), 31),
                ("10.0.0.6".parse().unwrap(), 32),
            ]
        );
        assert_eq!(
            selector_routes(&ts("0.0.0.0", "255.255.255.255")),
            vec![("0.0.0.0".parse().unwrap(), 0)]
        );
        assert!(selector_routes(&ts("::", "::1")).is_empty());
    }

    #[test]
    fn the_link_carries_address_dns_and_selector_routes() {
        let up = Ikev2Connected {
            local: "10.76.0.2".parse().unwrap(),
            virtual_ipv4: Some("10.78.0.1".parse().unwrap()),
            dns: vec!["10.79.0.1".parse().unwrap(), "fd00::1".parse().unwrap()],
            server_selectors: vec![
                ts("10.79.0.1", "10.79.0.1"),
                ts("0.0.0.0", "255.255.255.255"),
            ],
            esp_suite: "aes256gcm16".into(),
            nat: "no NAT".into(),
            udp_encapsulated: false,
            server_subject: String::new(),
        };
        let link = link_of("10.77.0.1:500".parse().unwrap(), &up);
        assert_eq!(
            link.ipv4,
            Some(("10.78.0.1".parse().unwrap(), "10.79.0.1".parse().unwrap()))
        );
        assert_eq!(link.dns, vec!["10.79.0.1".parse::<Ipv4Addr>().unwrap()]);
        assert_eq!(link.server_routes, vec![("10.79.0.1".parse().unwrap(), 32)]);
        assert_eq!(
            link.to_string(),
            "10.78.0.1 (server 10.79.0.1), DNS 10.79.0.1, ESP aes256gcm16"
        );
    }

    #[test]
    fn failures_are_classified() {
        assert!(ike_error(Ikev2ClientError::EapWithoutTrust).is_permanent());
        let e = ike_error(Ikev2ClientError::Refused(
            "the server's certificate was refused: no trusted CA issued \"CN=x\"".into(),
        ));
        assert!(matches!(e, ConnectError::Certificate(_)), "{e}");
        let e = ike_error(Ikev2ClientError::Refused(
            "the server refused IKE_AUTH: AUTHENTICATION_FAILED".into(),
        ));
        assert!(matches!(e, ConnectError::Auth { .. }), "{e}");
        let e = ike_error(Ikev2ClientError::Refused("NO_PROPOSAL_CHOSEN".into()));
        assert!(!e.is_permanent(), "{e}");
    }
}
