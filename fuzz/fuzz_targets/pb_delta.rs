//! Fuzz the delta and service-answer parsers (both come from the network
//! on the client): never panic; a parsed delta is written back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phonebook::delta::{apply_delta, parse_delta, write_delta};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(d) = parse_delta(&text, "fuzz") {
        assert_eq!(parse_delta(&write_delta(&d), "again").as_ref(), Ok(&d));
        let _ = apply_delta(&[], &d, d.from);
    }
    let _ = phonebook::answer::parse_answer(&text);
});
