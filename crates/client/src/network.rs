//! What happens on this host when the link comes up: a TUN device with
//! the negotiated addresses, routes, DNS, and the two packet pumps.
//!
//! It sits behind the [`Network`] trait so that the protocol path (TCP,
//! TLS, SSTP, PPP) can be run and tested without root: tests attach
//! channels instead of a TUN. [`SystemNetwork`] is the real thing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use bytes::BytesMut;
use netdev::{TunDevice, TunError, TunSettings};
use ppp::auth::AuthProtocol;
use ppp::link::LinkUp;
use ppp::mppe::MppeSettings;
use tunnel::{PacketSink, PacketSource};

use crate::dns::{self, DnsBackend, DnsError, DnsGuard};
use crate::routes::{self, Route, RouteError, RouteSet};

/// Default name of the client's TUN device.
pub const DEFAULT_TUN_NAME: &str = "ras-sstp0";
/// The largest MTU used on the TUN: SSTP runs over TLS over TCP, and 1400
/// is what Windows uses for SSTP, leaving room for the outer headers on a
/// 1500-byte path.
pub const MAX_MTU: u16 = 1400;
/// IP packets queued from the TUN towards the tunnel.
const OUTBOUND_QUEUE: usize = 256;

/// What the link negotiated, as the client uses it.
#[derive(Debug, Clone)]
pub struct Connected {
    /// The server's transport address (what a default route must avoid).
    pub server: SocketAddr,
    /// Our address and the server's, from IPCP.
    pub ipv4: Option<(Ipv4Addr, Ipv4Addr)>,
    /// DNS servers from IPCP.
    pub dns: Vec<Ipv4Addr>,
    /// Our and the server's link-local IPv6 addresses, from IPv6CP.
    pub ipv6: Option<(Ipv6Addr, Ipv6Addr)>,
    pub mppe: Option<MppeSettings>,
    pub auth: Option<AuthProtocol>,
    /// The MTU for the TUN device.
    pub mtu: u16,
    /// Networks the server routes through the tunnel on its own account
    /// (IKEv2: its narrowed traffic selectors, RFC 7296 §2.9), added to
    /// the user's routes.
    pub server_routes: Vec<(IpAddr, u8)>,
    /// IKEv2: the ESP suite that encrypts (shown instead of MPPE).
    pub esp: Option<String>,
}

impl Connected {
    pub fn from_link(server: SocketAddr, up: &LinkUp) -> Connected {
        // MPPE adds its 2-byte header and the encrypted protocol field
        // inside the peer's MRU.
        let overhead = if up.mppe.is_some() { 4 } else { 0 };
        Connected {
            server,
            ipv4: up.ipv4.as_ref().map(|v| (v.local, v.peer)),
            dns: up
                .ipv4
                .as_ref()
                .map(|v| v.dns.iter().flatten().copied().collect())
                .unwrap_or_default(),
            ipv6: up.ipv6.as_ref().map(|v| {
                (
                    link_local(v.local_interface_id),
                    link_local(v.peer_interface_id),
                )
            }),
            mppe: up.mppe,
            auth: up.auth_protocol,
            mtu: MAX_MTU.min(up.peer_mru.saturating_sub(overhead)).max(576),
            server_routes: Vec::new(),
            esp: None,
        }
    }
}

/// `fe80::<interface identifier>` (RFC 5072 §5).
pub fn link_local(interface_id: [u8; 8]) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    octets[0] = 0xfe;
    octets[1] = 0x80;
    octets[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(octets)
}

impl fmt::Display for Connected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ipv4 {
            Some((local, peer)) => write!(f, "{local} (server {peer})")?,
            None => f.write_str("no IPv4")?,
        }
        if let Some((local, _)) = self.ipv6 {
            write!(f, ", {local}")?;
        }
        if self.dns.is_empty() {
            f.write_str(", no DNS")?;
        } else {
            let dns: Vec<String> = self.dns.iter().map(|d| d.to_string()).collect();
            write!(f, ", DNS {}", dns.join(" "))?;
        }
        match (&self.esp, self.mppe) {
            (Some(suite), _) => write!(f, ", ESP {suite}")?,
            (None, Some(m)) => write!(f, ", {m}")?,
            (None, None) => f.write_str(", no MPPE")?,
        }
        if let Some(auth) = self.auth {
            let name = match auth {
                AuthProtocol::Eap => "EAP-MSCHAPv2",
                AuthProtocol::MsChapV2 => "MS-CHAPv2",
                AuthProtocol::MsChapV1 => "MS-CHAP",
                AuthProtocol::ChapMd5 => "CHAP-MD5",
                AuthProtocol::Pap => "PAP",
            };
            write!(f, ", {name}")?;
        }
        Ok(())
    }
}

