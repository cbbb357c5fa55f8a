//! End-to-end tests: an Authenticator and a Peer connected by an in-memory
//! "wire" with a manual clock, a tiny user table behind the authenticator.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use zeroize::Zeroizing;

use super::eap::{self, EapPacket};
use super::mschapv2::{self, ResponseValue};
use super::packet::{chap_code, parse_chap_packet, ChapPacket};
use super::*;
use crate::crypto::mschap::{
    authenticator_response_string, generate_authenticator_response, nt_password_hash, strip_domain,
};

const ALL: [AuthProtocol; 5] = [
    AuthProtocol::Pap,
    AuthProtocol::ChapMd5,
    AuthProtocol::MsChapV1,
    AuthProtocol::MsChapV2,
    AuthProtocol::Eap,
];

/// The user table: name → (password, forced outcome).
fn lookup(name: &str) -> Option<(&'static str, Option<Rejection>)> {
    match strip_domain(name.as_bytes()) {
        b"alice" | b"User" | b"administrator" => Some(("Secret123!", None)),
        b"expired" => Some(("pw", Some(Rejection::PasswordExpired))),
        b"nodialin" => Some(("pw", Some(Rejection::NoDialinPermission))),
        _ => None,
    }
}

/// What the test's "server" answers to an AuthEvent::Request.
enum Answer {
    Secret(Secret),
    SecretThenReject(Secret, Rejection, String),
    Reject(Rejection, String),
    Accept(ExternalAccept),
    Challenge(Vec<u8>),
    Nothing,
}

/// A local user store: the authenticator verifies.
fn local_store(req: &AuthRequest) -> Answer {
    match lookup(&req.username) {
        Some((_, Some(rejection))) => {
            Answer::Reject(rejection, format!("code {}", rejection.code()))
        }
        Some((pw, None)) => Answer::Secret(Secret::Password(Zeroizing::new(pw.to_owned()))),
        None => Answer::Reject(Rejection::AuthenticationFailure, "unknown user".into()),
    }
}

type ServerFn = Box<dyn FnMut(&AuthRequest) -> Answer>;
type RetryFn = Box<dyn FnMut(&AuthFailure) -> Option<String>>;
type DropFn = Box<dyn FnMut(bool, usize, &[u8]) -> bool>;

struct Net {
    a: Authenticator,
    p: Peer,
    now: Instant,
    start: Instant,
    a_events: Vec<AuthEvent>,
    p_events: Vec<AuthEvent>,
    requests: Vec<AuthRequest>,
    retries: Vec<AuthFailure>,
    server: ServerFn,
    retry: RetryFn,
    /// (from_authenticator, index in that direction, packet) → drop?
    lose: DropFn,
    /// Deliver each packet this many times.
    copies: usize,
    sent: [usize; 2],
    /// Every packet sent: (from_authenticator, bytes, delivered).
    trace: Vec<(bool, Vec<u8>, bool)>,
}

fn aconfig(name: &str) -> AuthenticatorConfig {
    AuthenticatorConfig::new(name)
}

impl Net {
    fn new(
        protocol: AuthProtocol,
        config: AuthenticatorConfig,
        user: &str,
        password: &str,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let a = Authenticator::new(protocol, config, &mut rng);
        let p = Peer::new(protocol, PeerConfig::new(user, password), &mut rng);
        let now = Instant::now();
        Net {
            a,
            p,
            now,
            start: now,
            a_events: Vec::new(),
            p_events: Vec::new(),
            requests: Vec::new(),
            retries: Vec::new(),
            server: Box::new(local_store),
            retry: Box::new(|_| None),
            lose: Box::new(|_, _, _| false),
            copies: 1,
            sent: [0, 0],
            trace: Vec::new(),
        }
    }

    fn simple(protocol: AuthProtocol, user: &str, password: &str) -> Self {
        Net::new(protocol, aconfig("RAS"), user, password)
    }

    fn answer(&mut self, req: &AuthRequest) {
        let now = self.now;
        match (self.server)(req) {
            Answer::Secret(s) => self.a.provide_secret(now, s),
            Answer::SecretThenReject(s, r, m) => self.a.provide_secret_then_reject(now, s, r, &m),
            Answer::Reject(r, m) => self.a.reject(now, r, &m),
            Answer::Accept(acc) => self.a.accept_external(now, acc),
            Answer::Challenge(m) => self.a.eap_challenge(now, m),
            Answer::Nothing => {}
        }
    }

    fn shuttle(&mut self) -> bool {
        let mut progressed = false;
        while let Some(pkt) = self.a.poll_transmit() {
            progressed = true;
            let n = self.sent[0];
            self.sent[0] += 1;
            let deliver = !(self.lose)(true, n, &pkt);
            self.trace.push((true, pkt.clone(), deliver));
            if deliver {
                for _ in 0..self.copies {
                    self.p.handle_packet(self.now, &pkt);
                }
            }
        }
        while let Some(pkt) = self.p.poll_transmit() {
            progressed = true;
            let n = self.sent[1];
            self.sent[1] += 1;
            let deliver = !(self.lose)(false, n, &pkt);
            self.trace.push((false, pkt.clone(), deliver));
            if deliver {
                for _ in 0..self.copies {
                    self.a.handle_packet(self.now, &pkt);
                }
            }
        }
        while let Some(ev) = self.a.poll_event() {
            progressed = true;
            match ev {
                AuthEvent::Request(req) => {
                    self.answer(&req);
                    self.requests.push(req);
                }
                other => self.a_events.push(other),
            }
        }
        while let Some(ev) = self.p.poll_event() {
            progressed = true;
            match ev {
                AuthEvent::RetryAllowed(f) => {
                    match (self.retry)(&f) {
                        Some(pw) => self.p.retry(self.now, Zeroizing::new(pw)),
                        None => self.p.decline_retry(self.now),
                    }
                    self.retries.push(f);
                }
                other => self.p_events.push(other),
            }
        }
        progressed
    }

