//! The IKEv1 initiator against the IKEv1 responder, in memory: datagrams are
//! carried between them by a simulated network that can drop, rewrite, or
//! put the client behind a NAT (source address and port rewritten).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::esp::EspSa;
use ipsec::ikev1::wire::{self, exchange, payload, Header, PayloadChain, HEADER_LEN};
use ipsec::ikev1::{
    vendor_ids, ChildSa, DownReason, IkeEvent, Initiator, InitiatorConfig, PskTable, Responder,
    ResponderConfig, Transmit,
};

const PSK: &[u8] = b"ras-initiator-test";
const SERVER: &str = "198.51.100.1";
const CLIENT_PUBLIC: &str = "203.0.113.7";
const CLIENT_PRIVATE: &str = "192.168.1.20";
const CLIENT_DIRECT: &str = "192.0.2.10";

type Hook = Box<dyn FnMut(&mut Transmit) -> bool>;

/// An initiator, a responder and the network between them.
struct Lab {
    now: Instant,
    i: Initiator,
    r: Responder,
    nat: bool,
    /// Added to the client's source ports: another client at the same address.
    port_shift: u16,
    /// Called for each datagram; false drops it (it may rewrite it).
    to_server: Hook,
    to_client: Hook,
    from_client: Vec<Transmit>,
    keepalives: usize,
    i_events: Vec<IkeEvent>,
    r_events: Vec<IkeEvent>,
}

fn server(port: u16) -> SocketAddr {
    SocketAddr::new(SERVER.parse().unwrap(), port)
}

impl Lab {
    fn new(
        nat: bool,
        tweak_i: impl FnOnce(&mut InitiatorConfig),
        tweak_r: impl FnOnce(&mut ResponderConfig),
    ) -> Lab {
        let now = Instant::now();
        let mut ic = InitiatorConfig::new(PSK);
        tweak_i(&mut ic);
        let mut rc = ResponderConfig {
            psks: PskTable::new().with_wildcard(PSK),
            ..Default::default()
        };
        tweak_r(&mut rc);
        let local = SocketAddr::new(
            if nat { CLIENT_PRIVATE } else { CLIENT_DIRECT }
                .parse()
                .unwrap(),
            500,
        );
        Lab {
            now,
            i: Initiator::new(ic, local, server(500), now),
            r: Responder::new(rc),
            nat,
            port_shift: 0,
            to_server: Box::new(|_| true),
            to_client: Box::new(|_| true),
            from_client: Vec::new(),
            keepalives: 0,
            i_events: Vec::new(),
            r_events: Vec::new(),
        }
    }

    /// The client's source address as the server sees it.
    fn client_source(&self, from_nat_t_port: bool) -> SocketAddr {
        match (self.nat, from_nat_t_port) {
            (true, false) => SocketAddr::new(CLIENT_PUBLIC.parse().unwrap(), 40500),
            (true, true) => SocketAddr::new(CLIENT_PUBLIC.parse().unwrap(), 40501),
            (false, false) => {
                SocketAddr::new(CLIENT_DIRECT.parse().unwrap(), 500 + self.port_shift)
            }
            (false, true) => {
                SocketAddr::new(CLIENT_DIRECT.parse().unwrap(), 4500 + self.port_shift)
            }
        }
    }

