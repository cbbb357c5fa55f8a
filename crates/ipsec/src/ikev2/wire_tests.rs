use super::*;

fn header() -> Header {
    Header {
        spi_i: [1; 8],
        spi_r: [0; 8],
        next_payload: 0,
        version: VERSION_2_0,
        exchange: exchange::IKE_SA_INIT,
        flags: flags::INITIATOR,
        message_id: 0,
        length: 0,
    }
}

#[test]
fn a_built_chain_parses_back() {
    let mut chain = PayloadChain::new();
    chain
        .push(payload::SA, b"sa-body")
        .push(payload::KE, b"ke")
        .push(payload::NONCE, &[9; 32]);
    let msg = message(&header(), &chain);
    let h = Header::parse(&msg).expect("header");
    assert_eq!(h.next_payload, payload::SA);
    assert!(h.from_initiator() && !h.is_response());
    let p = payloads(h.next_payload, &msg[HEADER_LEN..]).expect("chain");
    let kinds: Vec<u8> = p.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [payload::SA, payload::KE, payload::NONCE]);
    assert_eq!(p[1].body, b"ke");
    assert_eq!(p[2].next, payload::NONE);
}

#[test]
fn version_length_and_size_are_checked() {
    let mut msg = message(&header(), &PayloadChain::new());
    msg[17] = 0x10;
    assert_eq!(Header::parse(&msg), Err(WireError::Version(1)));
    msg[17] = 0x21; // a higher minor version is fine (§2.5)
    assert!(Header::parse(&msg).is_ok());
    msg.push(0);
    assert!(matches!(Header::parse(&msg), Err(WireError::Length { .. })));
    assert_eq!(Header::parse(&msg[..27]), Err(WireError::Short(27)));
}

#[test]
fn unknown_payloads_are_skipped_unless_critical() {
    // payload 99 (unknown, not critical) between SA and Nonce
    let mut bytes = vec![99, 0, 0, 6, b's', b'a'];
    bytes.extend_from_slice(&[payload::NONCE, 0, 0, 6, 0xaa, 0xbb]);
    bytes.extend_from_slice(&[0, 0, 0, 5, 0xcc]);
    let p = payloads(payload::SA, &bytes).expect("chain");
    let kinds: Vec<u8> = p.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [payload::SA, payload::NONCE]);
    // the same with the critical bit on the unknown payload
    bytes[7] = 0x80;
    assert_eq!(
        payloads(payload::SA, &bytes),
        Err(WireError::UnsupportedCritical(99))
    );
}

#[test]
fn nothing_may_follow_the_encrypted_payload() {
    let mut bytes = vec![payload::IDI, 0, 0, 8, 1, 2, 3, 4];
    let p = payloads(payload::SK, &bytes).expect("SK alone");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].next, payload::IDI, "SK's next names the inner chain");
    bytes.extend_from_slice(&[0, 0, 0, 4]);
    assert_eq!(
        payloads(payload::SK, &bytes),
        Err(WireError::AfterEncrypted)
    );
}

#[test]
fn bad_payload_lengths_are_errors() {
    assert_eq!(
        payloads(payload::SA, &[0, 0, 0, 3]),
        Err(WireError::PayloadShort(payload::SA))
    );
    assert_eq!(
        payloads(payload::SA, &[0, 0, 0, 9, 1]),
        Err(WireError::PayloadOverrun(payload::SA))
    );
    assert_eq!(
        payloads(payload::SA, &[0, 0]),
        Err(WireError::PayloadOverrun(payload::SA))
    );
    // a chain of empty payloads is bounded
    let many: Vec<u8> = (0..MAX_PAYLOADS + 10)
        .flat_map(|_| [payload::NONCE, 0, 0, 4])
        .collect();
    assert_eq!(
        payloads(payload::NONCE, &many),
        Err(WireError::TooManyPayloads(MAX_PAYLOADS))
    );
}
