//! Fuzz the administrator's import format: never panic; what it accepts
//! passes the POP rules and survives a round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phonebook::import::{import_line, parse_import};
use phonebook::pbk::validate_pop;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(pops) = parse_import(&text, "fuzz", 5) {
        for (_, p) in pops {
            assert!(validate_pop(&p, 5).is_ok());
            let again = parse_import(&import_line(&p), "again", 5).expect("our own line");
            assert_eq!(again[0].1, p);
        }
    }
});
