//! The client's transaction layer against a fake clock and fake servers.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use radius::dict::{attr, AcctStatusType};
use radius::request::Counters;
use radius::security::{sign_response, verify_access_request, verify_accounting_request};
use radius::{
    AccessOutcome, Attribute, ClientConfig, Code, DatagramError, Event, Outcome, Packet,
    RadiusClient, Request, ResponseError, Secret, SendError, ServerId, TxId, VerifyError,
};
use rand::SeedableRng;

const P: ServerId = ServerId::PRIMARY;
const A: ServerId = ServerId::ALTERNATE;

fn secret(server: ServerId) -> Secret {
    Secret::new(if server == P {
        "primary-secret"
    } else {
        "alternate-secret"
    })
}

fn client(alternate: bool, jitter: bool) -> RadiusClient {
    let mut cfg = ClientConfig::new(secret(P), alternate.then(|| secret(A)));
    cfg.retransmit.jitter = jitter;
    RadiusClient::with_rng(cfg, rand::rngs::StdRng::seed_from_u64(7))
}

/// A server's reply to `request`, signed with `secret`.
fn reply(request: &[u8], code: Code, secret: &Secret, with_ma: bool) -> Vec<u8> {
    let req = Packet::decode(request).unwrap();
    let mut p = Packet::new(code, req.identifier, [0; 16]);
    if with_ma {
        p.attributes
            .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
    }
    p.attributes.push(Attribute::u32(attr::SESSION_TIMEOUT, 99));
    let mut b = p.to_bytes().unwrap();
    sign_response(&mut b, &req.authenticator, secret).unwrap();
    b
}

fn drain_tx(c: &mut RadiusClient) -> Vec<(ServerId, Vec<u8>)> {
    std::iter::from_fn(|| c.poll_transmit()).collect()
}

fn drain_ev(c: &mut RadiusClient) -> Vec<Event> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn is_accept(e: &Event, tx: TxId, server: ServerId) -> bool {
    matches!(e, Event::Response { tx: t, server: s, outcome: Outcome::Access(AccessOutcome::Accept(a)) }
        if *t == tx && *s == server && a.session_timeout == Some(99))
}

#[test]
fn retransmit_backoff_failover_and_recovery() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut c = client(true, false);
    let tx = c.send(Request::pap(b"u", b"pw"), t0).unwrap();
    let first = drain_tx(&mut c);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, P);
    verify_access_request(&first[0].1, &secret(P)).unwrap();

    // RFC 5080 §2.2.1 without RAND: 2 s, then 4 s, then 8 s.
    assert_eq!(c.poll_timeout(), Some(s(2)));
    c.handle_timeout(s(1));
    assert!(drain_tx(&mut c).is_empty());
    c.handle_timeout(s(2));
    assert_eq!(drain_tx(&mut c), first, "same Identifier and Authenticator");
    assert_eq!(c.poll_timeout(), Some(s(6)));
    c.handle_timeout(s(6));
    assert_eq!(drain_tx(&mut c), first);
    assert_eq!(c.poll_timeout(), Some(s(14)));
    assert!(drain_ev(&mut c).is_empty());

    // Three unanswered tries: the primary is down, the alternate gets the
    // request re-encoded for its secret.
    c.handle_timeout(s(14));
    assert_eq!(drain_ev(&mut c), vec![Event::ServerDown { server: P }]);
    assert!(c.is_down(P));
    let alt = drain_tx(&mut c);
    assert_eq!(alt.len(), 1);
    assert_eq!(alt[0].0, A);
    assert_ne!(alt[0].1[4..20], first[0].1[4..20]);
    verify_access_request(&alt[0].1, &secret(A)).unwrap();
    assert_eq!(c.server_of(tx), Some(A));
    assert_eq!(c.poll_timeout(), Some(s(16)));

    // A late reply from the primary to the old Identifier is ignored.
    let late = reply(&first[0].1, Code::AccessAccept, &secret(P), true);
    assert_eq!(c.handle_datagram(P, &late, s(15)), Ok(None));

    // The alternate answers.
    let ok = reply(&alt[0].1, Code::AccessAccept, &secret(A), true);
    assert_eq!(c.handle_datagram(A, &ok, s(15)), Ok(Some(tx)));
    let ev = drain_ev(&mut c);
    assert_eq!(ev.len(), 1);
    assert!(is_accept(&ev[0], tx, A));
    assert_eq!(c.pending(), 0);
    assert_eq!(c.poll_timeout(), None);
    // A duplicate of that reply is ignored.
    assert_eq!(c.handle_datagram(A, &ok, s(15)), Ok(None));
    assert!(drain_ev(&mut c).is_empty());

    // During the hold-down new requests go straight to the alternate.
    let tx2 = c.send(Request::pap(b"u", b"pw"), s(20)).unwrap();
    let out = drain_tx(&mut c);
    assert_eq!(out[0].0, A);
    let ok = reply(&out[0].1, Code::AccessReject, &secret(A), true);
    assert_eq!(c.handle_datagram(A, &ok, s(21)), Ok(Some(tx2)));
    drain_ev(&mut c);

    // After the 60 s hold-down the primary is probed again and returns.
    let tx3 = c.send(Request::pap(b"u", b"pw"), s(75)).unwrap();
    let out = drain_tx(&mut c);
    assert_eq!(out[0].0, P);
    let ok = reply(&out[0].1, Code::AccessAccept, &secret(P), true);
    assert_eq!(c.handle_datagram(P, &ok, s(76)), Ok(Some(tx3)));
    let ev = drain_ev(&mut c);
    assert_eq!(ev[0], Event::ServerUp { server: P });
    assert!(is_accept(&ev[1], tx3, P));
    assert!(!c.is_down(P));
}

