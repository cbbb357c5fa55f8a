//! Tests of the RFC 1661 automaton with a toy negotiator: one option (type
//! 1, two bytes) whose value each side wants to be within its own range.

use super::*;
use crate::packet::write_option;

#[derive(Debug, Default)]
struct Toy {
    /// The value we ask for; Nak'd values replace it.
    want: u16,
    /// The range we accept from the peer.
    accept: (u16, u16),
    /// Whether we still send the option (a Reject removes it).
    send: bool,
    acked: bool,
    peer_value: Option<u16>,
}

impl Toy {
    fn new(want: u16, accept: (u16, u16)) -> Self {
        Toy {
            want,
            accept,
            send: true,
            ..Default::default()
        }
    }
}

impl Negotiator for Toy {
    fn reset(&mut self) {
        self.acked = false;
        self.peer_value = None;
    }
    fn build_request(&mut self, out: &mut Vec<u8>) {
        if self.send {
            write_option(out, 1, &self.want.to_be_bytes());
        }
    }
    fn check_request(&mut self, options: &[ConfigOption<'_>]) -> Verdict {
        let mut nak = Vec::new();
        let mut reject = Vec::new();
        for o in options {
            if o.kind != 1 || o.data.len() != 2 {
                o.write(&mut reject);
                continue;
            }
            let v = u16::from_be_bytes([o.data[0], o.data[1]]);
            if v < self.accept.0 || v > self.accept.1 {
                write_option(&mut nak, 1, &self.accept.0.to_be_bytes());
            } else {
                self.peer_value = Some(v);
            }
        }
        if !reject.is_empty() {
            Verdict::Reject(reject)
        } else if !nak.is_empty() {
            Verdict::Nak(nak)
        } else {
            Verdict::Ack
        }
    }
    fn on_ack(&mut self) {
        self.acked = true;
    }
    fn on_nak(&mut self, options: &[ConfigOption<'_>]) {
        for o in options {
            if o.kind == 1 && o.data.len() == 2 {
                self.want = u16::from_be_bytes([o.data[0], o.data[1]]);
            }
        }
    }
    fn on_reject(&mut self, options: &[ConfigOption<'_>]) {
        if options.iter().any(|o| o.kind == 1) {
            self.send = false;
        }
    }
}

type Toyfsm = Fsm<Toy>;

/// Move every queued packet from one automaton to the other (both ways)
/// until neither has anything to say, optionally dropping some.
fn pump(now: Instant, a: &mut Toyfsm, b: &mut Toyfsm) -> usize {
    let mut moved = 0;
    for _ in 0..100 {
        let mut any = false;
        while let Some(p) = a.poll_transmit() {
            b.handle_packet(now, &p).unwrap();
            any = true;
            moved += 1;
        }
        while let Some(p) = b.poll_transmit() {
            a.handle_packet(now, &p).unwrap();
            any = true;
            moved += 1;
        }
        if !any {
            return moved;
        }
    }
    panic!("negotiation did not settle");
}

fn events(f: &mut Toyfsm) -> Vec<FsmEvent> {
    std::iter::from_fn(|| f.poll_event()).collect()
}

fn started(toy: Toy, now: Instant) -> Toyfsm {
    let mut f = Fsm::new(toy, FsmConfig::default());
    f.open(now);
    f.lower_up(now);
    f
}

#[test]
fn both_sides_open() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    pump(now, &mut a, &mut b);
    assert_eq!(a.state(), State::Opened);
    assert_eq!(b.state(), State::Opened);
    assert_eq!(events(&mut a), vec![FsmEvent::Started, FsmEvent::Up]);
    assert_eq!(a.negotiator().peer_value, Some(1400));
    assert_eq!(b.negotiator().peer_value, Some(1500));
    assert_eq!(a.poll_timeout(), None, "no timer in Opened");
}

#[test]
fn nak_converges_on_the_suggested_value() {
    let now = Instant::now();
    let mut a = started(Toy::new(50, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (1000, 1200)), now);
    pump(now, &mut a, &mut b);
    assert!(a.is_opened() && b.is_opened());
    assert_eq!(a.negotiator().want, 1000);
    assert_eq!(b.negotiator().peer_value, Some(1000));
}

#[test]
fn max_failure_turns_naks_into_rejects() {
    let now = Instant::now();
    // b Naks with a value a will never accept as its own (a wants it, but
    // a's on_nak is made useless by a fixed want).
    let mut b = started(Toy::new(1400, (1000, 1200)), now);
    b.handle_packet(now, &a_request(0, 50)).unwrap();
    let mut codes = Vec::new();
    for id in 0..8u8 {
        b.handle_packet(now, &a_request(id, 50)).unwrap();
        while let Some(p) = b.poll_transmit() {
            if p[0] != code::CONFIGURE_REQUEST {
                codes.push(p[0]);
            }
        }
    }
    // The first request, then: 5 Naks in all (max_failure), then Rejects
    // carrying the peer's own value.
    let naks = codes.iter().filter(|&&c| c == code::CONFIGURE_NAK).count();
    assert_eq!(naks, 5, "{codes:?}");
    assert_eq!(*codes.last().unwrap(), code::CONFIGURE_REJECT);
}

fn a_request(id: u8, value: u16) -> Vec<u8> {
    let mut opts = Vec::new();
    write_option(&mut opts, 1, &value.to_be_bytes());
    let mut p = Vec::new();
    write_packet(&mut p, code::CONFIGURE_REQUEST, id, &opts);
    p
}

#[test]
fn restart_timer_retransmits_then_gives_up_after_max_configure() {
    let start = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), start);
    let mut sent = 0;
    let mut now = start;
    while let Some(p) = a.poll_transmit() {
        assert_eq!(p[0], code::CONFIGURE_REQUEST);
        sent += 1;
        let Some(t) = a.poll_timeout() else { break };
        assert_eq!(t, now + Duration::from_secs(3));
        now = t;
        a.handle_timeout(now);
    }
    assert_eq!(sent, 10, "Max-Configure requests");
    assert_eq!(a.state(), State::Stopped);
    assert_eq!(
        events(&mut a),
        vec![
            FsmEvent::Started,
            FsmEvent::Finished(FinishReason::NoResponse)
        ]
    );
}