    /// Carries datagrams both ways until both sides are quiet.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(mut t) = self.i.poll_transmit() {
                moved = true;
                if t.is_nat_keepalive() {
                    assert!(t.from_nat_t_port && t.remote.port() == 4500);
                    self.keepalives += 1;
                    continue;
                }
                self.from_client.push(t.clone());
                if !(self.to_server)(&mut t) {
                    continue;
                }
                let src = self.client_source(t.from_nat_t_port);
                let on_nat_t = t.remote.port() == 4500;
                assert_eq!(
                    on_nat_t, t.from_nat_t_port,
                    "NAT-T socket talks to the NAT-T port"
                );
                self.r
                    .handle_datagram(self.now, t.remote, src, on_nat_t, &t.bytes);
            }
            while let Some(mut t) = self.r.poll_transmit() {
                moved = true;
                if !(self.to_client)(&mut t) {
                    continue;
                }
                self.i
                    .handle_datagram(self.now, t.from_nat_t_port, &t.bytes);
            }
            self.i_events
                .extend(std::iter::from_fn(|| self.i.poll_event()));
            self.r_events
                .extend(std::iter::from_fn(|| self.r.poll_event()));
            if !moved {
                return;
            }
        }
    }

    /// Lets time pass in steps, running both sides' timers.
    fn advance(&mut self, by: Duration, step: Duration) {
        let end = self.now + by;
        while self.now < end {
            self.now = (self.now + step).min(end);
            self.i.handle_timeout(self.now);
            self.r.handle_timeout(self.now);
            self.pump();
        }
    }

    fn i_children(&self) -> Vec<&ChildSa> {
        children(&self.i_events)
    }

    fn r_children(&self) -> Vec<&ChildSa> {
        children(&self.r_events)
    }

    fn refusals(&self) -> Vec<String> {
        self.i_events
            .iter()
            .filter_map(|e| match e {
                IkeEvent::Refused { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

fn children(events: &[IkeEvent]) -> Vec<&ChildSa> {
    events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::ChildSaUp(c) => Some(&**c),
            _ => None,
        })
        .collect()
}

fn ike_up(events: &[IkeEvent]) -> Option<(String, String, String)> {
    events.iter().find_map(|e| match e {
        IkeEvent::IkeSaUp {
            identity,
            suite,
            nat,
            ..
        } => Some((identity.clone(), suite.clone(), nat.clone())),
        _ => None,
    })
}

fn downs(events: &[IkeEvent]) -> Vec<(u32, DownReason)> {
    events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::ChildSaDown {
                inbound_spi,
                reason,
                ..
            } => Some((*inbound_spi, reason.clone())),
            _ => None,
        })
        .collect()
}

