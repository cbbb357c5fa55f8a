//! A server Link against a client Link in memory: every auth method ×
//! MPPE strength and mode × IPv4/IPv6, the Windows trace of the MS-PROTO
//! seed, failure paths, and lossy, duplicating, reordering transports.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::auth::{AuthMethod, Rejection, Secret};
use crate::ccp::CcpConfig;
use crate::ipcp::IpcpConfig;
use crate::ipv6cp::Ipv6cpConfig;
use crate::lcp::{CallbackPolicy, LcpConfig};
use crate::mppe::MppeStrength;

pub(crate) const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 20);
pub(crate) const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);
pub(crate) const DNS: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 1);

/// How the in-memory transport misbehaves.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Chaos {
    pub loss: f64,
    pub duplicate: f64,
    pub reorder: f64,
}

/// What the test's "server application" does with an AuthRequest.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Store {
    /// Answer from the user table (unknown user or wrong password: 691).
    Local,
    /// Refuse everybody with this rejection.
    Refuse(Rejection),
}

pub(crate) struct Harness {
    pub server: Link,
    pub client: Link,
    pub now: Instant,
    pub users: HashMap<String, String>,
    pub store: Store,
    pub network: NetworkSettings,
    pub chaos: Chaos,
    pub rng: StdRng,
    /// Every frame delivered: (from client, frame).
    pub trace: Vec<(bool, Vec<u8>)>,
    pub server_up: Option<LinkUp>,
    pub client_up: Option<LinkUp>,
    pub server_down: Option<DownReason>,
    pub client_down: Option<DownReason>,
    pub server_events: Vec<String>,
    pub client_events: Vec<String>,
    /// `run` returns once both sides are up (clear it to run on).
    pub stop_when_up: bool,
    /// The test handles events itself.
    pub manual_events: bool,
    /// Password the client retries with after an MS-CHAPv2 R=1 failure.
    pub retry_password: Option<String>,
    /// The server application never answers credential checks.
    pub silent_store: bool,
    in_flight: VecDeque<(bool, Vec<u8>)>,
}

pub(crate) fn server_network() -> NetworkSettings {
    NetworkSettings {
        ipcp: Some(IpcpConfig::server(
            SERVER_IP,
            CLIENT_IP,
            [Some(DNS), None],
            [None, None],
        )),
        ipv6cp: Some(Ipv6cpConfig::default()),
        ccp: None,
    }
}

impl Harness {
    pub fn new(server: LinkConfig, client: LinkConfig) -> Self {
        let now = Instant::now();
        let mut users = HashMap::new();
        users.insert("alice".to_owned(), "correct horse".to_owned());
        users.insert("User".to_owned(), "clientPass".to_owned());
        Harness {
            server: Link::new(server),
            client: Link::new(client),
            now,
            users,
            store: Store::Local,
            network: server_network(),
            chaos: Chaos::default(),
            rng: StdRng::seed_from_u64(7),
            trace: Vec::new(),
            server_up: None,
            client_up: None,
            server_down: None,
            client_down: None,
            server_events: Vec::new(),
            client_events: Vec::new(),
            stop_when_up: true,
            manual_events: false,
            retry_password: None,
            silent_store: false,
            in_flight: VecDeque::new(),
        }
    }

    pub fn start(&mut self) {
        let now = self.now;
        self.client.lower_up(now);
        self.server.lower_up(now);
    }

    fn collect(&mut self) {
        while let Some(f) = self.client.poll_transmit() {
            self.send(true, f);
        }
        while let Some(f) = self.server.poll_transmit() {
            self.send(false, f);
        }
    }

    fn send(&mut self, from_client: bool, frame: Vec<u8>) {
        let c = self.chaos;
        if c.loss > 0.0 && self.rng.gen_bool(c.loss) {
            return;
        }
        if c.duplicate > 0.0 && self.rng.gen_bool(c.duplicate) {
            self.in_flight.push_back((from_client, frame.clone()));
        }
        if c.reorder > 0.0 && self.rng.gen_bool(c.reorder) && !self.in_flight.is_empty() {
            let at = self.rng.gen_range(0..self.in_flight.len());
            self.in_flight.insert(at, (from_client, frame));
        } else {
            self.in_flight.push_back((from_client, frame));
        }
    }

    fn deliver(&mut self) -> bool {
        let mut any = false;
        while let Some((from_client, mut frame)) = self.in_flight.pop_front() {
            any = true;
            self.trace.push((from_client, frame.clone()));
            let now = self.now;
            let link = if from_client {
                &mut self.server
            } else {
                &mut self.client
            };
            let _ = link.handle_frame(now, &mut frame);
            if !self.manual_events {
                self.events();
            }
            self.collect();
        }
        any
    }

