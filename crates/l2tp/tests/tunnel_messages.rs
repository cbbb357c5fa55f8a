//! An LNS tunnel driven by hand-made control messages: the replies it
//! sends, tunnel authentication on the wire, refusals and protocol errors.

use std::time::{Duration, Instant};

use l2tp::avp::{challenge_response, Avp, AvpValue, ResultCode};
use l2tp::header::{decode, ControlHeader, Packet};
use l2tp::tunnel::TunnelState;
use l2tp::{
    ControlMessage, Event, MessageType, SessionCloseReason, Tunnel, TunnelCloseReason, TunnelConfig,
};

const SECRET: &[u8] = b"tunnel secret";
const LNS_CHALLENGE: [u8; 16] = [0x5c; 16];

/// A hand-driven LAC: numbers its messages and reads the LNS's replies.
struct Peer {
    now: Instant,
    ns: u16,
    nr: u16,
    lns: Tunnel,
}

impl Peer {
    fn new(secret: Option<&[u8]>) -> Self {
        let now = Instant::now();
        let config = TunnelConfig {
            secret: secret.map(<[u8]>::to_vec),
            max_sessions: 1,
            hello_interval: Duration::from_secs(60),
            ..TunnelConfig::default()
        };
        Peer {
            now,
            ns: 0,
            nr: 0,
            lns: Tunnel::new_lns(config, 22, LNS_CHALLENGE, now),
        }
    }

    fn send_raw(&mut self, session_id: u16, body: &[u8]) {
        let h = ControlHeader {
            tunnel_id: 22,
            session_id,
            ns: self.ns,
            nr: self.nr,
        };
        self.ns = self.ns.wrapping_add(1);
        self.lns.handle_input(self.now, &h.to_message(body));
    }

    fn send(&mut self, session_id: u16, t: MessageType, avps: Vec<Avp>) {
        let mut body = Vec::new();
        ControlMessage::new(t, avps)
            .encode(Some(SECRET), &mut body)
            .unwrap();
        self.send_raw(session_id, &body);
    }

    /// Every non-ZLB message the LNS sends now (after the delayed ack).
    fn replies(&mut self) -> Vec<(ControlHeader, ControlMessage)> {
        self.now += Duration::from_millis(200);
        self.lns.handle_timeout(self.now);
        let mut out = Vec::new();
        while let Some(d) = self.lns.poll_transmit(self.now) {
            let Ok(Packet::Control { header, body }) = decode(&d) else {
                panic!("not a control message");
            };
            assert_eq!(header.tunnel_id, 11);
            if body.is_empty() {
                continue;
            }
            assert_eq!(header.ns, self.nr, "LNS Ns out of sequence");
            self.nr = self.nr.wrapping_add(1);
            out.push((header, ControlMessage::decode(body, Some(SECRET)).unwrap()));
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.lns.poll_event()).collect()
    }

    fn sccrq(&mut self, challenge: Option<&[u8]>) {
        let mut avps = vec![
            Avp::mandatory(AvpValue::ProtocolVersion(1, 0)),
            Avp::mandatory(AvpValue::HostName(b"lac".to_vec())),
            Avp::mandatory(AvpValue::FramingCapabilities(3)),
            Avp::mandatory(AvpValue::AssignedTunnelId(11)),
        ];
        if let Some(c) = challenge {
            avps.push(Avp::mandatory(AvpValue::Challenge(c.to_vec())));
        }
        self.send(0, MessageType::Sccrq, avps);
    }

    fn establish(&mut self) {
        self.sccrq(Some(b"lac challenge"));
        let replies = self.replies();
        assert_eq!(replies.len(), 1);
        self.send(
            0,
            MessageType::Scccn,
            vec![Avp::mandatory(AvpValue::ChallengeResponse(
                challenge_response(3, SECRET, &LNS_CHALLENGE),
            ))],
        );
        self.replies();
        assert_eq!(self.lns.state(), TunnelState::Established);
        self.events();
    }
}

fn result_of(m: &ControlMessage) -> ResultCode {
    m.result_code().expect("a Result Code AVP")
}

#[test]
fn sccrp_answers_the_challenge_and_sends_its_own() {
    let mut p = Peer::new(Some(SECRET));
    p.sccrq(Some(b"lac challenge"));
    let replies = p.replies();
    let (h, m) = &replies[0];
    assert_eq!(m.message_type, MessageType::Sccrp);
    assert_eq!(h.session_id, 0);
    assert_eq!(m.assigned_tunnel_id(), Some(22));
    assert_eq!(m.protocol_version(), Some((1, 0)));
    // §5.1.1: MD5(2 | secret | challenge).
    assert_eq!(
        m.challenge_response(),
        Some(challenge_response(2, SECRET, b"lac challenge"))
    );
    assert_eq!(m.challenge(), Some(LNS_CHALLENGE.to_vec()));
    assert!(p.events().is_empty());
}

