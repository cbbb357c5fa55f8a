use proptest::prelude::*;
use sstp::attributes::*;
use sstp::codec::*;

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

// MS-SSTP §4.7: "10 01 00 0E 00 01 00 01 00 01 00 06 00 01".
// Derived from the field layout: Version 0x10 | C=1 | Length 0x00E |
// Message Type 0x0001 | Num Attributes 0x0001 | Reserved 0 | Attribute ID 1 |
// Length 0x006 | Protocol ID 0x0001 (PPP).
const CONNECT_REQUEST: [u8; 14] = [
    0x10, 0x01, 0x00, 0x0E, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x06, 0x00, 0x01,
];

const SPEC_ACK: &str = "10 01 00 30 00 02 00 01 00 04 00 28 00 00 00 02
    41 2B 48 9A EB D7 EC C7 D0 89 66 F2 6B E7 CD 72
    B2 31 A0 E9 21 0D 7C 91 B3 08 86 2B 03 44 C4 35";

const SPEC_CONNECTED: &str = "10 01 00 70 00 04 00 01 00 03 00 68 00 00 00 02
    41 2B 48 9A EB D7 EC C7 D0 89 66 F2 6B E7 CD 72
    B2 31 A0 E9 21 0D 7C 91 B3 08 86 2B 03 44 C4 35
    79 93 EF 31 4C 49 3D AC E9 F0 2D 60 E7 E6 1C 84
    B6 69 0A AF E9 D7 AE EA 92 CB BE 8A D5 99 42 2D
    52 A6 8E FD 8C FF BF 52 77 0B 8F 0F E8 EC 73 71
    65 83 AF 6D 61 1E B6 D1 79 B3 B2 08 40 98 54 49";

#[test]
fn call_connect_request_byte_exact() {
    let mut out = Vec::new();
    ControlMessage::call_connect_request()
        .encode(&mut out)
        .unwrap();
    assert_eq!(out, CONNECT_REQUEST);
    assert_eq!(
        decode_packet(&CONNECT_REQUEST).unwrap(),
        Packet::Control(ControlMessage::call_connect_request())
    );
}