fn ike_down(events: &[IkeEvent]) -> Option<DownReason> {
    events.iter().find_map(|e| match e {
        IkeEvent::IkeSaDown { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// ESP sealed with one side's outbound SA opens with the other's inbound
/// SA, both ways: both derived the same keys for the same SPIs.
fn assert_keys_agree(client: &ChildSa, server: &ChildSa, now: Instant) {
    assert_eq!(client.outbound.spi, server.inbound.spi);
    assert_eq!(client.inbound.spi, server.outbound.spi);
    let mut c_out = EspSa::new(&client.outbound, now).unwrap();
    let mut c_in = EspSa::new(&client.inbound, now).unwrap();
    let mut s_out = EspSa::new(&server.outbound, now).unwrap();
    let mut s_in = EspSa::new(&server.inbound, now).unwrap();
    let mut packet = Vec::new();
    c_out
        .encapsulate(now, 17, b"SCCRQ to the server", &mut packet)
        .unwrap();
    let d = s_in.decapsulate(now, &mut packet).unwrap();
    assert_eq!(&packet[d.payload], b"SCCRQ to the server");
    let mut packet = Vec::new();
    s_out
        .encapsulate(now, 17, b"SCCRP to the client", &mut packet)
        .unwrap();
    let d = c_in.decapsulate(now, &mut packet).unwrap();
    assert_eq!(&packet[d.payload], b"SCCRP to the client");
}

#[test]
fn main_mode_and_quick_mode_without_nat_agree_on_keys() {
    let mut lab = Lab::new(false, |_| {}, |_| {});
    lab.pump();
    assert!(lab.i.is_established());
    let (identity, suite, nat) = ike_up(&lab.i_events).expect("client IkeSaUp");
    assert_eq!(
        identity, SERVER,
        "the responder identifies with its address"
    );
    assert_eq!(
        suite, "AES-CBC-256/SHA2-256/MODP-2048/PSK",
        "our first offer is chosen"
    );
    assert_eq!(nat, "no NAT, NAT-T RFC 3947");
    let (r_identity, _, r_nat) = ike_up(&lab.r_events).expect("server IkeSaUp");
    assert_eq!(r_identity, CLIENT_DIRECT);
    assert_eq!(r_nat, "no NAT");
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert_eq!((ic.len(), rc.len()), (1, 1));
    assert!(!ic[0].udp_encapsulated && !rc[0].udp_encapsulated);
    assert_eq!(ic[0].suite, "aes128-cbc/hmac-sha1-96");
    assert_eq!(rc[0].peer_port, 1701);
    assert_eq!(ic[0].peer, server(500));
    assert_keys_agree(ic[0], rc[0], lab.now);
    // Everything went to port 500 from port 500.
    assert!(lab
        .from_client
        .iter()
        .all(|t| !t.from_nat_t_port && t.remote == server(500)));
    assert!(lab.refusals().is_empty(), "{:?}", lab.refusals());
}

#[test]
fn behind_a_nat_the_client_floats_to_4500_and_encapsulates() {
    let mut lab = Lab::new(true, |_| {}, |_| {});
    lab.pump();
    let (_, _, nat) = ike_up(&lab.i_events).expect("client IkeSaUp");
    assert_eq!(nat, "we are behind NAT, NAT-T RFC 3947");
    let (r_identity, _, r_nat) = ike_up(&lab.r_events).unwrap();
    assert_eq!(
        r_identity, CLIENT_PRIVATE,
        "ID_IPV4_ADDR is our own (private) address"
    );
    assert!(r_nat.contains("client behind NAT"), "{r_nat}");
    // Messages 1 and 3 on port 500, message 5 on 4500 (RFC 3947 §4).
    let mm: Vec<bool> = lab
        .from_client
        .iter()
        .filter(|t| Header::parse(&t.bytes).unwrap().exchange == exchange::MAIN_MODE)
        .map(|t| t.from_nat_t_port)
        .collect();
    assert_eq!(mm, [false, false, true]);
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert!(ic[0].udp_encapsulated && rc[0].udp_encapsulated);
    assert_eq!(ic[0].peer, server(4500));
    // RFC 3947 §5.2: the server learnt our original address from NAT-OA.
    assert_eq!(
        rc[0].peer_original_address,
        Some(CLIENT_PRIVATE.parse().unwrap())
    );
    assert_eq!(ic[0].peer_original_address, Some(SERVER.parse().unwrap()));
    assert_keys_agree(ic[0], rc[0], lab.now);
    // RFC 3948 §2.3: keepalives every 20 s while behind the NAT.
    lab.advance(Duration::from_secs(41), Duration::from_secs(1));
    assert_eq!(lab.keepalives, 2);
}

#[test]
fn forced_udp_encapsulation_without_nat() {
    let mut lab = Lab::new(false, |c| c.force_udp_encapsulation = true, |_| {});
    lab.pump();
    let (_, _, nat) = ike_up(&lab.i_events).unwrap();
    assert_eq!(nat, "UDP encapsulation forced, NAT-T RFC 3947");
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert!(ic[0].udp_encapsulated && rc[0].udp_encapsulated);
    assert_keys_agree(ic[0], rc[0], lab.now);
}

/// Removes the RFC 3947 vendor ID from message 1, so the responder answers
/// in draft-02 and the client must mirror it: NAT-D 130, NAT-OA 131,
/// encapsulation mode 61444.
fn strip_rfc3947(t: &mut Transmit) {
    let h = Header::parse(&t.bytes).unwrap();
    if h.exchange != exchange::MAIN_MODE || h.responder_cookie != [0; 8] {
        return;
    }
    let ps = wire::payloads(h.next_payload, &t.bytes[HEADER_LEN..]).unwrap();
    let mut chain = PayloadChain::new();
    for p in ps {
        if !(p.kind == payload::VENDOR_ID && p.body == vendor_ids::NAT_T_RFC3947) {
            chain.push(p.kind, p.body);
        }
    }
    t.bytes = wire::message(&h, &chain);
}

#[test]
fn a_draft_02_answer_is_mirrored() {
    let mut lab = Lab::new(true, |_| {}, |_| {});
    let saw_draft_nat_d = std::rc::Rc::new(std::cell::Cell::new(false));
    let seen = saw_draft_nat_d.clone();
    lab.to_server = Box::new(move |t| {
        strip_rfc3947(t);
        let h = Header::parse(&t.bytes).unwrap();
        if h.exchange == exchange::MAIN_MODE && !h.is_encrypted() {
            let ps = wire::payloads(h.next_payload, &t.bytes[HEADER_LEN..]).unwrap();
            let kinds: Vec<u8> = ps.iter().map(|p| p.kind).collect();
            if kinds.contains(&payload::KEY_EXCHANGE) {
                assert!(!kinds.contains(&payload::NAT_D));
                seen.set(kinds.iter().filter(|k| **k == payload::NAT_D_DRAFT).count() == 2);
            }
        }
        true
    });
    lab.i = Initiator::new(
        InitiatorConfig::new(PSK),
        "192.168.1.20:500".parse().unwrap(),
        server(500),
        lab.now,
    );
    lab.pump();
    assert!(saw_draft_nat_d.get(), "NAT-D went as payload 130");
    let (_, _, nat) = ike_up(&lab.i_events).expect("IkeSaUp");
    assert_eq!(nat, "we are behind NAT, NAT-T draft-02");
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert!(ic[0].udp_encapsulated && rc[0].udp_encapsulated);
    assert_eq!(
        rc[0].peer_original_address,
        Some(CLIENT_PRIVATE.parse().unwrap())
    );
    assert_keys_agree(ic[0], rc[0], lab.now);
}

#[test]
fn a_wrong_psk_ends_with_a_clear_reason() {
    let mut lab = Lab::new(
        false,
        |c| c.psk = zeroize::Zeroizing::new(b"not the key".to_vec()),
        |_| {},
    );
    lab.pump();
    assert!(!lab.i.is_established());
    lab.advance(Duration::from_secs(31), Duration::from_millis(500));
    assert!(lab.i.is_closed());
    let reasons = lab.refusals();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("pre-shared key is probably wrong")),
        "{reasons:?}"
    );
    assert_eq!(ike_down(&lab.i_events), Some(DownReason::DeadPeer));
    // Message 5 went out five times: first, then at 2, 4, 8 and 16 s.
    let fives = lab
        .from_client
        .iter()
        .filter(|t| Header::parse(&t.bytes).unwrap().is_encrypted())
        .count();
    assert_eq!(fives, 5);
    assert!(lab.i.poll_timeout().is_none());
}

#[test]
fn no_answer_at_all_names_udp_500() {
    let mut lab = Lab::new(false, |_| {}, |_| {});
    lab.to_server = Box::new(|_| false);
    lab.pump();
    lab.advance(Duration::from_secs(29), Duration::from_secs(1));
    assert!(!lab.i.is_closed(), "still trying before 30 s");
    lab.advance(Duration::from_secs(2), Duration::from_secs(1));
    assert!(lab.i.is_closed());
    assert!(
        lab.refusals()
            .iter()
            .any(|r| r == "no answer from 198.51.100.1: UDP 500 blocked?"),
        "{:?}",
        lab.refusals()
    );
    assert_eq!(lab.from_client.len(), 5);
}

#[test]
fn dropped_messages_are_retransmitted() {
    let mut lab = Lab::new(true, |_| {}, |_| {});
    // The first message 3 to the server and the first message 6 to the
    // client are lost.
    let mut sent = 0;
    lab.to_server = Box::new(move |_| {
        sent += 1;
        sent != 2
    });
    let mut answered = 0;
    lab.to_client = Box::new(move |_| {
        answered += 1;
        answered != 3
    });
    lab.pump();
    assert!(!lab.i.is_established());
    lab.advance(Duration::from_secs(2), Duration::from_millis(500));
    assert!(!lab.i.is_established(), "message 3 resent, message 6 lost");
    lab.advance(Duration::from_secs(2), Duration::from_millis(500));
    assert!(
        lab.i.is_established(),
        "message 5 resent and answered again"
    );
    assert_eq!(lab.i_children().len(), 1);
    assert_keys_agree(lab.i_children()[0], lab.r_children()[0], lab.now);
    assert_eq!(lab.r.stats().retransmits_answered, 1);
}

#[test]
fn refused_proposals_end_the_connection() {
    let mut lab = Lab::new(
        false,
        |c| {
            c.ike_offers
                .retain(|o| o.group == ipsec::ike_crypto::DhGroup::Modp1024)
        },
        |r| {
            r.proposals
                .ike_groups
                .retain(|g| *g != ipsec::ike_crypto::DhGroup::Modp1024)
        },
    );
    lab.pump();
    assert!(lab.i.is_closed());
    let reasons = lab.refusals();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("NO-PROPOSAL-CHOSEN")
                && r.contains("none of our Main Mode proposals")),
        "{reasons:?}"
    );
    // Quick Mode: the server takes no ESP suite we offer.
    let mut lab = Lab::new(
        false,
        |c| c.esp_suites = vec![ipsec::esp::CipherSuite::Aes128Gcm16],
        |r| {
            r.proposals
                .esp_suites
                .retain(|s| *s != ipsec::esp::CipherSuite::Aes128Gcm16)
        },
    );
    lab.pump();
    assert!(lab.i.is_closed());
    assert!(
        lab.refusals()
            .iter()
            .any(|r| r.contains("refused Quick Mode with NO-PROPOSAL-CHOSEN")),
        "{:?}",
        lab.refusals()
    );
}