#[test]
fn lost_request_is_recovered_by_retransmission() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    // Lose a's first request.
    let lost = a.poll_transmit().unwrap();
    assert_eq!(lost[0], code::CONFIGURE_REQUEST);
    pump(now, &mut a, &mut b);
    assert_eq!(a.state(), State::AckSent);
    assert_eq!(b.state(), State::AckRcvd);
    let later = a.poll_timeout().unwrap();
    a.handle_timeout(later);
    pump(later, &mut a, &mut b);
    assert!(a.is_opened() && b.is_opened());
}

#[test]
fn close_terminates_both_sides() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    pump(now, &mut a, &mut b);
    events(&mut a);
    events(&mut b);
    a.close(now, "admin stop");
    let req = a.poll_transmit().unwrap();
    assert_eq!(req[0], code::TERMINATE_REQUEST);
    assert_eq!(&req[4..], b"admin stop");
    b.handle_packet(now, &req).unwrap();
    let ack = b.poll_transmit().unwrap();
    assert_eq!(ack[0], code::TERMINATE_ACK);
    assert_eq!(ack[1], req[1]);
    a.handle_packet(now, &ack).unwrap();
    assert_eq!(a.state(), State::Closed);
    assert_eq!(
        events(&mut a),
        vec![FsmEvent::Down, FsmEvent::Finished(FinishReason::Closed)]
    );
    // b waits one restart period (zrc) before finishing.
    assert_eq!(b.state(), State::Stopping);
    assert_eq!(events(&mut b), vec![FsmEvent::Down]);
    let t = b.poll_timeout().unwrap();
    b.handle_timeout(t);
    assert_eq!(b.state(), State::Stopped);
    assert_eq!(
        events(&mut b),
        vec![FsmEvent::Finished(FinishReason::PeerTerminated(
            "admin stop".into()
        ))]
    );
    assert!(
        b.poll_transmit().is_none(),
        "no Terminate-Request from the passive side"
    );
}

#[test]
fn unanswered_terminate_finishes_after_max_terminate() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    pump(now, &mut a, &mut b);
    a.close(now, "");
    let mut requests = 0;
    loop {
        while let Some(p) = a.poll_transmit() {
            assert_eq!(p[0], code::TERMINATE_REQUEST);
            requests += 1;
        }
        let Some(next) = a.poll_timeout() else { break };
        a.handle_timeout(next);
    }
    assert_eq!(requests, 2);
    assert_eq!(a.state(), State::Closed);
}

#[test]
fn unknown_code_is_code_rejected_and_bad_ack_ignored() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let req = a.poll_transmit().unwrap();
    a.handle_packet(now, &[42, 9, 0, 6, 1, 2]).unwrap();
    let rej = a.poll_transmit().unwrap();
    assert_eq!(rej[0], code::CODE_REJECT);
    assert_eq!(&rej[4..], &[42, 9, 0, 6, 1, 2]);
    // An Ack with the wrong identifier, then with wrong contents.
    let mut bad = req.clone();
    bad[0] = code::CONFIGURE_ACK;
    bad[1] = bad[1].wrapping_add(1);
    a.handle_packet(now, &bad).unwrap();
    assert_eq!(a.state(), State::ReqSent);
    let mut bad = req.clone();
    bad[0] = code::CONFIGURE_ACK;
    *bad.last_mut().unwrap() ^= 1;
    a.handle_packet(now, &bad).unwrap();
    assert_eq!(a.state(), State::ReqSent);
    let mut good = req;
    good[0] = code::CONFIGURE_ACK;
    a.handle_packet(now, &good).unwrap();
    assert_eq!(a.state(), State::AckRcvd);
}