    fn events(&mut self) {
        let now = self.now;
        while let Some(ev) = self.server.poll_event() {
            self.server_events.push(format!("{ev:?}"));
            match ev {
                LinkEvent::AuthRequest(_) if self.silent_store => {}
                LinkEvent::AuthRequest(req) => match self.store {
                    Store::Local => match self.users.get(&req.username) {
                        Some(pw) => {
                            let secret = Secret::Password(zeroize::Zeroizing::new(pw.clone()));
                            self.server.provide_secret(now, secret);
                        }
                        None => self.server.reject_auth(
                            now,
                            Rejection::AuthenticationFailure,
                            "no such user",
                        ),
                    },
                    Store::Refuse(r) => self.server.reject_auth(now, r, "refused by policy"),
                },
                LinkEvent::Authenticated { .. } => {
                    let settings = self.network.clone();
                    self.server.start_network(now, settings);
                }
                LinkEvent::Up(up) => self.server_up = Some(up),
                LinkEvent::Down(why) => self.server_down = Some(why),
                _ => {}
            }
        }
        while let Some(ev) = self.client.poll_event() {
            self.client_events.push(format!("{ev:?}"));
            match ev {
                LinkEvent::Up(up) => self.client_up = Some(up),
                LinkEvent::Down(why) => self.client_down = Some(why),
                LinkEvent::AuthRetryAllowed(_) => {
                    if let Some(pw) = self.retry_password.take() {
                        self.client.retry_auth(now, &pw);
                    }
                }
                _ => {}
            }
        }
    }

    /// Run until both sides are up, either is down, or `limit` of virtual
    /// time passed. Idle periods jump to the next timer.
    pub fn run(&mut self, limit: Duration) {
        let end = self.now + limit;
        for _ in 0..100_000 {
            self.events();
            self.collect();
            let delivered = self.deliver();
            let both_up = self.server_up.is_some() && self.client_up.is_some();
            let both_settled = (self.server_down.is_some() || self.server_up.is_some())
                && (self.client_down.is_some() || self.client_up.is_some());
            let done = if self.server_down.is_some() || self.client_down.is_some() {
                self.server_down.is_some() && self.client_down.is_some()
            } else {
                both_up && self.stop_when_up
            };
            if done && self.in_flight.is_empty() {
                return;
            }
            if delivered {
                continue;
            }
            let next = [self.server.poll_timeout(), self.client.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.server.handle_timeout(now);
                    self.client.handle_timeout(now);
                }
                _ => {
                    if both_settled {
                        return;
                    }
                    return;
                }
            }
        }
        panic!("harness did not settle");
    }

    /// Send IP packets both ways and check they arrive intact.
    pub fn exchange_data(&mut self, count: usize) {
        let mut buf = Vec::new();
        for i in 0..count {
            for (from_client, v6) in [(true, false), (false, false), (true, true), (false, true)] {
                // A family counts when both ends opened it: under heavy
                // loss one end's NCP may give up (RFC 1661 TO-, a
                // Max-Configure budget spent) while the other opened.
                let (up_v4, up_v6) = {
                    let (c, s) = (
                        self.client_up.as_ref().unwrap(),
                        self.server_up.as_ref().unwrap(),
                    );
                    (
                        c.ipv4.is_some() && s.ipv4.is_some(),
                        c.ipv6.is_some() && s.ipv6.is_some(),
                    )
                };
                if (v6 && !up_v6) || (!v6 && !up_v4) {
                    continue;
                }
                let packet = test_packet(v6, i);
                buf.clear();
                let (tx, rx) = if from_client {
                    (&mut self.client, &mut self.server)
                } else {
                    (&mut self.server, &mut self.client)
                };
                tx.send_ip(&packet, &mut buf).unwrap();
                let got = match rx.handle_frame(self.now, &mut buf) {
                    Inbound::Ipv4(p) => p.to_vec(),
                    Inbound::Ipv6(p) => p.to_vec(),
                    Inbound::Nothing => panic!("packet {i} ({from_client}, v6={v6}) not delivered"),
                };
                assert_eq!(got, packet);
            }
        }
    }
}

/// A well-formed IPv4 or IPv6 datagram: a stateful MPPE receiver checks
/// the IP header of flushed packets (see `mppe`'s module documentation).
pub(crate) fn test_packet(v6: bool, i: usize) -> Vec<u8> {
    let len = 101 + i % 1300;
    let mut p: Vec<u8> = (0..len).map(|b| (b ^ i) as u8).collect();
    if v6 {
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
    } else {
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        p[10..12].copy_from_slice(&[0, 0]);
        let sum = p[..20]
            .chunks(2)
            .fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = (sum & 0xFFFF) + (sum >> 16);
        let sum = (sum & 0xFFFF) + (sum >> 16);
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    }
    p
}

