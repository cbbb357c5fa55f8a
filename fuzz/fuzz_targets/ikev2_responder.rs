//! Fuzz the IKEv2 responder. The raw input goes in as a datagram first
//! (header, payload chain, IKE_SA_INIT parsing). Then a valid IKE_SA_INIT
//! opens an SA and the harness derives its keys as an initiator would, so
//! the rest of the input, cut into pieces, is sealed under the real keys
//! as IKE_AUTH, INFORMATIONAL and CREATE_CHILD_SA requests: the parsers
//! behind the integrity check (IDi, AUTH, CP, SA, TS, Delete, KE, REKEY_SA)
//! see fuzzed bytes. Nothing may panic; SA counts stay bounded.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ike_crypto::ikev2_keys::{ike_sa_keys, skeyseed};
use ipsec::ike_crypto::{DhGroup, DhPrivate, HashAlg, IkeCipher};
use ipsec::ikev2::encrypted::{self, DirectionKeys, SkCipher, SkInteg, SkTransform};
use ipsec::ikev2::payloads::KeyExchange;
use ipsec::ikev2::sa_payload::{self, ids, protocol, transform_type::*, Proposal, Transform};
use ipsec::ikev2::wire::{self, exchange, flags, payload, Header, PayloadChain, HEADER_LEN};
use ipsec::ikev2::{Authorization, Ikev2Config, Ikev2Event, Ikev2PskTable, Ikev2Responder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let config = Ikev2Config {
        psks: Ikev2PskTable::new().with_wildcard(b"fuzz"),
        max_half_open: 8,
        ..Ikev2Config::default()
    };
    let mut r = Ikev2Responder::new(config, now);
    let local: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let remote: SocketAddr = "192.0.2.2:500".parse().unwrap();
    r.handle_datagram(now, local, remote, false, data);
    while r.poll_transmit().is_some() {}

    // A real IKE_SA_INIT, and the keys an initiator derives from the answer.
    let dh = DhPrivate::generate(DhGroup::Ecp256).unwrap();
    let proposal = Proposal {
        number: 1,
        protocol: protocol::IKE,
        spi: vec![],
        transforms: vec![
            Transform::with_key_bits(ENCR, ids::ENCR_AES_CBC, 128),
            Transform::new(PRF, ids::PRF_HMAC_SHA2_256),
            Transform::new(INTEG, ids::AUTH_HMAC_SHA2_256_128),
            Transform::new(DH, 19),
        ],
    };
    let ni = [3u8; 32];
    let spi_i = [7u8; 8];
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &sa_payload::encode(&[proposal]));
    chain.push(payload::KE, &KeyExchange::encode(19, dh.public_value()));
    chain.push(payload::NONCE, &ni);
    let header = Header::new(spi_i, [0; 8], exchange::IKE_SA_INIT, flags::INITIATOR, 0);
    let request = wire::message(&header, &chain);
    r.handle_datagram(now, local, remote, false, &request);
    let Some(response) = r.poll_transmit() else { return };
    let Ok(h) = Header::parse(&response.bytes) else { return };
    let Ok(chain) = wire::payloads(h.next_payload, &response.bytes[HEADER_LEN..]) else { return };
    let (Some(ke), Some(nr)) = (
        chain.iter().find(|p| p.kind == payload::KE),
        chain.iter().find(|p| p.kind == payload::NONCE),
    ) else {
        return;
    };
    let shared = dh.agree(&ke.body[4..]).unwrap();
    let protection = SkTransform {
        cipher: SkCipher::Cbc(IkeCipher::Aes128Cbc),
        integ: Some(SkInteg::HmacSha256_128),
    };
    let seed = skeyseed(HashAlg::Sha256, &ni, nr.body, &shared);
    let keys = ike_sa_keys(HashAlg::Sha256, &seed, &ni, nr.body, &spi_i, &h.spi_r, protection.key_lengths());

    let mut message_id = 1u32;
    for piece in data.split(|b| *b == 0xa5).take(16) {
        let Some((&selector, rest)) = piece.split_first() else { continue };
        let (exchange_type, first) = match selector % 4 {
            0 => (exchange::IKE_AUTH, payload::IDI),
            1 => (exchange::INFORMATIONAL, payload::DELETE),
            2 => (exchange::CREATE_CHILD_SA, payload::SA),
            _ => (exchange::CREATE_CHILD_SA, payload::NOTIFY),
        };
        let header = Header::new(spi_i, h.spi_r, exchange_type, flags::INITIATOR, message_id);
        let keys = DirectionKeys { encr: &keys.sk_ei, integ: &keys.sk_ai };
        if let Ok(message) = encrypted::seal(&protection, keys, &header, first, rest) {
            r.handle_datagram(now, local, remote, selector & 0x80 != 0, &message);
        }
        message_id = message_id.wrapping_add(1);
        while let Some(event) = r.poll_event() {
            if let Ikev2Event::AuthorizationNeeded(req) = event {
                let decision = if selector & 0x40 != 0 {
                    Ok(Authorization { ipv4: Some("10.0.0.2".parse().unwrap()), ..Authorization::default() })
                } else {
                    Err("refused".to_string())
                };
                r.authorize(now, req.ike_sa, decision);
            }
        }
        while r.poll_transmit().is_some() {}
    }
    r.handle_timeout(now + Duration::from_secs(120));
    assert!(r.ike_sa_count() <= 10);
    assert!(r.half_open_count() <= 8);
});
