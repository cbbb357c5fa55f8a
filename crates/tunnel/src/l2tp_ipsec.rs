//! L2TP/IPsec (RFC 3193) front end: the IKEv1 responder on UDP 500 and the
//! NAT-T port (RFC 3947), ESP in UDP (RFC 3948) or as IP protocol 50, and
//! the L2TP datagrams ESP carries handed to the [`L2tpFront`].
//!
//! One task owns the sans-IO [`Responder`] and the ESP SAs, so no lock is
//! taken per packet. ESP is read and written in batches (`recvmmsg` /
//! `sendmmsg`, see `datagram_batch`), decrypted in place in the receive
//! buffer and encrypted into reused send slots; a decrypted L2TP datagram
//! is copied once, into its call's queue (data) or the LNS's (control).
//!
//! L2TP peers are keyed by the client's outer address and port at its
//! first Quick Mode: that key outlives Quick Mode rekeys and Main Mode
//! renewals (a rekey must not cost the L2TP tunnel), and is unique per
//! client even behind one NAT (each has its own NAT port).
//! When a client's last ESP SA goes, its L2TP tunnels go (`peer_gone`).
//!
//! IKEv2 clients (`ikev2_server`) share the sockets: IKE messages are told
//! apart by the version in their header (RFC 7296 §3.1: major version 2;
//! RFC 2408 §3.1: 1), ESP by the SPI of the SA it names.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipsec::esp::{EspSa, InboundSas};
use ipsec::ikev1::{ChildSa, IkeEvent, IkeSaId, Responder, ResponderConfig, Transmit};
use ipsec::udp_encap::{classify, Port4500};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};

use crate::datagram_batch::{read_batches, RecvBatch, SendBatch, BATCH};
use crate::ikev2_server::{Ikev2Part, Ikev2Service, OutboundEsp, IPV4_IN_ESP, IPV6_IN_ESP};
use crate::ipsec_drops::{EspDrop, IpsecCounters};
use crate::l2tp_front::L2tpFront;
use crate::l2tp_peer::{L2tpPeer, L2tpReply};

/// L2TP's UDP port (RFC 2661 §8.1).
const L2TP_PORT: u16 = 1701;
/// IP protocol number of UDP, ESP's next header for L2TP.
const UDP: u8 = 17;
/// RFC 3948 §2.2: IKE on the NAT-T port starts with four zero bytes.
const NON_ESP_MARKER: [u8; 4] = [0; 4];
/// Room for one datagram.
const DATAGRAM: usize = 4096;
/// L2TP datagrams waiting for encapsulation; more are dropped.
const OUT_QUEUE: usize = 4096;
/// ESP packets kept for an SPI whose Quick Mode is not finished yet, and
/// how long: a hostile sender can fill the queue, which then costs it only
/// its own packets.
const EARLY_ESP_MAX: usize = 64;
const EARLY_ESP_AGE: Duration = Duration::from_secs(1);
/// At most this many refusal lines per interval; the rest are counted.
const LOG_BURST: u32 = 20;
const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// The sockets of the IPsec front end.
pub struct IpsecSockets {
    /// UDP 500.
    pub ike: Arc<UdpSocket>,
    /// UDP 4500 (NAT-T): IKE with the non-ESP marker, ESP, keepalives.
    pub nat_t: Arc<UdpSocket>,
    /// Raw IP protocol 50, for ESP between peers without NAT; None when it
    /// could not be opened (then only NAT-T clients are served).
    pub esp: Option<Arc<UdpSocket>>,
    /// The address the sockets are bound to (unspecified: any).
    pub bound: IpAddr,
    /// What the front end drops, by protocol and reason (read by the
    /// admin API for `ras_ipsec_dropped_total`).
    pub counters: Arc<IpsecCounters>,
}

/// Opens a raw ESP socket (IP protocol 50). Needs CAP_NET_RAW.
pub fn open_esp_socket(bind: IpAddr) -> std::io::Result<UdpSocket> {
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
    let _ = socket.set_send_buffer_size(4 << 20);
    UdpSocket::from_std(std::net::UdpSocket::from(socket))
}

/// ESP state of one client (one outer address and port).
struct Client {
    l2tp: L2tpPeer,
    /// Where ESP and IKE go now (a NAT may move the client's port).
    send_to: SocketAddr,
    udp_encapsulated: bool,
    /// Outbound SAs by their inbound twin's SPI, newest last: after a Quick
    /// Mode rekey the newest is used (RFC 2409 §5.5 leaves old and new
    /// usable until the Delete).
    outbound: Vec<(u32, EspSa, u16)>,
    reply: L2tpReply,
    ike_sa: IkeSaId,
}

