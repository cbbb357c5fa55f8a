//! Fuzz LCP through the RFC 1661 automaton: a sequence of packets (split
//! on a length prefix) and timeouts never panics and never queues more
//! than a few replies per input.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp::fsm::{Fsm, FsmConfig};
use ppp::lcp::{Lcp, LcpConfig};
use rand::{rngs::StdRng, SeedableRng};

fuzz_target!(|data: &[u8]| {
    let config = if data.first().is_some_and(|b| b & 1 == 1) {
        LcpConfig::server()
    } else {
        LcpConfig::client()
    };
    let mut fsm = Fsm::new(
        Lcp::new(config, Box::new(StdRng::seed_from_u64(1))),
        FsmConfig::default(),
    );
    let mut now = Instant::now();
    fsm.open(now);
    fsm.lower_up(now);
    let mut rest = data.get(1..).unwrap_or_default();
    while let Some((&len, tail)) = rest.split_first() {
        let len = (len as usize).min(tail.len());
        let (packet, tail) = tail.split_at(len);
        rest = tail;
        if packet.is_empty() {
            now += Duration::from_secs(3);
            fsm.handle_timeout(now);
        } else {
            let _ = fsm.handle_packet(now, packet);
        }
        let mut queued = 0;
        while fsm.poll_transmit().is_some() {
            queued += 1;
        }
        assert!(queued <= 4);
        while fsm.poll_event().is_some() {}
        while fsm.negotiator_mut().poll_event().is_some() {}
    }
});
