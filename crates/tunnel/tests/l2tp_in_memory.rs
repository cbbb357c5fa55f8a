//! The L2TP network server (the tokio driver) against LACs built from the
//! sans-IO `l2tp::Tunnel::new_lac` and PPP client `Link`s, through
//! channels instead of sockets: tunnel, call, MS-CHAPv2, IPCP, IP both
//! ways; two LACs behind one NAT both using tunnel ID 1; a transport
//! losing its peer; the port limit; garbage.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use l2tp::header::{decode, Packet};
use l2tp::{Event, SessionCloseReason, Tunnel, TunnelConfig};
use ppp::auth::{AuthProtocol, AuthRequest, Rejection, Secret};
use ppp::ipcp::IpcpConfig;
use ppp::link::{Inbound, Link, LinkConfig, LinkEvent, LinkUp, NetworkSettings};
use tokio::sync::{mpsc, watch};
use tunnel::hooks_support::*;
use tunnel::l2tp_server::{L2tpFront, L2tpPeer, L2tpReply, L2tpServer, L2tpServerConfig};
use tunnel::{AuthAnswer, LostCarrier, PacketSink, ServerHooks, SessionInfo};

const PASSWORD: &str = "correct horse";
const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 1);

#[derive(Default)]
struct Collect(Mutex<Vec<Vec<u8>>>);
impl PacketSink for Collect {
    fn send(&self, packet: &[u8]) {
        self.0.lock().unwrap().push(packet.to_vec());
    }
}

/// One user; each session gets the next client address; the test keeps
/// each session's injection queue and the reasons sessions ended.
#[derive(Default)]
struct TestHooks {
    next_host: AtomicU64,
    inject: Mutex<Vec<(Ipv4Addr, tunnel::PacketSender)>>,
    downs: Mutex<Vec<(String, EndReason)>>,
}

impl ServerHooks for TestHooks {
    fn authenticate(&self, _: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        Box::pin(async move {
            if request.username == "alice" {
                AuthAnswer::Secret(Secret::Password(zeroize::Zeroizing::new(PASSWORD.into())))
            } else {
                AuthAnswer::Reject(Rejection::AuthenticationFailure, "unknown user".into())
            }
        })
    }
    fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        let host = 10 + self.next_host.fetch_add(1, Ordering::Relaxed) as u8;
        Box::pin(async move {
            Ok(NetworkSettings {
                ipcp: Some(IpcpConfig::server(
                    SERVER_ADDR,
                    Ipv4Addr::new(10, 0, 10, host),
                    [None, None],
                    [None, None],
                )),
                ipv6cp: None,
                ccp: None,
            })
        })
    }
    fn up(
        &self,
        _: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        let (tx, rx) = tunnel::packet_queue(16);
        let peer = up.ipv4.as_ref().map(|v| v.peer).unwrap();
        self.inject.lock().unwrap().push((peer, tx));
        Box::pin(async move { Ok(rx) })
    }
    fn down(&self, info: &SessionInfo, reason: &EndReason) {
        self.downs
            .lock()
            .unwrap()
            .push((info.peer.clone(), reason.clone()));
    }
}

struct Rig {
    server: L2tpServer,
    hooks: Arc<TestHooks>,
    sink: Arc<Collect>,
    _stop: watch::Sender<bool>,
}

fn rig(ports: u32, hello: Duration) -> Rig {
    rig_with(ports, hello, |_| {})
}

fn rig_with(ports: u32, hello: Duration, tune: impl FnOnce(&mut TunnelConfig)) -> Rig {
    let mut link = LinkConfig::server("ras-test");
    link.lcp.require_auth = vec![AuthProtocol::MsChapV2];
    link.ipv6cp = None;
    link.ccp = None;
    let mut config = L2tpServerConfig::new(link, "ras-test", hello, ports);
    tune(&mut config.tunnel);
    let hooks = Arc::new(TestHooks::default());
    let sink = Arc::new(Collect::default());
    let (stop, stop_rx) = watch::channel(false);
    let ids = Arc::new(AtomicU64::new(1));
    let server = L2tpServer::start(
        config,
        hooks.clone(),
        sink.clone(),
        Arc::new(move || ids.fetch_add(1, Ordering::Relaxed)),
        stop_rx,
    );
    Rig {
        server,
        hooks,
        sink,
        _stop: stop,
    }
}