/// Rate-limited log of refusals.
pub(crate) struct RefusalLog {
    window_start: Instant,
    lines: u32,
    suppressed: u64,
}

impl RefusalLog {
    pub(crate) fn new() -> RefusalLog {
        RefusalLog {
            window_start: Instant::now(),
            lines: 0,
            suppressed: 0,
        }
    }

    pub(crate) fn log(&mut self, now: Instant, peer: SocketAddr, reason: &str) {
        if now >= self.window_start + LOG_INTERVAL {
            if self.suppressed > 0 {
                tracing::warn!("IPsec: {} more refusals not logged", self.suppressed);
            }
            self.window_start = now;
            self.lines = 0;
            self.suppressed = 0;
        }
        if self.lines < LOG_BURST {
            self.lines += 1;
            tracing::warn!("IPsec: {peer}: {reason}");
        } else {
            self.suppressed += 1;
        }
    }
}

/// The front end's state, owned by its task.
struct Front {
    sockets: IpsecSockets,
    /// The ports `sockets.ike` and `sockets.nat_t` are bound to, read once
    /// (a `getsockname` per IKE datagram was a fifth of this task's CPU
    /// under a flood).
    ike_port: u16,
    nat_t_port: u16,
    responder: Responder,
    inbound: InboundSas,
    /// Inbound SPI → client key.
    spi_client: HashMap<u32, SocketAddr>,
    clients: HashMap<SocketAddr, Client>,
    next_client: u64,
    l2tp: L2tpFront,
    out_tx: mpsc::Sender<(SocketAddr, Vec<u8>)>,
    local_cache: HashMap<IpAddr, IpAddr>,
    refusals: RefusalLog,
    /// Shared with the admin API (`IpsecSockets::counters`).
    counters: Arc<IpsecCounters>,
    /// The IKEv2 part's selector drops already added to `counters`.
    ikev2_selector_seen: u64,
    /// ESP for an SPI not installed yet (bounded: count and age).
    early_esp: std::collections::VecDeque<(Instant, Option<SocketAddr>, SocketAddr, Vec<u8>)>,
    udp_buf: Vec<u8>,
    /// ESP waiting for one `sendmmsg` on the NAT-T socket and on the raw one.
    out_nat_t: SendBatch,
    out_raw: SendBatch,
    /// IKEv2 remote access, when on.
    ikev2: Option<Ikev2Part>,
    /// IKEv1 answered (false: IKEv2 only).
    ikev1: bool,
    /// Certificate-status checks under way (one per IKE SA at most), each
    /// in its own task so no other peer waits on a slow responder;
    /// aborted when their IKE SA goes.
    status_checks: HashMap<IkeSaId, tokio::task::AbortHandle>,
    /// Where those tasks answer.
    status_tx: mpsc::UnboundedSender<(IkeSaId, Result<(), String>)>,
}

/// The IKE version of a message (RFC 7296 §3.1 / RFC 2408 §3.1: the major
/// version is the high nibble of octet 17).
fn is_ikev2(message: &[u8]) -> bool {
    message.get(17).is_some_and(|v| v >> 4 == 2)
}

/// New responder settings for the running front end (a server reload:
/// a new certificate).
pub struct IkeConfigs {
    pub ikev1: ResponderConfig,
    /// Ignored when IKEv2 is off.
    pub ikev2: Option<ipsec::ikev2::Ikev2Config>,
}