pub(crate) fn server_config(auth: AuthProtocol, ccp: Option<CcpConfig>) -> LinkConfig {
    let mut c = LinkConfig::server("ras-test");
    c.lcp.require_auth = vec![auth];
    c.ccp = ccp;
    c.rng_seed = Some(1);
    c.echo = None;
    c
}

pub(crate) fn client_config(auth: AuthProtocol, ccp: Option<CcpConfig>) -> LinkConfig {
    let mut c = LinkConfig::client("alice", "correct horse");
    c.lcp.accept_auth = vec![auth];
    c.ccp = ccp;
    c.rng_seed = Some(2);
    c.echo = None;
    c
}

fn ccp(strength: MppeStrength, stateless: bool, required: bool) -> CcpConfig {
    CcpConfig {
        allowed: crate::ccp::Strengths::of(&[strength]),
        allow_stateful: !stateless,
        prefer_stateless: stateless,
        required,
    }
}

const AUTHS: [AuthProtocol; 4] = [
    AuthProtocol::Pap,
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV2,
    AuthProtocol::Eap,
];
const STRENGTHS: [MppeStrength; 3] = [
    MppeStrength::Bits40,
    MppeStrength::Bits56,
    MppeStrength::Bits128,
];

fn keys_mirror(h: &Harness) {
    let s = h.server_up.as_ref().unwrap().master_keys.clone().unwrap();
    let c = h.client_up.as_ref().unwrap().master_keys.clone().unwrap();
    assert_eq!(s.send, c.recv);
    assert_eq!(s.recv, c.send);
}

#[test]
fn every_auth_method_with_and_without_mppe_comes_up() {
    for auth in AUTHS {
        let keyed = matches!(auth, AuthProtocol::MsChapV2 | AuthProtocol::Eap);
        let mut combos: Vec<Option<(MppeStrength, bool)>> = vec![None];
        if keyed {
            for s in STRENGTHS {
                combos.push(Some((s, true)));
                combos.push(Some((s, false)));
            }
        }
        for combo in combos {
            let cfg = combo.map(|(s, stateless)| ccp(s, stateless, true));
            let mut h = Harness::new(server_config(auth, cfg), client_config(auth, cfg));
            h.network.ccp = cfg;
            h.start();
            h.run(Duration::from_secs(120));
            let label = format!(
                "{auth:?} {combo:?}: server {:?} client {:?}",
                h.server_down, h.client_down
            );
            let s = h.server_up.as_ref().expect(&label);
            let c = h.client_up.as_ref().expect(&label);
            assert_eq!(s.username.as_deref(), Some("alice"), "{label}");
            assert_eq!(s.auth_protocol, Some(auth), "{label}");
            let v4 = c.ipv4.as_ref().expect(&label);
            assert_eq!(v4.local, CLIENT_IP);
            assert_eq!(v4.peer, SERVER_IP);
            assert_eq!(v4.dns[0], Some(DNS));
            let (sv6, cv6) = (s.ipv6.as_ref().unwrap(), c.ipv6.as_ref().unwrap());
            assert_eq!(sv6.local_interface_id, cv6.peer_interface_id);
            assert_eq!(sv6.peer_interface_id, cv6.local_interface_id);
            match combo {
                Some((strength, stateless)) => {
                    let m = s.mppe.expect(&label);
                    assert_eq!((m.strength, m.stateless), (strength, stateless), "{label}");
                    assert_eq!(c.mppe, s.mppe);
                    keys_mirror(&h);
                }
                None => assert!(s.mppe.is_none() && c.mppe.is_none()),
            }
            if keyed {
                keys_mirror(&h);
            }
            h.exchange_data(300);
        }
    }
}

#[test]
fn mppe_required_without_key_material_fails_with_reason() {
    for auth in [AuthProtocol::Pap, AuthProtocol::ChapMd5] {
        let cfg = Some(ccp(MppeStrength::Bits128, true, true));
        let mut h = Harness::new(server_config(auth, cfg), client_config(auth, cfg));
        h.network.ccp = cfg;
        h.start();
        h.run(Duration::from_secs(120));
        assert!(h.server_up.is_none());
        assert_eq!(
            h.server_down,
            Some(DownReason::EncryptionRequired),
            "{auth:?}"
        );
        assert!(h.client_down.is_some());
    }
}