fn peer(port: u16) -> L2tpPeer {
    // Every LAC of a test is behind the same NAT address.
    L2tpPeer::Plain(SocketAddr::from(([192, 0, 2, 7], port)))
}

/// A LAC as Windows and xl2tpd are: tunnel ID 1, one incoming call, and a
/// PPP client on it.
struct Lac {
    peer: L2tpPeer,
    front: L2tpFront,
    reply: L2tpReply,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
    tunnel: Tunnel,
    link: Link,
    /// (ours, the LNS's) session IDs once the call is up.
    call: Option<(u16, u16)>,
    /// Events of the tunnel the test looks at.
    closed: Vec<SessionCloseReason>,
    up: Option<LinkUp>,
    received: Vec<Vec<u8>>,
    /// Stop answering (a killed client).
    silent: bool,
}

impl Lac {
    fn new(front: &L2tpFront, peer: L2tpPeer) -> Lac {
        let (tx, rx) = mpsc::unbounded_channel();
        let reply: L2tpReply = Arc::new(move |d| {
            let _ = tx.send(d);
        });
        let mut client = LinkConfig::client("alice", PASSWORD);
        client.lcp.accept_auth = vec![AuthProtocol::MsChapV2];
        client.ipv6cp = None;
        client.ccp = None;
        let now = Instant::now();
        let mut tunnel = Tunnel::new_lac(TunnelConfig::default(), 1, [7; 16], now);
        tunnel.open_tunnel(now);
        Lac {
            peer,
            front: front.clone(),
            reply,
            rx,
            tunnel,
            link: Link::new(client),
            call: None,
            closed: Vec::new(),
            up: None,
            received: Vec::new(),
            silent: false,
        }
    }

    fn send(&self, datagram: Vec<u8>) {
        if !self.silent {
            assert!(self
                .front
                .try_deliver(self.peer, datagram, self.reply.clone()));
        }
    }

    fn send_frame(&self, frame: &[u8]) {
        let (_, lns_session) = self.call.expect("the call is up");
        let mut out = Vec::new();
        l2tp::encode_data(
            self.tunnel.peer_tunnel_id(),
            lns_session,
            None,
            frame,
            &mut out,
        );
        self.send(out);
    }

    fn send_ip(&mut self, packet: &[u8]) {
        let mut frame = Vec::new();
        self.link.send_ip(packet, &mut frame).expect("link up");
        self.send_frame(&frame);
    }

    /// Everything the LAC has to send, and its events.
    fn flush(&mut self) {
        let now = Instant::now();
        while let Some(d) = self.tunnel.poll_transmit(now) {
            self.send(d);
        }
        while let Some(event) = self.tunnel.poll_event() {
            match event {
                Event::TunnelEstablished { .. } => {
                    self.tunnel.place_call(now).expect("a call");
                }
                Event::SessionEstablished {
                    local_session_id,
                    peer_session_id,
                    ..
                } => {
                    self.call = Some((local_session_id, peer_session_id));
                    self.link.lower_up(now);
                }
                Event::SessionClosed { reason, .. } => self.closed.push(reason),
                _ => {}
            }
        }
        while let Some(d) = self.tunnel.poll_transmit(now) {
            self.send(d);
        }
        while let Some(frame) = self.link.poll_transmit() {
            if self.call.is_some() {
                self.send_frame(&frame);
            }
        }
        while let Some(event) = self.link.poll_event() {
            if let LinkEvent::Up(up) = event {
                self.up = Some(up);
            }
        }
    }

    /// One round: send, then take what the LNS sent within a moment.
    async fn step(&mut self) {
        self.flush();
        let got = tokio::time::timeout(Duration::from_millis(20), self.rx.recv()).await;
        let now = Instant::now();
        if let Ok(Some(mut d)) = got {
            if self.silent {
                return;
            }
            let data = match decode(&d) {
                Ok(Packet::Data(m)) => Some(m.payload.as_ptr() as usize - d.as_ptr() as usize),
                _ => None,
            };
            match data {
                Some(start) => {
                    if let Inbound::Ipv4(p) = self.link.handle_frame(now, &mut d[start..]) {
                        self.received.push(p.to_vec());
                    }
                }
                None => self.tunnel.handle_input(now, &d),
            }
        }
        self.tunnel.handle_timeout(now);
        self.link.handle_timeout(now);
        self.flush();
    }
}