/// Serves L2TP/IPsec (and IKEv2 when `ikev2` is given) until `shutdown`
/// turns true; then every SA is deleted (the peers are told) before it
/// returns. Settings sent on `reconfigure` apply to what is negotiated
/// next.
pub async fn serve_ipsec_l2tp(
    sockets: IpsecSockets,
    config: ResponderConfig,
    l2tp: L2tpFront,
    ikev2: Option<Ikev2Service>,
    ikev1: bool,
    mut reconfigure: mpsc::UnboundedReceiver<IkeConfigs>,
    mut shutdown: watch::Receiver<bool>,
) {
    let (out_tx, mut out_rx) = mpsc::channel(OUT_QUEUE);
    // Our key pairs for IKEv1 and IKEv2, made ahead on a thread of their
    // own (dh_stock_filler.rs).
    let stock = crate::dh_stock_filler::start();
    let mut config = config;
    config.dh_stock = Some(stock.clone());
    let (ikev2, ikev2_inputs) = match ikev2 {
        Some(service) => {
            let (part, inputs) = Ikev2Part::new(service, Some(stock), Instant::now());
            (Some(part), Some(inputs))
        }
        None => (None, None),
    };
    let (mut ikev2_answers, mut ikev2_packets) = match ikev2_inputs {
        Some(i) => (Some(i.answers), Some(i.packets)),
        None => (None, None),
    };
    let counters = sockets.counters.clone();
    let (status_tx, mut status_rx) = mpsc::unbounded_channel();
    let port = |socket: &UdpSocket, default| socket.local_addr().map_or(default, |a| a.port());
    let (ike_port, nat_t_port) = (port(&sockets.ike, 500), port(&sockets.nat_t, 4500));
    let mut front = Front {
        sockets,
        ike_port,
        nat_t_port,
        responder: Responder::new(config),
        inbound: InboundSas::new(),
        spi_client: HashMap::new(),
        clients: HashMap::new(),
        next_client: 1,
        l2tp,
        out_tx,
        local_cache: HashMap::new(),
        refusals: RefusalLog::new(),
        counters,
        ikev2_selector_seen: 0,
        early_esp: std::collections::VecDeque::new(),
        udp_buf: Vec::with_capacity(DATAGRAM),
        out_nat_t: SendBatch::new_udp(),
        out_raw: SendBatch::new(),
        ikev2,
        ikev1,
        status_checks: HashMap::new(),
        status_tx,
    };
    let ike = front.sockets.ike.clone();
    let nat_t = front.sockets.nat_t.clone();
    let esp = front.sockets.esp.clone();
    // UDP GRO on the NAT-T socket: a burst of one client's ESP arrives
    // as one buffer, cut into its datagrams again by read_batches.
    let mut batch = RecvBatch::with_gro(nat_t.as_raw_fd());
    let mut outgoing = Vec::with_capacity(BATCH);
    let mut outgoing_ip = Vec::with_capacity(BATCH);
    let mut timers = TimerCache::default();
    // One timer entry, moved only when the deadline moves: a new
    // `sleep_until` per wake-up re-registered it with tokio's timer
    // wheel every time (9 % of this task's CPU under a datagram flood).
    let sleep = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(sleep);
    loop {
        let deadline = timers.deadline(Instant::now(), || {
            let ikev2 = front
                .ikev2
                .as_ref()
                .and_then(|p| p.responder.poll_timeout());
            match (front.responder.poll_timeout(), ikev2) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            }
        });
        let deadline = tokio::time::Instant::from_std(deadline);
        if sleep.deadline() != deadline {
            sleep.as_mut().reset(deadline);
        }
        tokio::select! {
            r = ike.readable() => {
                if r.is_ok() {
                    // In batches like UDP 4500: a flood of datagrams on
                    // 500 cost a system call and a wake-up each.
                    let port = front.ike_port;
                    read_batches(&ike, &mut batch, |from, d| {
                        let local = front.local_address(from, port);
                        front.ike_datagram(local, from, false, d);
                        // Each answer at once, as when this socket was
                        // read a datagram at a time: held to the batch's
                        // end, a burst's first IKE_SA_INIT answers waited
                        // for the Diffie-Hellman of all the others, and
                        // bursts of RSA + EAP handshakes ran ~20 % slower.
                        front.send_answers();
                    });
                }
            }
            r = nat_t.readable() => {
                if r.is_ok() {
                    read_batches(&nat_t, &mut batch, |from, d| front.nat_t_datagram(from, d));
                    front.flush_ikev2_sink();
                }
            }
            r = readable_optional(esp.as_deref()) => {
                if let (Ok(()), Some(esp)) = (r, esp.as_deref()) {
                    read_batches(esp, &mut batch, |from, d| front.raw_esp(from, d));
                    front.flush_ikev2_sink();
                }
            }
            Some(answer) = recv_optional(ikev2_answers.as_mut()) => {
                if let Some(part) = front.ikev2.as_mut() {
                    part.answer(Instant::now(), answer);
                }
            }
            n = recv_many_optional(ikev2_packets.as_mut(), &mut outgoing_ip) => {
                if n > 0 {
                    for (ike_sa, packet) in outgoing_ip.drain(..) {
                        front.send_ikev2(ike_sa, &packet);
                    }
                    front.flush_esp();
                }
            }
            n = out_rx.recv_many(&mut outgoing, BATCH) => {
                if n > 0 {
                    for (key, datagram) in outgoing.drain(..) {
                        front.send_l2tp(key, &datagram);
                    }
                    front.flush_esp();
                }
            }
            Some((ike_sa, status)) = status_rx.recv() => {
                if front.status_checks.remove(&ike_sa).is_some() {
                    front.responder.certificate_status(Instant::now(), ike_sa, status);
                }
            }
            Some(mut configs) = reconfigure.recv() => {
                // The stock is the front end's, not the configuration's.
                configs.ikev1.dh_stock = front.responder.config().dh_stock.clone();
                front.responder.set_config(configs.ikev1);
                if let (Some(part), Some(c)) = (front.ikev2.as_mut(), configs.ikev2) {
                    part.set_config(c);
                }
            }
            _ = &mut sleep => {
                // What the cache knew is spent: ask the responders again
                // next time round, or a deadline now past would fire
                // again and again until the cache's refresh.
                timers.fired();
                let now = Instant::now();
                front.responder.handle_timeout(now);
                if let Some(part) = front.ikev2.as_mut() {
                    part.responder.handle_timeout(now);
                }
            }
            _ = shutdown.changed() => {
                let now = Instant::now();
                front.responder.close_all(now);
                if let Some(part) = front.ikev2.as_mut() {
                    part.close_all(now);
                }
                front.flush();
                break;
            }
        }
        front.flush();
    }
}

