//! Fuzz the IKEv1 initiator with arbitrary answers: first as they come,
//! then with our initiator cookie patched in (Main Mode message 2/4/6
//! paths), then, after a real Main Mode and Quick Mode with our responder,
//! as encrypted Quick Mode and Informational messages of the established
//! SA. Nothing may panic; timers keep running.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::ikev1::wire::{self, exchange, flags, VERSION_1_0};
use ipsec::ikev1::{Initiator, InitiatorConfig, PskTable, Responder, ResponderConfig};
use libfuzzer_sys::fuzz_target;

fn patched(chunk: &[u8], cookie_i: &[u8], cookie_r: Option<&[u8]>, exchange: Option<u8>) -> Vec<u8> {
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
        let x = if n % 2 == 0 { exchange::QUICK_MODE } else { exchange::INFORMATIONAL };
        i.handle_datagram(now, false, &patched(chunk, &cookie_i, Some(&cookie_r), Some(x)));
    }
    i.handle_timeout(now + Duration::from_secs(40));
    while i.poll_event().is_some() {}
    while i.poll_transmit().is_some() {}
});