#[test]
fn wrong_password_fails_with_691_on_both_sides() {
    for auth in AUTHS {
        let mut client = client_config(auth, None);
        client.credentials = Some(crate::auth::PeerConfig::new("alice", "wrong"));
        let mut server = server_config(auth, None);
        server.authenticator.max_retries = 0;
        let mut h = Harness::new(server, client);
        h.start();
        h.run(Duration::from_secs(120));
        assert!(h.server_up.is_none() && h.client_up.is_none(), "{auth:?}");
        match &h.server_down {
            Some(DownReason::AuthFailed(f)) => assert_eq!(f.rejection.code(), 691, "{auth:?}"),
            other => panic!("{auth:?}: server down {other:?}"),
        }
        match &h.client_down {
            Some(DownReason::AuthFailed(f))
                if auth == AuthProtocol::MsChapV2 || auth == AuthProtocol::Eap =>
            {
                assert_eq!(f.rejection.code(), 691, "{auth:?}")
            }
            Some(DownReason::AuthFailed(_)) | Some(DownReason::PeerTerminated(_)) => {}
            other => panic!("{auth:?}: client down {other:?}"),
        }
    }
}

#[test]
fn policy_rejections_carry_their_ms_chap_codes() {
    for rejection in [Rejection::PasswordExpired, Rejection::NoDialinPermission] {
        let auth = AuthProtocol::MsChapV2;
        let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
        h.store = Store::Refuse(rejection);
        h.start();
        h.run(Duration::from_secs(60));
        match &h.client_down {
            Some(DownReason::AuthFailed(f)) => assert_eq!(f.rejection, rejection),
            other => panic!("{rejection:?}: client down {other:?}"),
        }
    }
}

#[test]
fn client_refusing_to_authenticate_is_dropped() {
    let mut server = server_config(AuthProtocol::MsChapV2, None);
    server.lcp.require_auth = vec![AuthProtocol::MsChapV2];
    let mut client = client_config(AuthProtocol::Pap, None);
    client.lcp.accept_auth = vec![AuthProtocol::Pap];
    let mut h = Harness::new(server, client);
    h.start();
    h.run(Duration::from_secs(60));
    assert_eq!(h.server_down, Some(DownReason::AuthRefused));
    assert!(h.client_up.is_none());
}

#[test]
fn ipv4_only_and_ipv6_only_links() {
    // The client does not run IPv6CP: the server's IPv6CP is Protocol-Rejected.
    let auth = AuthProtocol::MsChapV2;
    let mut client = client_config(auth, None);
    client.ipv6cp = None;
    let mut h = Harness::new(server_config(auth, None), client);
    h.start();
    h.run(Duration::from_secs(60));
    let s = h.server_up.as_ref().expect("v4 only");
    assert!(s.ipv4.is_some() && s.ipv6.is_none());
    h.exchange_data(20);

    let mut client = client_config(auth, None);
    client.ipcp = None;
    let mut h = Harness::new(server_config(auth, None), client);
    h.start();
    h.run(Duration::from_secs(60));
    let c = h.client_up.as_ref().expect("v6 only");
    assert!(c.ipv4.is_none() && c.ipv6.is_some());
    h.exchange_data(20);
}

#[test]
fn server_waits_for_start_network_and_replays_held_requests() {
    let auth = AuthProtocol::MsChapV2;
    let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
    // Do not answer Authenticated at once: hold the network settings.
    h.network = server_network();
    h.start();
    // Run without the Authenticated handler by stepping manually.
    let now = h.now;
    let mut authenticated = false;
    for _ in 0..200 {
        while let Some(mut f) = h.client.poll_transmit() {
            let _ = h.server.handle_frame(now, &mut f);
        }
        while let Some(mut f) = h.server.poll_transmit() {
            let _ = h.client.handle_frame(now, &mut f);
        }
        while let Some(ev) = h.server.poll_event() {
            match ev {
                LinkEvent::AuthRequest(_) => h.server.provide_secret(
                    now,
                    Secret::Password(zeroize::Zeroizing::new("correct horse".into())),
                ),
                LinkEvent::Authenticated { .. } => authenticated = true,
                _ => {}
            }
        }
        while h.client.poll_event().is_some() {}
    }
    assert!(authenticated);
    assert!(!h.server.is_up());
    assert_eq!(h.server.phase(), Phase::Network);
    // Now the server decides; the held client requests are answered at
    // once, without waiting for the client's restart timer.
    h.server.start_network(now, server_network());
    h.run(Duration::from_millis(1));
    assert!(h.server_up.is_some() && h.client_up.is_some());
}