    fn run(&mut self) {
        self.a.start(self.now);
        self.p.start(self.now);
        for _ in 0..10_000 {
            if self.shuttle() {
                continue;
            }
            if self.a.is_finished() && self.p.is_finished() {
                return;
            }
            let next = match (self.a.poll_timeout(), self.p.poll_timeout()) {
                (Some(x), Some(y)) => x.min(y),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => return,
            };
            self.now = self.now.max(next);
            self.a.handle_timeout(self.now);
            self.p.handle_timeout(self.now);
        }
        panic!("did not settle");
    }

    fn a_final(&self) -> &AuthEvent {
        assert_eq!(
            self.a_events.len(),
            1,
            "authenticator events: {:?}",
            self.a_events
        );
        &self.a_events[0]
    }

    fn p_final(&self) -> &AuthEvent {
        assert_eq!(self.p_events.len(), 1, "peer events: {:?}", self.p_events);
        &self.p_events[0]
    }

    fn assert_success(&self) -> (Option<MasterKeys>, Option<MasterKeys>) {
        let AuthEvent::Success(a) = self.a_final() else {
            panic!("authenticator: {:?}", self.a_events)
        };
        let AuthEvent::Success(p) = self.p_final() else {
            panic!("peer: {:?}", self.p_events)
        };
        (a.keys.clone(), p.keys.clone())
    }

    fn assert_failure(&self) -> (AuthFailure, AuthFailure) {
        let AuthEvent::Failure(a) = self.a_final() else {
            panic!("authenticator: {:?}", self.a_events)
        };
        let AuthEvent::Failure(p) = self.p_final() else {
            panic!("peer: {:?}", self.p_events)
        };
        (a.clone(), p.clone())
    }

    fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

fn assert_mirror_keys(keys: (Option<MasterKeys>, Option<MasterKeys>)) {
    let (a, p) = keys;
    let (a, p) = (a.expect("authenticator keys"), p.expect("peer keys"));
    assert_eq!(a.send, p.recv);
    assert_eq!(a.recv, p.send);
    assert_ne!(a.send, a.recv);
}

#[test]
fn option_data_roundtrip() {
    for p in ALL {
        assert_eq!(AuthProtocol::from_option_data(p.option_data()), Some(p));
    }
    assert_eq!(AuthProtocol::MsChapV2.option_data(), &[0xC2, 0x23, 0x81]);
    assert_eq!(AuthProtocol::ChapMd5.option_data(), &[0xC2, 0x23, 0x05]);
    assert_eq!(AuthProtocol::MsChapV1.option_data(), &[0xC2, 0x23, 0x80]);
    assert_eq!(AuthProtocol::MsChapV1.ppp_protocol(), 0xC223);
    assert_eq!(AuthProtocol::from_option_data(&[0xC2, 0x23, 0x06]), None);
    assert_eq!(AuthProtocol::Eap.ppp_protocol(), 0xC227);
}

#[test]
fn success_every_protocol() {
    for protocol in ALL {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.run();
        let keys = net.assert_success();
        match protocol {
            AuthProtocol::MsChapV2 | AuthProtocol::Eap => assert_mirror_keys(keys),
            // RFC 3079 §2.4: one start key for both directions.
            AuthProtocol::MsChapV1 => {
                let (a, p) = (keys.0.expect("keys"), keys.1.expect("keys"));
                assert_eq!(a, p);
                assert_eq!(a.send, a.recv);
            }
            _ => assert!(keys.0.is_none() && keys.1.is_none()),
        }
        let AuthEvent::Success(s) = net.a_final() else {
            unreachable!()
        };
        assert_eq!(s.username, "alice");
        assert_eq!(s.protocol, protocol);
        assert_eq!(net.requests.len(), 1, "{protocol:?}");
        assert!(
            net.elapsed() < Duration::from_secs(1),
            "{protocol:?}: no timer needed"
        );
    }
}

#[test]
fn domain_user_mschapv2() {
    for protocol in [AuthProtocol::MsChapV2, AuthProtocol::Eap] {
        let mut net = Net::simple(protocol, "CORP\\alice", "Secret123!");
        net.run();
        assert_mirror_keys(net.assert_success());
        assert_eq!(net.requests[0].username, "CORP\\alice");
    }
}

#[test]
fn wrong_password_every_protocol() {
    for protocol in ALL {
        let mut config = aconfig("RAS");
        config.max_retries = 0;
        let mut net = Net::new(protocol, config, "alice", "wrong");
        net.run();
        let (a, p) = net.assert_failure();
        assert_eq!(a.rejection.code(), 691, "{protocol:?}");
        assert_eq!(p.rejection.code(), 691, "{protocol:?}");
    }
}

#[test]
fn rejections_648_649() {
    for protocol in ALL {
        for (user, code) in [("expired", 648), ("nodialin", 649)] {
            let mut net = Net::simple(protocol, user, "pw");
            net.run();
            let (a, p) = net.assert_failure();
            assert_eq!(a.rejection.code(), code);
            match protocol {
                // The code travels as E= (RFC 2759 §6); the text is the
                // code's, not the owner's detail ("code 648").
                AuthProtocol::MsChapV2 | AuthProtocol::Eap => {
                    assert_eq!(p.rejection.code(), code, "{protocol:?}");
                    assert_eq!(p.message, a.rejection.peer_text());
                }
                // RFC 2433 §6: E= without a text.
                AuthProtocol::MsChapV1 => {
                    assert_eq!(p.rejection.code(), code, "{protocol:?}");
                    assert_eq!(p.message, format!("MS-CHAP error {code}"));
                }
                // PAP/CHAP only carry a message.
                _ => {
                    assert_eq!(p.rejection, Rejection::AuthenticationFailure);
                    assert_eq!(p.message, a.rejection.peer_text());
                }
            }
        }
    }
}

#[test]
fn mschapv2_retry_then_success() {
    let mut net = Net::simple(AuthProtocol::MsChapV2, "alice", "wrong");
    net.retry = Box::new(|f| {
        assert_eq!(f.rejection, Rejection::AuthenticationFailure);
        Some("Secret123!".to_owned())
    });
    net.run();
    assert_mirror_keys(net.assert_success());
    assert_eq!(net.retries.len(), 1);
    assert_eq!(net.requests.len(), 2);
    // The retry answered the C= challenge with Identifier + 1.
    let failure = net
        .trace
        .iter()
        .find(|(from_a, p, _)| *from_a && p[0] == chap_code::FAILURE)
        .unwrap();
    let message = &failure.1[4..];
    let parsed = mschapv2::parse_failure_message(message).unwrap();
    assert_eq!(parsed.error, 691);
    assert!(parsed.retry);
    assert_eq!(parsed.version, Some(3));
    let Credentials::MsChapV2 {
        id,
        authenticator_challenge,
        ..
    } = &net.requests[1].credentials
    else {
        panic!()
    };
    assert_eq!(*id, failure.1[1].wrapping_add(1));
    assert_eq!(Some(*authenticator_challenge), parsed.challenge);
}

#[test]
fn mschapv2_retry_exhaustion() {
    let mut net = Net::simple(AuthProtocol::MsChapV2, "alice", "wrong");
    net.retry = Box::new(|_| Some("still wrong".to_owned()));
    net.run();
    let (a, p) = net.assert_failure();
    assert_eq!(a.rejection, Rejection::AuthenticationFailure);
    assert_eq!(p.rejection, Rejection::AuthenticationFailure);
    // Default max_retries = 2: two R=1 failures, then R=0.
    assert_eq!(net.retries.len(), 2);
    assert_eq!(net.requests.len(), 3);
    let last = net
        .trace
        .iter()
        .rev()
        .find(|(from_a, p, _)| *from_a && p[0] == chap_code::FAILURE)
        .unwrap();
    assert!(!mschapv2::parse_failure_message(&last.1[4..]).unwrap().retry);
}

#[test]
fn mschapv2_retry_declined() {
    let mut net = Net::simple(AuthProtocol::MsChapV2, "alice", "wrong");
    net.run();
    let AuthEvent::Failure(p) = net.p_final() else {
        panic!()
    };
    assert_eq!(p.rejection, Rejection::AuthenticationFailure);
    // The authenticator keeps offering the retry, then gives up.
    let AuthEvent::Failure(a) = net.a_final() else {
        panic!()
    };
    assert_eq!(a.rejection, Rejection::Timeout);
}

#[test]
fn lost_packets_recovered_by_retransmission() {
    for protocol in ALL {
        // Lose the first packet in each direction.
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.lose = Box::new(|_, n, _| n == 0);
        net.run();
        let keys = net.assert_success();
        if matches!(protocol, AuthProtocol::MsChapV2 | AuthProtocol::Eap) {
            assert_mirror_keys(keys);
        }
        assert!(net.elapsed() >= Duration::from_secs(3), "{protocol:?}");
    }
    // CHAP and MS-CHAPv2: a lost Success is recovered by the peer
    // retransmitting its Response (RFC 1994 §4.2).
    for protocol in [AuthProtocol::ChapMd5, AuthProtocol::MsChapV2] {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        let mut lost = false;
        net.lose = Box::new(move |from_a, _, p| {
            if !lost && from_a && p[0] == chap_code::SUCCESS {
                lost = true;
                return true;
            }
            false
        });
        net.run();
        net.assert_success();
        let successes = net
            .trace
            .iter()
            .filter(|(from_a, p, _)| *from_a && p[0] == chap_code::SUCCESS)
            .count();
        assert_eq!(successes, 2, "{protocol:?}: the Success was sent again");
    }
    // EAP: lost Success-Request and lost Success-Response.
    for lose_from_a in [true, false] {
        let mut net = Net::simple(AuthProtocol::Eap, "alice", "Secret123!");
        let mut lost = false;
        net.lose = Box::new(move |from_a, _, p| {
            let is_success_op = p.len() > 5 && p[4] == eap::TYPE_MSCHAPV2 && p[5] == 3;
            if !lost && from_a == lose_from_a && is_success_op {
                lost = true;
                return true;
            }
            false
        });
        net.run();
        assert_mirror_keys(net.assert_success());
    }
}

#[test]
fn everything_lost_times_out() {
    for protocol in ALL {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.lose = Box::new(|_, _, _| true);
        net.run();
        let (a, p) = net.assert_failure();
        assert_eq!(a.rejection, Rejection::Timeout, "{protocol:?}");
        assert_eq!(p.rejection, Rejection::Timeout, "{protocol:?}");
        assert_eq!(a.rejection.code(), 718);
        // 10 transmissions at 3 s, plus slack.
        assert!(net.elapsed() <= Duration::from_secs(31), "{protocol:?}");
        let sent_by_active = net.trace.len();
        assert!(sent_by_active >= 10, "{protocol:?}: {sent_by_active}");
    }
}

#[test]
fn duplicated_packets() {
    for protocol in ALL {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.copies = 2;
        net.run();
        let keys = net.assert_success();
        if matches!(protocol, AuthProtocol::MsChapV2 | AuthProtocol::Eap) {
            assert_mirror_keys(keys);
        }
        assert_eq!(net.requests.len(), 1, "{protocol:?}: one check only");
    }
}

#[test]
fn pap_repeated_request_after_decision_gets_same_answer() {
    for (password, code) in [
        ("Secret123!", pap::AUTHENTICATE_ACK),
        ("bad", pap::AUTHENTICATE_NAK),
    ] {
        let mut rng = StdRng::seed_from_u64(1);
        let mut a = Authenticator::new(AuthProtocol::Pap, aconfig("RAS"), &mut rng);
        let now = Instant::now();
        a.start(now);
        let req = pap::build_request(7, b"alice", password.as_bytes());
        a.handle_packet(now, &req);
        let Some(AuthEvent::Request(r)) = a.poll_event() else {
            panic!()
        };
        assert_eq!(r.username, "alice");
        a.provide_secret(now, local_secret("alice"));
        let first = a.poll_transmit().unwrap();
        assert_eq!(first[0], code);
        assert_eq!(first[1], 7);
        // Same and a new identifier: the same decision.
        a.handle_packet(now, &req);
        assert_eq!(a.poll_transmit().unwrap(), first);
        a.handle_packet(now, &pap::build_request(8, b"alice", password.as_bytes()));
        let again = a.poll_transmit().unwrap();
        assert_eq!((again[0], again[1]), (code, 8));
        // Exactly one final event.
        assert!(matches!(
            a.poll_event(),
            Some(AuthEvent::Success(_) | AuthEvent::Failure(_))
        ));
        assert!(a.poll_event().is_none());
    }
}

fn local_secret(user: &str) -> Secret {
    Secret::Password(Zeroizing::new(lookup(user).unwrap().0.to_owned()))
}

#[test]
fn nt_hash_secret() {
    // Works for MS-CHAPv2 (plain and EAP) and PAP; CHAP-MD5 needs cleartext.
    for protocol in ALL {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.server = Box::new(|_| {
            Answer::Secret(Secret::NtHash(Zeroizing::new(nt_password_hash(
                "Secret123!",
            ))))
        });
        net.run();
        if protocol == AuthProtocol::ChapMd5 {
            let (a, _) = net.assert_failure();
            assert_eq!(a.rejection.code(), 691);
            assert!(a.message.contains("cleartext"));
        } else {
            net.assert_success();
        }
    }
}

#[test]
fn chap_md5_response_value() {
    // MD5(id | secret | challenge), RFC 1994 §4.1.
    use md5::{Digest, Md5};
    let expected: [u8; 16] = Md5::digest([&[1u8][..], b"pw", &[9, 9]].concat()).into();
    assert_eq!(chap_md5::response_value(1, b"pw", &[9, 9]), expected);
}

#[test]
fn mschapv2_response_rfc2759_section9() {
    let auth_challenge: [u8; 16] = hex::decode("5B5D7C7D7B3F2F3E3C2C602132262628")
        .unwrap()
        .try_into()
        .unwrap();
    let peer_challenge: [u8; 16] = hex::decode("21402324255E262A28295F2B3A337C7E")
        .unwrap()
        .try_into()
        .unwrap();
    let value = ResponseValue::compute(
        &auth_challenge,
        &peer_challenge,
        b"User",
        &nt_password_hash("clientPass"),
    );
    let packet = mschapv2::build_response(0x42, &value, b"User");
    let mut expected = vec![2, 0x42, 0, 58, 49];
    expected.extend_from_slice(&peer_challenge);
    expected.extend_from_slice(&[0; 8]);
    expected.extend_from_slice(
        &hex::decode("82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF").unwrap(),
    );
    expected.push(0);
    expected.extend_from_slice(b"User");
    assert_eq!(packet, expected);
    // And back.
    let Ok(ChapPacket::Response { id, value: v, name }) = parse_chap_packet(&packet) else {
        panic!()
    };
    assert_eq!((id, name), (0x42, &b"User"[..]));
    assert_eq!(ResponseValue::parse(v).unwrap(), value);
}

#[test]
fn mschapv2_windows_trace_lengths() {
    let mut net = Net::simple(AuthProtocol::MsChapV2, "administrator", "Secret123!");
    net.a = Authenticator::new(
        AuthProtocol::MsChapV2,
        aconfig("WS200301"),
        &mut StdRng::seed_from_u64(3),
    );
    net.run();
    assert_mirror_keys(net.assert_success());
    let lengths: Vec<(bool, usize)> = net.trace.iter().map(|(a, p, _)| (*a, p.len())).collect();
    assert_eq!(lengths, vec![(true, 29), (false, 67), (true, 46)]);
    let success = &net.trace[2].1;
    assert_eq!(&success[4..6], b"S=");
}

#[test]
fn failure_message_format() {
    let text = mschapv2::failure_message(691, true, &[0xAB; 16], "nope");
    assert_eq!(
        String::from_utf8(text.clone()).unwrap(),
        format!("E=691 R=1 C={} V=3 M=nope", "AB".repeat(16))
    );
    let f = mschapv2::parse_failure_message(&text).unwrap();
    assert_eq!(
        f,
        mschapv2::FailureMessage {
            error: 691,
            retry: true,
            challenge: Some([0xAB; 16]),
            version: Some(3),
            message: "nope".into()
        }
    );
    let f = mschapv2::parse_failure_message(b"E=648 R=0 V=3 M=a b  c").unwrap();
    assert_eq!(
        (f.error, f.retry, f.message.as_str()),
        (648, false, "a b  c")
    );
    assert!(mschapv2::parse_failure_message(b"R=1 M=x").is_err());
    assert!(mschapv2::parse_failure_message(b"E=99999999999").is_err());
    let s = mschapv2::success_message(b"S=407A5589115FD0D6209F510FE9C04566932CDA56", "hi");
    let p = mschapv2::parse_success_message(&s).unwrap();
    assert_eq!(p.message, b"hi");
    assert!(mschapv2::parse_success_message(b"S=12").is_err());
}

/// A fake RADIUS server for plain MS-CHAPv2: it knows the password and
/// answers with MS-CHAP2-Success and the MPPE keys.
fn radius_mschapv2(req: &AuthRequest) -> Answer {
    let Credentials::MsChapV2 {
        authenticator_challenge,
        peer_challenge,
        nt_response,
        ..
    } = &req.credentials
    else {
        panic!()
    };
    let hash = nt_password_hash(lookup(&req.username).unwrap().0);
    let user = strip_domain(req.username.as_bytes());
    if !crate::crypto::mschap::verify_nt_response(
        authenticator_challenge,
        peer_challenge,
        user,
        &hash,
        nt_response,
    ) {
        return Answer::Reject(Rejection::AuthenticationFailure, "radius says no".into());
    }
    let digest = generate_authenticator_response(
        &hash,
        nt_response,
        peer_challenge,
        authenticator_challenge,
        user,
    );
    Answer::Accept(ExternalAccept {
        mschapv2_success: Some(authenticator_response_string(&digest)),
        keys: Some(MasterKeys::from_mschapv2(&hash, nt_response, true)),
        eap_message: None,
        message: Some("Welcome".into()),
        msk: None,
    })
}

#[test]
fn mschapv2_via_radius() {
    for protocol in [AuthProtocol::MsChapV2, AuthProtocol::Eap] {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.server = Box::new(radius_mschapv2);
        net.run();
        assert_mirror_keys(net.assert_success());
        let expected = if protocol == AuthProtocol::Eap {
            AuthMethod::EapMsChapV2
        } else {
            AuthMethod::MsChapV2
        };
        assert_eq!(net.requests[0].method, expected);
    }
}

#[test]
fn peer_rejects_wrong_authenticator_response() {
    for protocol in [AuthProtocol::MsChapV2, AuthProtocol::Eap] {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.server = Box::new(|_| {
            Answer::Accept(ExternalAccept {
                mschapv2_success: Some(*b"S=0000000000000000000000000000000000000000"),
                ..Default::default()
            })
        });
        net.run();
        let AuthEvent::Failure(p) = net.p_final() else {
            panic!("{:?}", net.p_events)
        };
        assert_eq!(p.rejection, Rejection::ServerNotAuthenticated);
        assert_eq!(p.rejection.code(), 778);
        // And with no S= at all.
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.server = Box::new(|_| Answer::Accept(ExternalAccept::default()));
        net.run();
        let AuthEvent::Failure(p) = net.p_final() else {
            panic!()
        };
        assert_eq!(p.rejection, Rejection::ServerNotAuthenticated);
    }
}

#[test]
fn eap_peer_rejects_premature_success() {
    let mut rng = StdRng::seed_from_u64(4);
    let mut p = Peer::new(AuthProtocol::Eap, PeerConfig::new("alice", "x"), &mut rng);
    let now = Instant::now();
    p.start(now);
    p.handle_packet(now, &eap::build_request(1, eap::TYPE_IDENTITY, &[]));
    assert_eq!(
        p.poll_transmit().unwrap(),
        eap::build_response(1, eap::TYPE_IDENTITY, b"alice")
    );
    p.handle_packet(now, &eap::build_success(1));
    let Some(AuthEvent::Failure(f)) = p.poll_event() else {
        panic!()
    };
    assert_eq!(f.rejection, Rejection::ServerNotAuthenticated);
}

#[test]
fn eap_peer_naks_other_methods_and_repeats_responses() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut p = Peer::new(AuthProtocol::Eap, PeerConfig::new("alice", "x"), &mut rng);
    let now = Instant::now();
    p.start(now);
    for (id, typ) in [
        (3u8, eap::TYPE_PEAP),
        (4, eap::TYPE_MD5_CHALLENGE),
        (5, eap::TYPE_TLS),
    ] {
        p.handle_packet(now, &eap::build_request(id, typ, &[1, 2, 3]));
        assert_eq!(p.poll_transmit().unwrap(), vec![2, id, 0, 6, 3, 26]);
    }
    // A repeated Request (same Identifier) gets the same Response.
    p.handle_packet(now, &eap::build_request(5, eap::TYPE_TLS, &[]));
    assert_eq!(p.poll_transmit().unwrap(), vec![2, 5, 0, 6, 3, 26]);
    // Expanded type: Expanded Nak.
    p.handle_packet(
        now,
        &eap::build_request(6, eap::TYPE_EXPANDED, &[0, 0, 0, 0, 0, 0, 1]),
    );
    let nak = p.poll_transmit().unwrap();
    assert_eq!(nak.len(), 4 + 1 + 7 + 8);
    assert_eq!(&nak[12..], &[254, 0, 0, 0, 0, 0, 0, 26]);
    // Notification.
    p.handle_packet(
        now,
        &eap::build_request(7, eap::TYPE_NOTIFICATION, b"hello"),
    );
    assert_eq!(p.poll_transmit().unwrap(), vec![2, 7, 0, 5, 2]);
    assert!(p.poll_event().is_none());
}

