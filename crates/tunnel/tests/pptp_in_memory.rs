//! A PPTP client and server in memory, core against core (no sockets, no
//! tokio, a simulated clock): the PNS and PAC control connections
//! exchange bytes, the server takes its Call ID from a
//! [`pptp::demux::CallTable`] and routes the client's GRE through it
//! (wrapped in IPv4, as a raw socket returns it), two `GreSession`s carry
//! PPP, and two PPP `Link`s (a server with an MS-CHAPv2 authenticator, a
//! client) negotiate LCP, MS-CHAPv2, CCP/MPPE (128-bit stateless) and
//! IPCP. Then IP packets flow both ways while a seeded wire drops some
//! GRE data datagrams and swaps others.
//!
//! What must hold: every packet not dropped arrives, decrypted, exactly
//! once and in the order sent (GRE's reorder buffer puts swapped pairs
//! back, RFC 2637 §4.3; stateless MPPE survives the gaps, RFC 3078 §3),
//! and the receivers' GRE counters match what the wire injected.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use ppp::auth::{AuthProtocol, Secret};
use ppp::ccp::CcpConfig;
use ppp::ipcp::IpcpConfig;
use ppp::link::{Inbound, Link, LinkConfig, LinkEvent, LinkUp, NetworkSettings, Role};
use pptp::demux::CallTable;
use pptp::{Event, GreConfig, GreSession, Pac, PacConfig, Pns, PnsConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
const CLIENT_TUNNEL_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
const PASSWORD: &str = "secret";
/// PPP protocol number of an MPPE packet (RFC 3078 §3: 0x00FD).
const PPP_COMPRESSED_DATAGRAM: u16 = 0x00fd;
/// IP packets each side sends per round.
const PER_ROUND: usize = 8;
/// The time between rounds: past the GRE reorder time-out (50 ms), so
/// every gap a drop leaves is skipped before the next round.
const ROUND_GAP: Duration = Duration::from_millis(200);

/// What the wire does to one direction's data datagrams in one round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injection {
    None,
    /// Drop the data datagram at this index of the round (never the last,
    /// so a later one in the round reveals the gap).
    Drop(usize),
    /// Deliver the data datagrams at this index and the next swapped.
    Swap(usize),
}

/// One direction of the network between the two GRE sessions.
#[derive(Default)]
struct Wire {
    /// Datagrams on their way, each marked when it left after a dropped
    /// one of the same round (it will find the gap open).
    in_flight: VecDeque<(Vec<u8>, bool)>,
    /// This round's plan for data datagrams.
    plan: Option<Injection>,
    /// Data datagrams seen this round (to apply the plan).
    data_this_round: usize,
    /// Index, among all data datagrams of this direction, of the next one
    /// (data datagram `j` carries the `j`-th IP packet sent).
    data_seen: usize,
    /// What was injected, in total.
    dropped_packets: Vec<usize>,
    swaps: u64,
    /// Since a drop and until the clock moves on, the receiver holds every
    /// sequenced datagram that arrives: each counts as reordered.
    gap_open: bool,
    /// Sequenced datagrams delivered while a gap was open.
    held_behind_gaps: u64,
    /// A datagram held back for a swap.
    held_for_swap: Option<Vec<u8>>,
}

impl Wire {
    /// Takes a datagram the sender wrote, applying the round's plan.
    fn send(&mut self, datagram: Vec<u8>) {
        let gre = pptp::gre::decode(&datagram).expect("our GRE encodes");
        let is_data = !gre.payload.is_empty()
            && ppp::frame::decode(gre.payload).map(|f| f.protocol) == Ok(PPP_COMPRESSED_DATAGRAM);
        if !is_data {
            self.in_flight.push_back((datagram, self.gap_open));
            return;
        }
        let packet = self.data_seen;
        self.data_seen += 1;
        let index = self.data_this_round;
        self.data_this_round += 1;
        match self.plan {
            Some(Injection::Drop(i)) if i == index => {
                self.dropped_packets.push(packet);
                // Everything sequenced behind it until the clock moves on
                // waits in the receiver's reorder buffer.
                self.gap_open = true;
            }
            Some(Injection::Swap(i)) if i == index => {
                self.held_for_swap = Some(datagram);
            }
            Some(Injection::Swap(i)) if i + 1 == index => {
                self.in_flight.push_back((datagram, false));
                let first = self.held_for_swap.take().expect("held first");
                self.in_flight.push_back((first, false));
                self.swaps += 1;
            }
            _ => self.in_flight.push_back((datagram, self.gap_open)),
        }
    }

