//! Fuzz the SSTP HTTP request and response parsers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sstp::http::Parsed::Done { consumed, .. }) = sstp::http::parse_request(data) {
        assert!(consumed <= data.len());
    }
    if let Ok(sstp::http::Parsed::Done { consumed, .. }) = sstp::http::parse_response(data) {
        assert!(consumed <= data.len());
    }
});
