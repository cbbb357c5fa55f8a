//! Fuzz every DHCP input path: the checked decoder, the reply parser, the
//! relay (as client request and as server answer), and the lease engine
//! with the bytes patched to carry a live transaction id and hardware
//! address, so that they reach the lease state machine (OFFER, ACK, NAK
//! handling, timers after them).
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcp::{Engine, EngineConfig, Relay};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = dhcp::message::decode(data);
    let _ = dhcp::message::parse_reply(data);

    let now = Instant::now();
    let server = Ipv4Addr::new(10, 80, 0, 1);
    let client = Ipv4Addr::new(10, 80, 0, 101);
    let mut relay = Relay::new(vec![server], Ipv4Addr::new(10, 80, 0, 2));
    if let Ok(out) = relay.handle_client(now, client, data) {
        assert_eq!(out.bytes.len(), data.len());
    }
    let _ = relay.handle_server(now, server, data);

    let mut engine = Engine::new(EngineConfig {
        block: 2,
        ..Default::default()
    });
    engine.allocate(now, 1);
    let Some(first) = engine.poll_transmit() else {
        return;
    };
    let mut patched = data.to_vec();
    if patched.len() >= 240 {
        patched[0] = 2; // BOOTREPLY
        patched[2] = 6; // hlen
        patched[4..8].copy_from_slice(&first.bytes[4..8]);
        patched[28..34].copy_from_slice(&first.bytes[28..34]);
        patched[236..240].copy_from_slice(&[99, 130, 83, 99]);
    }
    for step in 0..3u64 {
        let t = now + Duration::from_secs(step * 1000);
        engine.handle_input(t, &patched);
        // Answer whatever the engine sent with the same bytes again,
        // re-patched to its newest transaction.
        while let Some(out) = engine.poll_transmit() {
            if patched.len() >= 240 && out.bytes.len() >= 34 {
                patched[4..8].copy_from_slice(&out.bytes[4..8]);
            }
        }
        while engine.poll_event().is_some() {}
        if let Some(at) = engine.poll_timeout() {
            engine.handle_timeout(at.max(t));
        }
    }
    engine.release(1);
    engine.stop();
    while engine.poll_transmit().is_some() {}
});
