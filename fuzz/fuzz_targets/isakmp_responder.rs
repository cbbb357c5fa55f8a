//! Fuzz the IKEv1 responder: ISAKMP headers, payload chains, SA payloads
//! with proposals, transforms and attributes, and every exchange reachable
//! without the key. A valid Main Mode message 1 opens an SA first; the
//! fuzz input is then cut into messages that carry that SA's cookies, so
//! message 3 parsing, NAT-D, key exchange validation and the encrypted
//! paths are exercised, not only the header check. A second SA offers
//! ECDSA signatures (the server has a certificate) and announces IKEv1
//! fragmentation, and the input is also fed as FRAGMENT messages of it, so
//! the certificate-request, signature and reassembly paths are reached.
//! Nothing may panic, and the SA count stays within the configured limits.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ikev1::proposal::p1;
use ipsec::ikev1::sa_payload::{self, protocol, push_number, Proposal, SaPayload, Transform};
use ipsec::ikev1::wire::{self, exchange, payload, Header, PayloadChain, VERSION_1_0};
use ipsec::ikev1::certificates::CertificateAuth;
use ipsec::ikev1::vendor_ids;
use ipsec::ikev1::{PskTable, Responder, ResponderConfig};
use libfuzzer_sys::fuzz_target;


/// A self-signed ECDSA P-256 certificate and its key, made once for fuzzing
/// (not a secret: it protects nothing). Signature authentication paths need
/// a certificate; generating one per input would cost more than the input.
pub const FUZZ_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfDCCASOgAwIBAgIUAcCvz1o00rHJ6odNIV9FN7PJoLEwCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAwwIcmFzIGZ1enowIBcNMjYxMjA1MDgzMTA0WhgPMjEyNjExMTEw\nODMxMDRaMBMxETAPBgNVBAMMCHJhcyBmdXp6MFkwEwYHKoZIzj0CAQYIKoZIzj0D\nAQcDQgAERGIFXU/vnyVcAXCaL/aD/WRE7K93izbsmGWqqgy4rPBiHgcFi/caND1r\nWLbuSFg8DZf2QH+MuZ0NZSYh4ut3YaNTMFEwHQYDVR0OBBYEFDWmAcwredUHxMWo\nc5iBon8XoMqZMB8GA1UdIwQYMBaAFDWmAcwredUHxMWoc5iBon8XoMqZMA8GA1Ud\nEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgG+0X4UuCoLlTOCE7v/g9oCri\nkhIcRyc0MP4QMrO+ycUCIGK5dqsdy0uh2ghxPldm5Y6INJHBMzZWAW1DCLjLsS0w\n-----END CERTIFICATE-----\n";
pub const FUZZ_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg61eHWoSvXrBrEaob\nHiVg4uoyIR7FyanWdE37y1z6kbShRANCAAREYgVdT++fJVwBcJov9oP9ZETsr3eL\nNuyYZaqqDLis8GIeBwWL9xo0PWtYtu5IWDwNl/ZAf4y5nQ1lJiHi63dh\n-----END PRIVATE KEY-----\n";

/// Message 1 offering `auth` (1: PSK, 9: ECDSA-256), announcing IKEv1
/// fragmentation, from initiator cookie `cookie_i`.
fn message_1(auth: u64, cookie_i: [u8; 8]) -> Vec<u8> {
    let mut raw = Vec::new();
    for (k, v) in [(p1::ENCRYPTION, 7), (p1::KEY_LENGTH, 128), (p1::HASH, 2), (p1::GROUP, 19), (p1::AUTH_METHOD, auth)] {
        push_number(&mut raw, k, v);
    }
    let t = Transform {
        number: 1,
        id: p1::KEY_IKE,
        attributes: sa_payload::parse_attributes(&raw).unwrap(),
        raw_attributes: raw,
    };
    let sa = SaPayload::encode(
        sa_payload::SIT_IDENTITY_ONLY,
        &[Proposal { number: 1, protocol: protocol::ISAKMP, spi: vec![], transforms: vec![t] }],
    );
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &sa);
    chain.push(payload::VENDOR_ID, &vendor_ids::FRAGMENTATION_CAPABLE);
    let h = Header {
        initiator_cookie: cookie_i,
        responder_cookie: [0; 8],
        next_payload: 0,
        version: VERSION_1_0,
        exchange: exchange::MAIN_MODE,
        flags: 0,
        message_id: 0,
        length: 0,
    };
    wire::message(&h, &chain)
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let certificates = CertificateAuth::from_pem(
        FUZZ_CERT.as_bytes(),
        FUZZ_KEY.as_bytes(),
        FUZZ_CERT.as_bytes(),
    )
    .expect("the fuzz certificate loads");
    let config = ResponderConfig {
        psks: PskTable::new().with_wildcard(b"fuzz"),
        certificates: Some(certificates),
        half_open_per_source: 4,
        half_open_total: 8,
        ..Default::default()
    };
    let mut r = Responder::new(config);
    let local: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let remote: SocketAddr = "192.0.2.2:500".parse().unwrap();
    // Unmodified bytes first: the header and message 1 paths.
    r.handle_datagram(now, local, remote, false, data);
    r.handle_datagram(now, local, remote, true, data);
    // Then SAs (PSK, and ECDSA signatures), and the input as later
    // messages of each: as they are, and as FRAGMENT messages.
    for (auth, cookie_i) in [(1, [7; 8]), (9, [8; 8])] {
        r.handle_datagram(now, local, remote, false, &message_1(auth, cookie_i));
        let cookie_r = std::iter::from_fn(|| r.poll_transmit())
            .filter_map(|t| Header::parse(&t.bytes).ok())
            .map(|h| h.responder_cookie)
            .find(|c| *c != [0; 8]);
        let Some(cookie_r) = cookie_r else { continue };
        for chunk in data.split(|b| *b == 0xfe).take(8) {
            if chunk.len() < wire::HEADER_LEN {
                continue;
            }
            let mut m = chunk.to_vec();
            m[0..8].copy_from_slice(&cookie_i);
            m[8..16].copy_from_slice(&cookie_r);
            m[17] = VERSION_1_0;
            let len = m.len() as u32;
            m[24..28].copy_from_slice(&len.to_be_bytes());
            r.handle_datagram(now, local, remote, false, &m);
            // The same bytes as a FRAGMENT message of this SA.
            m[16] = payload::FRAGMENT;
            r.handle_datagram(now, local, remote, false, &m);
        }
    }
    let _ = SaPayload::parse(data);
    let _ = wire::payloads(payload::SA, data);
    r.handle_timeout(now + Duration::from_secs(3600));
    assert!(r.ike_sa_count() <= 8);
    while r.poll_transmit().is_some() {}
    while r.poll_event().is_some() {}
});
