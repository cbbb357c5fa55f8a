//! The task behind [`crate::l2tp_ipsec_client::IpsecL2tpClient`]: the IKE
//! sockets (UDP 500 and 4500, else ephemeral ports), raw ESP when it can be
//! opened, the sans-IO initiator's timers, and ESP in both directions,
//! read and written in batches (`recvmmsg` / `sendmmsg`, see
//! `datagram_batch`), decrypted in place, encrypted into reused slots.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipsec::esp::{EspSa, InboundSas};
use ipsec::ikev1::{ChildSa, DownReason, IkeEvent, Initiator, InitiatorConfig, Transmit};
use ipsec::udp_encap::{classify, Port4500, NON_ESP_MARKER};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::datagram_batch::{read_batches, RecvBatch, SendBatch, BATCH};
use crate::l2tp_ipsec_client::IpsecConnected;

/// IP protocol number of UDP, ESP's next header for L2TP.
const UDP: u8 = 17;
/// A new outbound SA is used only after this long: the server installs
/// its inbound SA after Quick Mode message 3, and a packet that arrives
/// first is lost (strongSwan; RFC 2409 §5.5's commit bit would say when).
/// During a rekey the old SA carries the traffic meanwhile.
pub(crate) const SETTLE: Duration = Duration::from_millis(200);
const DATAGRAM: usize = 4096;

pub(crate) struct Sockets {
    pub(crate) ike: UdpSocket,
    /// Shared with the task's read loop, which reads them while the task
    /// handles what they bring.
    pub(crate) nat_t: Arc<UdpSocket>,
    pub(crate) esp: Option<Arc<UdpSocket>>,
    pub(crate) local: IpAddr,
}

impl Sockets {
    /// UDP 500 and 4500 when free (some servers insist on them), else
    /// ephemeral ports; raw ESP when permitted.
    pub(crate) async fn open(server: SocketAddr, ephemeral: bool) -> std::io::Result<Sockets> {
        let any: IpAddr = if server.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        };
        let bind = |port: u16| async move {
            match UdpSocket::bind(SocketAddr::new(any, port)).await {
                Ok(s) => Ok(s),
                Err(_) => UdpSocket::bind(SocketAddr::new(any, 0)).await,
            }
        };
        let (ike_port, nat_t_port) = if ephemeral { (0, 0) } else { (500, 4500) };
        let ike = bind(ike_port).await?;
        let nat_t = bind(nat_t_port).await?;
        let esp = open_esp_socket(any).ok();
        // try_send_to only sends once the reactor has seen the socket
        // writable; without this the first Main Mode message would be lost.
        ike.writable().await?;
        nat_t.writable().await?;
        if let Some(esp) = &esp {
            esp.writable().await?;
        }
        let local = route_source(server).unwrap_or(any);
        Ok(Sockets {
            ike,
            nat_t: Arc::new(nat_t),
            esp: esp.map(Arc::new),
            local,
        })
    }

    pub(crate) fn has_raw_esp(&self) -> bool {
        self.esp.is_some()
    }
}

/// Opens a raw ESP socket (IP protocol 50). Needs CAP_NET_RAW. (A copy of
/// the server front end's, which lives in another module's ownership.)
fn open_esp_socket(bind: IpAddr) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let domain = if bind.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(50)))?;
    socket.set_nonblocking(true)?;
    if !bind.is_unspecified() {
        socket.bind(&SockAddr::from(SocketAddr::new(bind, 0)))?;
    }
    let _ = socket.set_recv_buffer_size(4 << 20);
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// The source address the routing table picks for `remote` (a connected
/// UDP socket sends nothing).
pub(crate) fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let probe = std::net::UdpSocket::bind(bind).ok()?;
    probe.connect(remote).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

pub(crate) struct TaskChannels {
    pub out_rx: mpsc::Receiver<Vec<u8>>,
    pub in_tx: mpsc::Sender<Vec<u8>>,
    pub close_rx: oneshot::Receiver<()>,
    pub up_tx: Option<oneshot::Sender<Result<IpsecConnected, String>>>,
    pub ended: Arc<Mutex<Option<String>>>,
}