#[test]
fn eap_authenticator_fails_cleanly_on_nak() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut a = Authenticator::new(AuthProtocol::Eap, aconfig("RAS"), &mut rng);
    let now = Instant::now();
    a.start(now);
    let ident = a.poll_transmit().unwrap();
    a.handle_packet(
        now,
        &eap::build_response(ident[1], eap::TYPE_IDENTITY, b"bob"),
    );
    let challenge = a.poll_transmit().unwrap();
    assert_eq!(challenge[4], eap::TYPE_MSCHAPV2);
    // The peer wants PEAP or TLS only.
    a.handle_packet(
        now,
        &eap::build_response(challenge[1], eap::TYPE_NAK, &[25, 13]),
    );
    assert_eq!(a.poll_transmit().unwrap(), eap::build_failure(challenge[1]));
    let Some(AuthEvent::Failure(f)) = a.poll_event() else {
        panic!()
    };
    assert_eq!(f.rejection, Rejection::NoCommonMethod);
    assert!(f.message.contains("25, 13"), "{}", f.message);
    assert!(a.is_finished());
    assert_eq!(a.poll_timeout(), None);
}

/// A fake RADIUS server doing EAP: a local EAP authenticator behind the
/// pass-through authenticator (RFC 3579).
struct FakeRadius {
    inner: Authenticator,
    identity_request_id: u8,
    now: Instant,
}

