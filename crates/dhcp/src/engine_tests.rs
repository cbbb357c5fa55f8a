//! The engine against a scripted DHCP server, on a simulated clock.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Encodable, Message, MessageType, Opcode, OptionCode};

use crate::engine::{Allocation, Engine, EngineConfig, Event};
use crate::lease::{Destination, Transmit};
use crate::message;

const SERVER_ID: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);

/// What the scripted server does with requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Answer,
    Silent,
    /// NAK every REQUEST (OFFERs still go out).
    Nak,
}

/// A minimal DHCP server: a pool from 10.80.0.100, leases by client id.
struct FakeServer {
    mode: Mode,
    lease_secs: u32,
    next: u32,
    /// client id → address.
    leases: BTreeMap<Vec<u8>, Ipv4Addr>,
    released: Vec<Ipv4Addr>,
    /// Requests seen, by message type.
    seen: HashMap<&'static str, usize>,
    /// Destinations of the requests seen (for unicast/broadcast checks).
    destinations: Vec<(&'static str, Destination)>,
    /// Conflict detection as dnsmasq does it by default: every DISCOVER
    /// costs a ping of this long before the offer, and requests are taken
    /// one at a time in arrival order (a REQUEST waits behind the pings of
    /// the DISCOVERs before it).
    ping: Option<Duration>,
    queue: std::collections::VecDeque<Transmit>,
    /// When the ping for the DISCOVER at the head of `queue` ends.
    ping_ends: Option<Instant>,
}

impl FakeServer {
    fn new() -> FakeServer {
        FakeServer {
            mode: Mode::Answer,
            lease_secs: 3600,
            next: 100,
            leases: BTreeMap::new(),
            released: Vec::new(),
            seen: HashMap::new(),
            destinations: Vec::new(),
            ping: None,
            queue: std::collections::VecDeque::new(),
            ping_ends: None,
        }
    }

    /// With `ping`: the answers due by `now`, in order.
    fn serve_queue(&mut self, now: Instant) -> Vec<Vec<u8>> {
        let mut answers = Vec::new();
        while let Some(t) = self.queue.front() {
            let is_discover = message::decode(&t.bytes)
                .ok()
                .and_then(|m| message::message_type(&m))
                == Some(MessageType::Discover);
            if is_discover {
                match self.ping_ends {
                    None => {
                        self.ping_ends = Some(now + self.ping.unwrap_or_default());
                        continue;
                    }
                    Some(end) if end > now => break,
                    Some(_) => self.ping_ends = None,
                }
            }
            let t = self.queue.pop_front().unwrap();
            answers.extend(self.handle(&t));
        }
        answers
    }

    fn reply(&self, req: &Message, kind: MessageType, yiaddr: Ipv4Addr) -> Vec<u8> {
        let mut m = Message::new_with_id(
            req.xid(),
            Ipv4Addr::UNSPECIFIED,
            yiaddr,
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            req.chaddr(),
        );
        m.set_opcode(Opcode::BootReply);
        m.opts_mut().insert(DhcpOption::MessageType(kind));
        m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER_ID));
        if kind != MessageType::Nak {
            m.opts_mut()
                .insert(DhcpOption::AddressLeaseTime(self.lease_secs));
        }
        m.to_vec().unwrap()
    }

    /// Answers one request (None: no answer).
    fn handle(&mut self, t: &Transmit) -> Option<Vec<u8>> {
        let req = message::decode(&t.bytes).unwrap();
        let kind = message::message_type(&req).unwrap();
        let name = match kind {
            MessageType::Discover => "discover",
            MessageType::Request => "request",
            MessageType::Release => "release",
            _ => "other",
        };
        *self.seen.entry(name).or_default() += 1;
        self.destinations.push((name, t.to));
        let id = match req.opts().get(OptionCode::ClientIdentifier) {
            Some(DhcpOption::ClientIdentifier(id)) => id.clone(),
            _ => panic!("every request carries a client identifier"),
        };
        // The engine never sends a chaddr that does not match its client id.
        assert_eq!(&id[1..], req.chaddr());
        if kind == MessageType::Release {
            if let Some(a) = self.leases.remove(&id) {
                assert_eq!(req.ciaddr(), a);
                self.released.push(a);
            }
            return None;
        }
        if self.mode == Mode::Silent {
            return None;
        }
        match kind {
            MessageType::Discover => {
                let addr = match self.leases.get(&id) {
                    Some(a) => *a,
                    None => {
                        let a = Ipv4Addr::new(10, 80, 0, self.next as u8);
                        self.next += 1;
                        self.leases.insert(id, a);
                        a
                    }
                };
                Some(self.reply(&req, MessageType::Offer, addr))
            }
            MessageType::Request => {
                let wanted = match req.opts().get(OptionCode::RequestedIpAddress) {
                    Some(DhcpOption::RequestedIpAddress(a)) => *a,
                    _ => req.ciaddr(),
                };
                if self.mode == Mode::Nak || self.leases.get(&id) != Some(&wanted) {
                    return Some(self.reply(&req, MessageType::Nak, Ipv4Addr::UNSPECIFIED));
                }
                Some(self.reply(&req, MessageType::Ack, wanted))
            }
            _ => None,
        }
    }
}