/// Runs every LAC until `done` holds (10 s at most).
async fn until(lacs: &mut [&mut Lac], what: &str, done: impl Fn(&[&mut Lac]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(lacs) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        for lac in lacs.iter_mut() {
            lac.step().await;
        }
    }
}

async fn eventually(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// An IPv4 packet (header only matters to the sink) from `src` to `dst`.
fn ip_packet(src: Ipv4Addr, dst: Ipv4Addr, marker: u8) -> Vec<u8> {
    let mut p = vec![0u8; 28];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&28u16.to_be_bytes());
    p[8] = 64;
    p[9] = 17;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    p[27] = marker;
    p
}

fn client_addr(lac: &Lac) -> Ipv4Addr {
    lac.up.as_ref().and_then(|u| u.ipv4.as_ref()).unwrap().local
}

async fn inject(hooks: &TestHooks, to: Ipv4Addr, packet: Vec<u8>) {
    let tx = hooks
        .inject
        .lock()
        .unwrap()
        .iter()
        .find(|(a, _)| *a == to)
        .map(|(_, tx)| tx.clone())
        .expect("a session for that address");
    tx.send(Bytes::from(packet)).await.unwrap();
}

#[tokio::test]
async fn a_call_authenticates_gets_an_address_and_carries_ip_both_ways() {
    let r = rig(8, Duration::from_secs(60));
    let mut lac = Lac::new(&r.server.front(), peer(1701));
    until(&mut [&mut lac], "the PPP link", |l| l[0].up.is_some()).await;
    let up = lac.up.clone().unwrap();
    let ipv4 = up.ipv4.unwrap();
    assert_eq!(ipv4.peer, SERVER_ADDR);
    assert_eq!(ipv4.local, Ipv4Addr::new(10, 0, 10, 10));
    assert_eq!(r.server.active_calls(), 1);

    // Client to network: the LNS hands the packet to the sink.
    let out = ip_packet(ipv4.local, Ipv4Addr::new(192, 0, 2, 99), 1);
    lac.send_ip(&out);
    let sink = r.sink.clone();
    eventually("the packet at the sink", || {
        sink.0.lock().unwrap().contains(&out)
    })
    .await;
    // Network to client.
    let back = ip_packet(Ipv4Addr::new(192, 0, 2, 99), ipv4.local, 2);
    inject(&r.hooks, ipv4.local, back.clone()).await;
    until(&mut [&mut lac], "the packet at the client", |l| {
        l[0].received.contains(&back)
    })
    .await;

    // The client hangs up the call (CDN): the session ends as its request.
    let (ours, _) = lac.call.unwrap();
    lac.tunnel.close_session(Instant::now(), ours).unwrap();
    lac.flush();
    let hooks = r.hooks.clone();
    eventually("the session's end", || {
        !hooks.downs.lock().unwrap().is_empty()
    })
    .await;
    let downs = r.hooks.downs.lock().unwrap().clone();
    assert_eq!(downs.len(), 1);
    assert!(
        matches!(downs[0].1, EndReason::PeerRequest(_)),
        "ended as {}",
        downs[0].1
    );
    assert_eq!(downs[0].0, "192.0.2.7:1701");
    let server = &r.server;
    eventually("the port given back", || server.active_calls() == 0).await;
}