    /// The next datagram to deliver.
    fn recv(&mut self) -> Option<Vec<u8>> {
        let (d, behind_gap) = self.in_flight.pop_front()?;
        if behind_gap && pptp::gre::decode(&d).is_ok_and(|g| g.header.seq.is_some()) {
            self.held_behind_gaps += 1;
        }
        Some(d)
    }

    fn start_round(&mut self, plan: Injection) {
        self.plan = Some(plan);
        self.data_this_round = 0;
    }

    /// The clock moved past the reorder time-out: gaps are skipped.
    fn time_passed(&mut self) {
        self.gap_open = false;
        assert!(self.held_for_swap.is_none(), "a swap was left half done");
    }
}

/// One end of the tunnel: its PPP link, its GRE session once the call is
/// up, and the IP packets that came out of the link.
struct End {
    link: Link,
    gre: Option<GreSession>,
    gre_config: GreConfig,
    received: Vec<Vec<u8>>,
    up: Option<LinkUp>,
    decrypted_garbage: u64,
}

impl End {
    fn new(link: LinkConfig, gre_config: GreConfig) -> Self {
        End {
            link: Link::new(link),
            gre: None,
            gre_config,
            received: Vec::new(),
            up: None,
            decrypted_garbage: 0,
        }
    }

    fn gre(&mut self) -> &mut GreSession {
        self.gre.as_mut().expect("the call is up")
    }

    /// The link's control frames into GRE, and its events; true if any.
    fn drive_link(&mut self, now: Instant) -> bool {
        let mut busy = false;
        while let Some(frame) = self.link.poll_transmit() {
            busy = true;
            if let Some(gre) = self.gre.as_mut() {
                gre.send_control(now, &frame)
                    .expect("GRE takes PPP control");
            }
        }
        while let Some(event) = self.link.poll_event() {
            busy = true;
            let server = self.link.role() == Role::Server;
            match event {
                LinkEvent::AuthRequest(request) if server => {
                    assert_eq!(request.username, "alice");
                    self.link.provide_secret(
                        now,
                        Secret::Password(zeroize::Zeroizing::new(PASSWORD.into())),
                    );
                }
                LinkEvent::Authenticated { .. } if server => self.link.start_network(
                    now,
                    NetworkSettings {
                        ipcp: Some(IpcpConfig::server(
                            SERVER_ADDR,
                            CLIENT_TUNNEL_ADDR,
                            [None, None],
                            [None, None],
                        )),
                        ipv6cp: None,
                        ccp: Some(CcpConfig::require_128_stateless()),
                    },
                ),
                LinkEvent::Up(up) => self.up = Some(up),
                LinkEvent::Down(reason) => panic!("PPP link down: {reason}"),
                _ => {}
            }
        }
        busy
    }

    /// In-order GRE payloads into the PPP link; IP packets it yields are
    /// kept.
    fn deliver(&mut self, now: Instant) {
        let Some(gre) = self.gre.as_mut() else { return };
        while let Some(mut frame) = gre.poll_received() {
            match self.link.handle_frame(now, &mut frame) {
                Inbound::Ipv4(p) => {
                    if p.first() == Some(&0x45) {
                        self.received.push(p.to_vec());
                    } else {
                        self.decrypted_garbage += 1;
                    }
                }
                Inbound::Ipv6(_) => self.decrypted_garbage += 1,
                Inbound::Nothing => {}
            }
            gre.recycle(frame);
        }
    }

    fn send_ip(&mut self, now: Instant, packet: &[u8]) {
        let mut frame = Vec::new();
        self.link
            .send_ip(packet, &mut frame)
            .expect("the link is up");
        self.gre().send(now, &frame).expect("GRE takes the frame");
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.link.handle_timeout(now);
        if let Some(gre) = self.gre.as_mut() {
            gre.handle_timeout(now);
        }
    }
}

/// The whole world: both control cores, the server's call table, both
/// ends, and the wire each way.
struct World {
    now: Instant,
    pac: Pac,
    pns: Pns,
    /// The server's call table: Call IDs and where their GRE may come from.
    calls: CallTable<()>,
    server_call_id: Option<u16>,
    server: End,
    client: End,
    to_server: Wire,
    to_client: Wire,
}

