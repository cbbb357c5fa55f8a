//! PAC ⇄ PNS in memory (RFC 2637 §3).

use std::time::{Duration, Instant};

use pptp::control::*;
use pptp::{
    AssignCallIdError, CallClearReason, CloseReason, ControlState, Event, Pac, PacConfig, Pns,
    PnsConfig,
};

/// The driver's Call ID allocator in these tests: the lowest free ID from
/// 100 up, as the built-in counter of old handed them out.
fn lowest_free(pac: &Pac) -> Option<u16> {
    (100..=u16::MAX).find(|id| pac.calls().all(|(local, _)| local != *id))
}

/// Moves bytes both ways until quiet, answering the PAC's Call ID
/// requests with `allocate`; returns the other events of each side.
fn pump_with(
    pac: &mut Pac,
    pns: &mut Pns,
    now: Instant,
    mut allocate: impl FnMut(&Pac) -> Option<u16>,
) -> (Vec<Event>, Vec<Event>) {
    let mut pac_events = Vec::new();
    loop {
        let mut moved = false;
        while let Some(b) = pns.poll_transmit() {
            pac.handle_input(now, &b);
            moved = true;
        }
        while let Some(event) = pac.poll_event() {
            match event {
                Event::CallIdNeeded { peer_call_id } => {
                    assert_eq!(pac.call_id_pending(), Some(peer_call_id));
                    let id = allocate(pac);
                    pac.assign_call_id(now, id).unwrap();
                    moved = true;
                }
                other => pac_events.push(other),
            }
        }
        while let Some(b) = pac.poll_transmit() {
            pns.handle_input(now, &b);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    (
        pac_events,
        std::iter::from_fn(|| pns.poll_event()).collect(),
    )
}

/// [`pump_with`] the lowest free Call ID.
fn pump(pac: &mut Pac, pns: &mut Pns, now: Instant) -> (Vec<Event>, Vec<Event>) {
    pump_with(pac, pns, now, lowest_free)
}

fn pair(max_calls: usize, now: Instant) -> (Pac, Pns) {
    let pac = Pac::new(
        PacConfig {
            max_calls,
            recv_window: 32,
            ..PacConfig::default()
        },
        now,
    );
    let pns = Pns::new(
        PnsConfig {
            host_name: b"client".to_vec(),
            recv_window: 16,
            ..PnsConfig::default()
        },
        now,
    );
    (pac, pns)
}

#[test]
fn control_connection_and_call() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(2, t0);
    let id = pns.place_call(t0).unwrap(); // waits for the connection
    let (pe, ne) = pump(&mut pac, &mut pns, t0);
    assert_eq!(pac.state(), ControlState::Established);
    assert_eq!(pns.state(), ControlState::Established);
    assert!(
        matches!(&pe[0], Event::ControlConnected { peer_host_name, .. } if peer_host_name == b"client")
    );
    assert_eq!(
        pe[1],
        Event::CallEstablished {
            local_call_id: 100,
            peer_call_id: id,
            peer_window: 16,
            peer_processing_delay: 0,
            connect_speed: 100_000_000,
        }
    );
    assert!(matches!(ne[0], Event::ControlConnected { .. }));
    assert_eq!(
        ne[1],
        Event::CallEstablished {
            local_call_id: id,
            peer_call_id: 100,
            peer_window: 32,
            peer_processing_delay: 0,
            connect_speed: 100_000_000,
        }
    );

    // Set-Link-Info after LCP.
    pns.set_link_info(id, 0, 0xffff_ffff).unwrap();
    let (pe, _) = pump(&mut pac, &mut pns, t0);
    assert_eq!(
        pe,
        vec![Event::LinkInfo {
            local_call_id: 100,
            send_accm: 0,
            receive_accm: 0xffff_ffff
        }]
    );

    // Clear the call from the PNS.
    pns.clear_call(t0, id).unwrap();
    let (pe, ne) = pump(&mut pac, &mut pns, t0);
    assert_eq!(
        pe,
        vec![Event::CallCleared {
            local_call_id: 100,
            peer_call_id: Some(id),
            reason: CallClearReason::PeerRequest
        }]
    );
    assert_eq!(
        ne,
        vec![Event::CallCleared {
            local_call_id: id,
            peer_call_id: Some(100),
            reason: CallClearReason::LocalRequest
        }]
    );
    assert_eq!(pac.call_count(), 0);

    // Stop from the PNS.
    pns.close(t0, StopReason::None);
    let (pe, ne) = pump(&mut pac, &mut pns, t0);
    assert_eq!(
        pe,
        vec![Event::Closed {
            reason: CloseReason::PeerStop(StopReason::None)
        }]
    );
    assert_eq!(
        ne,
        vec![Event::Closed {
            reason: CloseReason::LocalStop(StopReason::None)
        }]
    );
    assert!(pac.is_closed() && pns.is_closed());
}

#[test]
fn port_limit_refuses() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(1, t0);
    let a = pns.place_call(t0).unwrap();
    pump(&mut pac, &mut pns, t0);
    let b = pns.place_call(t0).unwrap();
    let (pe, ne) = pump(&mut pac, &mut pns, t0);
    assert_eq!(
        pe,
        vec![Event::CallRefused {
            peer_call_id: b,
            result: OutgoingCallResult::GeneralError,
            error: ErrorCode::NoResource
        }]
    );
    assert_eq!(
        ne,
        vec![Event::CallFailed {
            local_call_id: b,
            result: OutgoingCallResult::GeneralError,
            error: ErrorCode::NoResource,
            cause_code: 0
        }]
    );
    assert_eq!(pac.call_count(), 1);
    assert_eq!(pns.calls().collect::<Vec<_>>(), vec![(a, 100)]);

    // The PAC tears the call down; the port is free again.
    assert!(pac.disconnect_call(100, DisconnectResult::AdminShutdown));
    let (_, ne) = pump(&mut pac, &mut pns, t0);
    assert!(matches!(
        ne[0],
        Event::CallCleared {
            reason: CallClearReason::PeerDisconnect {
                result: DisconnectResult::AdminShutdown,
                ..
            },
            ..
        }
    ));
    pns.place_call(t0).unwrap();
    let (pe, _) = pump(&mut pac, &mut pns, t0);
    assert!(matches!(pe[0], Event::CallEstablished { .. }));
}

