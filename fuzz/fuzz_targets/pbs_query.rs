//! Fuzz the Phone Book Service's query parser: never panic; an accepted
//! query names a valid phone book.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pbs::query::parse_query;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(q) = parse_query(Some(&raw)) {
        assert!(phonebook::name::check_name(q.pb).is_ok());
    }
});