#[test]
fn close_sends_terminate_and_both_sides_go_down() {
    let auth = AuthProtocol::MsChapV2;
    let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
    h.start();
    h.run(Duration::from_secs(60));
    assert!(h.server.is_up());
    let now = h.now;
    h.stop_when_up = false;
    h.server.close(now, "server shutting down");
    h.run(Duration::from_secs(10));
    assert_eq!(
        h.server_down,
        Some(DownReason::Closed("server shutting down".into()))
    );
    assert_eq!(
        h.client_down,
        Some(DownReason::PeerTerminated("server shutting down".into()))
    );
    let mut buf = Vec::new();
    assert_eq!(
        h.client.send_ip(&test_packet(false, 1), &mut buf),
        Err(SendError::NotUp)
    );
}

#[test]
fn dead_peer_is_detected_by_echo() {
    let auth = AuthProtocol::MsChapV2;
    let mut server = server_config(auth, None);
    server.echo = Some(EchoConfig {
        interval: Duration::from_secs(10),
        max_failures: 3,
    });
    let mut h = Harness::new(server, client_config(auth, None));
    h.start();
    h.run(Duration::from_secs(60));
    assert!(h.server.is_up());
    // The client vanishes: nothing it sends arrives any more.
    h.chaos.loss = 1.0;
    h.stop_when_up = false;
    let start = h.now;
    h.run(Duration::from_secs(200));
    assert_eq!(h.server_down, Some(DownReason::PeerDead));
    assert!(h.now - start >= Duration::from_secs(30));
}

#[test]
fn unknown_protocol_is_protocol_rejected() {
    let auth = AuthProtocol::MsChapV2;
    let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
    h.start();
    h.run(Duration::from_secs(60));
    let now = h.now;
    let mut frame = vec![0xff, 0x03, 0x80, 0x2b, 1, 2, 3, 4]; // IPX control
    assert_eq!(h.server.handle_frame(now, &mut frame), Inbound::Nothing);
    let reply = h.server.poll_transmit().unwrap();
    // LCP Protocol-Reject (code 8) naming 0x802b.
    assert_eq!(&reply[..4], &[0xff, 0x03, 0xc0, 0x21]);
    assert_eq!(reply[4], 8);
    assert_eq!(&reply[8..10], &[0x80, 0x2b]);
    assert!(h.server.is_up());
}

#[test]
fn unencrypted_data_is_dropped_when_mppe_is_on() {
    let auth = AuthProtocol::MsChapV2;
    let cfg = Some(ccp(MppeStrength::Bits128, true, true));
    let mut h = Harness::new(server_config(auth, cfg), client_config(auth, cfg));
    h.network.ccp = cfg;
    h.start();
    h.run(Duration::from_secs(60));
    assert!(h.server.is_up());
    let mut frame = vec![0x00, 0x21];
    frame.extend(test_packet(false, 3));
    assert_eq!(h.server.handle_frame(h.now, &mut frame), Inbound::Nothing);
    assert_eq!(h.server.stats().dropped, 1);
}

#[test]
fn eap_pass_through_to_an_outside_server() {
    // The "RADIUS server" is a local-mode EAP authenticator behind the
    // pass-through authenticator.
    let auth = AuthProtocol::Eap;
    let mut server = server_config(auth, None);
    server.authenticator.eap_pass_through = true;
    let mut h = Harness::new(server, client_config(auth, None));
    let mut backend = crate::auth::Authenticator::new(
        AuthProtocol::Eap,
        crate::auth::AuthenticatorConfig::new("radius"),
        &mut StdRng::seed_from_u64(3),
    );
    h.manual_events = true;
    h.start();
    let mut backend_started = false;
    let mut up = false;
    for _ in 0..500 {
        let now = h.now;
        h.collect();
        h.deliver();
        while let Some(ev) = h.server.poll_event() {
            match ev {
                LinkEvent::AuthRequest(req) => {
                    assert_eq!(req.method, AuthMethod::EapPassThrough);
                    let crate::auth::Credentials::EapPassThrough { message } = req.credentials
                    else {
                        panic!("not pass-through")
                    };
                    if !backend_started {
                        // The backend starts its own conversation (asking
                        // the identity again), as a RADIUS server may.
                        backend.start(now);
                        backend_started = true;
                    } else {
                        backend.handle_packet(now, &message);
                    }
                    while let Some(bev) = backend.poll_event() {
                        match bev {
                            crate::auth::AuthEvent::Request(_) => backend.provide_secret(
                                now,
                                Secret::Password(zeroize::Zeroizing::new("correct horse".into())),
                            ),
                            crate::auth::AuthEvent::Success(s) => {
                                let eap_success = backend.poll_transmit();
                                h.server.accept_external(
                                    now,
                                    crate::auth::ExternalAccept {
                                        keys: s.keys,
                                        eap_message: eap_success,
                                        ..Default::default()
                                    },
                                );
                            }
                            other => panic!("backend: {other:?}"),
                        }
                    }
                    while let Some(challenge) = backend.poll_transmit() {
                        h.server.eap_challenge(now, challenge);
                    }
                }
                LinkEvent::Authenticated { .. } => {
                    let n = server_network();
                    h.server.start_network(now, n);
                }
                LinkEvent::Up(s) => {
                    h.server_up = Some(s);
                }
                LinkEvent::Down(why) => panic!("server down: {why:?}"),
                _ => {}
            }
        }
        while let Some(ev) = h.client.poll_event() {
            if let LinkEvent::Up(c) = ev {
                h.client_up = Some(c);
            }
        }
        if h.server_up.is_some() && h.client_up.is_some() {
            up = true;
            break;
        }
    }
    assert!(up, "pass-through login did not complete");
    keys_mirror(&h);
}