#[test]
fn a_child_is_rekeyed_before_its_lifetime_ends_without_a_gap() {
    let mut lab = Lab::new(true, |c| c.esp_lifetime = Duration::from_secs(100), |_| {});
    lab.pump();
    let old_spi = lab.i_children()[0].inbound.spi;
    lab.advance(Duration::from_secs(84), Duration::from_secs(1));
    assert_eq!(lab.i_children().len(), 1, "no rekey before 85 %");
    lab.advance(Duration::from_secs(2), Duration::from_secs(1));
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert_eq!((ic.len(), rc.len()), (2, 2), "a second Quick Mode ran");
    assert!(
        downs(&lab.i_events).is_empty(),
        "the old pair overlaps the new one"
    );
    assert_eq!(lab.r.child_sa_count(), 2);
    lab.advance(Duration::from_secs(2), Duration::from_secs(1));
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert_ne!(ic[1].inbound.spi, old_spi);
    assert_keys_agree(ic[1], rc[1], lab.now);
    // The new SA came up before the old one was deleted, on both sides.
    // The second ChildSaUp comes before the first ChildSaDown.
    let position = |events: &[IkeEvent], up: bool| {
        events
            .iter()
            .enumerate()
            .filter(|(_, e)| match e {
                IkeEvent::ChildSaUp(_) => up,
                IkeEvent::ChildSaDown { .. } => !up,
                _ => false,
            })
            .nth(if up { 1 } else { 0 })
            .map(|(at, _)| at)
            .unwrap()
    };
    assert!(position(&lab.i_events, true) < position(&lab.i_events, false));
    assert!(position(&lab.r_events, true) < position(&lab.r_events, false));
    assert_eq!(downs(&lab.i_events), [(old_spi, DownReason::Replaced)]);
    let server_old = lab.r_children()[0].inbound.spi;
    assert_eq!(
        downs(&lab.r_events),
        [(server_old, DownReason::DeletedByPeer)]
    );
    assert_eq!(lab.i.child_count(), 1);
    assert_eq!(lab.r.child_sa_count(), 1);
    // And the next rekey follows the same way.
    lab.advance(Duration::from_secs(88), Duration::from_secs(1));
    assert_eq!(lab.i_children().len(), 3);
    assert_eq!(lab.i.child_count(), 1);
}