/// Why the host side could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("the server assigned no IPv4 address")]
    NoIpv4,
    #[error(transparent)]
    Tun(#[from] TunError),
    #[error(transparent)]
    Route(#[from] RouteError),
    #[error(transparent)]
    Dns(#[from] DnsError),
    #[error("{0}")]
    Other(String),
}

/// The host side of a link that is up.
pub struct Attachment {
    /// IP packets to send through the tunnel.
    pub outbound: tunnel::PacketReceiver,
    /// Where IP packets from the tunnel go.
    pub inbound: Arc<dyn PacketSink>,
    /// What was set up, for the status line.
    pub description: String,
    /// Undoes the setup when dropped.
    pub guard: Box<dyn Send>,
}

/// Sets up the host side once the link is up. Called from a blocking
/// thread inside the Tokio runtime (it may run commands and spawn tasks).
pub trait Network: Send + Sync + 'static {
    fn attach(&self, link: &Connected) -> Result<Attachment, NetworkError>;

    /// Like [`Network::attach`], for a session task that reads the
    /// outbound packets itself: the returned source (if any) replaces the
    /// reader task that feeds `outbound`, which saves a task hand-off per
    /// batch. The default has no source.
    fn attach_direct(
        &self,
        link: &Connected,
    ) -> Result<(Attachment, Option<Box<dyn PacketSource>>), NetworkError> {
        self.attach(link).map(|a| (a, None))
    }
}

/// What to do with the DNS servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsMode {
    /// Leave the system alone (`--no-dns`): they are only shown.
    Off,
    /// Configure them this way.
    Apply(DnsBackend),
}

/// The real host side: a TUN device, routes and DNS.
#[derive(Debug, Clone)]
pub struct SystemNetwork {
    pub tun_name: String,
    /// Networks routed through the tunnel (split tunnelling).
    pub routes: Vec<(IpAddr, u8)>,
    /// Send everything through the tunnel: 0.0.0.0/1 and 128.0.0.0/1 (more
    /// specific than, and so overriding without touching, the existing
    /// default route), plus a host route to the server through the current
    /// gateway so the tunnel's own packets do not loop into it.
    pub default_route: bool,
    pub dns: DnsMode,
    /// DNS suffixes (search domains) while the tunnel is up (with
    /// [`DnsMode::Apply`] only).
    pub dns_suffixes: Vec<String>,
}

impl SystemNetwork {
    pub fn new(tun_name: &str) -> Self {
        SystemNetwork {
            tun_name: tun_name.to_owned(),
            routes: Vec::new(),
            default_route: false,
            dns: DnsMode::Off,
            dns_suffixes: Vec::new(),
        }
    }
}

/// Everything [`SystemNetwork::attach`] set up, undone in reverse order.
struct SystemGuard {
    /// The reader task, unless the session reads the device itself.
    reader: Option<tokio::task::JoinHandle<()>>,
    dns: Option<DnsGuard>,
    routes: RouteSet,
    tun: Arc<TunDevice>,
}

impl Drop for SystemGuard {
    fn drop(&mut self) {
        // The reader task holds the device; stop it so the device closes.
        // The fields then drop in order: DNS, routes, the device.
        if let Some(reader) = &self.reader {
            reader.abort();
        }
        if let Some(mut dns) = self.dns.take() {
            if let Err(e) = dns.restore() {
                tracing::warn!("DNS not restored: {e}");
            }
        }
        self.routes.remove_all();
        tracing::debug!("{} released", self.tun.name());
    }
}

/// Packets from the tunnel into the TUN, dropped (and counted) when the
/// device queue is full rather than stalling the session.
struct TunSink {
    tun: Arc<TunDevice>,
    writer: Arc<netdev::TunWriter>,
    /// Our IPv6CP link-local address, until the server's router
    /// advertisement has given us a global address.
    slaac: std::sync::Mutex<Option<Ipv6Addr>>,
}