#[test]
fn windows_trace_is_reproduced_message_for_message() {
    // MS-PROTO §15.4.2 (Vista client, Windows Server 2008): LCP
    // Req/Req/Ack/Reject/Req/Nak/Req/Ack, Identification, MS-CHAPv2
    // Challenge/Response/Success, CBCP Request/Response/Ack, then IPCP,
    // IPv6CP and CCP requests from the client.
    let mut server = LinkConfig::server("WS200801");
    server.rng_seed = Some(11);
    server.echo = None;
    server.lcp = LcpConfig {
        endpoint_discriminator: Some((1, b"WS200801-ras".to_vec())),
        callback_policy: CallbackPolicy::AcceptCbcp,
        ..LcpConfig::server()
    };
    server.ccp = Some(CcpConfig::default());
    let mut client = LinkConfig::client("Administrator", "P@ssw0rd");
    client.rng_seed = Some(12);
    client.echo = None;
    client.identification = Some("MSRASV5.20".into());
    client.lcp = LcpConfig {
        mru: 1400,
        request_callback: true,
        accept_auth: vec![AuthProtocol::MsChapV2],
        ..LcpConfig::client()
    };
    client.ipcp = Some(IpcpConfig {
        request_nbns: true,
        ..IpcpConfig::client()
    });
    client.ccp = Some(CcpConfig::default());
    let mut h = Harness::new(server, client);
    h.users.insert("Administrator".into(), "P@ssw0rd".into());
    h.network.ccp = Some(CcpConfig::default());
    h.start();
    h.run(Duration::from_secs(30));
    assert!(
        h.server_up.is_some() && h.client_up.is_some(),
        "{:?} {:?}",
        h.server_down,
        h.client_down
    );

    // (from client, protocol, code, id, length) of every control frame.
    let summary: Vec<(bool, u16, u8, u8, usize)> = h
        .trace
        .iter()
        .filter_map(|(from_client, f)| {
            let frame = crate::frame::decode(f).ok()?;
            let p = frame.payload;
            if frame.protocol < 0x8000 || p.len() < 4 {
                return None;
            }
            Some((
                *from_client,
                frame.protocol,
                p[0],
                p[1],
                u16::from_be_bytes([p[2], p[3]]) as usize,
            ))
        })
        .collect();
    let lcp: Vec<_> = summary.iter().filter(|s| s.1 == 0xc021).collect();
    let lcp_shape: Vec<(bool, u8, u8)> = lcp.iter().map(|s| (s.0, s.2, s.3)).collect();
    assert_eq!(
        &lcp_shape[..8],
        &[
            (true, 1, 0),  // client Configure-Request id 0
            (false, 1, 0), // server Configure-Request id 0
            (false, 2, 0), // server Configure-Ack id 0
            (true, 4, 0),  // client Configure-Reject id 0
            (false, 1, 1), // server Configure-Request id 1
            (true, 3, 1),  // client Configure-Nak id 1 (EAP → MS-CHAPv2)
            (false, 1, 2), // server Configure-Request id 2
            (true, 2, 2),  // client Configure-Ack id 2
        ],
        "{lcp:?}"
    );
    assert_eq!(lcp[0].4, 21, "client Configure-Request length");
    assert_eq!(lcp[2].4, 21, "server Configure-Ack length");
    assert_eq!(lcp[5].4, 9, "client Configure-Nak length");
    let ident = lcp.iter().find(|s| s.2 == 12).expect("Identification");
    assert!(ident.0 && ident.4 == 18);

    let chap: Vec<(bool, u8, u8, usize)> = summary
        .iter()
        .filter(|s| s.1 == 0xc223)
        .map(|s| (s.0, s.2, s.3, s.4))
        .collect();
    assert_eq!(
        chap,
        vec![
            (false, 1, chap[0].2, 29),
            (true, 2, chap[0].2, 67),
            (false, 3, chap[0].2, 46)
        ]
    );
    let cbcp: Vec<(bool, u8, u8)> = summary
        .iter()
        .filter(|s| s.1 == 0xc029)
        .map(|s| (s.0, s.2, s.3))
        .collect();
    assert_eq!(cbcp, vec![(false, 1, 1), (true, 2, 1), (false, 3, 1)]);
    let first_client_request = |proto| {
        summary
            .iter()
            .find(|s| s.0 && s.1 == proto && s.2 == 1)
            .map(|s| s.4)
    };
    assert_eq!(first_client_request(0x8021), Some(34), "IPCP request");
    assert_eq!(first_client_request(0x8057), Some(14), "IPv6CP request");
    assert_eq!(first_client_request(0x80fd), Some(10), "CCP request");
    h.exchange_data(5);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 48, ..Default::default() })]

    /// Lossy transports: every combination comes up (the restart timers
    /// recover every loss) with the right values.
    #[test]
    fn comes_up_through_a_lossy_transport(
        auth_index in 0usize..4,
        mppe in proptest::option::of((0usize..3, proptest::bool::ANY)),
        loss in 0.0f64..0.15,
        seed in proptest::num::u64::ANY,
    ) {
        let auth = AUTHS[auth_index];
        let keyed = matches!(auth, AuthProtocol::MsChapV2 | AuthProtocol::Eap);
        let cfg = mppe.filter(|_| keyed).map(|(s, stateless)| ccp(STRENGTHS[s], stateless, true));
        let mut h = Harness::new(server_config(auth, cfg), client_config(auth, cfg));
        h.network.ccp = cfg;
        h.chaos = Chaos { loss, duplicate: 0.0, reorder: 0.0 };
        h.rng = StdRng::seed_from_u64(seed);
        h.start();
        h.run(Duration::from_secs(600));
        proptest::prop_assert!(h.server_up.is_some() && h.client_up.is_some(),
            "{auth:?} {cfg:?} loss {loss}: {:?} / {:?}", h.server_down, h.client_down);
        if let Some(c) = &cfg {
            let m = h.server_up.as_ref().unwrap().mppe.unwrap();
            proptest::prop_assert_eq!(Some(m), h.client_up.as_ref().unwrap().mppe);
            proptest::prop_assert!(c.allowed.contains(m.strength));
        }
        h.chaos = Chaos::default();
        // IPv4 must be up on both ends; the data then flows.
        proptest::prop_assert!(h.server_up.as_ref().unwrap().ipv4.is_some() && h.client_up.as_ref().unwrap().ipv4.is_some());
        h.exchange_data(50);
    }

    /// Duplicating and reordering transports: the link comes up with the
    /// right values, or goes down for a reason that names what happened.
    #[test]
    fn survives_duplication_and_reordering(
        auth_index in 0usize..4,
        duplicate in 0.0f64..0.2,
        reorder in 0.0f64..0.2,
        loss in 0.0f64..0.1,
        seed in proptest::num::u64::ANY,
    ) {
        let auth = AUTHS[auth_index];
        let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
        h.chaos = Chaos { loss, duplicate, reorder };
        h.rng = StdRng::seed_from_u64(seed);
        h.start();
        h.run(Duration::from_secs(600));
        match (&h.server_up, &h.client_up) {
            (Some(s), Some(c)) => {
                proptest::prop_assert_eq!(s.ipv4.as_ref().unwrap().peer, CLIENT_IP);
                proptest::prop_assert_eq!(c.ipv4.as_ref().unwrap().local, CLIENT_IP);
                proptest::prop_assert_eq!(s.username.as_deref(), Some("alice"));
            }
            _ => {
                let reasons = [&h.server_down, &h.client_down];
                let explained = reasons.iter().any(|r| matches!(r,
                    Some(DownReason::NegotiationFailed(_)) | Some(DownReason::PeerTerminated(_))
                    | Some(DownReason::AuthFailed(_))));
                proptest::prop_assert!(explained, "{:?} / {:?}", h.server_down, h.client_down);
            }
        }
    }

    /// Random frames at any point never panic and never grow the queues.
    #[test]
    fn random_frames_never_panic(frames in proptest::collection::vec(
        proptest::collection::vec(proptest::num::u8::ANY, 0..64), 0..64),
        after_up in proptest::bool::ANY) {
        let auth = AuthProtocol::MsChapV2;
        let mut h = Harness::new(server_config(auth, None), client_config(auth, None));
        h.start();
        if after_up {
            h.run(Duration::from_secs(60));
        }
        let now = h.now;
        for mut f in frames {
            // Give the random bytes a plausible header half of the time.
            if f.len() > 2 && f[0] & 1 == 0 {
                let protos = [0xc021u16, 0xc223, 0xc227, 0xc029, 0x8021, 0x8057, 0x80fd, 0x00fd, 0x0021];
                let p = protos[f[1] as usize % protos.len()].to_be_bytes();
                f[0] = p[0];
                f[1] = p[1];
            }
            let _ = h.server.handle_frame(now, &mut f.clone());
            let _ = h.client.handle_frame(now, &mut f);
            let mut queued = 0;
            while h.server.poll_transmit().is_some() { queued += 1; }
            while h.client.poll_transmit().is_some() { queued += 1; }
            proptest::prop_assert!(queued <= 8);
        }
    }
}

