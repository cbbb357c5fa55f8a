//! The server's answers on each PPP link's IPv6 end (icmpv6::Responder):
//! any packet from a peer is answered, dropped or passed without a panic,
//! and any answer is a whole IPv6 packet whose ICMPv6 checksum verifies.
#![no_main]

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let prefix: Ipv6Addr = "fd00:1:2:3::".parse().unwrap();
    let mut r = icmpv6::Responder::new(
        [1, 2, 3, 4, 5, 6, 7, 8],
        Some("fd00:1:2:3::1".parse().unwrap()),
        Some(icmpv6::RouterAdvert { prefix, mtu: 1400 }),
    );
    let start = Instant::now();
    let mut reply = Vec::new();
    // Several packets in one input, each preceded by its length: the
    // responder's state (the advertisement rate limit) is exercised too.
    let mut rest = data;
    let mut step = 0u64;
    while let [len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (packet, next) = tail.split_at(n);
        rest = next;
        step += 1;
        let now = start + Duration::from_millis(step * 700);
        if r.handle(now, packet, &mut reply) == icmpv6::Verdict::Reply {
            assert!(reply.len() >= 48);
            let len = usize::from(u16::from_be_bytes([reply[4], reply[5]]));
            assert_eq!(reply.len(), 40 + len);
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&reply[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&reply[24..40]).unwrap());
            assert_eq!(icmpv6::checksum(&src, &dst, &reply[40..]), 0);
        }
    }
});
