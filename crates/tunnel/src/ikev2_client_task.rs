//! The task behind [`crate::ikev2_client::Ikev2Client`]: the IKE sockets
//! (shared with the L2TP/IPsec client's opener), the initiator's timers,
//! the EAP-MSCHAPv2 peer, and tunnel-mode ESP both ways. ESP is read in
//! batches (`recvmmsg`) and decrypted in place.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipsec::esp::{EspSa, InboundSas};
use ipsec::ikev2::traffic_selectors::TrafficSelector;
use ipsec::ikev2::{ChildSa, Ikev2ClientEvent, Ikev2Initiator, Ikev2InitiatorConfig};
use ipsec::udp_encap::{classify, Port4500, NON_ESP_MARKER};
use tokio::sync::{mpsc, oneshot};
use zeroize::Zeroizing;

use crate::datagram_batch::{read_batches, RecvBatch, SendBatch, BATCH};
use crate::direct_path::{DirectPath, PACKETS_PER_WAKE};
use crate::ikev2_client::Ikev2Connected;
use crate::ikev2_eap::{IkeEapPeer, PeerStep};
use crate::l2tp_ipsec_client_task::{readable_optional, route_source, Sockets, SETTLE};
use crate::packet_source::{read_source, take_batches};

/// RFC 4303 §2.6 / RFC 2003: the next header of an IPv4 packet in tunnel
/// mode, and of a dummy packet (RFC 4303 §2.6, traffic flow confidentiality).
const IPV4_IN_IP: u8 = 4;
const NO_NEXT_HEADER: u8 = 59;
const DATAGRAM: usize = 4096;
/// How often we ask the routing table which address reaches the server:
/// a change (another network, a new lease) is announced with MOBIKE.
const ADDRESS_CHECK: Duration = Duration::from_secs(1);

pub(crate) struct TaskChannels {
    pub out_rx: mpsc::Receiver<Vec<u8>>,
    pub in_tx: mpsc::Sender<Vec<u8>>,
    pub close_rx: oneshot::Receiver<()>,
    /// The host side, once the caller has attached it and hands it over
    /// (then `out_rx` and `in_tx` carry nothing).
    pub direct_rx: Option<oneshot::Receiver<DirectPath>>,
    pub up_tx: Option<oneshot::Sender<Result<Ikev2Connected, String>>>,
    pub ended: Arc<Mutex<Option<String>>>,
}

struct Task {
    server: SocketAddr,
    initiator: Ikev2Initiator,
    eap: Option<IkeEapPeer>,
    sockets: Sockets,
    inbound: InboundSas,
    /// Outbound SAs by the inbound SPI of their pair, with the instant
    /// they were installed; the newest settled one is used.
    outbound: Vec<(u32, EspSa, Instant)>,
    udp_encapsulated: bool,
    esp_peer: SocketAddr,
    /// What the server let us reach and our address: inbound packets must
    /// match them (RFC 4301 §5.2: the SA's selectors are checked after
    /// decryption).
    server_selectors: Vec<TrafficSelector>,
    virtual_ipv4: Option<Ipv4Addr>,
    connected: Option<Ikev2Connected>,
    channels: TaskChannels,
    /// The TUN device, read and written by this task (`direct_rx`).
    direct: Option<DirectPath>,
    last_refusal: Option<String>,
    end: Option<String>,
    /// ESP waiting for one `sendmmsg` (UDP GSO where the runs allow) on
    /// the NAT-T socket, and on the raw ESP socket.
    out_nat_t: SendBatch,
    out_raw: SendBatch,
    dropped: u64,
    warned_no_socket: bool,
    /// Our address towards the server, as last seen in the routing table.
    local: SocketAddr,
    /// A move announced and not yet answered: the old address, when it
    /// was noticed, and the answers counted before it.
    moving: Option<(IpAddr, Instant, u64)>,
    /// The NAT-timeout measurement as last reported (ikev2_client_nat).
    nat_reported: (ipsec::ikev2::nat_probe::NatTimeoutStatus, Duration),
}