impl PacketSink for TunSink {
    fn send(&self, packet: &[u8]) {
        if packet.first().is_some_and(|b| b >> 4 == 6) && packet.get(40) == Some(&134) {
            if let Some(prefix) = crate::slaac::autonomous_prefix(packet) {
                let mut pending = self.slaac.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(ll) = pending.take() {
                    let address = crate::slaac::address_in(prefix.prefix, ll);
                    let dev = self.tun.name().to_owned();
                    // `ip` is a short blocking call: off the session task.
                    std::thread::spawn(move || crate::slaac::assign(&dev, address, &prefix));
                }
                return;
            }
        }
        self.writer.send(packet);
    }

    fn flush(&self) {
        self.writer.flush();
    }
}

impl Network for SystemNetwork {
    fn attach(&self, link: &Connected) -> Result<Attachment, NetworkError> {
        self.attach_with(link, false).map(|(a, _)| a)
    }

    fn attach_direct(
        &self,
        link: &Connected,
    ) -> Result<(Attachment, Option<Box<dyn PacketSource>>), NetworkError> {
        self.attach_with(link, true)
    }
}

impl SystemNetwork {
    /// Sets up the host side; `direct`: hand out the device as a
    /// [`PacketSource`] instead of starting a reader task.
    fn attach_with(
        &self,
        link: &Connected,
        direct: bool,
    ) -> Result<(Attachment, Option<Box<dyn PacketSource>>), NetworkError> {
        let (local, peer) = link.ipv4.ok_or(NetworkError::NoIpv4)?;
        // Asked before any route through the tunnel exists: afterwards the
        // answer would be the tunnel itself.
        let server_route = match (self.default_route, link.server.ip()) {
            (true, server @ IpAddr::V4(_)) => routes::route_get(server)?,
            _ => None,
        };
        let tun = Arc::new(TunDevice::create(&TunSettings {
            name: self.tun_name.clone(),
            mtu: link.mtu,
            ipv4: Some((local, 32)),
            ipv6: link.ipv6.map(|(ll, _)| (ll, 64)),
            routes: Vec::new(),
            offload: true,
        })?);
        let name = tun.name().to_owned();
        if link.ipv6.is_some() {
            crate::slaac::disable_kernel_ra(&name);
        }
        let mut set = RouteSet::new();
        set.add(Route::via_dev(IpAddr::V4(peer), 32, &name))?;
        let mut shown = Vec::new();
        if self.default_route {
            if let Some(r) = server_route {
                set.add(r)?;
            }
            for half in [Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(128, 0, 0, 0)] {
                set.add(Route::via_dev(IpAddr::V4(half), 1, &name))?;
            }
            shown.push("default".to_owned());
        }
        for &(net, prefix) in self.routes.iter().chain(&link.server_routes) {
            if shown.contains(&format!("{net}/{prefix}")) {
                continue;
            }
            set.add(Route::via_dev(net, prefix, &name))?;
            shown.push(format!("{net}/{prefix}"));
        }
        let dns = match &self.dns {
            DnsMode::Apply(backend) if !link.dns.is_empty() || !self.dns_suffixes.is_empty() => {
                if !self.default_route {
                    // The servers we tell the system to use must be reached
                    // through the tunnel even when only some networks are.
                    for d in &link.dns {
                        set.add(Route::via_dev(IpAddr::V4(*d), 32, &name))?;
                    }
                }
                Some(dns::apply_with_suffixes(
                    backend,
                    &name,
                    &link.dns,
                    &self.dns_suffixes,
                    self.default_route,
                )?)
            }
            _ => None,
        };
        let (tx, rx) = tunnel::packet_queue(OUTBOUND_QUEUE);
        let (reader, source) = if direct {
            // `tx` is dropped: the queue stays empty and closes.
            let source: Box<dyn PacketSource> = Box::new(TunSource {
                batch: netdev::RecvBatch::new(tun.mtu()),
                tun: tun.clone(),
            });
            (None, Some(source))
        } else {
            (Some(tokio::spawn(read_tun(tun.clone(), tx))), None)
        };
        let mut description = name.clone();
        if !shown.is_empty() {
            description.push_str(&format!(", routes: {}", shown.join(" ")));
        }
        match (&dns, link.dns.is_empty()) {
            (Some(d), _) => description.push_str(&format!(", DNS via {}", d.describe())),
            (None, false) => description.push_str(", DNS not configured"),
            (None, true) => {}
        }
        let sink = Arc::new(TunSink {
            tun: tun.clone(),
            writer: netdev::TunWriter::spawn(tun.clone()),
            slaac: std::sync::Mutex::new(link.ipv6.map(|(ll, _)| ll)),
        });
        let attachment = Attachment {
            outbound: rx,
            inbound: sink,
            description,
            guard: Box::new(SystemGuard {
                reader,
                dns,
                routes: set,
                tun,
            }),
        };
        Ok((attachment, source))
    }
}