impl FakeRadius {
    fn new() -> Self {
        let mut rng = StdRng::seed_from_u64(77);
        let mut inner = Authenticator::new(AuthProtocol::Eap, aconfig("NPS"), &mut rng);
        let now = Instant::now();
        inner.start(now);
        let ident = inner.poll_transmit().unwrap();
        FakeRadius {
            inner,
            identity_request_id: ident[1],
            now,
        }
    }

    fn handle(&mut self, req: &AuthRequest) -> Answer {
        let Credentials::EapPassThrough { message } = &req.credentials else {
            panic!()
        };
        assert_eq!(req.method, AuthMethod::EapPassThrough);
        let mut message = message.clone();
        if let Ok(EapPacket::Response {
            typ: eap::TYPE_IDENTITY,
            data,
            ..
        }) = eap::parse_packet(&message)
        {
            let _ = data;
            // The NAS's Identity Request was not ours: renumber.
            message[1] = self.identity_request_id;
        }
        self.inner.handle_packet(self.now, &message);
        loop {
            if let Some(ev) = self.inner.poll_event() {
                match ev {
                    AuthEvent::Request(r) => match local_store(&r) {
                        Answer::Secret(s) => self.inner.provide_secret(self.now, s),
                        Answer::Reject(rej, m) => self.inner.reject(self.now, rej, &m),
                        _ => unreachable!(),
                    },
                    AuthEvent::Success(s) => {
                        let eap_message = self.inner.poll_transmit();
                        return Answer::Accept(ExternalAccept {
                            keys: s.keys,
                            eap_message,
                            ..Default::default()
                        });
                    }
                    AuthEvent::Failure(f) => return Answer::Reject(f.rejection, f.message),
                    AuthEvent::RetryAllowed(_) => unreachable!(),
                }
                continue;
            }
            match self.inner.poll_transmit() {
                Some(p) => return Answer::Challenge(p),
                None => return Answer::Nothing,
            }
        }
    }
}