#[test]
fn the_child_lifetime_is_the_negotiated_one() {
    let mut lab = Lab::new(false, |c| c.esp_lifetime = Duration::from_secs(50), |_| {});
    lab.pump();
    assert_eq!(
        lab.i_children()[0].outbound.lifetime.hard_time,
        Some(Duration::from_secs(50))
    );
    assert_eq!(
        lab.i_children()[0].inbound.lifetime.hard_time,
        Some(Duration::from_secs(50))
    );
}

/// RFC 2407 §4.6.3.1: the client proposes 1 h, the server allows 10 min:
/// the server says so with RESPONDER-LIFETIME in Quick Mode message 2, and
/// both sides' SAs live 10 minutes (the client rekeys in time).
#[test]
fn a_shorter_server_lifetime_is_announced_and_used_by_both_sides() {
    let mut lab = Lab::new(
        false,
        |c| c.esp_lifetime = Duration::from_secs(3600),
        |r| r.max_esp_lifetime = Duration::from_secs(600),
    );
    lab.pump();
    assert_eq!(
        lab.i_children()[0].outbound.lifetime.hard_time,
        Some(Duration::from_secs(600)),
        "the client took the server's lifetime"
    );
    // The server enforces its own, plus a little slack for the rekey.
    let server = lab.r_children()[0].inbound.lifetime.hard_time.unwrap();
    assert!(
        server >= Duration::from_secs(600) && server <= Duration::from_secs(780),
        "{server:?}"
    );
    // Without the notify the client would keep its 1 h: nothing else told
    // it (the server answers with the client's own proposal).
    let mut lab = Lab::new(
        false,
        |c| c.esp_lifetime = Duration::from_secs(300),
        |r| r.max_esp_lifetime = Duration::from_secs(600),
    );
    lab.pump();
    assert_eq!(
        lab.i_children()[0].outbound.lifetime.hard_time,
        Some(Duration::from_secs(300)),
        "a shorter proposal stands"
    );
}