#[test]
fn both_servers_silent_times_out() {
    let t0 = Instant::now();
    let s = |secs: u64| t0 + Duration::from_secs(secs);
    let mut c = client(true, false);
    let tx = c.send(Request::pap(b"u", b"pw"), t0).unwrap();
    let mut sent = Vec::new();
    while let Some(t) = c.poll_timeout() {
        sent.extend(drain_tx(&mut c).into_iter().map(|(srv, _)| srv));
        c.handle_timeout(t);
        if c.pending() == 0 {
            assert_eq!(t, s(28));
        }
    }
    assert_eq!(sent, vec![P, P, P, A, A, A]);
    assert_eq!(
        drain_ev(&mut c),
        vec![
            Event::ServerDown { server: P },
            Event::ServerDown { server: A },
            Event::Timeout { tx },
        ]
    );
    assert!(c.is_down(P) && c.is_down(A));
    // Both down: new requests still go out, to the primary first.
    c.send(Request::pap(b"u", b"pw"), s(29)).unwrap();
    assert_eq!(drain_tx(&mut c)[0].0, P);
}

#[test]
fn mrd_bounds_the_exchange() {
    let t0 = Instant::now();
    let mut cfg = ClientConfig::new(secret(P), None);
    cfg.retransmit.jitter = false;
    cfg.retransmit.tries_per_server = 10;
    let mut c = RadiusClient::with_rng(cfg, rand::rngs::StdRng::seed_from_u64(1));
    let tx = c.send(Request::pap(b"u", b"pw"), t0).unwrap();
    let mut times = vec![t0; drain_tx(&mut c).len()];
    let mut last = t0;
    while let Some(t) = c.poll_timeout() {
        c.handle_timeout(t);
        times.extend(drain_tx(&mut c).iter().map(|_| t));
        last = t;
    }
    // Sent at 0, 2, 6, 14; the next would be at 14 + 16 = 30 = MRD, which
    // ends the exchange instead.
    let secs: Vec<u64> = times
        .iter()
        .map(|t| t.duration_since(t0).as_secs())
        .collect();
    assert_eq!(secs, vec![0, 2, 6, 14]);
    assert_eq!(last.duration_since(t0).as_secs(), 30);
    assert_eq!(drain_ev(&mut c), vec![Event::Timeout { tx }]);
}

#[test]
fn jitter_stays_within_ten_percent() {
    for seed in 0..20 {
        let t0 = Instant::now();
        let cfg = ClientConfig::new(secret(P), None);
        let mut c = RadiusClient::with_rng(cfg, rand::rngs::StdRng::seed_from_u64(seed));
        c.send(Request::pap(b"u", b"pw"), t0).unwrap();
        let t1 = c.poll_timeout().unwrap();
        let rt1 = t1 - t0;
        assert!(
            rt1 >= Duration::from_millis(1799) && rt1 <= Duration::from_millis(2201),
            "{rt1:?}"
        );
        c.handle_timeout(t1);
        let rt2 = c.poll_timeout().unwrap() - t1;
        assert!(
            rt2 >= rt1.mul_f64(1.899) && rt2 <= rt1.mul_f64(2.101),
            "{rt1:?} {rt2:?}"
        );
    }
}