#[test]
fn eap_pass_through() {
    for (user, password, ok) in [
        ("alice", "Secret123!", true),
        ("alice", "wrong", false),
        ("expired", "pw", false),
    ] {
        let mut config = aconfig("RAS");
        config.eap_pass_through = true;
        let mut net = Net::new(AuthProtocol::Eap, config, user, password);
        let mut radius = FakeRadius::new();
        net.server = Box::new(move |req| radius.handle(req));
        net.copies = 2; // and with duplicates
        net.run();
        // Identity, Response, Success-Response (or Failure-Response).
        assert_eq!(net.requests.len(), 3);
        assert!(net.requests.iter().all(|r| r.username == user));
        if ok {
            assert_mirror_keys(net.assert_success());
        } else {
            let (a, p) = net.assert_failure();
            let code = if user == "expired" { 648 } else { 691 };
            assert_eq!(a.rejection.code(), code);
            assert_eq!(p.rejection.code(), code);
        }
    }
}

#[test]
fn eap_pass_through_retransmits_challenge() {
    let mut config = aconfig("RAS");
    config.eap_pass_through = true;
    let mut net = Net::new(AuthProtocol::Eap, config, "alice", "Secret123!");
    let mut radius = FakeRadius::new();
    net.server = Box::new(move |req| radius.handle(req));
    // Lose the first relayed request (the MS-CHAPv2 challenge).
    net.lose = Box::new(|from_a, n, _| from_a && n == 1);
    net.run();
    assert_mirror_keys(net.assert_success());
    assert!(net.elapsed() >= Duration::from_secs(3));
}

