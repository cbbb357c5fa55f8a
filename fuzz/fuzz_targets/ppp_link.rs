//! Fuzz a whole PPP Link (server and client role) with random frames:
//! nothing panics and the transmit queue stays bounded per frame.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use ppp::link::{Link, LinkConfig};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mut config = if selector & 1 == 1 {
        LinkConfig::server("fuzz")
    } else {
        LinkConfig::client("user", "pass")
    };
    config.rng_seed = Some(1);
    let mut link = Link::new(config);
    let mut now = Instant::now();
    link.lower_up(now);
    for chunk in rest.split(|&b| b == 0xa5) {
        if chunk.is_empty() {
            now += Duration::from_secs(3);
            link.handle_timeout(now);
        } else {
            let mut frame = chunk.to_vec();
            let _ = link.handle_frame(now, &mut frame);
        }
        let mut queued = 0;
        while link.poll_transmit().is_some() {
            queued += 1;
        }
        assert!(queued <= 16);
        while link.poll_event().is_some() {}
    }
});
