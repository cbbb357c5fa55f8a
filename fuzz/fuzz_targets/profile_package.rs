//! Fuzz the profile package reader: the ustar subset (bounded, regular files only, safe
//! names), the manifest, the content check and the signature check.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profile::package::{open, TrustPolicy};
use profile::signing::PublicKey;

fuzz_target!(|data: &[u8]| {
    let policy = TrustPolicy {
        keys: vec![PublicKey([7u8; 32])],
        allow_unsigned: true,
    };
    if let Ok(package) = open(data, &policy) {
        // Whatever opens names only safe, flat files that are in its manifest.
        for (name, bytes) in &package.files {
            assert!(profile::tar::is_safe_name(name) && !name.contains('/'));
            assert!(package
                .manifest
                .files
                .iter()
                .any(|f| f.name == *name && f.size == bytes.len() as u64));
        }
    }
    let _ = profile::tar::read(data);
});