#[test]
fn eap_pass_through_invalid_radius_message_fails() {
    let mut config = aconfig("RAS");
    config.eap_pass_through = true;
    let mut net = Net::new(AuthProtocol::Eap, config, "alice", "Secret123!");
    net.server = Box::new(|_| Answer::Challenge(vec![3, 0, 0, 4]));
    net.run();
    let (_, p) = net.assert_failure();
    assert_eq!(p.rejection, Rejection::AuthenticationFailure);
}

#[test]
fn answers_without_request_are_ignored() {
    for protocol in ALL {
        let mut rng = StdRng::seed_from_u64(8);
        let mut a = Authenticator::new(protocol, aconfig("RAS"), &mut rng);
        let now = Instant::now();
        a.provide_secret(now, local_secret("alice"));
        a.reject(now, Rejection::AccountDisabled, "x");
        a.accept_external(now, ExternalAccept::default());
        a.eap_challenge(now, vec![1, 2, 0, 5, 1]);
        a.start(now);
        a.start(now);
        a.provide_secret(now, local_secret("alice"));
        assert!(a.poll_event().is_none());
        let mut p = Peer::new(protocol, PeerConfig::new("a", "b"), &mut rng);
        p.retry(now, Zeroizing::new("x".into()));
        p.decline_retry(now);
        p.lower_layer_success(now);
        assert!(p.poll_event().is_none());
    }
}

#[test]
fn no_secrets_in_debug() {
    let config = PeerConfig::new("alice", "hunter2");
    assert!(!format!("{config:?}").contains("hunter2"));
    let s = Secret::Password(Zeroizing::new("hunter2".into()));
    assert!(!format!("{s:?}").contains("hunter2"));
    let c = Credentials::Pap {
        password: Zeroizing::new(b"hunter2".to_vec()),
    };
    assert!(!format!("{c:?}").contains("hunter2"));
    let pkt = pap::build_request(1, b"alice", b"hunter2");
    let parsed = pap::parse_packet(&pkt).unwrap();
    assert!(!format!("{parsed:?}").contains("hunter2"));
    let mut net = Net::simple(AuthProtocol::Pap, "alice", "hunter2");
    net.run();
    assert!(!format!("{:?} {:?}", net.a, net.requests).contains("hunter2"));
}

// ---------------------------------------------------------------------------
// Robustness: random input never panics, in any state.

fn protocol_strategy() -> impl Strategy<Value = (AuthProtocol, bool)> {
    (0usize..4, any::<bool>()).prop_map(|(i, pt)| (ALL[i], pt))
}

/// Run a normal exchange for `steps` shuttles, then feed `junk` (random
/// and mutated real packets) to both sides, with timeouts in between.
fn fuzz_run(protocol: AuthProtocol, pass_through: bool, steps: usize, junk: &[(Vec<u8>, u8)]) {
    let mut config = aconfig("RAS");
    config.eap_pass_through = pass_through;
    let mut net = Net::new(protocol, config, "alice", "Secret123!");
    if pass_through && protocol == AuthProtocol::Eap {
        let mut radius = FakeRadius::new();
        net.server = Box::new(move |req| radius.handle(req));
    }
    net.a.start(net.now);
    net.p.start(net.now);
    for _ in 0..steps {
        net.shuttle();
    }
    let real: Vec<Vec<u8>> = net.trace.iter().map(|t| t.1.clone()).collect();
    for (bytes, how) in junk {
        let mut packet = bytes.clone();
        if how % 3 == 0 && !real.is_empty() {
            // Mutate a real packet.
            packet = real[usize::from(*how) % real.len()].clone();
            for (i, b) in bytes.iter().enumerate().take(4) {
                let at = usize::from(*b) % packet.len();
                packet[at] ^= 1 << (i % 8);
            }
            if how % 2 == 0 {
                packet.truncate(
                    usize::from(bytes.first().copied().unwrap_or(0)) % (packet.len() + 1),
                );
            }
        }
        if how % 2 == 0 {
            net.a.handle_packet(net.now, &packet);
        } else {
            net.p.handle_packet(net.now, &packet);
        }
        if how % 5 == 0 {
            net.now += Duration::from_secs(u64::from(*how % 7));
            net.a.handle_timeout(net.now);
            net.p.handle_timeout(net.now);
        }
        net.shuttle();
    }
    // Whatever happened, each side reports at most one final outcome.
    let finals = |events: &[AuthEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, AuthEvent::Success(_) | AuthEvent::Failure(_)))
            .count()
    };
    assert!(finals(&net.a_events) <= 1);
    assert!(finals(&net.p_events) <= 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_packets_never_panic(
        (protocol, pass_through) in protocol_strategy(),
        steps in 0usize..8,
        junk in prop::collection::vec((prop::collection::vec(any::<u8>(), 0..80), any::<u8>()), 0..24),
    ) {
        fuzz_run(protocol, pass_through, steps, &junk);
    }

    #[test]
    fn parsers_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = pap::parse_packet(&data);
        let _ = chap_md5::parse_packet(&data);
        let _ = mschapv2::parse_packet(&data);
        let _ = eap::parse_packet(&data);
        let _ = eap_mschapv2::parse(&data, true);
        let _ = eap_mschapv2::parse(&data, false);
        let _ = mschapv2::parse_failure_message(&data);
        let _ = mschapv2::parse_success_message(&data);
        let _ = ResponseValue::parse(&data);
    }
}