/// An IPv4 header in front of a GRE packet, as the server's raw socket
/// returns it.
fn ipv4_around(source: Ipv4Addr, gre: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 20];
    d[0] = 0x45;
    d[2..4].copy_from_slice(&((20 + gre.len()) as u16).to_be_bytes());
    d[8] = 64;
    d[9] = pptp::IP_PROTOCOL_GRE;
    d[12..16].copy_from_slice(&source.octets());
    d[16..20].copy_from_slice(&[198, 51, 100, 1]);
    d.extend_from_slice(gre);
    d
}

/// A recognisable IPv4 packet: `from` says which side sent it, `n` which
/// one it is.
fn ip_packet(from: u8, n: usize) -> Vec<u8> {
    let mut p = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 17, 0, 0];
    p.extend_from_slice(&[10, 0, 10, from, 10, 0, 10, 99]);
    p.extend_from_slice(&(n as u32).to_be_bytes());
    p.extend((0..100 + n % 300).map(|i| (i as u8) ^ (n as u8) ^ from));
    let len = p.len() as u16;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    p
}

impl World {
    fn new(seed: u64, server_gre: GreConfig, client_gre: GreConfig) -> Self {
        let now = Instant::now();
        let mut server_link = LinkConfig::server("ras-test");
        server_link.lcp.require_auth = vec![AuthProtocol::MsChapV2];
        server_link.ipv6cp = None;
        server_link.ccp = Some(CcpConfig::require_128_stateless());
        server_link.rng_seed = Some(seed);
        let mut client_link = LinkConfig::client("alice", PASSWORD);
        client_link.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
        client_link.ipv6cp = None;
        client_link.ccp = Some(CcpConfig::require_128_stateless());
        client_link.rng_seed = Some(seed ^ 0x5eed);
        World {
            now,
            pac: Pac::new(PacConfig::default(), now),
            pns: Pns::new(
                PnsConfig {
                    first_call_id: 0x4321,
                    ..PnsConfig::default()
                },
                now,
            ),
            calls: CallTable::new(),
            server_call_id: None,
            server: End::new(server_link, server_gre),
            client: End::new(client_link, client_gre),
            to_server: Wire::default(),
            to_client: Wire::default(),
        }
    }

    /// Runs everything until nothing moves at this instant.
    fn pump(&mut self) {
        let now = self.now;
        for _ in 0..10_000 {
            let mut busy = false;
            // Control connection, both ways.
            while let Some(b) = self.pns.poll_transmit() {
                busy = true;
                self.pac.handle_input(now, &b);
            }
            while let Some(event) = self.pac.poll_event() {
                busy = true;
                self.on_pac_event(event);
            }
            while let Some(b) = self.pac.poll_transmit() {
                busy = true;
                self.pns.handle_input(now, &b);
            }
            while let Some(event) = self.pns.poll_event() {
                busy = true;
                if let Event::CallEstablished {
                    local_call_id,
                    peer_call_id,
                    peer_window,
                    ..
                } = event
                {
                    let config = self.client.gre_config.clone();
                    self.client.gre = Some(GreSession::new(
                        config,
                        local_call_id,
                        peer_call_id,
                        peer_window,
                    ));
                    self.client.link.lower_up(now);
                }
            }
            // PPP over GRE, both ways.
            busy |= self.server.drive_link(now);
            busy |= self.client.drive_link(now);
            if let Some(gre) = self.client.gre.as_mut() {
                while let Some(d) = gre.poll_transmit() {
                    busy = true;
                    self.to_server.send(d);
                }
            }
            if let Some(gre) = self.server.gre.as_mut() {
                while let Some(d) = gre.poll_transmit() {
                    busy = true;
                    self.to_client.send(d);
                }
            }
            while let Some(gre) = self.to_server.recv() {
                busy = true;
                // Through the server's demultiplexer, as from the raw socket.
                let datagram = ipv4_around(CLIENT_ADDR, &gre);
                let routed = self.calls.route(&datagram).expect("the client's call");
                assert_eq!(Some(routed.call_id), self.server_call_id);
                let gre = &datagram[routed.gre];
                self.server
                    .gre()
                    .handle_datagram(now, gre)
                    .expect("valid GRE");
            }
            while let Some(gre) = self.to_client.recv() {
                busy = true;
                self.client
                    .gre()
                    .handle_datagram(now, &gre)
                    .expect("valid GRE");
            }
            self.server.deliver(now);
            self.client.deliver(now);
            if !busy {
                return;
            }
        }
        panic!("the simulation does not settle");
    }