struct Harness {
    engine: Engine,
    server: FakeServer,
    now: Instant,
    events: Vec<Event>,
}

impl Harness {
    fn new(cfg: EngineConfig) -> Harness {
        Harness {
            engine: Engine::new(cfg),
            server: FakeServer::new(),
            now: Instant::now(),
            events: Vec::new(),
        }
    }

    /// Deliver every transmit to the server and its answers back, until
    /// quiet.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            if self.server.ping.is_some() {
                while let Some(t) = self.engine.poll_transmit() {
                    self.server.queue.push_back(t);
                }
                let answers = self.server.serve_queue(self.now);
                if answers.is_empty() {
                    break;
                }
                for a in answers {
                    self.engine.handle_input(self.now, &a);
                }
                continue;
            }
            let Some(t) = self.engine.poll_transmit() else {
                break;
            };
            if let Some(answer) = self.server.handle(&t) {
                self.engine.handle_input(self.now, &answer);
            }
        }
        while let Some(e) = self.engine.poll_event() {
            self.events.push(e);
        }
    }

    /// Advance the clock to `at`, firing timers on the way.
    fn advance_to(&mut self, at: Instant) {
        loop {
            self.pump();
            let next = [self.engine.poll_timeout(), self.server.ping_ends]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= at => {
                    self.now = self.now.max(t);
                    if self.engine.poll_timeout().is_some_and(|e| e <= self.now) {
                        self.engine.handle_timeout(self.now);
                    }
                }
                _ => break,
            }
        }
        self.now = at;
        self.pump();
    }

    fn advance(&mut self, d: Duration) {
        let at = self.now + d;
        self.advance_to(at);
    }

    fn allocate(&mut self, session: u64) -> Allocation {
        let a = self.engine.allocate(self.now, session);
        self.pump();
        a
    }

    fn assigned(&self, session: u64) -> Option<Ipv4Addr> {
        self.events.iter().find_map(|e| match e {
            Event::Assigned { session: s, addr } if *s == session => Some(*addr),
            _ => None,
        })
    }
}

fn ip(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(10, 80, 0, last)
}

#[test]
fn nothing_is_leased_before_the_first_client() {
    let mut h = Harness::new(EngineConfig::default());
    h.advance(Duration::from_secs(600));
    assert!(h.server.seen.is_empty());
    assert_eq!(h.engine.server_address(), None);
}

#[test]
fn first_client_leases_a_block_of_ten_and_the_server_takes_the_first() {
    let mut h = Harness::new(EngineConfig::default());
    assert_eq!(h.allocate(1), Allocation::Pending);
    assert_eq!(h.server.seen["discover"], 10);
    assert_eq!(h.server.leases.len(), 10);
    assert_eq!(h.engine.server_address(), Some(ip(100)));
    assert_eq!(h.assigned(1), Some(ip(101)));
    assert!(h.events.contains(&Event::ServerAddress(ip(100))));
    // Ten distinct identities (client ids) for ten addresses.
    let ids: std::collections::HashSet<_> = h.server.leases.keys().collect();
    assert_eq!(ids.len(), 10);
    // The next clients are served from the block at once.
    for s in 2..=9 {
        assert_eq!(h.allocate(s), Allocation::Ready(ip(100 + s as u8)));
    }
    assert_eq!(h.server.seen["discover"], 10);
    assert_eq!(h.engine.counts().free, 0);
}

