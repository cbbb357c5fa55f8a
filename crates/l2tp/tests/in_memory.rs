//! A LAC core and an LNS core over an in-memory wire that loses,
//! duplicates and reorders datagrams (seeded): tunnel authentication, two
//! sessions, data both ways, session limits, clean teardown, and a wrong
//! tunnel secret refused.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use l2tp::avp::ResultCode;
use l2tp::data::{decode_data, encode_data};
use l2tp::header::{decode, Packet};
use l2tp::tunnel::TunnelState;
use l2tp::{Event, SessionCloseReason, Tunnel, TunnelCloseReason, TunnelConfig};

/// xorshift64: deterministic per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One end: its tunnel, the events it reported, the data it received
/// per local session ID.
struct End {
    tunnel: Tunnel,
    events: Vec<Event>,
    /// local session ID -> peer session ID, from SessionEstablished.
    sessions: BTreeMap<u16, u16>,
    received: BTreeMap<u16, Vec<Vec<u8>>>,
}

impl End {
    fn new(tunnel: Tunnel) -> Self {
        End {
            tunnel,
            events: Vec::new(),
            sessions: BTreeMap::new(),
            received: BTreeMap::new(),
        }
    }

    fn input(&mut self, now: Instant, datagram: &[u8]) {
        match decode(datagram) {
            Ok(Packet::Control { .. }) => self.tunnel.handle_input(now, datagram),
            Ok(Packet::Data(_)) => {
                let m = decode_data(datagram).unwrap();
                assert_eq!(m.tunnel_id, self.tunnel.local_tunnel_id());
                self.received
                    .entry(m.session_id)
                    .or_default()
                    .push(m.payload.to_vec());
            }
            Err(e) => panic!("undecodable datagram on the wire: {e}"),
        }
    }

    fn drain_events(&mut self) {
        while let Some(e) = self.tunnel.poll_event() {
            match &e {
                Event::SessionEstablished {
                    local_session_id,
                    peer_session_id,
                    ..
                } => {
                    self.sessions.insert(*local_session_id, *peer_session_id);
                }
                Event::SessionClosed {
                    local_session_id, ..
                } => {
                    self.sessions.remove(local_session_id);
                }
                _ => {}
            }
            self.events.push(e);
        }
    }

    fn send_data(&self, local_session_id: u16, payload: &[u8], wire: &mut Vec<Vec<u8>>) {
        let mut out = Vec::new();
        encode_data(
            self.tunnel.peer_tunnel_id(),
            self.sessions[&local_session_id],
            None,
            payload,
            &mut out,
        );
        wire.push(out);
    }
}

struct World {
    start: Instant,
    now: Instant,
    rng: Rng,
    lac: End,
    lns: End,
    to_lns: Vec<Vec<u8>>,
    to_lac: Vec<Vec<u8>>,
    /// Percent of datagrams lost and duplicated (35 and 20 by default:
    /// harsh, so retransmission, duplicate acks and reordering all run).
    loss: u64,
    dup: u64,
}

fn config(secret: &[u8], host: &[u8]) -> TunnelConfig {
    TunnelConfig {
        host_name: host.to_vec(),
        secret: Some(secret.to_vec()),
        ..TunnelConfig::default()
    }
}

impl World {
    fn new(seed: u64, lac: TunnelConfig, lns: TunnelConfig) -> Self {
        let now = Instant::now();
        World {
            start: now,
            now,
            rng: Rng(seed | 1),
            lac: End::new(Tunnel::new_lac(lac, 11, [0x11; 16], now)),
            lns: End::new(Tunnel::new_lns(lns, 22, [0x22; 16], now)),
            to_lns: Vec::new(),
            to_lac: Vec::new(),
            loss: 35,
            dup: 20,
        }
    }

    /// Moves the wire through the lossy, duplicating, reordering link.
    fn impair(&mut self, queue: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for d in queue {
            let r = self.rng.next() % 100;
            if r < self.loss {
                continue;
            }
            if r < self.loss + self.dup {
                out.push(d.clone());
            }
            out.push(d);
        }
        // Reorder: a few random swaps.
        for _ in 0..out.len() / 2 {
            let i = (self.rng.next() as usize) % out.len();
            let j = (self.rng.next() as usize) % out.len();
            out.swap(i, j);
        }
        out
    }