/// The ESP side of the connection.
struct Esp {
    inbound: InboundSas,
    /// Outbound SAs by the inbound SPI of their pair, with the instant they
    /// were installed; the newest settled one is used.
    outbound: Vec<(u32, EspSa, Instant)>,
    udp_encapsulated: bool,
    /// Where UDP-encapsulated ESP goes (the server's NAT-T port).
    peer: SocketAddr,
    udp_buf: Vec<u8>,
    /// ESP waiting for one `sendmmsg` on `out_fd`.
    out: SendBatch,
    out_fd: std::os::fd::RawFd,
    dropped: u64,
}

struct Task {
    server: SocketAddr,
    local_port: u16,
    remote_port: u16,
    initiator: Initiator,
    sockets: Sockets,
    esp: Esp,
    channels: TaskChannels,
    ike_suite: String,
    nat: String,
    last_refusal: Option<String>,
    end: Option<String>,
}

pub(crate) async fn run(
    server: SocketAddr,
    config: InitiatorConfig,
    sockets: Sockets,
    channels: TaskChannels,
) {
    let local_port = sockets.ike.local_addr().map(|a| a.port()).unwrap_or(500);
    let local = SocketAddr::new(sockets.local, local_port);
    tracing::info!(
        "IPsec: connecting to {server} from {local}{}",
        if sockets.has_raw_esp() {
            ""
        } else {
            " (UDP-encapsulated ESP only)"
        }
    );
    let (l2tp_local, l2tp_remote) = (config.local_port, config.remote_port);
    let mut task = Task {
        server,
        local_port: l2tp_local,
        remote_port: l2tp_remote,
        initiator: Initiator::new(config, local, server, Instant::now()),
        sockets,
        esp: Esp {
            inbound: InboundSas::new(),
            outbound: Vec::new(),
            udp_encapsulated: false,
            peer: server,
            udp_buf: Vec::with_capacity(DATAGRAM),
            out: SendBatch::new_udp(),
            out_fd: -1,
            dropped: 0,
        },
        channels,
        ike_suite: String::new(),
        nat: String::new(),
        last_refusal: None,
        end: None,
    };
    task.run().await;
}

impl Task {
    async fn run(&mut self) {
        let mut ike_buf = vec![0u8; DATAGRAM];
        let server = self.server.ip();
        let nat_t = self.sockets.nat_t.clone();
        let esp = self.sockets.esp.clone();
        // UDP GRO on the NAT-T socket (udp_offload.rs); the raw ESP socket
        // is read with the same batch.
        let mut batch = RecvBatch::with_gro(nat_t.as_raw_fd());
        let mut outgoing = Vec::with_capacity(BATCH);
        loop {
            self.flush();
            if self.end.is_some() {
                break;
            }
            let deadline = self
                .initiator
                .poll_timeout()
                .map(tokio::time::Instant::from_std)
                .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                r = self.sockets.ike.recv_from(&mut ike_buf) => {
                    if let Ok((n, from)) = r {
                        if from.ip() == self.server.ip() {
                            self.initiator.handle_datagram(Instant::now(), false, &ike_buf[..n]);
                        }
                    }
                }
                r = nat_t.readable() => {
                    if r.is_ok() {
                        read_batches(&nat_t, &mut batch, |from, d| {
                            if from.ip() == server {
                                self.nat_t_datagram(d);
                            }
                        });
                    }
                }
                r = readable_optional(esp.as_deref()) => {
                    if let (Ok(()), Some(esp)) = (r, esp.as_deref()) {
                        read_batches(esp, &mut batch, |from, d| {
                            if from.ip() == server {
                                self.raw_esp(d);
                            }
                        });
                    }
                }
                n = self.channels.out_rx.recv_many(&mut outgoing, BATCH) => {
                    if n > 0 {
                        for datagram in outgoing.drain(..) {
                            self.send_l2tp(&datagram);
                        }
                        self.flush_esp();
                    }
                }
                _ = &mut self.channels.close_rx => {
                    self.initiator.close(Instant::now());
                    self.flush();
                    self.finish("closed".to_string());
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => self.initiator.handle_timeout(Instant::now()),
            }
        }
    }

    fn nat_t_datagram(&mut self, datagram: &mut [u8]) {
        match classify(datagram) {
            Port4500::Ike(_) => {
                self.initiator
                    .handle_datagram(Instant::now(), true, &datagram[4..]);
            }
            Port4500::Esp(_) => self.esp_in(datagram),
            Port4500::Keepalive => {}
            Port4500::Malformed => self.esp.dropped += 1,
        }
    }