#[test]
fn mschapv2_retry_with_the_right_password_comes_up() {
    let auth = AuthProtocol::MsChapV2;
    let mut client = client_config(auth, None);
    client.credentials = Some(crate::auth::PeerConfig::new("alice", "typo"));
    let mut h = Harness::new(server_config(auth, None), client);
    h.retry_password = Some("correct horse".into());
    h.start();
    h.run(Duration::from_secs(120));
    assert!(
        h.server_up.is_some() && h.client_up.is_some(),
        "{:?} {:?}",
        h.server_down,
        h.client_down
    );
    assert!(h
        .client_events
        .iter()
        .any(|e| e.contains("AuthRetryAllowed")));
    keys_mirror(&h);
}

#[test]
fn unanswered_credential_check_times_out() {
    let auth = AuthProtocol::MsChapV2;
    // A patient client (it would give up after 30 s by default).
    let mut client = client_config(auth, None);
    client.credentials.as_mut().unwrap().max_transmits = 100;
    let mut h = Harness::new(server_config(auth, None), client);
    h.silent_store = true;
    let start = h.now;
    h.start();
    h.run(Duration::from_secs(300));
    assert_eq!(h.server_down, Some(DownReason::AuthTimeout));
    assert!(h.now - start >= Duration::from_secs(60));
    assert!(h.client_down.is_some());
}