#[tokio::test]
async fn two_lacs_behind_one_nat_both_with_tunnel_id_1() {
    let r = rig(8, Duration::from_secs(60));
    let front = r.server.front();
    let mut a = Lac::new(&front, peer(1701));
    let mut b = Lac::new(&front, peer(40000));
    until(&mut [&mut a, &mut b], "both links", |l| {
        l.iter().all(|lac| lac.up.is_some())
    })
    .await;
    // Each got a tunnel of its own (our IDs differ, never 0) and an address.
    let (ta, tb) = (a.tunnel.peer_tunnel_id(), b.tunnel.peer_tunnel_id());
    assert_ne!(ta, 0);
    assert_ne!(tb, 0);
    assert_ne!(ta, tb);
    assert_ne!(client_addr(&a), client_addr(&b));
    assert_eq!(r.server.active_calls(), 2);
    // Traffic stays with its own client.
    let to_b = ip_packet(SERVER_ADDR, client_addr(&b), 7);
    inject(&r.hooks, client_addr(&b), to_b.clone()).await;
    until(&mut [&mut a, &mut b], "b's packet", |l| {
        l[1].received.contains(&to_b)
    })
    .await;
    assert!(a.received.is_empty());
}

#[tokio::test]
async fn a_gone_peer_takes_its_sessions_down_and_no_other() {
    let r = rig(8, Duration::from_secs(60));
    let front = r.server.front();
    let mut a = Lac::new(&front, peer(1701));
    let mut b = Lac::new(&front, peer(1702));
    until(&mut [&mut a, &mut b], "both links", |l| {
        l.iter().all(|lac| lac.up.is_some())
    })
    .await;
    front.peer_gone(a.peer);
    let hooks = r.hooks.clone();
    eventually("a's session down", || {
        hooks.downs.lock().unwrap().len() == 1
    })
    .await;
    let (who, why) = r.hooks.downs.lock().unwrap()[0].clone();
    assert_eq!(who, "192.0.2.7:1701");
    assert_eq!(why, EndReason::LostCarrier(LostCarrier::TransportClosed));
    // b still carries traffic.
    let out = ip_packet(client_addr(&b), Ipv4Addr::new(192, 0, 2, 99), 9);
    b.send_ip(&out);
    let sink = r.sink.clone();
    eventually("b's packet at the sink", || {
        sink.0.lock().unwrap().contains(&out)
    })
    .await;
    // a's tunnel is gone: what it sends now is for an unknown tunnel.
    let before = front.counts().unknown_tunnel;
    a.send_ip(&ip_packet(client_addr(&a), SERVER_ADDR, 1));
    eventually("a's datagram dropped", || {
        front.counts().unknown_tunnel > before
    })
    .await;
    assert_eq!(r.hooks.downs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_call_over_the_port_limit_is_refused_with_a_cdn() {
    let r = rig(1, Duration::from_secs(60));
    let front = r.server.front();
    let mut a = Lac::new(&front, peer(1701));
    until(&mut [&mut a], "a's link", |l| l[0].up.is_some()).await;
    let mut b = Lac::new(&front, peer(1702));
    until(&mut [&mut a, &mut b], "b's call refused", |l| {
        !l[1].closed.is_empty()
    })
    .await;
    assert!(
        matches!(b.closed[0], SessionCloseReason::PeerDisconnect(_)),
        "b's call ended as {}",
        b.closed[0]
    );
    assert!(b.up.is_none());
    assert_eq!(r.server.active_calls(), 1);
    assert_eq!(r.hooks.inject.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_call_over_the_port_limit_is_refused_at_its_icrq() {
    let r = rig(1, Duration::from_secs(60));
    let front = r.server.front();
    let mut a = Lac::new(&front, peer(1701));
    until(&mut [&mut a], "a's link", |l| l[0].up.is_some()).await;
    let mut b = Lac::new(&front, peer(1702));
    until(&mut [&mut a, &mut b], "b's call refused", |l| {
        !l[1].closed.is_empty()
    })
    .await;
    // Refused before it was connected: no ICRP reached b, so its call was
    // never established, and the CDN says why (RFC 2661 §4.4.2: result 2,
    // general error; error 4, insufficient resources).
    assert!(b.call.is_none(), "b's call was connected before the CDN");
    match &b.closed[0] {
        SessionCloseReason::PeerDisconnect(code) => {
            assert_eq!((code.result, code.error), (2, Some(4)), "{}", b.closed[0]);
        }
        other => panic!("b's call ended as {other}"),
    }
    // The server never started a session for b.
    assert_eq!(r.hooks.downs.lock().unwrap().len(), 0);
    assert_eq!(r.server.active_calls(), 1);
    // a is untouched.
    assert!(a.closed.is_empty());
}

#[tokio::test]
async fn garbage_is_counted_and_dropped_and_the_server_goes_on() {
    let r = rig(8, Duration::from_secs(60));
    let front = r.server.front();
    let noop: L2tpReply = Arc::new(|_| {});
    let from = peer(5000);
    // Too short; L2TP version 3; a data message for a tunnel nobody has;
    // a control message for tunnel 0 that is not a SCCRQ (a ZLB).
    let garbage: [Vec<u8>; 4] = [
        vec![0xc8],
        vec![0xc8, 0x03, 0, 12, 0, 1, 0, 0, 0, 0, 0, 0],
        vec![0x00, 0x02, 0x12, 0x34, 0, 1, 0xff, 0x03],
        vec![0xc8, 0x02, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for g in garbage {
        assert!(front.try_deliver(from, g, noop.clone()));
    }
    eventually("the garbage counted", || {
        let c = front.counts();
        c.malformed == 2 && c.unknown_tunnel == 2
    })
    .await;
    assert_eq!(front.counts().received, 4);
    // The LNS still serves.
    let mut lac = Lac::new(&front, peer(1701));
    until(&mut [&mut lac], "the PPP link", |l| l[0].up.is_some()).await;
    // A broken data message inside a live session costs that datagram.
    let before = front.counts().malformed;
    let (_, lns_session) = lac.call.unwrap();
    let mut bad = vec![0x40, 0x02, 0, 2]; // L bit, Length 2: shorter than a header
    bad.extend_from_slice(&lac.tunnel.peer_tunnel_id().to_be_bytes());
    bad.extend_from_slice(&lns_session.to_be_bytes());
    lac.send(bad);
    eventually("the broken data message counted", || {
        front.counts().malformed > before
    })
    .await;
    let out = ip_packet(client_addr(&lac), Ipv4Addr::new(192, 0, 2, 99), 3);
    lac.send_ip(&out);
    let sink = r.sink.clone();
    eventually("a packet after the garbage", || {
        sink.0.lock().unwrap().contains(&out)
    })
    .await;
}

#[tokio::test]
async fn a_killed_client_is_noticed_by_hello_and_ends_as_lost_carrier() {
    // Short retransmission timers keep the test quick; the rule is the
    // same at §5.8's 1 s doubling to 8 s.
    let r = rig_with(8, Duration::from_millis(300), |t| {
        t.reliable.initial_timeout = Duration::from_millis(100);
        t.reliable.max_timeout = Duration::from_millis(200);
    });
    let mut lac = Lac::new(&r.server.front(), peer(1701));
    until(&mut [&mut lac], "the PPP link", |l| l[0].up.is_some()).await;
    lac.silent = true;
    // HELLO after 0.3 s of silence, then 5 unanswered retransmissions.
    let hooks = r.hooks.clone();
    let deadline = Instant::now() + Duration::from_secs(10);
    while hooks.downs.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the dead client was not noticed");
        lac.step().await;
    }
    let why = hooks.downs.lock().unwrap()[0].1.clone();
    assert_eq!(why, EndReason::LostCarrier(LostCarrier::KeepaliveTimeout));
}

#[tokio::test]
async fn a_restarted_client_with_the_same_tunnel_id_replaces_its_dead_tunnel() {
    let r = rig(8, Duration::from_secs(60));
    let front = r.server.front();
    let mut old = Lac::new(&front, peer(1701));
    until(&mut [&mut old], "the first link", |l| l[0].up.is_some()).await;
    // The client was killed and comes back from the same address and
    // port with tunnel ID 1 again: a SCCRQ, not a retransmission.
    old.silent = true;
    let mut new = Lac::new(&front, peer(1701));
    until(&mut [&mut new], "the second link", |l| l[0].up.is_some()).await;
    let hooks = r.hooks.clone();
    eventually("the dead session's end", || {
        hooks.downs.lock().unwrap().len() == 1
    })
    .await;
    assert_eq!(
        hooks.downs.lock().unwrap()[0].1,
        EndReason::LostCarrier(LostCarrier::TransportClosed)
    );
    let server = &r.server;
    eventually("one call left", || server.active_calls() == 1).await;
}