    /// A raw IPv4 socket hands over the IP header too (raw(7)).
    fn raw_esp(&mut self, packet: &mut [u8]) {
        let Some(&first) = packet.first() else {
            return;
        };
        let header_len = if first >> 4 == 4 {
            ((first & 0x0f) as usize) * 4
        } else {
            0
        };
        if packet.len() < header_len + 8 {
            self.esp.dropped += 1;
            return;
        }
        self.esp_in(&mut packet[header_len..]);
    }

    fn esp_in(&mut self, packet: &mut [u8]) {
        let now = Instant::now();
        let decapsulated = match self.esp.inbound.decapsulate(now, packet) {
            Ok(d) => d,
            Err(e) => {
                // Raw ESP sockets see every SA's packets on this host.
                self.esp.dropped += 1;
                tracing::debug!("IPsec: ESP dropped: {e}");
                return;
            }
        };
        self.initiator.note_traffic(now);
        let payload = &packet[decapsulated.payload];
        if decapsulated.next_header != UDP || payload.len() < 8 {
            self.esp.dropped += 1;
            return;
        }
        // Only the L2TP flow Quick Mode agreed on (RFC 3193 §4).
        let dst_port = u16::from_be_bytes([payload[2], payload[3]]);
        if dst_port != self.local_port {
            self.esp.dropped += 1;
            return;
        }
        // RFC 3948 §3.1.2: ESP's integrity check covers the inner UDP
        // datagram; its checksum (over NAT-rewritten addresses) is not checked.
        let _ = self.channels.in_tx.try_send(payload[8..].to_vec());
    }