/// Clients that hang up (their Delete arrives) are not half-open: after
/// 20 connects and hang-ups from one address (more than the 16 half-open
/// Main Modes one address may have), the next client is answered at once.
#[test]
fn clients_that_hung_up_do_not_count_as_half_open() {
    let mut lab = Lab::new(false, |_| {}, |_| {});
    lab.pump();
    assert_eq!(lab.i_children().len(), 1);
    for round in 0..20 {
        lab.i.close(lab.now);
        lab.pump();
        let local = SocketAddr::new(CLIENT_DIRECT.parse().unwrap(), 500);
        lab.i = Initiator::new(InitiatorConfig::new(PSK), local, server(500), lab.now);
        lab.i_events.clear();
        // Another client behind the same address (its own port), as the
        // clients of one NAT are.
        lab.port_shift += 1;
        lab.pump();
        assert_eq!(
            lab.i_children().len(),
            1,
            "round {round}: connected without waiting; refusals: {:?}",
            lab.refusals()
        );
    }
}

#[test]
fn responder_lifetime_attributes_are_read() {
    use ipsec::ikev1::offer::responder_lifetime_seconds;
    use ipsec::ikev1::proposal::p2;
    use ipsec::ikev1::sa_payload::push_number;
    // RFC 2407 §4.6.3.1: kilobytes first, then seconds.
    let mut data = Vec::new();
    push_number(&mut data, p2::LIFE_TYPE, 2);
    push_number(&mut data, p2::LIFE_DURATION, 250_000);
    push_number(&mut data, p2::LIFE_TYPE, 1);
    push_number(&mut data, p2::LIFE_DURATION, 1200);
    assert_eq!(
        responder_lifetime_seconds(&data, p2::LIFE_TYPE, p2::LIFE_DURATION),
        Some(1200)
    );
    assert_eq!(
        responder_lifetime_seconds(&[1, 2, 3], p2::LIFE_TYPE, p2::LIFE_DURATION),
        None
    );
}

#[test]
fn close_deletes_children_and_the_ike_sa() {
    let mut lab = Lab::new(false, |_| {}, |_| {});
    lab.pump();
    let spi = lab.i_children()[0].inbound.spi;
    let server_spi = lab.r_children()[0].inbound.spi;
    lab.i.close(lab.now);
    lab.pump();
    assert_eq!(downs(&lab.i_events), [(spi, DownReason::Closed)]);
    assert_eq!(ike_down(&lab.i_events), Some(DownReason::Closed));
    assert_eq!(
        downs(&lab.r_events),
        [(server_spi, DownReason::DeletedByPeer)]
    );
    assert_eq!(ike_down(&lab.r_events), Some(DownReason::DeletedByPeer));
    assert_eq!((lab.r.ike_sa_count(), lab.r.child_sa_count()), (0, 0));
}

#[test]
fn the_server_deleting_is_reported() {
    let mut lab = Lab::new(true, |_| {}, |_| {});
    lab.pump();
    let spi = lab.i_children()[0].inbound.spi;
    lab.r.close_all(lab.now);
    lab.pump();
    assert_eq!(downs(&lab.i_events), [(spi, DownReason::DeletedByPeer)]);
    assert_eq!(ike_down(&lab.i_events), Some(DownReason::DeletedByPeer));
    assert_eq!(lab.i.child_count(), 0);
}