#[test]
fn echo_keepalive_and_timeout() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    // After 60 s of silence the PAC sends an Echo-Request; the PNS answers.
    let t1 = pac.poll_timeout().unwrap();
    assert_eq!(t1, t0 + Duration::from_secs(60));
    pac.handle_timeout(t1);
    let req = pac.poll_transmit().unwrap();
    assert!(matches!(
        Message::decode(&req).unwrap(),
        Message::EchoRequest { .. }
    ));
    pns.handle_input(t1, &req);
    let rep = pns.poll_transmit().unwrap();
    pac.handle_input(t1, &rep);
    assert_eq!(pac.poll_timeout(), Some(t1 + Duration::from_secs(60)));

    // Next time the PNS stays silent: 60 s later the PAC gives up.
    let t2 = pac.poll_timeout().unwrap();
    pac.handle_timeout(t2);
    assert!(pac.poll_transmit().is_some());
    let t3 = pac.poll_timeout().unwrap();
    assert_eq!(t3, t2 + Duration::from_secs(60));
    pac.handle_timeout(t3);
    assert!(pac.is_closed());
    assert_eq!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::EchoTimeout
        })
    );
}

#[test]
fn start_timeout() {
    let t0 = Instant::now();
    let mut pac = Pac::new(PacConfig::default(), t0);
    assert_eq!(pac.poll_timeout(), Some(t0 + Duration::from_secs(60)));
    pac.handle_timeout(t0 + Duration::from_secs(60));
    assert_eq!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::StartTimeout
        })
    );
}

#[test]
fn pac_stop_clears_calls() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    let id = pns.place_call(t0).unwrap();
    pump(&mut pac, &mut pns, t0);
    pac.close(t0, StopReason::LocalShutdown);
    assert_eq!(pac.state(), ControlState::Stopping);
    let (pe, ne) = pump(&mut pac, &mut pns, t0);
    assert_eq!(
        pe,
        vec![
            Event::CallCleared {
                local_call_id: 100,
                peer_call_id: Some(id),
                reason: CallClearReason::ControlClosed
            },
            Event::Closed {
                reason: CloseReason::LocalStop(StopReason::LocalShutdown)
            }
        ]
    );
    assert_eq!(
        ne,
        vec![
            Event::CallCleared {
                local_call_id: id,
                peer_call_id: Some(100),
                reason: CallClearReason::ControlClosed
            },
            Event::Closed {
                reason: CloseReason::PeerStop(StopReason::LocalShutdown)
            }
        ]
    );
}

#[test]
fn stop_reply_timeout() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    pac.close(t0, StopReason::None);
    while pac.poll_transmit().is_some() {}
    let t = pac.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(10));
    pac.handle_timeout(t);
    assert!(pac.is_closed());
}