#[test]
fn wrong_scccn_response_gets_stopccn_4() {
    let mut p = Peer::new(Some(SECRET));
    p.sccrq(None);
    p.replies();
    p.send(
        0,
        MessageType::Scccn,
        vec![Avp::mandatory(AvpValue::ChallengeResponse(
            challenge_response(3, b"other secret", &LNS_CHALLENGE),
        ))],
    );
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::StopCcn);
    assert_eq!(result_of(&replies[0].1).result, 4);
    assert_eq!(
        p.events(),
        [Event::TunnelClosed {
            reason: TunnelCloseReason::AuthenticationFailed
        }]
    );
}

#[test]
fn unsupported_version_gets_stopccn_5() {
    let mut p = Peer::new(None);
    p.send(
        0,
        MessageType::Sccrq,
        vec![
            Avp::mandatory(AvpValue::ProtocolVersion(2, 0)),
            Avp::mandatory(AvpValue::AssignedTunnelId(11)),
        ],
    );
    // The LNS never learnt the peer's tunnel ID: its StopCCN carries 0.
    p.now += Duration::from_millis(200);
    let d = p.lns.poll_transmit(p.now).unwrap();
    let Ok(Packet::Control { body, .. }) = decode(&d) else {
        panic!()
    };
    let m = ControlMessage::decode(body, None).unwrap();
    assert_eq!(result_of(&m).result, 5);
    let text = match &p.events()[0] {
        Event::TunnelClosed { reason } => reason.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(text, "the peer speaks L2TP protocol version 2.0");
}

#[test]
fn incoming_call_then_limit_then_cdn() {
    let mut p = Peer::new(Some(SECRET));
    p.establish();
    p.send(
        0,
        MessageType::Icrq,
        vec![
            Avp::mandatory(AvpValue::AssignedSessionId(501)),
            Avp::mandatory(AvpValue::CallSerialNumber(1)),
        ],
    );
    let replies = p.replies();
    let (h, icrp) = &replies[0];
    assert_eq!(icrp.message_type, MessageType::Icrp);
    assert_eq!(h.session_id, 501);
    let local = icrp.assigned_session_id().unwrap();
    p.send(
        local,
        MessageType::Iccn,
        vec![
            Avp::mandatory(AvpValue::TxConnectSpeed(10_000_000)),
            Avp::mandatory(AvpValue::FramingType(1)),
            Avp::mandatory(AvpValue::SequencingRequired),
        ],
    );
    assert!(p.replies().is_empty());
    assert_eq!(
        p.events(),
        [Event::SessionEstablished {
            local_session_id: local,
            peer_session_id: 501,
            sequencing_required: true
        }]
    );

    // A second call is over the limit of 1: CDN 2/4.
    p.send(
        0,
        MessageType::Icrq,
        vec![Avp::mandatory(AvpValue::AssignedSessionId(502))],
    );
    let replies = p.replies();
    assert_eq!(replies[0].0.session_id, 502);
    assert_eq!(replies[0].1.message_type, MessageType::Cdn);
    let r = result_of(&replies[0].1);
    assert_eq!((r.result, r.error), (2, Some(4)));

    // SLI and WEN are accepted; SLI reports the ACCM.
    p.send(
        local,
        MessageType::Sli,
        vec![Avp::mandatory(AvpValue::Accm {
            send: 0,
            receive: 0xffff_ffff,
        })],
    );
    p.send(local, MessageType::Wen, vec![]);
    let events = p.events();
    assert!(events.contains(&Event::LinkInfo {
        local_session_id: local,
        send_accm: 0,
        receive_accm: 0xffff_ffff
    }));
    assert_eq!(p.lns.session_count(), 1);

    // The peer disconnects.
    p.send(
        local,
        MessageType::Cdn,
        vec![
            Avp::mandatory(AvpValue::ResultCode(ResultCode {
                result: 1,
                error: None,
                message: Vec::new(),
            })),
            Avp::mandatory(AvpValue::AssignedSessionId(501)),
        ],
    );
    let events = p.events();
    let Event::SessionClosed { reason, .. } = &events[events.len() - 1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        reason.to_string(),
        "the peer disconnected the call (lost carrier)"
    );
    assert_eq!(p.lns.session_count(), 0);
}

#[test]
fn outgoing_call_request_is_refused_politely() {
    let mut p = Peer::new(Some(SECRET));
    p.establish();
    p.send(
        0,
        MessageType::Ocrq,
        vec![
            Avp::mandatory(AvpValue::AssignedSessionId(9)),
            Avp::mandatory(AvpValue::CallSerialNumber(1)),
        ],
    );
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::Cdn);
    assert_eq!(replies[0].0.session_id, 9);
    assert_eq!(result_of(&replies[0].1).result, 5);
    assert_eq!(p.lns.state(), TunnelState::Established);
}