    fn step(&mut self) {
        while let Some(d) = self.lac.tunnel.poll_transmit(self.now) {
            self.to_lns.push(d);
        }
        while let Some(d) = self.lns.tunnel.poll_transmit(self.now) {
            self.to_lac.push(d);
        }
        let to_lns = std::mem::take(&mut self.to_lns);
        for d in self.impair(to_lns) {
            self.lns.input(self.now, &d);
        }
        let to_lac = std::mem::take(&mut self.to_lac);
        for d in self.impair(to_lac) {
            self.lac.input(self.now, &d);
        }
        self.now += Duration::from_millis(100);
        self.lac.tunnel.handle_timeout(self.now);
        self.lns.tunnel.handle_timeout(self.now);
        self.lac.drain_events();
        self.lns.drain_events();
    }

    fn run_until(&mut self, what: &str, done: impl Fn(&World) -> bool) {
        for _ in 0..3000 {
            if done(self) {
                return;
            }
            self.step();
        }
        panic!(
            "timed out waiting for {what}; LAC events {:?}, LNS events {:?}",
            self.lac.events, self.lns.events
        );
    }
}

fn established(end: &End) -> bool {
    end.events
        .iter()
        .any(|e| matches!(e, Event::TunnelEstablished { .. }))
}

fn closed_reason(end: &End) -> Option<&TunnelCloseReason> {
    end.events.iter().find_map(|e| match e {
        Event::TunnelClosed { reason } => Some(reason),
        _ => None,
    })
}

#[test]
fn tunnel_sessions_data_and_teardown_over_a_lossy_wire() {
    for seed in (1u64..=40).chain([1234, 99_999]) {
        let mut w = World::new(seed, config(b"s3cret", b"lac"), config(b"s3cret", b"lns"));
        w.lac.tunnel.open_tunnel(w.now);
        w.run_until("the tunnel", |w| established(&w.lac) && established(&w.lns));
        assert!(w.lns.events.contains(&Event::TunnelEstablished {
            peer_tunnel_id: 11,
            peer_host_name: b"lac".to_vec()
        }));
        assert!(w.lac.events.contains(&Event::TunnelEstablished {
            peer_tunnel_id: 22,
            peer_host_name: b"lns".to_vec()
        }));

        let s1 = w.lac.tunnel.place_call(w.now).unwrap();
        let s2 = w.lac.tunnel.place_call(w.now).unwrap();
        assert_ne!(s1, s2);
        w.run_until("two sessions", |w| {
            w.lac.sessions.len() == 2 && w.lns.sessions.len() == 2
        });
        // Each side's peer session ID is the other's local one.
        for (local, peer) in &w.lac.sessions {
            assert_eq!(w.lns.sessions.get(peer), Some(local));
        }

        // Data both ways on both sessions; data is not retransmitted, so
        // send until some arrive, and check nothing lands on a wrong session.
        let lns_of = |w: &World, s: u16| w.lac.sessions[&s];
        for round in 0..20u8 {
            for s in [s1, s2] {
                let mut wire = std::mem::take(&mut w.to_lns);
                w.lac.send_data(s, &[s as u8, round, 0xaa], &mut wire);
                w.to_lns = wire;
                let peer = lns_of(&w, s);
                let mut wire = std::mem::take(&mut w.to_lac);
                w.lns.send_data(peer, &[s as u8, round, 0xbb], &mut wire);
                w.to_lac = wire;
            }
            w.step();
        }
        for s in [s1, s2] {
            let at_lns = &w.lns.received[&lns_of(&w, s)];
            assert!(
                at_lns.len() >= 5,
                "seed {seed}: too few frames reached the LNS"
            );
            assert!(at_lns.iter().all(|p| p[0] == s as u8 && p[2] == 0xaa));
            let at_lac = &w.lac.received[&s];
            assert!(
                at_lac.len() >= 5,
                "seed {seed}: too few frames reached the LAC"
            );
            assert!(at_lac.iter().all(|p| p[0] == s as u8 && p[2] == 0xbb));
        }

        // CDN from the LAC for one session.
        let peer1 = lns_of(&w, s1);
        w.lac.tunnel.close_session(w.now, s1).unwrap();
        w.run_until("CDN", |w| w.lns.sessions.len() == 1);
        assert!(w.lns.events.iter().any(|e| matches!(
            e,
            Event::SessionClosed { local_session_id, reason: SessionCloseReason::PeerDisconnect(ResultCode { result: 3, .. }) }
                if *local_session_id == peer1
        )));

        // StopCCN from the LAC: both ends close, the other session with them.
        w.lac.tunnel.close(w.now);
        w.run_until("StopCCN", |w| {
            w.lac.tunnel.is_closed() && w.lns.tunnel.is_closed()
        });
        assert_eq!(closed_reason(&w.lac), Some(&TunnelCloseReason::LocalClose));
        match closed_reason(&w.lns) {
            Some(TunnelCloseReason::PeerStop(code)) => assert_eq!(code.result, 1),
            other => panic!("LNS closed for {other:?}"),
        }
        assert!(w.lns.sessions.is_empty());
        assert!(w.lns.events.iter().any(|e| matches!(
            e,
            Event::SessionClosed {
                reason: SessionCloseReason::TunnelClosed,
                ..
            }
        )));
    }
}