/// When the IKE responders next want `handle_timeout`. Asking them walks
/// every IKE SA, so asking after every datagram made a burst of N
/// handshakes cost O(N²) (at 1,000 IKE SAs as much CPU as the RSA
/// signatures) and taxed every ESP batch with one walk per tunnel. Their
/// timers are all seconds long (retransmission, liveness, half-open and
/// authorization limits), so the answer is reused for up to
/// [`TimerCache::REFRESH`]: a timer set meanwhile fires at most that late.
#[derive(Default)]
struct TimerCache {
    asked: Option<Instant>,
    answer: Option<Instant>,
}

impl TimerCache {
    const REFRESH: Duration = Duration::from_millis(50);
    /// How long to sleep with nothing due.
    const IDLE: Duration = Duration::from_secs(3600);

    /// The deadline fired and its timers were handled.
    fn fired(&mut self) {
        self.asked = None;
    }

    fn deadline(&mut self, now: Instant, ask: impl FnOnce() -> Option<Instant>) -> Instant {
        match self.asked {
            Some(at) if now < at + Self::REFRESH => {
                // Wake at the refresh to learn of timers set since.
                let refresh = at + Self::REFRESH;
                self.answer.map_or(refresh, |a| a.min(refresh))
            }
            _ => {
                self.asked = Some(now);
                self.answer = ask();
                self.answer.unwrap_or(now + Self::IDLE)
            }
        }
    }
}

