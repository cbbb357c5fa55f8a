//! Fuzz the cabinet reader and the post-bundle decoder (both read bytes
//! from the network): never panic, never exceed the limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phonebook::cab::{read_cab, CabLimits};

fuzz_target!(|data: &[u8]| {
    let limits = CabLimits {
        max_uncompressed: 1 << 20,
        max_files: 16,
    };
    if let Ok(files) = read_cab(data, limits) {
        assert!(files.len() <= 16);
        assert!(files.iter().map(|f| f.data.len()).sum::<usize>() <= 1 << 20);
    }
    let _ = phonebook::bundle::decode_bundle(data);
    let _ = pbs::catalog::validate_post("Fuzz", data);
});