#[test]
fn bad_input_closes_pac() {
    let t0 = Instant::now();
    // Garbage before the start request: protocol error, no panic.
    let mut pac = Pac::new(PacConfig::default(), t0);
    pac.handle_input(t0, b"GET / HTTP/1.1\r\n\r\n");
    assert!(pac.is_closed());
    assert!(matches!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::ProtocolError(_)
        })
    ));

    // A call request before the start request.
    let mut pac = Pac::new(PacConfig::default(), t0);
    pac.handle_input(t0, &Message::CallClearRequest { call_id: 1 }.to_vec());
    assert_eq!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::Unexpected(MessageType::CallClearRequest)
        })
    );

    // Once established, a bad stream sends Stop-Control-Connection-Request.
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    let mut bad = Message::EchoRequest { identifier: 1 }.to_vec();
    bad[4] = 0;
    pac.handle_input(t0, &bad);
    assert!(pac.is_closed());
    let out = pac.poll_transmit().unwrap();
    assert!(matches!(
        Message::decode(&out).unwrap(),
        Message::StopControlConnectionRequest { .. }
    ));

    // Messages a PAC never expects are ignored once established.
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    pac.handle_input(
        t0,
        &Message::CallClearRequest { call_id: 77 }.to_vec(), // unknown call
    );
    pac.handle_input(
        t0,
        &Message::WanErrorNotify(WanErrorNotify {
            peer_call_id: 1,
            crc_errors: 0,
            framing_errors: 0,
            hardware_overruns: 0,
            buffer_overruns: 0,
            timeout_errors: 0,
            alignment_errors: 0,
        })
        .to_vec(),
    );
    assert_eq!(pac.state(), ControlState::Established);
    assert_eq!(pac.ignored_messages(), 2);
}

#[test]
fn unsupported_version_refused() {
    let t0 = Instant::now();
    let mut pac = Pac::new(PacConfig::default(), t0);
    let req = Message::StartControlConnectionRequest(StartControlConnectionRequest {
        protocol_version: 0x0200,
        framing_capabilities: 1,
        bearer_capabilities: 1,
        maximum_channels: 0,
        firmware_revision: 0,
        host_name: Vec::new(),
        vendor_string: Vec::new(),
    });
    pac.handle_input(t0, &req.to_vec());
    let rep = Message::decode(&pac.poll_transmit().unwrap()).unwrap();
    let Message::StartControlConnectionReply(rep) = rep else {
        panic!("not a reply")
    };
    assert_eq!(rep.result, StartResult::UnsupportedVersion);
    assert_eq!(rep.protocol_version, PROTOCOL_VERSION);
    assert!(pac.is_closed());
}

#[test]
fn call_id_allocator_and_duplicates() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(8, t0);
    let mut next = 500u16;
    let allocate = move |_: &Pac| {
        next += 1;
        (next <= 502).then_some(next)
    };
    for _ in 0..3 {
        pns.place_call(t0).unwrap();
    }
    let (pe, _) = pump_with(&mut pac, &mut pns, t0, allocate);
    let ids: Vec<_> = pe
        .iter()
        .filter_map(|e| match e {
            Event::CallEstablished { local_call_id, .. } => Some(*local_call_id),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![501, 502]);
    assert!(pe.iter().any(|e| matches!(
        e,
        Event::CallRefused {
            error: ErrorCode::NoResource,
            ..
        }
    )));

    // An Outgoing-Call-Request reusing a PNS Call ID is refused.
    let (mut pac, mut pns) = pair(8, t0);
    pump(&mut pac, &mut pns, t0);
    let ocrq = Message::OutgoingCallRequest(OutgoingCallRequest {
        call_id: 9,
        call_serial_number: 1,
        minimum_bps: 0,
        maximum_bps: 0,
        bearer_type: 3,
        framing_type: 3,
        recv_window_size: 8,
        processing_delay: 0,
        phone_number: Vec::new(),
        subaddress: Vec::new(),
    })
    .to_vec();
    pac.handle_input(t0, &ocrq);
    pac.handle_input(t0, &ocrq);
    // The second request waits behind the first one's Call ID.
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 9 })
    );
    assert_eq!(pac.poll_event(), None);
    pac.assign_call_id(t0, Some(100)).unwrap();
    let ev: Vec<_> = std::iter::from_fn(|| pac.poll_event()).collect();
    assert!(matches!(ev[0], Event::CallEstablished { .. }));
    assert!(matches!(
        ev[1],
        Event::CallRefused {
            error: ErrorCode::BadCallId,
            ..
        }
    ));
}