/// A server that pings every address before offering it (dnsmasq's
/// default, 3 s): leases are taken one at a time, so the first client has
/// its address after two pings, no lease runs out of time, and no
/// fall-back to APIPA happens although the block takes 30 s.
#[test]
fn a_server_that_pings_before_offering_gets_one_lease_at_a_time() {
    let mut h = Harness::new(EngineConfig::default());
    h.server.ping = Some(Duration::from_secs(3));
    assert_eq!(h.allocate(1), Allocation::Pending);
    h.advance(Duration::from_millis(5_900));
    assert_eq!(h.assigned(1), None);
    h.advance(Duration::from_millis(200));
    assert_eq!(h.assigned(1), Some(ip(101)), "after two pings");
    assert_eq!(h.engine.server_address(), Some(ip(100)));
    // A second client while the block is still being leased: the next
    // lease is its.
    assert_eq!(h.allocate(2), Allocation::Pending);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.assigned(2), Some(ip(102)));
    h.advance(Duration::from_secs(30));
    assert_eq!(h.engine.counts().leased, 10);
    assert_eq!(h.engine.counts().acquiring, 0);
    assert_eq!(h.server.seen["discover"], 10, "no retransmission needed");
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::FellBackToApipa { .. })));
    // Ten at once would have put the first REQUEST behind ten pings.
    let mut all_at_once = Harness::new(EngineConfig {
        in_flight: 10,
        ..Default::default()
    });
    all_at_once.server.ping = Some(Duration::from_secs(3));
    all_at_once.allocate(1);
    all_at_once.advance(Duration::from_secs(9));
    assert!(all_at_once
        .events
        .iter()
        .any(|e| matches!(e, Event::FellBackToApipa { .. })));
}

#[test]
fn ten_more_only_when_all_are_in_use_and_freed_ones_are_reused() {
    let mut h = Harness::new(EngineConfig::default());
    h.allocate(1);
    for s in 2..=9 {
        h.allocate(s);
    }
    // Server + 9 clients: all 10 in use. A client leaves: its address is
    // reused, no new block.
    h.engine.release(5);
    assert_eq!(h.allocate(50), Allocation::Ready(ip(105)));
    assert_eq!(h.server.leases.len(), 10);
    // The next one finds none free: 10 more.
    assert_eq!(h.allocate(10), Allocation::Pending);
    assert_eq!(h.server.leases.len(), 20);
    assert_eq!(h.assigned(10), Some(ip(110)));
    assert_eq!(h.engine.counts().leased, 20);
    assert_eq!(h.engine.counts().free, 9);
    assert_eq!(h.allocate(11), Allocation::Ready(ip(111)));
    // Asking again for the same session gives the same address.
    assert_eq!(h.allocate(11), Allocation::Ready(ip(111)));
}

#[test]
fn stop_releases_every_lease() {
    let mut h = Harness::new(EngineConfig::default());
    h.allocate(1);
    h.engine.release(1);
    for s in 2..=12 {
        h.allocate(s);
    }
    assert_eq!(h.server.leases.len(), 20);
    h.engine.stop();
    h.pump();
    assert!(h.server.leases.is_empty(), "left: {:?}", h.server.leases);
    assert_eq!(h.server.released.len(), 20);
    // RFC 2131 §4.4.6: DHCPRELEASE is unicast to the server.
    assert!(h
        .server
        .destinations
        .iter()
        .filter(|(n, _)| *n == "release")
        .all(|(_, d)| *d == Destination::Server(SERVER_ID)));
    assert_eq!(h.engine.allocate(h.now, 99), Allocation::Refused);
    let relinquished = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::Relinquished(_)))
        .count();
    assert_eq!(relinquished, 20);
}