async fn recv_optional<T>(rx: Option<&mut mpsc::UnboundedReceiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn recv_many_optional<T>(rx: Option<&mut mpsc::Receiver<T>>, into: &mut Vec<T>) -> usize {
    match rx {
        Some(rx) => rx.recv_many(into, BATCH).await,
        None => std::future::pending().await,
    }
}

async fn readable_optional(socket: Option<&UdpSocket>) -> std::io::Result<()> {
    match socket {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

impl Front {
    /// Our address as `remote` sees it: the bound address, or the source
    /// address the routing table picks for `remote` (NAT-D hashes it, and
    /// Main Mode names it as our identity).
    fn local_address(&mut self, remote: SocketAddr, port: u16) -> SocketAddr {
        if !self.sockets.bound.is_unspecified() {
            return SocketAddr::new(self.sockets.bound, port);
        }
        if let Some(ip) = self.local_cache.get(&remote.ip()) {
            return SocketAddr::new(*ip, port);
        }
        let ip = route_source(remote).unwrap_or(self.sockets.bound);
        if self.local_cache.len() >= 4096 {
            self.local_cache.clear();
        }
        self.local_cache.insert(remote.ip(), ip);
        SocketAddr::new(ip, port)
    }

    /// An IKE message, to the responder of its version.
    fn ike_datagram(&mut self, local: SocketAddr, from: SocketAddr, nat_t: bool, message: &[u8]) {
        let now = Instant::now();
        match self.ikev2.as_mut() {
            Some(part) if is_ikev2(message) => part
                .responder
                .handle_datagram(now, local, from, nat_t, message),
            _ if !self.ikev1 => {
                self.counters.ikev1_off();
                self.refusals.log(
                    now,
                    from,
                    "an IKEv1 (L2TP/IPsec) message dropped: this server answers IKEv2 only ([ipsec] ikev1 = false)",
                )
            }
            _ => self
                .responder
                .handle_datagram(now, local, from, nat_t, message),
        }
    }

    fn flush_ikev2_sink(&mut self) {
        if let Some(part) = self.ikev2.as_mut() {
            part.flush_sink();
        }
    }

    fn nat_t_datagram(&mut self, from: SocketAddr, datagram: &mut [u8]) {
        match classify(datagram) {
            Port4500::Ike(_) => {
                let local = self.local_address(from, self.nat_t_port);
                self.ike_datagram(local, from, true, &datagram[4..]);
            }
            Port4500::Esp(_) => self.esp_in(Some(from), from, datagram),
            Port4500::Keepalive => {}
            Port4500::Malformed => self.counters.esp_dropped(
                EspDrop::Malformed,
                Some(from),
                &"a UDP 4500 datagram that is neither IKE, ESP nor a keepalive",
            ),
        }
    }

    /// A raw IPv4 socket hands over the IP header too (raw(7)).
    fn raw_esp(&mut self, from: SocketAddr, packet: &mut [u8]) {
        let Some(&first) = packet.first() else {
            return;
        };
        let header_len = if first >> 4 == 4 {
            ((first & 0x0f) as usize) * 4
        } else {
            0
        };
        if packet.len() < header_len + 8 {
            self.counters.esp_dropped(
                EspDrop::Malformed,
                Some(from),
                &"shorter than an ESP header",
            );
            return;
        }
        self.esp_in(None, from, &mut packet[header_len..]);
    }

    /// ESP from `from` (`udp_from`: in UDP 4500, where the reply goes).
    fn esp_in(&mut self, udp_from: Option<SocketAddr>, from: SocketAddr, packet: &mut [u8]) {
        let now = Instant::now();
        let decapsulated = match self.inbound.decapsulate(now, packet) {
            Ok(d) => d,
            Err(ipsec::esp::EspError::UnknownSpi(_))
                if self.expire_early_esp(now) < EARLY_ESP_MAX =>
            {
                // RFC 2409 §5.5: the initiator may send on the new SA as soon
                // as it has Quick Mode message 2, before its message 3 (which
                // installs the SA here) has been read. Keep such packets
                // briefly and try them again when a child SA comes up.
                self.early_esp
                    .push_back((now, udp_from, from, packet.to_vec()));
                return;
            }
            Err(e) => {
                self.counters.esp_dropped(EspDrop::of(&e), Some(from), &e);
                return;
            }
        };
        let Some(key) = self.spi_client.get(&decapsulated.spi).copied() else {
            if let Some(part) = self.ikev2.as_mut() {
                part.deliver(
                    now,
                    decapsulated.spi,
                    udp_from,
                    decapsulated.next_header,
                    &packet[decapsulated.payload],
                );
            }
            return;
        };
        let Some(client) = self.clients.get_mut(&key) else {
            return;
        };
        // RFC 3948 §5: a NAT may change the client's port; authenticated
        // ESP tells us where it is now.
        if let Some(from) = udp_from {
            if from != client.send_to {
                client.send_to = from;
            }
        }
        self.responder.note_traffic(client.ike_sa, now);
        let payload = &packet[decapsulated.payload];
        if decapsulated.next_header != UDP || payload.len() < 8 {
            self.counters
                .esp_dropped(EspDrop::Selector, Some(from), &"not UDP inside ESP");
            return;
        }
        let dst_port = u16::from_be_bytes([payload[2], payload[3]]);
        if dst_port != L2TP_PORT {
            self.counters.esp_dropped(
                EspDrop::Selector,
                Some(from),
                &format_args!("UDP to port {dst_port} inside ESP, not L2TP"),
            );
            return;
        }
        // RFC 3948 §3.1.2: the inner UDP checksum is covered by ESP's
        // integrity check; we do not verify it.
        self.l2tp.deliver(client.l2tp, &payload[8..], &client.reply);
    }

    /// Drops (and counts) the kept early ESP packets that are too old: a
    /// sender of unknown SPIs must not sit in the queue uncounted until
    /// some child SA comes up. Returns how many are kept.
    fn expire_early_esp(&mut self, now: Instant) -> usize {
        while let Some((at, _, from, _)) = self.early_esp.front() {
            if now.duration_since(*at) <= EARLY_ESP_AGE {
                break;
            }
            self.counters.esp_dropped(
                EspDrop::UnknownSpi,
                Some(*from),
                &"no SA came up for its SPI within a second",
            );
            self.early_esp.pop_front();
        }
        self.early_esp.len()
    }

    fn send_l2tp(&mut self, key: SocketAddr, datagram: &[u8]) {
        let Some(client) = self.clients.get_mut(&key) else {
            return;
        };
        let Some((_, sa, peer_port)) = client.outbound.last_mut() else {
            return;
        };
        let dst_port = if *peer_port == 0 {
            L2TP_PORT
        } else {
            *peer_port
        };
        self.udp_buf.clear();
        self.udp_buf.extend_from_slice(&L2TP_PORT.to_be_bytes());
        self.udp_buf.extend_from_slice(&dst_port.to_be_bytes());
        self.udp_buf
            .extend_from_slice(&((8 + datagram.len()) as u16).to_be_bytes());
        // RFC 768 / RFC 3948 §3.1.1: a zero UDP checksum over IPv4 means
        // none; the addresses it would cover are rewritten by NATs anyway.
        self.udp_buf.extend_from_slice(&[0, 0]);
        self.udp_buf.extend_from_slice(datagram);
        let outbound = OutboundEsp {
            sa,
            to: client.send_to,
            udp_encapsulated: client.udp_encapsulated,
        };
        queue_esp(
            &self.sockets,
            &mut self.out_nat_t,
            &mut self.out_raw,
            outbound,
            UDP,
            &self.udp_buf,
        );
    }

    /// An IP packet for an IKEv2 client, into its tunnel-mode SA.
    fn send_ikev2(&mut self, ike_sa: IkeSaId, packet: &[u8]) {
        let Some(part) = self.ikev2.as_mut() else {
            return;
        };
        let Some(outbound) = part.outbound(ike_sa, packet.len()) else {
            return;
        };
        // RFC 4303 §2.6: the next header names the inner packet's version.
        let next_header = if packet.first().is_some_and(|v| v >> 4 == 6) {
            IPV6_IN_ESP
        } else {
            IPV4_IN_ESP
        };
        queue_esp(
            &self.sockets,
            &mut self.out_nat_t,
            &mut self.out_raw,
            outbound,
            next_header,
            packet,
        );
    }

    /// Writes the ESP queued by `send_l2tp` (one `sendmmsg` per socket);
    /// what a full socket buffer refuses is dropped, as a router would.
    fn flush_esp(&mut self) {
        if !self.out_nat_t.is_empty() {
            self.out_nat_t.flush_udp(self.sockets.nat_t.as_raw_fd());
        }
        if let Some(raw) = &self.sockets.esp {
            if !self.out_raw.is_empty() {
                self.out_raw.flush(raw.as_raw_fd());
            }
        }
    }

    fn transmit(&self, t: &Transmit) {
        if t.from_nat_t_port {
            let mut bytes = Vec::with_capacity(4 + t.bytes.len());
            bytes.extend_from_slice(&NON_ESP_MARKER);
            bytes.extend_from_slice(&t.bytes);
            let _ = self.sockets.nat_t.try_send_to(&bytes, t.remote);
        } else {
            let _ = self.sockets.ike.try_send_to(&t.bytes, t.remote);
        }
    }

    /// Sends the answers the responders queued (the rest of `flush` waits
    /// for the end of the batch).
    fn send_answers(&mut self) {
        while let Some(t) = self.responder.poll_transmit() {
            self.transmit(&t);
        }
        if let Some(mut part) = self.ikev2.take() {
            while let Some(t) = part.responder.poll_transmit() {
                self.transmit(&t);
            }
            self.ikev2 = Some(part);
        }
    }

    /// Sends what the responders queued and applies what they reported.
    fn flush(&mut self) {
        while let Some(t) = self.responder.poll_transmit() {
            self.transmit(&t);
        }
        let now = Instant::now();
        if let Some(mut part) = self.ikev2.take() {
            part.apply_events(now, &mut self.inbound, &mut self.refusals);
            while let Some(t) = part.responder.poll_transmit() {
                self.transmit(&t);
            }
            self.counters.set_ikev2(part.responder.stats());
            self.counters
                .add_ikev2_selector_drops(part.dropped, &mut self.ikev2_selector_seen);
            self.ikev2 = Some(part);
        }
        self.counters.set_ikev1(self.responder.stats());
        while let Some(event) = self.responder.poll_event() {
            match event {
                IkeEvent::IkeSaUp {
                    peer,
                    identity,
                    suite,
                    nat,
                    ..
                } => tracing::info!(
                    "IPsec: {peer} authenticated as {identity}: Main Mode {suite}, {nat}"
                ),
                IkeEvent::CertificateStatusNeeded {
                    ike_sa,
                    peer,
                    identity,
                    certificate,
                } => self.ask_certificate_status(ike_sa, peer, &identity, &certificate),
                IkeEvent::IkeSaDown {
                    ike_sa,
                    peer,
                    reason,
                } => {
                    if let Some(task) = self.status_checks.remove(&ike_sa) {
                        task.abort();
                    }
                    match reason {
                        // One line naming the serial, where the status
                        // came from and why (as IKEv2's refusals do).
                        ipsec::ikev1::DownReason::CertificateRefused(_) => {
                            tracing::warn!("IPsec: {peer}: IKE SA ended: {reason}")
                        }
                        _ => tracing::info!("IPsec: {peer}: IKE SA ended: {reason}"),
                    }
                }
                IkeEvent::ChildSaUp(child) => self.child_up(now, *child),
                IkeEvent::ChildSaDown {
                    inbound_spi,
                    outbound_spi,
                    reason,
                    ..
                } => self.child_down(inbound_spi, outbound_spi, &reason.to_string()),
                IkeEvent::PeerMoved { ike_sa, peer } => {
                    for c in self.clients.values_mut().filter(|c| c.ike_sa == ike_sa) {
                        c.send_to = peer;
                    }
                }
                IkeEvent::Refused { peer, reason } => self.refusals.log(now, peer, &reason),
            }
        }
    }

    /// Asks the sessions' owner about a client certificate in a task of
    /// its own; the answer comes back on `status_tx`.
    fn ask_certificate_status(
        &mut self,
        ike_sa: IkeSaId,
        peer: SocketAddr,
        identity: &str,
        certificate: &ipsec::ikev1::certificates::PeerCertificate,
    ) {
        if self.status_checks.contains_key(&ike_sa) {
            return;
        }
        let asked = self.l2tp.certificate_status(peer, identity, certificate);
        let answers = self.status_tx.clone();
        let task = tokio::spawn(async move {
            let _ = answers.send((ike_sa, asked.await));
        });
        self.status_checks.insert(ike_sa, task.abort_handle());
    }

    fn child_up(&mut self, now: Instant, child: ChildSa) {
        let (inbound, outbound) = match (
            EspSa::new(&child.inbound, now),
            EspSa::new(&child.outbound, now),
        ) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!("IPsec: {}: cannot key ESP: {e}", child.peer);
                return;
            }
        };
        let key = child.peer;
        let inbound_spi = inbound.spi();
        let outbound_spi = outbound.spi();
        let out_tx = self.out_tx.clone();
        let next_client = &mut self.next_client;
        let client = self.clients.entry(key).or_insert_with(|| {
            let id = *next_client;
            *next_client += 1;
            Client {
                l2tp: L2tpPeer::Ipsec { sa: id, addr: key },
                send_to: child.peer,
                udp_encapsulated: child.udp_encapsulated,
                outbound: Vec::new(),
                reply: Arc::new(move |datagram: Vec<u8>| {
                    // Never blocks: a full queue drops, as a router would.
                    let _ = out_tx.try_send((key, datagram));
                }),
                ike_sa: child.ike_sa,
            }
        });
        client.ike_sa = child.ike_sa;
        client.udp_encapsulated = child.udp_encapsulated;
        client
            .outbound
            .push((inbound_spi, outbound, child.peer_port));
        self.inbound.insert(inbound);
        self.spi_client.insert(inbound_spi, key);
        // ESP that arrived for this SA before Quick Mode message 3 did.
        let early = std::mem::take(&mut self.early_esp);
        for (at, udp_from, from, mut packet) in early {
            if now.duration_since(at) <= EARLY_ESP_AGE {
                self.esp_in(udp_from, from, &mut packet);
            } else {
                self.counters.esp_dropped(
                    EspDrop::UnknownSpi,
                    Some(from),
                    &"kept for an SA being negotiated, too long",
                );
            }
        }
        tracing::info!(
            "IPsec: {} ({}): ESP {} up, SPIs {inbound_spi:08x} in, {outbound_spi:08x} out{}",
            child.peer,
            child.peer_identity,
            child.suite,
            if child.udp_encapsulated {
                ", in UDP"
            } else {
                ""
            }
        );
    }

    fn child_down(&mut self, inbound_spi: u32, outbound_spi: u32, reason: &str) {
        self.inbound.remove(inbound_spi);
        let Some(key) = self.spi_client.remove(&inbound_spi) else {
            return;
        };
        tracing::info!(
            "IPsec: {key}: ESP SPIs {inbound_spi:08x}/{outbound_spi:08x} ended: {reason}"
        );
        let Some(client) = self.clients.get_mut(&key) else {
            return;
        };
        client.outbound.retain(|(spi, _, _)| *spi != inbound_spi);
        if client.outbound.is_empty() {
            let l2tp = client.l2tp;
            self.clients.remove(&key);
            self.l2tp.peer_gone(l2tp);
        }
    }
}

/// Encrypts `payload` with `out.sa` into the batch of the socket it goes
/// out of (NAT-T or raw ESP); a full batch is written first.
fn queue_esp(
    sockets: &IpsecSockets,
    out_nat_t: &mut SendBatch,
    out_raw: &mut SendBatch,
    out: OutboundEsp<'_>,
    next_header: u8,
    payload: &[u8],
) {
    let (batch, fd, to, udp) = if out.udp_encapsulated {
        (out_nat_t, sockets.nat_t.as_raw_fd(), out.to, true)
    } else if let Some(raw) = &sockets.esp {
        (
            out_raw,
            raw.as_raw_fd(),
            SocketAddr::new(out.to.ip(), 0),
            false,
        )
    } else {
        return;
    };
    if batch.is_full() {
        if udp {
            batch.flush_udp(fd);
        } else {
            batch.flush(fd);
        }
    }
    let sa = out.sa;
    batch.push_with(to, |slot| {
        match sa.encapsulate(Instant::now(), next_header, payload, slot) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("IPsec: cannot encapsulate for {}: {e}", out.to);
                false
            }
        }
    });
}

