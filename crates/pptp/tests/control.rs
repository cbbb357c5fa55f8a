//! Control message encodings (RFC 2637 §2), round trips and rejections.

use pptp::control::*;
use proptest::prelude::*;

fn padded(text: &[u8], size: usize) -> Vec<u8> {
    let mut v = text.to_vec();
    v.resize(size, 0);
    v
}

#[test]
fn sccrq_byte_exact() {
    let msg = Message::StartControlConnectionRequest(StartControlConnectionRequest {
        protocol_version: PROTOCOL_VERSION,
        framing_capabilities: FRAMING_ASYNC | FRAMING_SYNC,
        bearer_capabilities: BEARER_ANALOG | BEARER_DIGITAL,
        maximum_channels: 0,
        firmware_revision: 0x0102,
        host_name: b"pns.example".to_vec(),
        vendor_string: b"ras".to_vec(),
    });
    // RFC 2637 §2.1, field by field.
    let mut expected = hex::decode(concat!(
        "009c",     // Length 156
        "0001",     // PPTP Message Type: control
        "1a2b3c4d", // Magic Cookie
        "0001",     // Control Message Type 1
        "0000",     // Reserved0
        "0100",     // Protocol Version 1.0
        "0000",     // Reserved1
        "00000003", // Framing Capabilities: async | sync
        "00000003", // Bearer Capabilities: analog | digital
        "0000",     // Maximum Channels
        "0102",     // Firmware Revision
    ))
    .unwrap();
    expected.extend(padded(b"pns.example", 64));
    expected.extend(padded(b"ras", 64));
    assert_eq!(expected.len(), 156);
    let bytes = msg.to_vec();
    assert_eq!(bytes, expected);
    assert_eq!(Message::decode(&bytes).unwrap(), msg);
}

#[test]
fn small_messages_byte_exact() {
    let echo = Message::EchoRequest {
        identifier: 0xdeadbeef,
    };
    assert_eq!(
        hex::encode(echo.to_vec()),
        "001000011a2b3c4d00050000deadbeef"
    );
    let reply = Message::EchoReply {
        identifier: 7,
        result: EchoResult::Ok,
        error: ErrorCode::None,
    };
    assert_eq!(
        hex::encode(reply.to_vec()),
        "001400011a2b3c4d00060000000000070100 0000".replace(' ', "")
    );
    let stop = Message::StopControlConnectionRequest {
        reason: StopReason::LocalShutdown,
    };
    assert_eq!(
        hex::encode(stop.to_vec()),
        "001000011a2b3c4d0003000003000000"
    );
    let ccrq = Message::CallClearRequest { call_id: 0x1234 };
    assert_eq!(
        hex::encode(ccrq.to_vec()),
        "001000011a2b3c4d000c000012340000"
    );
    let sli = Message::SetLinkInfo(SetLinkInfo {
        peer_call_id: 9,
        send_accm: 0xffffffff,
        receive_accm: 0,
    });
    assert_eq!(
        hex::encode(sli.to_vec()),
        "001800011a2b3c4d000f000000090000ffffffff00000000"
    );
    let ocrp = Message::OutgoingCallReply(OutgoingCallReply {
        call_id: 0x0101,
        peer_call_id: 0x0202,
        result: OutgoingCallResult::Connected,
        error: ErrorCode::None,
        cause_code: 0,
        connect_speed: 64000,
        recv_window_size: 64,
        processing_delay: 0,
        physical_channel_id: 0,
    });
    assert_eq!(
        hex::encode(ocrp.to_vec()),
        "002000011a2b3c4d000800000101020201000000 0000fa00 00400000 00000000".replace(' ', "")
    );
}

