//! The RTT probe's reply test (client::echo_probe) on whatever a raw ICMP
//! socket may read: never panics, and never matches a packet too short to
//! hold an echo header.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for v6 in [false, true] {
        if client::echo_probe::is_echo_reply(v6, data, 0x1234, 1) {
            assert!(data.len() >= 8);
        }
    }
});