#[test]
fn code_reject_of_configure_is_fatal() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let req = a.poll_transmit().unwrap();
    let mut rej = vec![code::CODE_REJECT, 1, 0, 0];
    rej.extend_from_slice(&req);
    let len = rej.len() as u16;
    rej[2..4].copy_from_slice(&len.to_be_bytes());
    a.handle_packet(now, &rej).unwrap();
    assert_eq!(a.state(), State::Stopped);
    assert_eq!(
        events(&mut a),
        vec![
            FsmEvent::Started,
            FsmEvent::Finished(FinishReason::CodeRejected)
        ]
    );
}

#[test]
fn renegotiation_from_opened_reports_down_then_up() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    pump(now, &mut a, &mut b);
    events(&mut a);
    events(&mut b);
    b.handle_packet(now, &a_request(77, 1300)).unwrap();
    assert_eq!(events(&mut b), vec![FsmEvent::Down]);
    // b answered and sent a new request; finish the exchange with a.
    while let Some(p) = b.poll_transmit() {
        if p[0] == code::CONFIGURE_REQUEST {
            a.handle_packet(now, &p).unwrap();
        }
    }
    pump(now, &mut a, &mut b);
    assert!(a.is_opened() && b.is_opened());
    assert_eq!(events(&mut b), vec![FsmEvent::Up]);
    assert_eq!(b.negotiator().peer_value, Some(1500));
}

#[test]
fn nak_storm_is_bounded() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut rounds = 0;
    while let Some(req) = a.poll_transmit() {
        if req[0] != code::CONFIGURE_REQUEST {
            continue;
        }
        rounds += 1;
        assert!(rounds < 200, "no bound on Nak rounds");
        let mut nak = req.clone();
        nak[0] = code::CONFIGURE_NAK;
        a.handle_packet(now, &nak).unwrap();
    }
    assert_eq!(a.state(), State::Stopping);
}

proptest::proptest! {
    /// Any sequence of packets, timeouts and administrative events leaves
    /// the automaton in a consistent state without panicking.
    #[test]
    fn random_input_never_panics(ops in proptest::collection::vec(
        (0u8..6, proptest::collection::vec(proptest::num::u8::ANY, 0..24)), 0..64)) {
        let mut now = Instant::now();
        let mut a = started(Toy::new(1500, (100, 2000)), now);
        for (op, bytes) in ops {
            match op {
                0 => { let _ = a.handle_packet(now, &bytes); }
                1 => { now += Duration::from_secs(4); a.handle_timeout(now); }
                2 => a.close(now, "x"),
                3 => a.open(now),
                4 => a.lower_down(),
                _ => a.lower_up(now),
            }
            let mut out = 0;
            while a.poll_transmit().is_some() { out += 1; }
            proptest::prop_assert!(out <= 4);
            if a.poll_timeout().is_some() {
                proptest::prop_assert!(matches!(a.state(),
                    State::Closing | State::Stopping | State::ReqSent | State::AckRcvd | State::AckSent));
            }
        }
    }
}

#[test]
fn duplicate_request_in_opened_is_acked_again_without_renegotiation() {
    let now = Instant::now();
    let mut a = started(Toy::new(1500, (100, 2000)), now);
    let mut b = started(Toy::new(1400, (100, 2000)), now);
    let mut b_requests = Vec::new();
    for _ in 0..10 {
        while let Some(p) = a.poll_transmit() {
            b.handle_packet(now, &p).unwrap();
        }
        while let Some(p) = b.poll_transmit() {
            if p[0] == code::CONFIGURE_REQUEST {
                b_requests.push(p.clone());
            }
            a.handle_packet(now, &p).unwrap();
        }
    }
    assert!(a.is_opened());
    events(&mut a);
    a.handle_packet(now, b_requests.last().unwrap()).unwrap();
    let reply = a.poll_transmit().unwrap();
    assert_eq!(reply[0], code::CONFIGURE_ACK);
    assert!(a.poll_transmit().is_none(), "no new Configure-Request");
    assert!(a.is_opened());
    assert_eq!(events(&mut a), vec![]);
}
