//! Fuzz the RFC 1661 control-packet and option parsers: anything parsed
//! must stay inside the input and re-encode to the same bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp::packet::{options, ControlPacket};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = ControlPacket::parse(data) {
        assert!(p.data.len() + 4 <= data.len());
        let mut re = Vec::new();
        let mut ok = true;
        for o in options(p.data) {
            match o {
                Ok(o) => o.write(&mut re),
                Err(_) => ok = false,
            }
        }
        if ok {
            assert_eq!(re, p.data);
        }
    }
});