pub(crate) async fn run(
    server: SocketAddr,
    config: Ikev2InitiatorConfig,
    eap: Option<(String, Zeroizing<String>)>,
    sockets: Sockets,
    channels: TaskChannels,
) {
    let local_port = sockets.ike.local_addr().map(|a| a.port()).unwrap_or(500);
    let local = SocketAddr::new(sockets.local, local_port);
    tracing::info!("IKEv2: connecting to {server} from {local}");
    let eap =
        eap.map(|(user, password)| IkeEapPeer::new(&user, &password, &mut rand::thread_rng()));
    let mut task = Task {
        server,
        initiator: Ikev2Initiator::new(config, local, server, Instant::now()),
        eap,
        sockets,
        inbound: InboundSas::new(),
        outbound: Vec::new(),
        udp_encapsulated: false,
        esp_peer: server,
        server_selectors: Vec::new(),
        virtual_ipv4: None,
        connected: None,
        channels,
        direct: None,
        last_refusal: None,
        end: None,
        out_nat_t: SendBatch::new_udp(),
        out_raw: SendBatch::new(),
        dropped: 0,
        warned_no_socket: false,
        local,
        moving: None,
        nat_reported: (Default::default(), Duration::ZERO),
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
        let mut address_check = tokio::time::interval(ADDRESS_CHECK);
        address_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
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
                        if from.ip() == server {
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
                        self.flush_host();
                    }
                }
                r = readable_optional(esp.as_deref()) => {
                    if let (Ok(()), Some(esp)) = (r, esp.as_deref()) {
                        read_batches(esp, &mut batch, |from, d| {
                            if from.ip() == server {
                                self.raw_esp(d);
                            }
                        });
                        self.flush_host();
                    }
                }
                r = read_source(self.direct.as_mut().map(|p| &mut *p.source)) => self.take_from_host(r),
                r = async { self.channels.direct_rx.as_mut().expect("guarded").await },
                    if self.channels.direct_rx.is_some() =>
                {
                    self.channels.direct_rx = None;
                    if let Ok(path) = r {
                        self.direct = Some(path);
                    }
                }
                n = self.channels.out_rx.recv_many(&mut outgoing, BATCH) => {
                    if n > 0 {
                        for packet in outgoing.drain(..) {
                            self.send_packet(&packet);
                        }
                        self.flush_esp();
                    }
                }
                _ = &mut self.channels.close_rx => {
                    // §1.4.1: deleting the IKE SA deletes its child SAs.
                    self.initiator.close(Instant::now());
                    self.flush();
                    self.finish("closed".to_string());
                    break;
                }
                _ = tokio::time::sleep_until(deadline) => self.initiator.handle_timeout(Instant::now()),
                _ = address_check.tick() => self.check_local_address(),
                _ = crate::ikev2_client_moves::nudged() => self.check_local_address(),
            }
            self.note_move_done();
        }
        if self.dropped > 0 {
            tracing::debug!("IKEv2: {} ESP packets dropped", self.dropped);
        }
    }

    /// RFC 4555 §3.5: when the address the routing table picks for the
    /// server changes, the server is told from the new one (the sockets
    /// are bound to the wildcard address, so they send from it already).
    fn check_local_address(&mut self) {
        if !self.initiator.is_established() {
            return;
        }
        let Some(now_local) = route_source(self.server) else {
            return;
        };
        if now_local == self.local.ip() {
            return;
        }
        let new_local = SocketAddr::new(now_local, self.local.port());
        let old = std::mem::replace(&mut self.local, new_local);
        let answered = self.initiator.address_updates_answered();
        if self
            .initiator
            .local_address_changed(Instant::now(), new_local)
        {
            // A move on top of one in flight keeps the first start and
            // origin: the report covers the whole way.
            let (from, since, _) = self.moving.unwrap_or((old.ip(), Instant::now(), answered));
            self.moving = Some((from, since, answered));
            tracing::info!(
                "IKEv2: our address changed from {} to {}: telling the server (MOBIKE)",
                old.ip(),
                now_local
            );
        } else {
            tracing::warn!(
                "IKEv2: our address changed from {} to {}, and the server does not support MOBIKE: the tunnel will fail (--reconnect starts again)",
                old.ip(),
                now_local
            );
            crate::ikev2_client_moves::report(crate::ikev2_client_moves::AddressMove::CannotMove {
                server: self.server,
                old: old.ip(),
                new: now_local,
            });
        }
    }

    /// The server answered the address update: the move is reported.
    fn note_move_done(&mut self) {
        let Some((old, since, answered)) = self.moving else {
            return;
        };
        if self.initiator.address_updates_answered() == answered {
            return;
        }
        self.moving = None;
        let took = since.elapsed();
        tracing::info!(
            "IKEv2: the SA moved from {old} to {} in {} ms (MOBIKE)",
            self.local.ip(),
            took.as_millis()
        );
        crate::ikev2_client_moves::report(crate::ikev2_client_moves::AddressMove::Moved {
            server: self.server,
            old,
            new: self.local.ip(),
            took,
        });
    }

    fn nat_t_datagram(&mut self, datagram: &mut [u8]) {
        match classify(datagram) {
            Port4500::Ike(_) => {
                self.initiator
                    .handle_datagram(Instant::now(), true, &datagram[4..]);
            }
            Port4500::Esp(_) => self.esp_in(datagram),
            Port4500::Keepalive => {}
            Port4500::Malformed => self.dropped += 1,
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
            self.dropped += 1;
            return;
        }
        self.esp_in(&mut packet[header_len..]);
    }

    fn esp_in(&mut self, packet: &mut [u8]) {
        let now = Instant::now();
        let decapsulated = match self.inbound.decapsulate(now, packet) {
            Ok(d) => d,
            Err(e) => {
                // Raw ESP sockets see every SA's packets on this host.
                self.dropped += 1;
                tracing::debug!("IKEv2: ESP dropped: {e}");
                return;
            }
        };
        self.initiator.note_traffic(now);
        if decapsulated.next_header == NO_NEXT_HEADER {
            return;
        }
        let inner = &packet[decapsulated.payload];
        if decapsulated.next_header != IPV4_IN_IP || !self.inbound_allowed(inner) {
            self.dropped += 1;
            return;
        }
        match &self.direct {
            Some(path) => {
                path.counters.count_in(inner.len());
                path.sink.send(inner);
            }
            None => {
                let _ = self.channels.in_tx.try_send(inner.to_vec());
            }
        }
    }

    /// Writes what the last socket reads queued for the host: one
    /// coalesced TUN write per burst.
    fn flush_host(&self) {
        if let Some(path) = &self.direct {
            path.sink.flush();
        }
    }

    /// The host has packets for the tunnel: this batch and the ones
    /// already waiting (a bounded number), then one `sendmmsg`.
    fn take_from_host(&mut self, ready: std::io::Result<()>) {
        let Some(mut path) = self.direct.take() else {
            return;
        };
        if let Err(e) = ready {
            self.host_gone(e);
            return;
        }
        let counters = &path.counters;
        let read = take_batches(&mut *path.source, PACKETS_PER_WAKE, &mut |packet| {
            counters.count_out(packet.len());
            self.send_packet(packet);
        });
        self.flush_esp();
        match read {
            Ok(()) => self.direct = Some(path),
            Err(e) => self.host_gone(e),
        }
    }

    /// The device failed to read: it is gone, and the tunnel with it.
    fn host_gone(&mut self, e: std::io::Error) {
        tracing::warn!("IKEv2: {e}");
        self.initiator.close(Instant::now());
        self.finish("the TUN device closed".to_string());
    }

    /// RFC 4301 §5.2 step 4: an inner packet must come from what the
    /// server's selectors cover and be addressed to us.
    fn inbound_allowed(&self, packet: &[u8]) -> bool {
        let (Some(src), Some(dst)) = (ipv4_at(packet, 12), ipv4_at(packet, 16)) else {
            return false;
        };
        if packet[0] >> 4 != 4 {
            return false;
        }
        if self.virtual_ipv4.is_some_and(|v| v != dst) {
            return false;
        }
        self.server_selectors
            .iter()
            .any(|ts| in_range(ts, IpAddr::V4(src)))
    }

    fn send_packet(&mut self, packet: &[u8]) {
        // Only what the server agreed to carry (its TSr) goes in ESP.
        let Some(dst) = ipv4_at(packet, 16) else {
            self.dropped += 1;
            return;
        };
        if packet[0] >> 4 != 4
            || !self
                .server_selectors
                .iter()
                .any(|ts| in_range(ts, IpAddr::V4(dst)))
        {
            self.dropped += 1;
            return;
        }
        let to = if self.udp_encapsulated {
            self.esp_peer
        } else if self.sockets.esp.is_some() {
            SocketAddr::new(self.server.ip(), 0)
        } else {
            if !self.warned_no_socket {
                self.warned_no_socket = true;
                tracing::warn!(
                    "IKEv2: no raw ESP socket (needs CAP_NET_RAW) and no NAT: cannot send ESP"
                );
            }
            return;
        };
        if self.out_nat_t.is_full() || self.out_raw.is_full() {
            self.flush_esp();
        }
        let now = Instant::now();
        let settled = self
            .outbound
            .iter()
            .rposition(|(_, _, installed)| now >= *installed + SETTLE)
            .unwrap_or(self.outbound.len().saturating_sub(1));
        let Some((_, sa, _)) = self.outbound.get_mut(settled) else {
            return;
        };
        let batch = if self.udp_encapsulated {
            &mut self.out_nat_t
        } else {
            &mut self.out_raw
        };
        let queued = batch.push_with(to, |slot| {
            match sa.encapsulate(now, IPV4_IN_IP, packet, slot) {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("IKEv2: cannot encapsulate: {e}");
                    false
                }
            }
        });
        if !queued {
            self.dropped += 1;
        }
        // Our ESP passes the NAT: a NAT probe awaited says nothing now.
        self.initiator.note_sent(now);
    }

    /// Writes the queued ESP: one `sendmmsg` per socket, UDP GSO on the
    /// NAT-T one. What a full socket buffer refuses is dropped and counted.
    fn flush_esp(&mut self) {
        let queued = self.out_nat_t.len() + self.out_raw.len();
        if queued == 0 {
            return;
        }
        let mut sent = 0;
        if !self.out_nat_t.is_empty() {
            sent += self.out_nat_t.flush_udp(self.sockets.nat_t.as_raw_fd()).0;
        }
        if let Some(raw) = &self.sockets.esp {
            if !self.out_raw.is_empty() {
                sent += self.out_raw.flush(raw.as_raw_fd()).0;
            }
        }
        self.dropped += queued.saturating_sub(sent) as u64;
    }

    fn transmit(&self, t: &ipsec::ikev1::Transmit) {
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
        loop {
            while let Some(t) = self.initiator.poll_transmit() {
                self.transmit(&t);
            }
            let Some(event) = self.initiator.poll_event() else {
                break;
            };
            self.event(event);
        }
        let nat = (
            self.initiator.nat_timeout(),
            self.initiator.keepalive_interval(),
        );
        if self.initiator.is_established() && nat != self.nat_reported {
            self.nat_reported = nat;
            crate::ikev2_client_nat::report(crate::ikev2_client_nat::NatReport {
                server: self.server,
                local: self.local.ip(),
                status: nat.0,
                keepalive: nat.1,
            });
        }
        if self.initiator.is_closed() && self.end.is_none() {
            let reason = self
                .last_refusal
                .clone()
                .unwrap_or_else(|| "the IKE SA ended".to_string());
            self.finish(reason);
        }
    }

    fn event(&mut self, event: Ikev2ClientEvent) {
        let now = Instant::now();
        match event {
            Ikev2ClientEvent::EapRequest { packet } => {
                let Some(eap) = self.eap.as_mut() else {
                    self.last_refusal =
                        Some("the server wants EAP, but a pre-shared key was given".to_string());
                    self.initiator.close(now);
                    return;
                };
                match eap.handle(now, &packet) {
                    PeerStep::Respond(p) => self.initiator.eap_response(now, &p),
                    PeerStep::Finished(msk) => self.initiator.eap_finished(now, msk),
                    PeerStep::Failed(reason) => {
                        self.last_refusal = Some(reason);
                        self.initiator.close(now);
                    }
                    PeerStep::Nothing => {}
                }
            }
            Ikev2ClientEvent::Connected {
                virtual_ipv4,
                dns,
                server_selectors,
                nat,
                suite,
            } => {
                let subject = self.initiator.server_subject().to_string();
                tracing::info!(
                    "IKEv2: connected to {}{}: {}, ESP {suite}, {nat}",
                    self.server,
                    if subject.is_empty() {
                        String::new()
                    } else {
                        format!(" (certificate \"{subject}\")")
                    },
                    virtual_ipv4.map_or("no address".to_string(), |a| format!("address {a}")),
                );
                self.virtual_ipv4 = virtual_ipv4;
                self.server_selectors = server_selectors.clone();
                self.connected = Some(Ikev2Connected {
                    local: self.sockets.local,
                    virtual_ipv4,
                    dns,
                    server_selectors,
                    esp_suite: suite,
                    nat,
                    udp_encapsulated: false,
                    server_subject: subject,
                });
            }
            Ikev2ClientEvent::ChildSaUp(child) => self.child_up(*child),
            Ikev2ClientEvent::ChildSaDown {
                inbound_spi,
                outbound_spi,
            } => {
                tracing::info!("IKEv2: ESP SA in {inbound_spi:08x} out {outbound_spi:08x} ended");
                self.inbound.remove(inbound_spi);
                self.outbound.retain(|(spi, _, _)| *spi != inbound_spi);
                if self.outbound.is_empty() && !self.initiator.is_closed() {
                    self.last_refusal = Some("the server deleted the tunnel's ESP SA".into());
                    self.initiator.close(now);
                }
            }
            Ikev2ClientEvent::NatTimeoutMeasured { timeout, keepalive } => {
                tracing::info!(
                    "IKEv2: the NAT keeps our UDP mapping at least {} s; NAT keepalive every {} s",
                    timeout.as_secs(),
                    keepalive.as_secs()
                );
            }
            Ikev2ClientEvent::IkeSaRekeyed => {
                tracing::info!(
                    "IKEv2: IKE SA with {} rekeyed ({} so far); the tunnel carries on",
                    self.initiator.remote(),
                    self.initiator.ike_rekeys()
                );
            }
            Ikev2ClientEvent::IkeSaRekeyFailed { reason } => {
                tracing::warn!(
                    "IKEv2: IKE SA rekey with {} failed ({reason}); trying again shortly",
                    self.initiator.remote()
                );
            }
            Ikev2ClientEvent::Down { reason } => {
                tracing::info!(
                    "IKEv2: IKE SA with {} ended: {reason}",
                    self.initiator.remote()
                );
                if self.last_refusal.is_none() {
                    self.last_refusal = Some(reason);
                }
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
                tracing::warn!("IKEv2: cannot install the ESP SA: {e}");
                return;
            }
        };
        let rekey = !self.outbound.is_empty();
        tracing::info!(
            "IKEv2: ESP SA {} in {:08x} out {:08x}: {}, {}",
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
        self.udp_encapsulated = child.udp_encapsulated;
        self.esp_peer = child.peer;
        if !child.server_selectors.is_empty() {
            self.server_selectors = child.server_selectors.clone();
        }
        self.inbound.insert(inbound);
        self.outbound.push((child.inbound.spi, outbound, now));
        if let (Some(up), Some(mut connected)) =
            (self.channels.up_tx.take(), self.connected.clone())
        {
            connected.udp_encapsulated = child.udp_encapsulated;
            let _ = up.send(Ok(connected));
        }
    }

    fn finish(&mut self, reason: String) {
        if self.end.is_some() {
            return;
        }
        tracing::info!("IKEv2: connection to {} ended: {reason}", self.server);
        if let Ok(mut e) = self.channels.ended.lock() {
            *e = Some(reason.clone());
        }
        if let Some(up) = self.channels.up_tx.take() {
            let _ = up.send(Err(reason.clone()));
        }
        self.end = Some(reason);
    }
}

fn ipv4_at(packet: &[u8], at: usize) -> Option<Ipv4Addr> {
    let b = packet.get(at..at + 4)?;
    Some(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
}

/// Whether `address` lies in the selector's range (ports and protocol are
/// not narrowed by the servers we meet: strongSwan, Windows).
fn in_range(ts: &TrafficSelector, address: IpAddr) -> bool {
    match (ts.start, ts.end, address) {
        (IpAddr::V4(s), IpAddr::V4(e), IpAddr::V4(a)) => s <= a && a <= e,
        (IpAddr::V6(s), IpAddr::V6(e), IpAddr::V6(a)) => s <= a && a <= e,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selector_ranges() {
        let ts = TrafficSelector {
            protocol: 0,
            start_port: 0,
            end_port: 65535,
            start: "10.79.0.0".parse().unwrap(),
            end: "10.79.0.255".parse().unwrap(),
        };
        assert!(in_range(&ts, "10.79.0.1".parse().unwrap()));
        assert!(!in_range(&ts, "10.79.1.0".parse().unwrap()));
        assert!(!in_range(&ts, "::1".parse().unwrap()));
    }
}