#[test]
fn spec_connect_ack_and_call_connected_round_trip() {
    for h in [SPEC_ACK, SPEC_CONNECTED] {
        let bytes = unhex(h);
        let Packet::Control(m) = decode_packet(&bytes).unwrap() else {
            panic!("control expected")
        };
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        assert_eq!(out, bytes);
    }
    let Packet::Control(m) = decode_packet(&unhex(SPEC_ACK)).unwrap() else {
        panic!()
    };
    assert_eq!(m.msg_type, MessageType::CallConnectAck);
    match &m.attributes[..] {
        [Attribute::CryptoBindingReq {
            hash_bitmask,
            nonce,
        }] => {
            assert_eq!(*hash_bitmask, 2);
            assert_eq!(nonce[0], 0x41);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn data_packet_encoding() {
    let mut out = Vec::new();
    encode_data(&[0xC0, 0x21, 1, 2], &mut out).unwrap();
    assert_eq!(out, [0x10, 0x00, 0x00, 0x08, 0xC0, 0x21, 1, 2]);
    assert_eq!(
        decode_packet(&out).unwrap(),
        Packet::Data(&[0xC0, 0x21, 1, 2])
    );
    let big = vec![0u8; MAX_DATA_PAYLOAD + 1];
    assert_eq!(encode_data(&big, &mut out), Err(CodecError::TooLarge(4096)));
    let max = vec![0u8; MAX_DATA_PAYLOAD];
    out.clear();
    encode_data(&max, &mut out).unwrap();
    assert_eq!(&out[..4], &[0x10, 0x00, 0x0F, 0xFF]);
}

#[test]
fn several_data_packets_back_to_back() {
    let frames: [&[u8]; 3] = [&[1], &[2, 2], &[3, 3, 3]];
    let mut out = Vec::with_capacity(64);
    let cap = out.capacity();
    assert_eq!(encode_data_packets(frames, &mut out).unwrap(), 3);
    assert_eq!(out.capacity(), cap, "no reallocation");
    assert_eq!(
        out,
        [0x10, 0, 0, 5, 1, 0x10, 0, 0, 6, 2, 2, 0x10, 0, 0, 7, 3, 3, 3]
    );
}

#[test]
fn rejects_bad_version_and_lengths() {
    let mut p = CONNECT_REQUEST;
    p[0] = 0x11;
    assert_eq!(decode_packet(&p), Err(CodecError::BadVersion(0x11)));
    // Length field disagreeing with the buffer.
    let mut p = CONNECT_REQUEST;
    p[3] = 0x0F;
    assert!(matches!(
        decode_packet(&p),
        Err(CodecError::LengthMismatch { .. })
    ));
    // Length below the header.
    assert_eq!(
        decode_packet(&[0x10, 0x00, 0x00, 0x03]),
        Err(CodecError::BadLength(3))
    );
    // Control packet shorter than its 8-byte minimum.
    assert_eq!(
        decode_packet(&[0x10, 0x01, 0x00, 0x06, 0, 1]),
        Err(CodecError::BadLength(6))
    );
    // Unknown message type.
    assert_eq!(
        decode_packet(&[0x10, 0x01, 0x00, 0x08, 0, 10, 0, 0]),
        Err(CodecError::UnknownMessageType(10))
    );
    // Attribute count says 2 but one attribute present.
    let mut p = CONNECT_REQUEST;
    p[7] = 2;
    assert_eq!(decode_packet(&p), Err(CodecError::Truncated));
    // Trailing bytes after the attributes.
    let mut p = CONNECT_REQUEST.to_vec();
    p.extend_from_slice(&[0, 0]);
    p[3] = 16;
    assert_eq!(decode_packet(&p), Err(CodecError::TrailingBytes));
}

#[test]
fn reserved_bits_ignored_on_receipt() {
    // MS-SSTP §2.2.2: reserved bits "MUST be ignored on receipt".
    let mut p = CONNECT_REQUEST;
    p[1] |= 0xFE;
    p[2] |= 0xF0;
    p[8] = 0xAA; // attribute Reserved
    p[10] |= 0xF0; // attribute R nibble
    assert_eq!(
        decode_packet(&p).unwrap(),
        Packet::Control(ControlMessage::call_connect_request())
    );
}

#[test]
fn rejects_bad_attribute_lengths() {
    // Encapsulated Protocol ID with length 7.
    let p = [
        0x10, 0x01, 0x00, 0x0F, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x00, 0x07, 0x00, 0x01, 0x00,
    ];
    assert_eq!(
        decode_packet(&p),
        Err(CodecError::BadAttributeLength { id: 1, len: 7 })
    );
    // Crypto Binding Request with length 39.
    let mut ack = unhex(SPEC_ACK);
    ack[11] = 0x27;
    assert!(decode_packet(&ack).is_err());
    // Crypto Binding with length 0x67.
    let mut cc = unhex(SPEC_CONNECTED);
    cc[11] = 0x67;
    assert!(decode_packet(&cc).is_err());
    // Status Info shorter than 12.
    let p = [
        0x10, 0x01, 0x00, 0x10, 0x00, 0x05, 0x00, 0x01, 0x00, 0x02, 0x00, 0x08, 0, 0, 0, 0,
    ];
    assert_eq!(
        decode_packet(&p),
        Err(CodecError::BadAttributeLength { id: 2, len: 8 })
    );
    // Unknown attribute.
    let p = [
        0x10, 0x01, 0x00, 0x0C, 0x00, 0x05, 0x00, 0x01, 0x00, 0x09, 0x00, 0x04,
    ];
    assert_eq!(decode_packet(&p), Err(CodecError::UnknownAttribute(9)));
    // Attribute length below the header.
    let p = [
        0x10, 0x01, 0x00, 0x0C, 0x00, 0x05, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03,
    ];
    assert!(matches!(
        decode_packet(&p),
        Err(CodecError::BadAttributeLength { .. })
    ));
}

#[test]
fn status_info_encoding() {
    let m = ControlMessage::with_status(
        MessageType::CallConnectNak,
        Some(StatusInfo {
            attrib_id: 1,
            status: StatusCode::VALUE_NOT_SUPPORTED,
            value: vec![0x00, 0x02],
        }),
    );
    let mut out = Vec::new();
    m.encode(&mut out).unwrap();
    assert_eq!(
        out,
        [
            0x10, 0x01, 0x00, 0x16, 0x00, 0x03, 0x00, 0x01, // header, NAK, 1 attr
            0x00, 0x02, 0x00, 0x0E, 0x00, 0x00, 0x00, 0x01, // Status Info, len 14, AttribID 1
            0x00, 0x00, 0x00, 0x04, 0x00, 0x02, // status 4, value
        ]
    );
}

fn arb_attribute() -> impl Strategy<Value = Attribute> {
    prop_oneof![
        any::<u16>().prop_map(Attribute::EncapsulatedProtocolId),
        (
            any::<u8>(),
            any::<u32>(),
            proptest::collection::vec(any::<u8>(), 0..80)
        )
            .prop_map(|(attrib_id, s, value)| Attribute::StatusInfo(StatusInfo {
                attrib_id,
                status: StatusCode(s),
                value
            })),
        (
            any::<u8>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            any::<[u8; 32]>()
        )
            .prop_map(|(hash_protocol, nonce, cert_hash, compound_mac)| {
                Attribute::CryptoBinding(CryptoBindingAttr {
                    hash_protocol,
                    nonce,
                    cert_hash,
                    compound_mac,
                })
            }),
        (any::<u8>(), any::<[u8; 32]>()).prop_map(|(hash_bitmask, nonce)| {
            Attribute::CryptoBindingReq {
                hash_bitmask,
                nonce,
            }
        }),
    ]
}

fn arb_msg_type() -> impl Strategy<Value = MessageType> {
    (1u16..=9).prop_map(|v| MessageType::from_u16(v).unwrap())
}

proptest! {
    #[test]
    fn control_round_trip(t in arb_msg_type(), attrs in proptest::collection::vec(arb_attribute(), 0..5)) {
        let m = ControlMessage { msg_type: t, attributes: attrs };
        let mut out = Vec::new();
        m.encode(&mut out).unwrap();
        prop_assert_eq!(out.len(), m.encoded_len());
        prop_assert_eq!(decode_packet(&out).unwrap(), Packet::Control(m));
    }

    #[test]
    fn data_round_trip(payload in proptest::collection::vec(any::<u8>(), 0..MAX_DATA_PAYLOAD)) {
        let mut out = Vec::new();
        encode_data(&payload, &mut out).unwrap();
        prop_assert_eq!(decode_packet(&out).unwrap(), Packet::Data(&payload));
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_packet(&bytes);
        let mut d = Deframer::new();
        let mut rest = &bytes[..];
        for _ in 0..4 {
            let n = d.push(rest);
            rest = &rest[n..];
            while let Ok(Some(p)) = d.next_packet() {
                let _ = decode_packet(p);
            }
        }
    }

    #[test]
    fn random_packet_bodies_never_panic(t in 0u16..12, count in 0u16..4, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut p = vec![0x10, 0x01, 0, 0];
        p.extend_from_slice(&t.to_be_bytes());
        p.extend_from_slice(&count.to_be_bytes());
        p.extend_from_slice(&body);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        let _ = decode_packet(&p);
    }

    #[test]
    fn deframer_random_splits(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..600), 1..12),
        cuts in proptest::collection::vec(1usize..900, 1..40),
    ) {
        let mut stream = Vec::new();
        for f in &frames {
            encode_data(f, &mut stream).unwrap();
        }
        ControlMessage::new(MessageType::EchoRequest).encode(&mut stream).unwrap();
        let mut d = Deframer::new();
        let mut got: Vec<Vec<u8>> = Vec::new();
        let mut pos = 0;
        let mut ci = 0;
        while pos < stream.len() {
            let end = (pos + cuts[ci % cuts.len()]).min(stream.len());
            ci += 1;
            let mut chunk = &stream[pos..end];
            while !chunk.is_empty() {
                let n = d.push(chunk);
                chunk = &chunk[n..];
                pos += n;
                while let Some(p) = d.next_packet().unwrap() {
                    got.push(p.to_vec());
                }
            }
        }
        prop_assert_eq!(got.len(), frames.len() + 1);
        for (g, f) in got.iter().zip(&frames) {
            prop_assert_eq!(decode_packet(g).unwrap(), Packet::Data(f));
        }
        prop_assert_eq!(d.buffered(), 0);
    }
}

#[test]
fn deframer_is_bounded() {
    let mut d = Deframer::new();
    let junk = [0x10u8, 0x00, 0x0F, 0xFF].repeat(10_000);
    let n = d.push(&junk);
    assert_eq!(n, DEFRAMER_CAPACITY);
    assert_eq!(d.push(&junk), 0);
    // Drain one 4095-byte packet; room frees up.
    assert_eq!(d.next_packet().unwrap().unwrap().len(), MAX_PACKET_LEN);
    assert!(d.push(&junk) > 0);
    assert!(d.buffered() <= DEFRAMER_CAPACITY);
}

#[test]
fn deframer_error_is_sticky() {
    let mut d = Deframer::new();
    d.push(&[0x20, 0, 0, 4]);
    assert_eq!(d.next_packet(), Err(CodecError::BadVersion(0x20)));
    assert_eq!(d.next_packet(), Err(CodecError::BadVersion(0x20)));
    assert_eq!(d.push(&[1, 2, 3]), 0);
}