    fn send_l2tp(&mut self, datagram: &[u8]) {
        let (fd, to) = if self.esp.udp_encapsulated {
            (self.sockets.nat_t.as_raw_fd(), self.esp.peer)
        } else if let Some(raw) = &self.sockets.esp {
            (raw.as_raw_fd(), SocketAddr::new(self.server.ip(), 0))
        } else {
            return;
        };
        // One batch goes through one socket.
        if self.esp.out.is_full() || (!self.esp.out.is_empty() && fd != self.esp.out_fd) {
            self.flush_esp();
        }
        self.esp.out_fd = fd;
        let now = Instant::now();
        let settled = self
            .esp
            .outbound
            .iter()
            .rposition(|(_, _, installed)| now >= *installed + SETTLE)
            .unwrap_or(self.esp.outbound.len().saturating_sub(1));
        let Some((_, sa, _)) = self.esp.outbound.get_mut(settled) else {
            return;
        };
        let buf = &mut self.esp.udp_buf;
        buf.clear();
        buf.extend_from_slice(&self.local_port.to_be_bytes());
        buf.extend_from_slice(&self.remote_port.to_be_bytes());
        buf.extend_from_slice(&((8 + datagram.len()) as u16).to_be_bytes());
        // RFC 3948 §3.1.1 / RFC 768: a zero UDP checksum over IPv4 means
        // none; a NAT would invalidate one anyway.
        buf.extend_from_slice(&[0, 0]);
        buf.extend_from_slice(datagram);
        let buf = &self.esp.udp_buf;
        self.esp
            .out
            .push_with(to, |slot| match sa.encapsulate(now, UDP, buf, slot) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("IPsec: cannot encapsulate: {e}");
                    false
                }
            });
    }

    /// Writes the ESP `send_l2tp` queued with one `sendmmsg`.
    fn flush_esp(&mut self) {
        let queued = self.esp.out.len();
        if queued == 0 {
            return;
        }
        let (sent, _) = if self.esp.out_fd == self.sockets.nat_t.as_raw_fd() {
            self.esp.out.flush_udp(self.esp.out_fd)
        } else {
            self.esp.out.flush(self.esp.out_fd)
        };
        if sent < queued {
            // Dropped as a full queue would; one line per burst is enough
            // to explain a silent tunnel.
            self.esp.dropped += (queued - sent) as u64;
            tracing::warn!(
                "IPsec: {} ESP packets to {} not sent (socket buffer full or no route)",
                queued - sent,
                self.server.ip()
            );
        }
    }

    fn transmit(&self, t: &Transmit) {
        if t.is_nat_keepalive() {
            let _ = self.sockets.nat_t.try_send_to(&t.bytes, t.remote);
        } else if t.from_nat_t_port {
            let mut bytes = Vec::with_capacity(4 + t.bytes.len());
            bytes.extend_from_slice(&NON_ESP_MARKER);
            bytes.extend_from_slice(&t.bytes);
            let _ = self.sockets.nat_t.try_send_to(&bytes, t.remote);
        } else {
            let _ = self.sockets.ike.try_send_to(&t.bytes, t.remote);
        }
    }

    /// Sends what the initiator queued and applies what it reported.
    fn flush(&mut self) {
        while let Some(t) = self.initiator.poll_transmit() {
            self.transmit(&t);
        }
        while let Some(event) = self.initiator.poll_event() {
            self.event(event);
        }
        if self.initiator.is_closed() && self.end.is_none() {
            let reason = self
                .last_refusal
                .clone()
                .unwrap_or_else(|| "the IKE SA ended".to_string());
            self.finish(reason);
        }
    }

    fn event(&mut self, event: IkeEvent) {
        match event {
            IkeEvent::IkeSaUp {
                peer,
                identity,
                suite,
                nat,
                ..
            } => {
                tracing::info!("IPsec: IKE SA up with {peer} (server identity {identity}): Main Mode {suite}, {nat}");
                self.ike_suite = suite;
                self.nat = nat;
            }
            IkeEvent::ChildSaUp(child) => self.child_up(*child),
            IkeEvent::ChildSaDown {
                inbound_spi,
                outbound_spi,
                reason,
                ..
            } => {
                tracing::info!(
                    "IPsec: ESP SA in {inbound_spi:08x} out {outbound_spi:08x} ended: {reason}"
                );
                self.esp.inbound.remove(inbound_spi);
                self.esp.outbound.retain(|(spi, _, _)| *spi != inbound_spi);
                let ours = matches!(reason, DownReason::Replaced | DownReason::Closed);
                if self.esp.outbound.is_empty() && !ours {
                    let why = match reason {
                        DownReason::DeletedByPeer => "the server deleted the IPsec SA".to_string(),
                        other => format!("the IPsec SA ended: {other}"),
                    };
                    self.finish(why);
                }
            }
            IkeEvent::IkeSaDown { peer, reason, .. } => {
                tracing::info!("IPsec: IKE SA with {peer} ended: {reason}");
            }
            // Responder events only.
            IkeEvent::PeerMoved { .. } | IkeEvent::CertificateStatusNeeded { .. } => {}
            IkeEvent::Refused { peer, reason } => {
                tracing::warn!("IPsec: {peer}: {reason}");
                self.last_refusal = Some(reason);
            }
        }
    }

    fn child_up(&mut self, child: ChildSa) {
        let now = Instant::now();
        let (inbound, outbound) = match (
            EspSa::new(&child.inbound, now),
            EspSa::new(&child.outbound, now),
        ) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("IPsec: cannot install the ESP SA: {e}");
                return;
            }
        };
        let rekey = !self.esp.outbound.is_empty();
        tracing::info!(
            "IPsec: ESP SA {} in {:08x} out {:08x}: {}, {}",
            if rekey { "rekeyed" } else { "up" },
            child.inbound.spi,
            child.outbound.spi,
            child.suite,
            if child.udp_encapsulated {
                "UDP-encapsulated"
            } else {
                "raw ESP"
            }
        );
        self.esp.udp_encapsulated = child.udp_encapsulated;
        self.esp.peer = child.peer;
        self.esp.inbound.insert(inbound);
        self.esp.outbound.push((child.inbound.spi, outbound, now));
        if let Some(up) = self.channels.up_tx.take() {
            let _ = up.send(Ok(IpsecConnected {
                local: self.sockets.local,
                ike_suite: self.ike_suite.clone(),
                esp_suite: child.suite.clone(),
                nat: self.nat.clone(),
                udp_encapsulated: child.udp_encapsulated,
            }));
        }
    }

    fn finish(&mut self, reason: String) {
        if self.end.is_some() {
            return;
        }
        tracing::info!("IPsec: connection to {} ended: {reason}", self.server);
        if let Ok(mut e) = self.channels.ended.lock() {
            *e = Some(reason.clone());
        }
        if let Some(up) = self.channels.up_tx.take() {
            let _ = up.send(Err(reason.clone()));
        }
        self.end = Some(reason);
    }
}

pub(crate) async fn readable_optional(socket: Option<&UdpSocket>) -> std::io::Result<()> {
    match socket {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}