#[test]
fn wrong_tunnel_secret_is_refused() {
    for seed in [3u64, 5, 8] {
        let mut w = World::new(seed, config(b"right", b"lac"), config(b"wrong", b"lns"));
        w.lac.tunnel.open_tunnel(w.now);
        w.run_until("the refusal", |w| {
            w.lac.tunnel.is_closed() && w.lns.tunnel.is_closed()
        });
        assert!(!established(&w.lac));
        assert!(!established(&w.lns));
        assert_eq!(
            closed_reason(&w.lac),
            Some(&TunnelCloseReason::AuthenticationFailed)
        );
        match closed_reason(&w.lns) {
            Some(TunnelCloseReason::PeerStop(code)) => assert_eq!(code.result, 4),
            other => panic!("LNS closed for {other:?}"),
        }
        assert!(closed_reason(&w.lac)
            .unwrap()
            .to_string()
            .contains("secret"));
    }
}

#[test]
fn no_secret_at_the_lac_is_refused_by_an_lns_with_one() {
    let lac = TunnelConfig {
        secret: None,
        ..TunnelConfig::default()
    };
    let mut w = World::new(17, lac, config(b"s", b"lns"));
    w.lac.tunnel.open_tunnel(w.now);
    w.run_until("the refusal", |w| {
        w.lac.tunnel.is_closed() && w.lns.tunnel.is_closed()
    });
    assert_eq!(
        closed_reason(&w.lac),
        Some(&TunnelCloseReason::AuthenticationFailed)
    );
}

#[test]
fn session_limit_refuses_with_cdn_2_4() {
    let lns = TunnelConfig {
        max_sessions: 1,
        ..config(b"k", b"lns")
    };
    let mut w = World::new(21, config(b"k", b"lac"), lns);
    w.loss = 0;
    w.dup = 0;
    w.lac.tunnel.open_tunnel(w.now);
    w.run_until("the tunnel", |w| established(&w.lac) && established(&w.lns));
    let s1 = w.lac.tunnel.place_call(w.now).unwrap();
    let s2 = w.lac.tunnel.place_call(w.now).unwrap();
    w.run_until("the refusal", |w| {
        w.lac
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionClosed { .. }))
            && !w.lac.sessions.is_empty()
    });
    assert!(w.lac.sessions.contains_key(&s1));
    let refusal = w
        .lac
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionClosed {
                local_session_id,
                reason: SessionCloseReason::PeerDisconnect(code),
            } if *local_session_id == s2 => Some(code.clone()),
            _ => None,
        })
        .expect("second call refused");
    assert_eq!((refusal.result, refusal.error), (2, Some(4)));
    assert_eq!(w.lac.tunnel.state(), TunnelState::Established);
}