#[test]
fn pns_call_reply_timeout_and_refused_start() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    let id = pns.place_call(t0).unwrap();
    while pns.poll_transmit().is_some() {} // the PAC never sees it
    let t = pns.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(60));
    pns.handle_timeout(t);
    assert_eq!(
        pns.poll_event(),
        Some(Event::CallFailed {
            local_call_id: id,
            result: OutgoingCallResult::TimeOut,
            error: ErrorCode::None,
            cause_code: 0
        })
    );

    let mut pns = Pns::new(PnsConfig::default(), t0);
    let rep = Message::StartControlConnectionReply(StartControlConnectionReply {
        protocol_version: PROTOCOL_VERSION,
        result: StartResult::NotAuthorized,
        error: ErrorCode::None,
        framing_capabilities: 0,
        bearer_capabilities: 0,
        maximum_channels: 0,
        firmware_revision: 0,
        host_name: Vec::new(),
        vendor_string: Vec::new(),
    });
    pns.handle_input(t0, &rep.to_vec());
    assert_eq!(
        pns.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::Refused {
                result: StartResult::NotAuthorized,
                error: ErrorCode::None
            }
        })
    );
}

#[test]
fn byte_at_a_time_stream() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(1, t0);
    pump(&mut pac, &mut pns, t0);
    pns.place_call(t0).unwrap();
    pns.set_link_info(1, 0, 0).unwrap_err(); // not yet established
    let mut bytes = Vec::new();
    while let Some(b) = pns.poll_transmit() {
        bytes.extend(b);
    }
    for b in &bytes {
        pac.handle_input(t0, std::slice::from_ref(b));
    }
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 1 })
    );
    pac.assign_call_id(t0, Some(100)).unwrap();
    assert_eq!(pac.call_count(), 1);
}

/// An Outgoing-Call-Request the way a PNS sends it, with PNS Call ID `id`.
fn outgoing_call_request(id: u16) -> Vec<u8> {
    Message::OutgoingCallRequest(OutgoingCallRequest {
        call_id: id,
        call_serial_number: 1,
        minimum_bps: 0,
        maximum_bps: 0,
        bearer_type: 3,
        framing_type: 3,
        recv_window_size: 8,
        processing_delay: 0,
        phone_number: Vec::new(),
        subaddress: Vec::new(),
    })
    .to_vec()
}

#[test]
fn no_call_id_refuses_with_no_resource() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    pump(&mut pac, &mut pns, t0);
    let id = pns.place_call(t0).unwrap();
    while let Some(b) = pns.poll_transmit() {
        pac.handle_input(t0, &b);
    }
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: id })
    );
    // Nothing goes out until the driver answers.
    assert_eq!(pac.poll_transmit(), None);
    pac.assign_call_id(t0, None).unwrap();
    assert_eq!(pac.call_id_pending(), None);
    // RFC 2637 §2.8: General Error, Error Code No-Resource, Call ID 0.
    let reply = pac.poll_transmit().unwrap();
    let Message::OutgoingCallReply(reply) = Message::decode(&reply).unwrap() else {
        panic!("not an Outgoing-Call-Reply")
    };
    assert_eq!(reply.call_id, 0);
    assert_eq!(reply.peer_call_id, id);
    assert_eq!(reply.result, OutgoingCallResult::GeneralError);
    assert_eq!(reply.error, ErrorCode::NoResource);
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallRefused {
            peer_call_id: id,
            result: OutgoingCallResult::GeneralError,
            error: ErrorCode::NoResource
        })
    );
    pns.handle_input(t0, &Message::OutgoingCallReply(reply).to_vec());
    assert_eq!(
        pns.poll_event(),
        Some(Event::CallFailed {
            local_call_id: id,
            result: OutgoingCallResult::GeneralError,
            error: ErrorCode::NoResource,
            cause_code: 0
        })
    );
    assert_eq!(pac.call_count(), 0);
    assert_eq!(pac.state(), ControlState::Established);
}