/// The TUN device as the session task reads it: one read returns a kernel
/// segment split into MTU-sized packets (offload), kept in `batch`.
struct TunSource {
    tun: Arc<TunDevice>,
    batch: netdev::RecvBatch,
}

impl PacketSource for TunSource {
    fn poll_read(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        loop {
            std::task::ready!(self.tun.poll_readable(cx))?;
            match self.tun.try_recv_batch(&mut self.batch) {
                Ok(_) => return std::task::Poll::Ready(Ok(())),
                // Readiness was stale; it is cleared now, so the next
                // poll waits (and registers the waker).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    return std::task::Poll::Ready(Err(std::io::Error::new(
                        e.kind(),
                        format!("reading {}: {e}", self.tun.name()),
                    )))
                }
            }
        }
    }

    fn for_each(&self, f: &mut dyn FnMut(&[u8])) {
        for packet in self.batch.packets() {
            f(packet);
        }
    }
}

/// Moves packets from the TUN to the tunnel. Reads into one large buffer
/// and hands out frozen slices of it, so a packet costs no allocation of
/// its own.
async fn read_tun(tun: Arc<TunDevice>, tx: tunnel::PacketSender) {
    const CHUNK: usize = 256 * 1024;
    let mut batch = netdev::RecvBatch::new(tun.mtu());
    let mut buf = BytesMut::with_capacity(CHUNK);
    loop {
        match tun.recv_batch(&mut batch).await {
            Ok(_) => {
                for packet in batch.packets() {
                    if packet.is_empty() {
                        continue;
                    }
                    // One allocation per CHUNK, split per packet.
                    if buf.capacity() < packet.len() {
                        buf = BytesMut::with_capacity(CHUNK);
                    }
                    buf.extend_from_slice(packet);
                    if tx.send(buf.split().freeze()).await.is_err() {
                        return;
                    }
                }
            }
            Err(e) => {
                tracing::warn!("reading {}: {e}", tun.name());
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ppp::link::{Ipv4Info, Ipv6Info};
    use ppp::mppe::MppeStrength;

    #[test]
    fn connected_summarises_the_link() {
        let up = LinkUp {
            username: Some("alice".into()),
            auth_protocol: Some(AuthProtocol::Eap),
            master_keys: None,
            ipv4: Some(Ipv4Info {
                local: Ipv4Addr::new(10, 0, 10, 21),
                peer: Ipv4Addr::new(10, 0, 10, 20),
                dns: [Some(Ipv4Addr::new(10, 0, 0, 53)), None],
                nbns: [None, None],
            }),
            ipv6: Some(Ipv6Info {
                local_interface_id: [0, 0, 0, 0, 0, 0, 0, 0x21],
                peer_interface_id: [0, 0, 0, 0, 0, 0, 0, 0x20],
            }),
            mppe: Some(MppeSettings {
                strength: MppeStrength::Bits128,
                stateless: true,
            }),
            peer_mru: 1500,
        };
        let c = Connected::from_link("192.0.2.1:443".parse().unwrap(), &up);
        assert_eq!(c.mtu, 1400);
        assert_eq!(c.ipv6.unwrap().0, "fe80::21".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            c.to_string(),
            "10.0.10.21 (server 10.0.10.20), fe80::21, DNS 10.0.0.53, MPPE 128-bit stateless, EAP-MSCHAPv2"
        );
        let small = LinkUp {
            peer_mru: 1300,
            ..up
        };
        assert_eq!(
            Connected::from_link("192.0.2.1:443".parse().unwrap(), &small).mtu,
            1296
        );
    }
}