/// The driver's limit (an LNS's ports shared by all its tunnels) lowers
/// the configured one: with no port free the next ICRQ gets CDN 2/4, and
/// raising it again admits the next call.
#[test]
fn a_driver_session_limit_refuses_at_icrq_and_can_be_raised() {
    let mut w = World::new(22, config(b"k", b"lac"), config(b"k", b"lns"));
    w.loss = 0;
    w.dup = 0;
    w.lac.tunnel.open_tunnel(w.now);
    w.run_until("the tunnel", |w| established(&w.lac) && established(&w.lns));
    w.lns.tunnel.set_session_limit(0);
    let refused = w.lac.tunnel.place_call(w.now).unwrap();
    w.run_until("the refusal", |w| {
        w.lac
            .events
            .iter()
            .any(|e| matches!(e, Event::SessionClosed { .. }))
    });
    let code = w
        .lac
        .events
        .iter()
        .find_map(|e| match e {
            Event::SessionClosed {
                local_session_id,
                reason: SessionCloseReason::PeerDisconnect(code),
            } if *local_session_id == refused => Some(code.clone()),
            _ => None,
        })
        .expect("the call refused");
    assert_eq!((code.result, code.error), (2, Some(4)));
    assert_eq!(w.lns.tunnel.session_count(), 0);
    // Raised again (a port freed): the next call is admitted.
    w.lns.tunnel.set_session_limit(1);
    let admitted = w.lac.tunnel.place_call(w.now).unwrap();
    w.run_until("the call", |w| w.lac.sessions.contains_key(&admitted));
    assert_eq!(w.lns.tunnel.session_count(), 1);
}

#[test]
fn silent_peer_tears_the_tunnel_down() {
    let mut w = World::new(5, config(b"k", b"lac"), config(b"k", b"lns"));
    w.loss = 100;
    w.dup = 0;
    w.lac.tunnel.open_tunnel(w.now);
    w.run_until("giving up", |w| w.lac.tunnel.is_closed());
    assert_eq!(
        closed_reason(&w.lac),
        Some(&TunnelCloseReason::PeerUnreachable)
    );
    // 1 + 2 + 4 + 8 + 8 + 8 seconds of retransmission, then gone.
    assert!(w.now.duration_since(w.start) >= Duration::from_secs(31));
}

#[test]
fn the_lns_disconnects_a_call_and_closes_the_tunnel() {
    for seed in 1u64..=10 {
        let mut w = World::new(seed, config(b"k", b"lac"), config(b"k", b"lns"));
        w.lac.tunnel.open_tunnel(w.now);
        w.run_until("the tunnel", |w| established(&w.lac) && established(&w.lns));
        let s = w.lac.tunnel.place_call(w.now).unwrap();
        w.run_until("the call", |w| {
            w.lac.sessions.len() == 1 && w.lns.sessions.len() == 1
        });
        let lns_session = w.lac.sessions[&s];
        w.lns.tunnel.close_session(w.now, lns_session).unwrap();
        w.run_until("CDN at the LAC", |w| w.lac.sessions.is_empty());
        assert!(w.lac.events.iter().any(|e| matches!(
            e,
            Event::SessionClosed {
                local_session_id,
                reason: SessionCloseReason::PeerDisconnect(ResultCode { result: 3, .. })
            } if *local_session_id == s
        )));
        w.lns.tunnel.close(w.now);
        w.run_until("StopCCN at the LAC", |w| {
            w.lac.tunnel.is_closed() && w.lns.tunnel.is_closed()
        });
        assert_eq!(closed_reason(&w.lns), Some(&TunnelCloseReason::LocalClose));
        match closed_reason(&w.lac) {
            Some(TunnelCloseReason::PeerStop(code)) => assert_eq!(code.result, 1),
            other => panic!("seed {seed}: LAC closed for {other:?}"),
        }
    }
}