#[test]
fn call_id_answer_without_a_request_is_an_error() {
    let t0 = Instant::now();
    // Before the connection is up, and after it.
    let mut pac = Pac::new(PacConfig::default(), t0);
    assert_eq!(
        pac.assign_call_id(t0, Some(5)),
        Err(AssignCallIdError::NoCallPending)
    );
    let (mut pac, mut pns) = pair(4, t0);
    pns.place_call(t0).unwrap();
    pump(&mut pac, &mut pns, t0);
    assert_eq!(pac.call_count(), 1);
    // The request was answered already: a second answer is refused and
    // changes nothing.
    assert_eq!(
        pac.assign_call_id(t0, Some(7)),
        Err(AssignCallIdError::NoCallPending)
    );
    assert_eq!(
        pac.assign_call_id(t0, None),
        Err(AssignCallIdError::NoCallPending)
    );
    assert_eq!(pac.poll_transmit(), None);
    assert_eq!(pac.poll_event(), None);
    assert_eq!(pac.call_count(), 1);
}

#[test]
fn bad_call_id_answers_keep_the_request_pending() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    pns.place_call(t0).unwrap();
    pump(&mut pac, &mut pns, t0); // call 100 is up
    pac.handle_input(t0, &outgoing_call_request(40));
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 40 })
    );
    assert_eq!(
        pac.assign_call_id(t0, Some(0)),
        Err(AssignCallIdError::Zero)
    );
    assert_eq!(
        pac.assign_call_id(t0, Some(100)),
        Err(AssignCallIdError::InUse(100))
    );
    assert_eq!(pac.call_id_pending(), Some(40));
    assert_eq!(pac.poll_transmit(), None);
    pac.assign_call_id(t0, Some(101)).unwrap();
    assert!(matches!(
        pac.poll_event(),
        Some(Event::CallEstablished {
            local_call_id: 101,
            peer_call_id: 40,
            ..
        })
    ));
}

#[test]
fn input_behind_a_pending_call_id_keeps_its_order() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    pump(&mut pac, &mut pns, t0);
    // A pipelining peer: a call request, an Echo-Request and a second
    // call request in one segment.
    let mut segment = outgoing_call_request(1);
    segment.extend(Message::EchoRequest { identifier: 77 }.to_vec());
    segment.extend(outgoing_call_request(2));
    pac.handle_input(t0, &segment);
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 1 })
    );
    assert_eq!(pac.poll_event(), None);
    assert_eq!(pac.poll_transmit(), None, "the echo waits its turn");
    pac.assign_call_id(t0, Some(300)).unwrap();
    // The reply to the first call, then the Echo-Reply; the second call
    // asks for its own ID.
    let first = Message::decode(&pac.poll_transmit().unwrap()).unwrap();
    assert!(matches!(
        first,
        Message::OutgoingCallReply(OutgoingCallReply {
            call_id: 300,
            peer_call_id: 1,
            result: OutgoingCallResult::Connected,
            ..
        })
    ));
    let echo = Message::decode(&pac.poll_transmit().unwrap()).unwrap();
    assert!(matches!(echo, Message::EchoReply { identifier: 77, .. }));
    assert_eq!(pac.poll_transmit(), None);
    assert!(matches!(
        pac.poll_event(),
        Some(Event::CallEstablished {
            local_call_id: 300,
            ..
        })
    ));
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 2 })
    );
    pac.assign_call_id(t0, Some(301)).unwrap();
    assert_eq!(pac.call_count(), 2);
}

#[test]
fn closing_drops_a_pending_call_id_request() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    pump(&mut pac, &mut pns, t0);
    pac.handle_input(t0, &outgoing_call_request(3));
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 3 })
    );
    pac.handle_transport_closed();
    assert_eq!(pac.call_id_pending(), None);
    assert_eq!(
        pac.assign_call_id(t0, Some(100)),
        Err(AssignCallIdError::NoCallPending)
    );
    assert_eq!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::TransportClosed
        })
    );
    assert_eq!(pac.poll_event(), None, "the call never existed");
}

#[test]
fn a_flood_behind_a_pending_call_id_closes_the_connection() {
    let t0 = Instant::now();
    let (mut pac, mut pns) = pair(4, t0);
    pump(&mut pac, &mut pns, t0);
    pac.handle_input(t0, &outgoing_call_request(3));
    assert_eq!(
        pac.poll_event(),
        Some(Event::CallIdNeeded { peer_call_id: 3 })
    );
    let echo = Message::EchoRequest { identifier: 1 }.to_vec();
    let mut sent = 0;
    while !pac.is_closed() {
        pac.handle_input(t0, &echo);
        sent += echo.len();
        assert!(sent <= pptp::pac::MAX_HELD_INPUT + echo.len());
    }
    assert_eq!(
        pac.poll_event(),
        Some(Event::Closed {
            reason: CloseReason::InputOverflow
        })
    );
    assert_eq!(
        pac.assign_call_id(t0, Some(100)),
        Err(AssignCallIdError::NoCallPending)
    );
}