    fn on_pac_event(&mut self, event: Event) {
        match event {
            Event::CallIdNeeded { .. } => {
                let id = self.calls.register(CLIENT_ADDR, ());
                assert!(id.is_some());
                self.pac.assign_call_id(self.now, id).unwrap();
            }
            Event::CallEstablished {
                local_call_id,
                peer_call_id,
                peer_window,
                ..
            } => {
                self.server_call_id = Some(local_call_id);
                let config = self.server.gre_config.clone();
                self.server.gre = Some(GreSession::new(
                    config,
                    local_call_id,
                    peer_call_id,
                    peer_window,
                ));
                self.server.link.lower_up(self.now);
            }
            Event::CallCleared { local_call_id, .. } => {
                assert!(self.calls.release(local_call_id).is_some());
            }
            _ => {}
        }
    }

    /// Moves the clock on and runs every timer.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        self.pac.handle_timeout(now);
        self.pns.handle_timeout(now);
        self.server.handle_timeout(now);
        self.client.handle_timeout(now);
        self.to_server.time_passed();
        self.to_client.time_passed();
        self.pump();
    }

    /// Control connection, call, PPP negotiation: until both links are up.
    fn connect(&mut self) {
        self.pns.place_call(self.now).unwrap();
        for _ in 0..500 {
            self.pump();
            if self.server.up.is_some() && self.client.up.is_some() {
                return;
            }
            self.advance(Duration::from_millis(10));
        }
        panic!("the PPP links did not come up");
    }
}

/// The numbers of the IP packets a side sent, less the ones the wire
/// dropped, in order.
fn expected(sent: usize, dropped: &[usize]) -> Vec<Option<usize>> {
    (0..sent)
        .filter(|n| !dropped.contains(n))
        .map(Some)
        .collect()
}

/// The number of each packet that arrived, if it is exactly the packet
/// `from` sent with that number (`None` for anything else: garbage from
/// a wrong key, a packet cut short).
fn numbers(received: &[Vec<u8>], from: u8) -> Vec<Option<usize>> {
    received
        .iter()
        .map(|p| {
            let n = u32::from_be_bytes(p.get(20..24)?.try_into().ok()?) as usize;
            (*p == ip_packet(from, n)).then_some(n)
        })
        .collect()
}

fn plan(rng: &mut StdRng) -> Injection {
    match rng.gen_range(0..3) {
        0 => Injection::None,
        // Never the last of the round: a later datagram shows the gap.
        1 => Injection::Drop(rng.gen_range(0..PER_ROUND - 1)),
        _ => Injection::Swap(rng.gen_range(0..PER_ROUND - 1)),
    }
}