#[test]
fn callback_to_a_user_number_ends_the_link_for_the_call_back() {
    let auth = AuthProtocol::MsChapV2;
    let mut server = server_config(auth, None);
    server.cbcp_server = crate::cbcp::CbcpServerConfig::user_number_allowed();
    let mut client = client_config(auth, None);
    client.lcp.request_callback = true;
    client.cbcp_client = crate::cbcp::CbcpClientConfig::user_number("5551234", 5).unwrap();
    let mut h = Harness::new(server, client);
    h.start();
    h.run(Duration::from_secs(60));
    let expected = crate::cbcp::CallbackDecision::UserNumber {
        number: "5551234".into(),
        delay: 5,
    };
    assert_eq!(
        h.server_down,
        Some(DownReason::CallbackRequested(expected.clone()))
    );
    assert_eq!(h.client_down, Some(DownReason::CallbackRequested(expected)));
    assert!(h.server_up.is_none());
}

#[test]
fn no_callback_answer_continues_to_the_network_phase() {
    let auth = AuthProtocol::MsChapV2;
    let mut client = client_config(auth, None);
    client.lcp.request_callback = true;
    let mut h = Harness::new(server_config(auth, None), client);
    h.start();
    h.run(Duration::from_secs(60));
    assert!(h.server_up.is_some() && h.client_up.is_some());
    let cbcp = h
        .trace
        .iter()
        .filter(|(_, f)| crate::frame::decode(f).is_ok_and(|f| f.protocol == 0xc029))
        .count();
    assert_eq!(cbcp, 3, "Request, Response, Ack");
}

/// Every session of a server starts from the same settings: a link keeps
/// the shared configuration, not a 480-byte copy (issue 18).
#[test]
fn links_share_their_configuration() {
    let config = std::sync::Arc::new(LinkConfig::server("ras-test"));
    let first = Link::new(config.clone());
    let second = Link::new(config.clone());
    assert_eq!(std::sync::Arc::strong_count(&config), 3);
    drop((first, second));
    assert_eq!(std::sync::Arc::strong_count(&config), 1);
}
