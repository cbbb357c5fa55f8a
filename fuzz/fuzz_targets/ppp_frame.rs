//! Fuzz `ppp::frame::decode`: any input must decode or be rejected without
//! panicking, and whatever decodes must re-encode to the same octets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp::frame::{self, protocol, FrameOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = frame::decode(data) {
        assert!(protocol::is_valid(f.protocol));
        let opts = FrameOptions {
            address_control: f.address_control,
            compress_protocol: f.protocol_compressed,
        };
        // LCP is only ever encoded in full form, so only check the rest
        // (and LCP frames that arrived in full form).
        if opts.effective(f.protocol) == opts {
            let mut out = Vec::with_capacity(data.len());
            frame::encode(f.protocol, f.payload, opts, &mut out);
            assert_eq!(out, data);
        }
    }
});