/// Connects, then sends `rounds` rounds of packets each way through the
/// lossy wire; returns the world for the caller's checks.
fn run(seed: u64, rounds: usize, server_gre: GreConfig, client_gre: GreConfig) -> World {
    let mut w = World::new(seed, server_gre, client_gre);
    w.connect();
    // Negotiation went through an ideal wire.
    for end in [&w.server, &w.client] {
        let gre = end.gre.as_ref().unwrap().stats();
        assert_eq!((gre.receive.lost, gre.receive.reordered), (0, 0));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut sent = 0;
    for _ in 0..rounds {
        w.to_server.start_round(plan(&mut rng));
        w.to_client.start_round(plan(&mut rng));
        for _ in 0..PER_ROUND {
            let now = w.now;
            w.client.send_ip(now, &ip_packet(21, sent));
            w.server.send_ip(now, &ip_packet(20, sent));
            sent += 1;
        }
        w.pump();
        w.advance(ROUND_GAP);
    }
    w.to_server.start_round(Injection::None);
    w.to_client.start_round(Injection::None);
    w.advance(ROUND_GAP);
    w
}

fn gre_config(recv_window: u16) -> GreConfig {
    GreConfig {
        recv_window,
        enforce_peer_window: false,
        ..GreConfig::default()
    }
}

#[test]
fn ppp_over_gre_with_loss_and_reordering() {
    for seed in [1u64, 2, 3] {
        const ROUNDS: usize = 40;
        let pac_window = PacConfig::default().recv_window;
        let pns_window = PnsConfig::default().recv_window;
        let w = run(seed, ROUNDS, gre_config(pac_window), gre_config(pns_window));

        // Authenticated with MS-CHAPv2, addressed, encrypted: both ends
        // derived the same MPPE keys (RFC 3079), each side's send key
        // the other's receive key.
        let (s_up, c_up) = (w.server.up.as_ref().unwrap(), w.client.up.as_ref().unwrap());
        assert_eq!(s_up.username.as_deref(), Some("alice"));
        assert_eq!(s_up.auth_protocol, Some(AuthProtocol::MsChapV2));
        assert!(s_up.mppe.is_some() && c_up.mppe.is_some(), "seed {seed}");
        assert_eq!(c_up.ipv4.as_ref().unwrap().local, CLIENT_TUNNEL_ADDR);
        let (sk, ck) = (
            s_up.master_keys.as_ref().unwrap(),
            c_up.master_keys.as_ref().unwrap(),
        );
        assert_eq!(sk.send, ck.recv);
        assert_eq!(sk.recv, ck.send);
        assert_ne!(sk.send, sk.recv);

        // The wire did inject both kinds of damage, both ways.
        for wire in [&w.to_server, &w.to_client] {
            assert!(
                !wire.dropped_packets.is_empty() && wire.swaps > 0,
                "seed {seed}: the plan injected nothing"
            );
        }

        let sent = ROUNDS * PER_ROUND;
        // Client → server: exactly the packets not dropped, in order.
        assert_eq!(
            numbers(&w.server.received, 21),
            expected(sent, &w.to_server.dropped_packets),
            "seed {seed}: client to server"
        );
        assert_eq!(
            numbers(&w.client.received, 20),
            expected(sent, &w.to_client.dropped_packets),
            "seed {seed}: server to client"
        );
        for (end, wire) in [(&w.server, &w.to_server), (&w.client, &w.to_client)] {
            assert_eq!(end.decrypted_garbage, 0, "seed {seed}");
            assert_eq!(end.link.stats().decrypt_errors, 0, "seed {seed}");
            let gre = end.gre.as_ref().unwrap().stats();
            // Each drop is one gap skipped (RFC 2637 §4.3) ...
            assert_eq!(
                gre.receive.lost,
                wire.dropped_packets.len() as u64,
                "seed {seed}"
            );
            // ... each swap one packet held until its predecessor came,
            // and everything that arrived behind a gap waited too.
            assert_eq!(
                gre.receive.reordered,
                wire.swaps + wire.held_behind_gaps,
                "seed {seed}"
            );
            assert_eq!(gre.receive.duplicates, 0);
            assert_eq!(gre.receive.too_old, 0);
            assert_eq!(gre.malformed + gre.wrong_call_id, 0);
        }
    }
}

#[test]
fn without_the_reorder_buffer_swapped_packets_are_lost() {
    // The same traffic with the receivers' reorder buffers off: what the
    // test above checks would fail, so it does test reordering.
    let no_reorder = GreConfig {
        reorder_capacity: 0,
        ..gre_config(64)
    };
    let w = run(1, 40, no_reorder.clone(), no_reorder);
    assert!(w.to_server.swaps > 0);
    assert_ne!(
        numbers(&w.server.received, 21),
        expected(40 * PER_ROUND, &w.to_server.dropped_packets)
    );
    let gre = w.server.gre.as_ref().unwrap().stats();
    assert_eq!(gre.receive.reordered, 0);
    assert!(gre.receive.too_old >= w.to_server.swaps);
}

#[test]
fn call_teardown_releases_the_call_id() {
    let mut w = run(7, 2, gre_config(64), gre_config(64));
    let client_call = w.pns.calls().next().unwrap().0;
    assert_eq!(w.calls.len(), 1);
    w.pns.clear_call(w.now, client_call).unwrap();
    w.pump();
    assert!(w.calls.is_empty(), "the PAC reported the call cleared");
    assert_eq!(w.pac.call_count(), 0);
    // The call's GRE is no longer routed.
    let stray = ipv4_around(CLIENT_ADDR, &{
        let mut g = Vec::new();
        pptp::gre::encode(
            w.server_call_id.unwrap(),
            Some(9999),
            None,
            b"\xff\x03\x00\x21",
            &mut g,
        )
        .unwrap();
        g
    });
    assert!(matches!(
        w.calls.route(&stray),
        Err(pptp::demux::Misroute::UnknownCall { .. })
    ));
}