#[test]
fn eap_lost_success_then_lower_layer_success() {
    let mut net = Net::simple(AuthProtocol::Eap, "alice", "Secret123!");
    net.lose = Box::new(|from_a, _, p| from_a && p[0] == eap::SUCCESS);
    net.a.start(net.now);
    net.p.start(net.now);
    while net.shuttle() {}
    assert!(net.a.is_finished());
    assert!(!net.p.is_finished());
    // RFC 3748 §4.2: e.g. an IPCP packet arrived.
    net.p.lower_layer_success(net.now);
    net.shuttle();
    assert_mirror_keys(net.assert_success());
}

/// Issue 11: nothing the peer sees may tell an unknown user from a known
/// one. For every protocol, every way a login fails with 691 gives the
/// same bytes from the authenticator (the RNG is seeded alike, so even
/// the challenges match) and the same final event at the peer:
///
/// - an unknown user, answered the old way (a plain 691 with the owner's
///   detail) and the server's way (a stand-in secret, then 691);
/// - a wrong password for a user stored with the password, or with only
///   the NT hash (CHAP-MD5 cannot check an NT hash at all: even the
///   right password must look like a wrong one);
/// - a disabled user or one without dial-in permission who does not know
///   the password (the refusal's own code is only for those who do).
#[test]
fn failures_look_the_same_for_unknown_and_known_users() {
    let nt = |pw: &str| Secret::NtHash(Zeroizing::new(nt_password_hash(pw)));
    let pw = |pw: &str| Secret::Password(Zeroizing::new(pw.to_owned()));
    type Case = (&'static str, &'static str, Box<dyn Fn() -> Answer>);
    for protocol in ALL {
        let cases: Vec<Case> = vec![
            (
                "unknown user, plain 691",
                "Secret123!",
                Box::new(|| {
                    Answer::Reject(Rejection::AuthenticationFailure, "no such user".into())
                }),
            ),
            (
                "unknown user, stand-in secret",
                "Secret123!",
                Box::new(move || {
                    Answer::SecretThenReject(
                        pw("stand-in"),
                        Rejection::AuthenticationFailure,
                        "no such user".into(),
                    )
                }),
            ),
            (
                "wrong password",
                "wrong",
                Box::new(move || Answer::Secret(pw("Secret123!"))),
            ),
            (
                "NT hash, wrong password",
                "wrong",
                Box::new(move || Answer::Secret(nt("Secret123!"))),
            ),
            (
                "disabled, wrong password",
                "wrong",
                Box::new(move || {
                    Answer::SecretThenReject(
                        pw("Secret123!"),
                        Rejection::AccountDisabled,
                        "disabled".into(),
                    )
                }),
            ),
            (
                "no dial-in, wrong password",
                "wrong",
                Box::new(move || {
                    Answer::SecretThenReject(
                        nt("Secret123!"),
                        Rejection::NoDialinPermission,
                        "policy".into(),
                    )
                }),
            ),
        ];
        let mut cases = cases;
        if protocol == AuthProtocol::ChapMd5 {
            cases.push((
                "NT hash, right password",
                "Secret123!",
                Box::new(move || Answer::Secret(nt("Secret123!"))),
            ));
        }
        let mut first: Option<(&str, Vec<Vec<u8>>, AuthFailure)> = None;
        for (what, password, answer) in cases {
            let mut config = aconfig("RAS");
            config.max_retries = 0;
            let mut net = Net::new(protocol, config, "someone", password);
            net.server = Box::new(move |_| answer());
            net.run();
            let (a, p) = net.assert_failure();
            assert_eq!(a.rejection.code(), 691, "{protocol:?}, {what}");
            let wire: Vec<Vec<u8>> = net
                .trace
                .iter()
                .filter(|(from_a, _, _)| *from_a)
                .map(|(_, b, _)| b.clone())
                .collect();
            match &first {
                None => first = Some((what, wire, p)),
                Some((first_what, first_wire, first_p)) => {
                    assert_eq!(
                        &wire, first_wire,
                        "{protocol:?}: the peer can tell \"{what}\" from \"{first_what}\""
                    );
                    assert_eq!(&p, first_p, "{protocol:?}: {what} vs {first_what}");
                }
            }
        }
    }
}

/// A disabled user who knows the password learns the account is disabled
/// (647, as RRAS reports it); with the wrong password, see above.
#[test]
fn refusal_after_verification_keeps_its_code() {
    for protocol in [
        AuthProtocol::MsChapV1,
        AuthProtocol::MsChapV2,
        AuthProtocol::Eap,
    ] {
        let mut net = Net::simple(protocol, "alice", "Secret123!");
        net.server = Box::new(|_| {
            Answer::SecretThenReject(
                Secret::Password(Zeroizing::new("Secret123!".into())),
                Rejection::AccountDisabled,
                "disabled in the user store".into(),
            )
        });
        net.run();
        let (a, p) = net.assert_failure();
        assert_eq!(a.rejection, Rejection::AccountDisabled, "{protocol:?}");
        assert_eq!(a.message, "disabled in the user store");
        assert_eq!(p.rejection, Rejection::AccountDisabled, "{protocol:?}");
    }
}