#[test]
fn unknown_mandatory_avp_costs_the_session_or_the_tunnel() {
    let mut p = Peer::new(Some(SECRET));
    p.establish();
    p.send(
        0,
        MessageType::Icrq,
        vec![Avp::mandatory(AvpValue::AssignedSessionId(7))],
    );
    let local = p.replies()[0].1.assigned_session_id().unwrap();
    let unknown = Avp::mandatory(AvpValue::Raw {
        vendor: 0,
        attribute: 200,
        value: vec![1],
    });
    // In a session message: CDN 2/8, the tunnel stays.
    p.send(local, MessageType::Iccn, vec![unknown.clone()]);
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::Cdn);
    let r = result_of(&replies[0].1);
    assert_eq!((r.result, r.error), (2, Some(8)));
    assert!(matches!(
        p.events()[..],
        [Event::SessionClosed {
            reason: SessionCloseReason::ProtocolError(_),
            ..
        }]
    ));
    assert_eq!(p.lns.state(), TunnelState::Established);
    // In a tunnel message: StopCCN 2/8.
    p.send(0, MessageType::Hello, vec![unknown]);
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::StopCcn);
    let r = result_of(&replies[0].1);
    assert_eq!((r.result, r.error), (2, Some(8)));
}

#[test]
fn hidden_avps_are_revealed_with_the_secret() {
    let mut p = Peer::new(Some(SECRET));
    p.establish();
    p.send(
        0,
        MessageType::Icrq,
        vec![
            Avp::mandatory(AvpValue::RandomVector(vec![1, 2, 3, 4, 5, 6, 7, 8])),
            Avp {
                mandatory: true,
                hidden: true,
                value: AvpValue::AssignedSessionId(333),
            },
        ],
    );
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::Icrp);
    assert_eq!(replies[0].0.session_id, 333);
}

#[test]
fn hello_when_quiet_and_teardown_when_unanswered() {
    let mut p = Peer::new(Some(SECRET));
    p.establish();
    p.now += Duration::from_secs(61);
    let replies = p.replies();
    assert_eq!(replies[0].1.message_type, MessageType::Hello);
    // Nobody acknowledges: retransmissions, then the tunnel goes.
    for _ in 0..100 {
        let Some(t) = p.lns.poll_timeout() else { break };
        p.now = t;
        p.lns.handle_timeout(p.now);
        while p.lns.poll_transmit(p.now).is_some() {}
    }
    assert!(p.lns.is_closed());
    assert_eq!(
        p.events(),
        [Event::TunnelClosed {
            reason: TunnelCloseReason::PeerUnreachable
        }]
    );
}

#[test]
fn stopccn_is_acked_and_retransmissions_reacked_during_linger() {
    let mut p = Peer::new(None);
    p.sccrq(None);
    p.replies();
    p.send(0, MessageType::Scccn, vec![]);
    p.replies();
    p.events();
    let stop = {
        let mut body = Vec::new();
        ControlMessage::new(
            MessageType::StopCcn,
            vec![
                Avp::mandatory(AvpValue::AssignedTunnelId(11)),
                Avp::mandatory(AvpValue::ResultCode(ResultCode {
                    result: 6,
                    error: None,
                    message: b"going down".to_vec(),
                })),
            ],
        )
        .encode(None, &mut body)
        .unwrap();
        body
    };
    let ns = p.ns;
    p.send_raw(0, &stop);
    // Acknowledged at once, with a ZLB.
    let zlb = p.lns.poll_transmit(p.now).expect("an immediate ack");
    let Ok(Packet::Control { header, body }) = decode(&zlb) else {
        panic!()
    };
    assert!(body.is_empty());
    assert_eq!(header.nr, ns.wrapping_add(1));
    let events = p.events();
    let Event::TunnelClosed { reason } = &events[0] else {
        panic!()
    };
    assert_eq!(
        reason.to_string(),
        "the peer closed the tunnel (requester is being shut down: going down)"
    );
    // A retransmitted StopCCN is acknowledged again.
    p.ns = ns;
    p.send_raw(0, &stop);
    assert!(p.lns.poll_transmit(p.now).is_some());
    assert!(!p.lns.is_closed());
    p.now += Duration::from_secs(32);
    p.lns.handle_timeout(p.now);
    assert!(p.lns.is_closed());
}