#[test]
fn forged_and_unsigned_replies_are_dropped() {
    let t0 = Instant::now();
    let mut c = client(false, false);
    let tx = c.send(Request::pap(b"u", b"pw"), t0).unwrap();
    let (_, req) = drain_tx(&mut c).remove(0);

    // No Message-Authenticator (the BlastRADIUS case).
    let bad = reply(&req, Code::AccessAccept, &secret(P), false);
    assert_eq!(
        c.handle_datagram(P, &bad, t0),
        Err(DatagramError::Response(ResponseError::Verify(
            VerifyError::MissingMessageAuthenticator
        )))
    );
    // The wrong secret.
    let bad = reply(&req, Code::AccessAccept, &Secret::new("guess"), true);
    assert!(matches!(
        c.handle_datagram(P, &bad, t0),
        Err(DatagramError::Response(ResponseError::Verify(_)))
    ));
    // A tampered Message-Authenticator.
    let mut bad = reply(&req, Code::AccessAccept, &secret(P), true);
    bad[22] ^= 1;
    assert!(c.handle_datagram(P, &bad, t0).is_err());
    // An Accounting-Response to an Access-Request.
    let bad = reply(&req, Code::AccountingResponse, &secret(P), true);
    assert!(matches!(
        c.handle_datagram(P, &bad, t0),
        Err(DatagramError::Response(
            ResponseError::UnexpectedCode { .. }
        ))
    ));
    // Garbage, a short datagram, an unknown server.
    assert!(c.handle_datagram(P, &[1, 2, 3], t0).is_err());
    assert!(c.handle_datagram(A, &req, t0).is_err());
    assert!(drain_ev(&mut c).is_empty());
    assert_eq!(c.pending(), 1);

    // The genuine reply still completes the transaction.
    let ok = reply(&req, Code::AccessAccept, &secret(P), true);
    assert_eq!(c.handle_datagram(P, &ok, t0), Ok(Some(tx)));
    assert!(is_accept(&drain_ev(&mut c)[0], tx, P));
}

#[test]
fn accounting_exchange() {
    let t0 = Instant::now();
    let mut c = client(false, false);
    let r = Request::accounting(AcctStatusType::InterimUpdate, b"s1").with_counters(Counters {
        input_octets: 1 << 33,
        ..Counters::default()
    });
    let tx = c.send(r, t0).unwrap();
    let (_, req) = drain_tx(&mut c).remove(0);
    verify_accounting_request(&req, &secret(P)).unwrap();
    let ack = reply(&req, Code::AccountingResponse, &secret(P), false);
    assert_eq!(c.handle_datagram(P, &ack, t0), Ok(Some(tx)));
    assert_eq!(
        drain_ev(&mut c),
        vec![Event::Response {
            tx,
            server: P,
            outcome: Outcome::AccountingAck
        }]
    );
}

#[test]
fn at_most_256_outstanding_per_server() {
    let t0 = Instant::now();
    let mut c = client(false, false);
    let mut ids = std::collections::HashSet::new();
    for _ in 0..256 {
        c.send(Request::pap(b"u", b"pw"), t0).unwrap();
        let (_, b) = drain_tx(&mut c).remove(0);
        assert!(ids.insert(b[1]));
    }
    assert_eq!(
        c.send(Request::pap(b"u", b"pw"), t0),
        Err(SendError::NoFreeIdentifier(P))
    );
    // Cancelling one frees its Identifier.
    c.cancel(TxId(5));
    c.send(Request::pap(b"u", b"pw"), t0).unwrap();
    assert_eq!(drain_tx(&mut c)[0].1[1], 5);
}

#[test]
fn encode_errors_do_not_leak_identifiers() {
    let t0 = Instant::now();
    let mut c = client(false, false);
    for _ in 0..300 {
        assert!(matches!(
            c.send(Request::pap(b"u", &[1; 200]), t0),
            Err(SendError::Encode(_))
        ));
    }
    c.send(Request::pap(b"u", b"ok"), t0).unwrap();
    assert_eq!(c.pending(), 1);
}

proptest! {
    #[test]
    fn random_datagrams_never_panic(
        data in proptest::collection::vec(any::<u8>(), 0..200),
        id in any::<u8>(),
    ) {
        let t0 = Instant::now();
        let mut c = client(true, true);
        c.send(Request::pap(b"u", b"pw"), t0).unwrap();
        let mut d = data;
        if d.len() >= 2 {
            d[1] = id;
        }
        let _ = c.handle_datagram(P, &d, t0);
        let _ = c.handle_datagram(A, &d, t0);
        let _ = c.handle_datagram(ServerId(9), &d, t0);
        prop_assert_eq!(c.pending(), 1);
    }
}