#[test]
fn held_leases_name_what_a_release_needs_and_the_generation_follows_them() {
    let mut h = Harness::new(EngineConfig {
        block: 3,
        ..EngineConfig::default()
    });
    let g0 = h.engine.lease_generation();
    assert!(h.engine.held_leases().is_empty());
    h.allocate(1);
    h.allocate(2);
    let held = h.engine.held_leases();
    assert_eq!(held.len(), 3, "{held:?}");
    assert!(
        h.engine.lease_generation() >= g0 + 3,
        "one step per bound lease"
    );
    // Each entry is what the scripted server leased to that identity.
    for l in &held {
        assert_eq!(l.server, SERVER_ID);
        let id = message::Identity { chaddr: l.chaddr }.client_id();
        assert_eq!(h.server.leases.get(&id), Some(&l.addr), "{l:?}");
    }
    // Handing a bound lease to another session changes nothing the DHCP
    // server knows: no new generation.
    let g = h.engine.lease_generation();
    h.engine.release(2);
    h.allocate(3);
    assert_eq!(h.engine.lease_generation(), g);
    h.engine.stop();
    h.pump();
    assert!(h.engine.held_leases().is_empty());
    assert!(h.engine.lease_generation() > g);
}

#[test]
fn no_answer_falls_back_to_apipa_then_retries_dhcp() {
    let cfg = EngineConfig {
        answer_timeout: Duration::from_secs(8),
        retry_after: Duration::from_secs(300),
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    h.server.mode = Mode::Silent;
    assert_eq!(h.allocate(1), Allocation::Pending);
    h.advance(Duration::from_secs(7));
    assert_eq!(h.assigned(1), None, "still waiting within the answer time");
    // One lease at a time: its DISCOVER and the retransmission at 4 s
    // (RFC 2131 §4.1); the other nine are never started.
    assert_eq!(h.server.seen["discover"], 2);
    h.advance(Duration::from_secs(2));
    let a = h
        .assigned(1)
        .expect("an APIPA address after the answer time");
    assert!(a.is_link_local(), "{a}");
    let server = h.engine.server_address().unwrap();
    assert!(server.is_link_local() && server != a);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::FellBackToApipa { waiting: 1 })));
    // While DHCP is down, new clients get APIPA at once, no DHCP traffic.
    let before = h.server.seen["discover"];
    let Allocation::Ready(b) = h.allocate(2) else {
        panic!("APIPA at once")
    };
    assert!(b.is_link_local() && b != a);
    assert_eq!(h.server.seen["discover"], before);
    // After retry_after, DHCP is tried again; now it answers.
    h.server.mode = Mode::Answer;
    h.advance(Duration::from_secs(300));
    assert_eq!(h.allocate(3), Allocation::Pending);
    assert_eq!(h.assigned(3), Some(ip(101)));
    // The server moved from its APIPA address to the first lease.
    assert_eq!(h.engine.server_address(), Some(ip(100)));
    assert!(h.events.contains(&Event::DhcpRestored));
    assert!(h.events.contains(&Event::Relinquished(server)));
    // APIPA clients keep theirs until they leave.
    assert_eq!(h.engine.address_of(1), Some(a));
    h.engine.release(1);
    assert_eq!(h.engine.address_of(1), None);
}