#[test]
fn dead_peer_detection_both_ways() {
    let mut lab = Lab::new(
        true,
        |c| {
            c.dpd_delay = Duration::from_secs(15);
            c.dpd_timeout = Duration::from_secs(40);
        },
        |r| {
            r.dpd_delay = Duration::from_secs(10);
            r.dpd_timeout = Duration::from_secs(30);
        },
    );
    lab.pump();
    let before = lab.from_client.len();
    // Idle for a minute: each side probes the other and is answered.
    lab.advance(Duration::from_secs(60), Duration::from_secs(1));
    assert_eq!(ike_down(&lab.i_events), None);
    assert_eq!(
        ike_down(&lab.r_events),
        None,
        "the responder's R-U-THERE were acknowledged"
    );
    let informational = lab.from_client[before..]
        .iter()
        .filter(|t| Header::parse(&t.bytes).unwrap().exchange == exchange::INFORMATIONAL)
        .count();
    assert!(
        informational >= 4,
        "acks and probes from the client: {informational}"
    );
    // The server goes silent: the client gives up after its timeout.
    lab.to_client = Box::new(|_| false);
    lab.to_server = Box::new(|_| false);
    lab.advance(Duration::from_secs(60), Duration::from_secs(1));
    assert_eq!(ike_down(&lab.i_events), Some(DownReason::DeadPeer));
    assert!(lab
        .refusals()
        .iter()
        .any(|r| r.contains("stopped answering dead peer detection")));
    assert_eq!(downs(&lab.i_events).len(), 1);
    assert!(lab.i.is_closed());
}

#[test]
fn note_traffic_spares_a_busy_server_the_probes() {
    let mut lab = Lab::new(
        false,
        |c| c.dpd_delay = Duration::from_secs(15),
        |r| r.dpd_delay = Duration::from_secs(1000),
    );
    lab.pump();
    let before = lab.from_client.len();
    for _ in 0..30 {
        lab.advance(Duration::from_secs(1), Duration::from_secs(1));
        lab.i.note_traffic(lab.now);
    }
    assert_eq!(
        lab.from_client.len(),
        before,
        "no R-U-THERE while ESP flows"
    );
}

#[test]
fn garbage_from_the_network_costs_only_the_packet() {
    let mut lab = Lab::new(false, |_| {}, |_| {});
    lab.pump();
    let now = lab.now;
    lab.i.handle_datagram(now, false, &[0u8; 3]);
    let mut forged = lab.from_client[0].bytes.clone();
    forged[HEADER_LEN..].iter_mut().for_each(|b| *b ^= 0x5a);
    lab.i.handle_datagram(now, false, &forged);
    let mut quick = Vec::new();
    for len in [28usize, 29, 60, 200] {
        let mut m = vec![0xab; len];
        m[..8].copy_from_slice(&lab.from_client[0].bytes[..8]);
        m[17] = 0x10;
        m[24..28].copy_from_slice(&(len as u32).to_be_bytes());
        quick.push(m);
    }
    for m in &quick {
        lab.i.handle_datagram(now, false, m);
    }
    assert!(lab.i.is_established());
    assert!(!lab.i.is_closed());
}

/// 3DES-CBC ESP (RFC 2451) for old clients: refused on the server's
/// defaults, negotiated and keyed alike on both sides once the operator
/// lists it. Its KEYMAT is 24 + 20 bytes each way (RFC 2409 §5.5).
#[test]
fn triple_des_esp_only_when_the_server_lists_it() {
    use ipsec::esp::{CipherSuite, Integrity};
    let triple_des = CipherSuite::TripleDesCbc(Integrity::HmacSha1_96);
    let mut lab = Lab::new(false, |c| c.esp_suites = vec![triple_des], |_| {});
    lab.pump();
    assert!(lab.i.is_closed(), "3DES is not accepted by default");
    assert!(
        lab.refusals()
            .iter()
            .any(|r| r.contains("refused Quick Mode with NO-PROPOSAL-CHOSEN")),
        "{:?}",
        lab.refusals()
    );

    let mut lab = Lab::new(
        false,
        |c| c.esp_suites = vec![triple_des],
        |r| r.proposals.esp_suites.push(triple_des),
    );
    lab.pump();
    let (ic, rc) = (lab.i_children(), lab.r_children());
    assert_eq!((ic.len(), rc.len()), (1, 1));
    assert_eq!(ic[0].suite, "3des-cbc/hmac-sha1-96");
    assert_eq!(ic[0].outbound.cipher_key.len(), 24);
    assert_keys_agree(ic[0], rc[0], lab.now);
}