#[test]
fn fixed_lengths_match_rfc() {
    let all = [
        (1, 156),
        (2, 156),
        (3, 16),
        (4, 16),
        (5, 16),
        (6, 20),
        (7, 168),
        (8, 32),
        (9, 220),
        (10, 24),
        (11, 28),
        (12, 16),
        (13, 148),
        (14, 40),
        (15, 24),
    ];
    for (ty, len) in all {
        assert_eq!(
            MessageType::from_u16(ty).unwrap().length(),
            len,
            "type {ty}"
        );
    }
    assert!(MessageType::from_u16(0).is_none());
    assert!(MessageType::from_u16(16).is_none());
}

fn echo_bytes() -> Vec<u8> {
    Message::EchoRequest { identifier: 1 }.to_vec()
}

#[test]
fn rejects_bad_cookie() {
    let mut b = echo_bytes();
    b[4] = 0x1b;
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::BadMagicCookie(0x1b2b3c4d))
    ));
}

#[test]
fn rejects_wrong_length() {
    let mut b = echo_bytes();
    b[1] = 20; // Length says 20 for an Echo-Request (16)
    b.extend([0; 4]);
    assert!(matches!(
        Message::decode(&b),
        Err(DecodeError::BadLength {
            length: 20,
            message_type: 5
        })
    ));
    // Length right, buffer short.
    let b = echo_bytes();
    assert!(matches!(
        Message::decode(&b[..15]),
        Err(DecodeError::Truncated { .. })
    ));
    assert!(matches!(
        Message::decode(&b[..5]),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn rejects_management_and_unknown_types() {
    let mut b = echo_bytes();
    b[3] = 2;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::UnsupportedPptpMessageType(2))
    );
    let mut b = echo_bytes();
    b[9] = 99;
    assert_eq!(
        Message::decode(&b),
        Err(DecodeError::UnknownMessageType(99))
    );
}

#[test]
fn phone_number_uses_length_field() {
    let mut ocrq = OutgoingCallRequest {
        call_id: 1,
        call_serial_number: 2,
        minimum_bps: 300,
        maximum_bps: 100_000_000,
        bearer_type: 3,
        framing_type: 3,
        recv_window_size: 64,
        processing_delay: 0,
        phone_number: b"5551234".to_vec(),
        subaddress: Vec::new(),
    };
    let mut bytes = Message::OutgoingCallRequest(ocrq.clone()).to_vec();
    assert_eq!(bytes.len(), 168);
    // Phone Number Length at offset 36 (after the 12-octet header and 24 octets).
    assert_eq!(&bytes[36..38], &[0, 7]);
    bytes[37] = 3;
    ocrq.phone_number.truncate(3);
    assert_eq!(
        Message::decode(&bytes).unwrap(),
        Message::OutgoingCallRequest(ocrq)
    );
}

#[test]
fn deframer_splits_stream_and_checks_early() {
    let mut stream = Vec::new();
    let msgs = vec![
        Message::EchoRequest { identifier: 1 },
        Message::CallClearRequest { call_id: 5 },
        Message::StopControlConnectionRequest {
            reason: StopReason::None,
        },
    ];
    for m in &msgs {
        m.encode(&mut stream);
    }
    for chunk in [1usize, 3, 7, 16, 100] {
        let mut d = Deframer::new();
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            assert_eq!(d.push(c), c.len());
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(got, msgs);
        assert_eq!(d.buffered(), 0);
    }

    // A Length no message has is refused after two octets.
    let mut d = Deframer::new();
    d.push(&[0xff, 0xff]);
    assert!(matches!(
        d.next_message(),
        Err(DecodeError::BadLength { length: 0xffff, .. })
    ));
    assert_eq!(d.next_message(), Err(DecodeError::Poisoned));
    assert_eq!(d.push(&[0]), 0);

    // A bad cookie is refused once the header is in, before the body.
    let mut d = Deframer::new();
    let mut b = Message::EchoRequest { identifier: 1 }.to_vec();
    b[7] = 0;
    d.push(&b[..12]);
    assert!(matches!(
        d.next_message(),
        Err(DecodeError::BadMagicCookie(_))
    ));

    // Bounded: pushing more than the capacity is refused, not buffered.
    let mut d = Deframer::with_capacity(300);
    let big = vec![0u8; 1000];
    assert_eq!(d.push(&big), 300);
}

fn text(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(1u8..=255, 0..=max)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u16>(),
            any::<u32>(),
            any::<u32>(),
            any::<u16>(),
            any::<u16>(),
            text(64),
            text(64)
        )
            .prop_map(|(v, f, b, m, fw, h, ve)| {
                Message::StartControlConnectionRequest(StartControlConnectionRequest {
                    protocol_version: v,
                    framing_capabilities: f,
                    bearer_capabilities: b,
                    maximum_channels: m,
                    firmware_revision: fw,
                    host_name: h,
                    vendor_string: ve,
                })
            }),
        (
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u32>(),
            any::<u32>(),
            any::<(u16, u16)>(),
            text(64),
            text(64)
        )
            .prop_map(|(v, r, e, f, b, (m, fw), h, ve)| {
                Message::StartControlConnectionReply(StartControlConnectionReply {
                    protocol_version: v,
                    result: StartResult::from_wire(r),
                    error: ErrorCode::from_wire(e),
                    framing_capabilities: f,
                    bearer_capabilities: b,
                    maximum_channels: m,
                    firmware_revision: fw,
                    host_name: h,
                    vendor_string: ve,
                })
            }),
        any::<u8>().prop_map(|r| Message::StopControlConnectionRequest {
            reason: StopReason::from_wire(r)
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(r, e)| Message::StopControlConnectionReply {
            result: StopResult::from_wire(r),
            error: ErrorCode::from_wire(e)
        }),
        any::<u32>().prop_map(|identifier| Message::EchoRequest { identifier }),
        (any::<u32>(), any::<u8>(), any::<u8>()).prop_map(|(identifier, r, e)| {
            Message::EchoReply {
                identifier,
                result: EchoResult::from_wire(r),
                error: ErrorCode::from_wire(e),
            }
        }),
        (
            any::<(u16, u16, u32, u32)>(),
            any::<(u32, u32, u16, u16)>(),
            text(64),
            text(64)
        )
            .prop_map(|((c, s, mi, ma), (bt, ft, w, d), p, sa)| {
                Message::OutgoingCallRequest(OutgoingCallRequest {
                    call_id: c,
                    call_serial_number: s,
                    minimum_bps: mi,
                    maximum_bps: ma,
                    bearer_type: bt,
                    framing_type: ft,
                    recv_window_size: w,
                    processing_delay: d,
                    phone_number: p,
                    subaddress: sa,
                })
            }),
        (
            any::<(u16, u16, u8, u8, u16)>(),
            any::<(u32, u16, u16, u32)>()
        )
            .prop_map(|((c, p, r, e, cause), (speed, w, d, ch))| {
                Message::OutgoingCallReply(OutgoingCallReply {
                    call_id: c,
                    peer_call_id: p,
                    result: OutgoingCallResult::from_wire(r),
                    error: ErrorCode::from_wire(e),
                    cause_code: cause,
                    connect_speed: speed,
                    recv_window_size: w,
                    processing_delay: d,
                    physical_channel_id: ch,
                })
            }),
        (any::<(u16, u16, u32, u32)>(), text(64), text(64), text(64)).prop_map(
            |((c, s, b, ch), dn, dg, sa)| {
                Message::IncomingCallRequest(IncomingCallRequest {
                    call_id: c,
                    call_serial_number: s,
                    bearer_type: b,
                    physical_channel_id: ch,
                    dialed_number: dn,
                    dialing_number: dg,
                    subaddress: sa,
                })
            }
        ),
        any::<(u16, u16, u8, u8, u16, u16)>().prop_map(|(c, p, r, e, w, d)| {
            Message::IncomingCallReply(IncomingCallReply {
                call_id: c,
                peer_call_id: p,
                result: IncomingCallResult::from_wire(r),
                error: ErrorCode::from_wire(e),
                recv_window_size: w,
                transmit_delay: d,
            })
        }),
        any::<(u16, u32, u16, u16, u32)>().prop_map(|(p, s, w, d, f)| {
            Message::IncomingCallConnected(IncomingCallConnected {
                peer_call_id: p,
                connect_speed: s,
                recv_window_size: w,
                transmit_delay: d,
                framing_type: f,
            })
        }),
        any::<u16>().prop_map(|call_id| Message::CallClearRequest { call_id }),
        (any::<(u16, u8, u8, u16)>(), text(128)).prop_map(|((c, r, e, cause), st)| {
            Message::CallDisconnectNotify(CallDisconnectNotify {
                call_id: c,
                result: DisconnectResult::from_wire(r),
                error: ErrorCode::from_wire(e),
                cause_code: cause,
                call_statistics: st,
            })
        }),
        (any::<u16>(), any::<[u32; 6]>()).prop_map(|(p, e)| {
            Message::WanErrorNotify(WanErrorNotify {
                peer_call_id: p,
                crc_errors: e[0],
                framing_errors: e[1],
                hardware_overruns: e[2],
                buffer_overruns: e[3],
                timeout_errors: e[4],
                alignment_errors: e[5],
            })
        }),
        any::<(u16, u32, u32)>().prop_map(|(p, s, r)| {
            Message::SetLinkInfo(SetLinkInfo {
                peer_call_id: p,
                send_accm: s,
                receive_accm: r,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn roundtrip(msg in message()) {
        let bytes = msg.to_vec();
        prop_assert_eq!(bytes.len(), msg.message_type().length());
        prop_assert_eq!(Message::decode(&bytes).unwrap(), msg.clone());
        let mut d = Deframer::new();
        d.push(&bytes);
        prop_assert_eq!(d.next_message().unwrap(), Some(msg));
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = Message::decode(&bytes);
        let mut d = Deframer::new();
        d.push(&bytes);
        while let Ok(Some(_)) = d.next_message() {}
    }

    #[test]
    fn codes_roundtrip(v in any::<u8>()) {
        prop_assert_eq!(ErrorCode::from_wire(v).to_wire(), v);
        prop_assert_eq!(OutgoingCallResult::from_wire(v).to_wire(), v);
        prop_assert_eq!(DisconnectResult::from_wire(v).to_wire(), v);
        prop_assert_eq!(StartResult::from_wire(v).to_wire(), v);
    }
}

/// What a person reads: the RFC's words, never Rust's Debug form.
#[test]
fn reasons_read_as_words() {
    use pptp::control::{DecodeError, DisconnectResult, ErrorCode, StartResult, StopReason};
    use pptp::{CallClearReason, CloseReason};
    let refused = CloseReason::Refused {
        result: StartResult::NotAuthorized,
        error: ErrorCode::None,
    };
    assert_eq!(
        refused.to_string(),
        "the server refused the control connection: requester is not authorized to establish a command channel (code 4)"
    );
    let garbage = CloseReason::ProtocolError(DecodeError::BadLength {
        length: 5379,
        message_type: 0,
    });
    assert_eq!(
        garbage.to_string(),
        "the peer does not speak PPTP (bad length 5379 for control message type 0; is this port another protocol's?)"
    );
    assert_eq!(
        CloseReason::PeerStop(StopReason::LocalShutdown).to_string(),
        "the peer stopped it: requester is being shut down (code 3)"
    );
    let cleared = CallClearReason::PeerDisconnect {
        result: DisconnectResult::AdminShutdown,
        error: ErrorCode::Other(9),
        cause_code: 0,
    };
    assert_eq!(
        cleared.to_string(),
        "the server disconnected the call: call disconnected for administrative reasons (code 3), unknown code 9"
    );
    for text in [
        refused.to_string(),
        garbage.to_string(),
        cleared.to_string(),
    ] {
        assert!(!text.contains('{') && !text.contains("Some("), "{text}");
    }
}