/// The source address the routing table picks for `remote` (a connected
/// UDP socket sends nothing).
fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let bind: SocketAddr = if remote.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let probe = std::net::UdpSocket::bind(bind).ok()?;
    probe.connect(remote).ok()?;
    Some(probe.local_addr().ok()?.ip())
}

#[cfg(test)]
mod timer_cache_tests {
    use super::*;

    #[test]
    fn the_responders_are_asked_at_most_once_per_refresh() {
        let t0 = Instant::now();
        let mut cache = TimerCache::default();
        let mut asked = 0;
        let due = t0 + Duration::from_secs(10);
        let mut ask = |answer: Option<Instant>| {
            asked += 1;
            answer
        };
        assert_eq!(cache.deadline(t0, || ask(Some(due))), due);
        // Within the refresh: not asked again; woken at the refresh to
        // learn of timers set meanwhile.
        let soon = t0 + Duration::from_millis(10);
        let refresh = t0 + TimerCache::REFRESH;
        assert_eq!(cache.deadline(soon, || ask(Some(soon))), refresh);
        // A deadline before the refresh is kept.
        let mut cache2 = TimerCache::default();
        let early = t0 + Duration::from_millis(20);
        assert_eq!(cache2.deadline(t0, || Some(early)), early);
        assert_eq!(cache2.deadline(soon, || None), early);
        // After the refresh: asked again.
        let later = refresh + Duration::from_millis(1);
        assert_eq!(
            cache.deadline(later, || ask(None)),
            later + TimerCache::IDLE
        );
        assert_eq!(asked, 2);
    }

    #[test]
    fn a_fired_deadline_is_asked_for_again_at_once() {
        let t0 = Instant::now();
        let mut cache = TimerCache::default();
        let due = t0 + Duration::from_millis(5);
        assert_eq!(cache.deadline(t0, || Some(due)), due);
        // Within the refresh the spent deadline would come back, and a
        // sleep until it would fire at once, over and over.
        let after = t0 + Duration::from_millis(6);
        assert_eq!(cache.deadline(after, || None), due);
        cache.fired();
        let next = t0 + Duration::from_secs(20);
        assert_eq!(cache.deadline(after, || Some(next)), next);
    }
}
