//! Fuzz the IKEv1 initiator with arbitrary answers: first as they come,
//! then with our initiator cookie patched in (Main Mode message 2/4/6
//! paths), then, after a real Main Mode and Quick Mode with our responder,
//! as encrypted Quick Mode and Informational messages of the established
//! SA; last, after Main Mode with ECDSA certificates in 200-byte fragments,
//! as FRAGMENT messages of that SA (reassembly). Nothing may panic; timers
//! keep running.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ikev1::wire::{self, exchange, flags, VERSION_1_0};
use ipsec::ikev1::certificates::CertificateAuth;
use ipsec::ikev1::wire::payload;
use ipsec::ikev1::{Initiator, InitiatorConfig, PskTable, Responder, ResponderConfig};
use libfuzzer_sys::fuzz_target;

/// A self-signed ECDSA P-256 certificate and its key, made once for fuzzing
/// (not a secret: it protects nothing). Signature authentication paths need
/// a certificate; generating one per input would cost more than the input.
pub const FUZZ_CERT: &str = "-----BEGIN CERTIFICATE-----\nMIIBfDCCASOgAwIBAgIUAcCvz1o00rHJ6odNIV9FN7PJoLEwCgYIKoZIzj0EAwIw\nEzERMA8GA1UEAwwIcmFzIGZ1enowIBcNMjYxMjA1MDgzMTA0WhgPMjEyNjExMTEw\nODMxMDRaMBMxETAPBgNVBAMMCHJhcyBmdXp6MFkwEwYHKoZIzj0CAQYIKoZIzj0D\nAQcDQgAERGIFXU/vnyVcAXCaL/aD/WRE7K93izbsmGWqqgy4rPBiHgcFi/caND1r\nWLbuSFg8DZf2QH+MuZ0NZSYh4ut3YaNTMFEwHQYDVR0OBBYEFDWmAcwredUHxMWo\nc5iBon8XoMqZMB8GA1UdIwQYMBaAFDWmAcwredUHxMWoc5iBon8XoMqZMA8GA1Ud\nEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgG+0X4UuCoLlTOCE7v/g9oCri\nkhIcRyc0MP4QMrO+ycUCIGK5dqsdy0uh2ghxPldm5Y6INJHBMzZWAW1DCLjLsS0w\n-----END CERTIFICATE-----\n";
pub const FUZZ_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg61eHWoSvXrBrEaob\nHiVg4uoyIR7FyanWdE37y1z6kbShRANCAAREYgVdT++fJVwBcJov9oP9ZETsr3eL\nNuyYZaqqDLis8GIeBwWL9xo0PWtYtu5IWDwNl/ZAf4y5nQ1lJiHi63dh\n-----END PRIVATE KEY-----\n";

fn patched(
    chunk: &[u8],
    cookie_i: &[u8],
    cookie_r: Option<&[u8]>,
    exchange: Option<u8>,
) -> Vec<u8> {
    let mut m = chunk.to_vec();
    m[0..8].copy_from_slice(cookie_i);
    if let Some(c) = cookie_r {
        m[8..16].copy_from_slice(c);
    }
    m[17] = VERSION_1_0;
    if let Some(x) = exchange {
        m[18] = x;
        m[19] |= flags::ENCRYPTED;
    }
    let len = m.len() as u32;
    m[24..28].copy_from_slice(&len.to_be_bytes());
    m
}

fuzz_target!(|data: &[u8]| {
    let now = Instant::now();
    let local: SocketAddr = "192.0.2.2:500".parse().unwrap();
    let server: SocketAddr = "192.0.2.1:500".parse().unwrap();
    let mut i = Initiator::new(InitiatorConfig::new(b"fuzz"), local, server, now);
    let m1 = i.poll_transmit().expect("message 1");
    let cookie_i = m1.bytes[..8].to_vec();
    i.handle_datagram(now, false, data);
    for chunk in data.split(|b| *b == 0xfe).take(8) {
        if chunk.len() >= wire::HEADER_LEN {
            i.handle_datagram(now, false, &patched(chunk, &cookie_i, None, None));
        }
    }
    i.handle_timeout(now + Duration::from_secs(3));
    while i.poll_event().is_some() {}

    // A real connection, then the input as messages of the established SA.
    let mut r = Responder::new(ResponderConfig {
        psks: PskTable::new().with_wildcard(b"fuzz"),
        ..Default::default()
    });
    let mut i = Initiator::new(InitiatorConfig::new(b"fuzz"), local, server, now);
    let (mut cookie_i, mut cookie_r) = (None, None);
    for _ in 0..8 {
        while let Some(t) = i.poll_transmit() {
            cookie_i.get_or_insert_with(|| t.bytes[..8].to_vec());
            r.handle_datagram(now, t.remote, local, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = r.poll_transmit() {
            cookie_r.get_or_insert_with(|| t.bytes[8..16].to_vec());
            i.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
    }
    let (Some(cookie_i), Some(cookie_r)) = (cookie_i, cookie_r) else {
        return;
    };
    for (n, chunk) in data.split(|b| *b == 0xfe).take(8).enumerate() {
        if chunk.len() < wire::HEADER_LEN {
            continue;
        }
        let x = if n % 2 == 0 {
            exchange::QUICK_MODE
        } else {
            exchange::INFORMATIONAL
        };
        i.handle_datagram(
            now,
            false,
            &patched(chunk, &cookie_i, Some(&cookie_r), Some(x)),
        );
    }
    i.handle_timeout(now + Duration::from_secs(40));
    while i.poll_event().is_some() {}
    while i.poll_transmit().is_some() {}

    // Certificates both ways, in small fragments; then the input as
    // FRAGMENT messages of the SA.
    let auth = || {
        CertificateAuth::from_pem(FUZZ_CERT.as_bytes(), FUZZ_KEY.as_bytes(), FUZZ_CERT.as_bytes())
            .expect("the fuzz certificate loads")
    };
    let mut r = Responder::new(ResponderConfig {
        certificates: Some(auth()),
        fragment_size: 200,
        ..Default::default()
    });
    let mut config = InitiatorConfig::with_certificates(auth());
    config.fragment_size = 200;
    let mut i = Initiator::new(config, local, server, now);
    let (mut cookie_i, mut cookie_r) = (None, None);
    for _ in 0..8 {
        while let Some(t) = i.poll_transmit() {
            cookie_i.get_or_insert_with(|| t.bytes[..8].to_vec());
            r.handle_datagram(now, t.remote, local, t.from_nat_t_port, &t.bytes);
        }
        while let Some(t) = r.poll_transmit() {
            cookie_r.get_or_insert_with(|| t.bytes[8..16].to_vec());
            i.handle_datagram(now, t.from_nat_t_port, &t.bytes);
        }
    }
    let (Some(cookie_i), Some(cookie_r)) = (cookie_i, cookie_r) else {
        return;
    };
    for chunk in data.split(|b| *b == 0xfe).take(16) {
        if chunk.len() < wire::HEADER_LEN {
            continue;
        }
        let mut m = patched(chunk, &cookie_i, Some(&cookie_r), None);
        m[16] = payload::FRAGMENT;
        i.handle_datagram(now, false, &m);
    }
    i.handle_timeout(now + Duration::from_secs(40));
    while i.poll_event().is_some() {}
    while i.poll_transmit().is_some() {}
});