#[test]
fn nak_while_acquiring_restarts_and_then_gives_up() {
    let cfg = EngineConfig {
        block: 1,
        answer_timeout: Duration::from_secs(5),
        retry_after: Duration::from_secs(60),
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    h.server.mode = Mode::Nak;
    h.allocate(1);
    // Each NAK restarts with a DISCOVER (RFC 2131 §3.1 step 5); the
    // restarted exchange is NAKed again, and so on: bounded by the
    // answer timeout, never by a loop.
    assert!(h.server.seen["discover"] >= 2);
    h.advance(Duration::from_secs(6));
    assert!(h.assigned(1).is_some_and(|a| a.is_link_local()));
    assert_eq!(h.engine.counts().leased, 0);
    assert_eq!(h.engine.counts().acquiring, 0);
}

#[test]
fn renew_at_t1_rebind_at_t2_and_lose_at_expiry() {
    let cfg = EngineConfig {
        block: 2,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    h.server.lease_secs = 1000;
    h.allocate(1);
    assert_eq!(h.assigned(1), Some(ip(101)));
    let requests = h.server.seen["request"];
    // Before T1 (500 s) nothing is sent.
    h.advance(Duration::from_secs(499));
    assert_eq!(h.server.seen["request"], requests);
    // At T1 each lease renews with its server (unicast) and is extended.
    h.advance(Duration::from_secs(1));
    assert_eq!(h.server.seen["request"], requests + 2);
    let renew = h.server.destinations.last().unwrap();
    assert_eq!(*renew, ("request", Destination::Server(SERVER_ID)));
    // Extended: the next renewal is 500 s after this one, not at T2.
    h.advance(Duration::from_secs(499));
    assert_eq!(h.server.seen["request"], requests + 2);
    // Now the server goes silent: renew at T1, retransmit after half the
    // time to T2 (but at least 60 s), rebind by broadcast from T2, lose
    // the lease at expiry.
    h.server.mode = Mode::Silent;
    h.advance(Duration::from_secs(1));
    let at_t1 = h.server.seen["request"];
    assert_eq!(at_t1, requests + 4);
    h.advance(Duration::from_secs(375)); // T2 = 875 s after the last ACK
    let rebinds: Vec<_> = h
        .server
        .destinations
        .iter()
        .skip_while(|(n, _)| *n != "request")
        .filter(|(_, d)| *d == Destination::Broadcast)
        .collect();
    assert!(!rebinds.is_empty(), "REBINDING broadcasts from T2");
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::LeaseLost { .. })));
    h.advance(Duration::from_secs(125)); // expiry at 1000 s
    let lost: Vec<_> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::LeaseLost { addr, session } => Some((*addr, *session)),
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 2);
    assert!(lost.contains(&(ip(101), Some(1))));
    assert_eq!(h.engine.counts().leased, 0);
    // Retransmissions were bounded: a handful per state, not a storm.
    assert!(h.server.seen["request"] < requests + 4 + 2 * 8);
}

#[test]
fn nak_on_renew_loses_the_lease() {
    let cfg = EngineConfig {
        block: 2,
        ..Default::default()
    };
    let mut h = Harness::new(cfg);
    h.server.lease_secs = 100;
    h.allocate(7);
    h.server.mode = Mode::Nak;
    h.advance(Duration::from_secs(50));
    assert!(h.events.contains(&Event::LeaseLost {
        addr: ip(101),
        session: Some(7)
    }));
    assert_eq!(h.engine.address_of(7), None);
    // The next client leases again.
    h.server.mode = Mode::Answer;
    assert_eq!(h.allocate(8), Allocation::Pending);
    assert!(h.assigned(8).is_some_and(|a| !a.is_link_local()));
}

#[test]
fn replies_for_other_clients_and_garbage_are_ignored() {
    let mut h = Harness::new(EngineConfig {
        block: 1,
        ..Default::default()
    });
    h.server.mode = Mode::Silent;
    h.allocate(1);
    let t = h.engine.poll_transmit();
    assert!(t.is_none(), "pump already drained");
    // An OFFER with another xid and an OFFER with our xid but another
    // chaddr: both ignored.
    let mut m = Message::new_with_id(
        1,
        Ipv4Addr::UNSPECIFIED,
        ip(200),
        Ipv4Addr::UNSPECIFIED,
        Ipv4Addr::UNSPECIFIED,
        &[9; 6],
    );
    m.set_opcode(Opcode::BootReply);
    m.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Offer));
    m.opts_mut().insert(DhcpOption::ServerIdentifier(SERVER_ID));
    h.engine.handle_input(h.now, &m.to_vec().unwrap());
    for junk in [&[][..], &[2; 10][..], &[0xff; 600][..]] {
        h.engine.handle_input(h.now, junk);
    }
    assert!(h.engine.poll_transmit().is_none());
    assert_eq!(h.engine.counts().acquiring, 1);
}

#[test]
fn leases_are_bounded() {
    let mut h = Harness::new(EngineConfig {
        block: 10,
        max_leases: 25,
        ..Default::default()
    });
    for s in 0..40 {
        h.allocate(s);
    }
    assert_eq!(h.server.leases.len(), 25);
    // The 25 leases: the server's and 24 clients'; the rest got APIPA.
    let apipa = (0..40)
        .filter(|s| h.engine.address_of(*s).is_some_and(|a| a.is_link_local()))
        .count();
    assert_eq!(apipa, 16);
}
