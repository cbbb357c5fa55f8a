//! Fuzz the VPN policy document parser of `ras client provision`
//! (client::vpn_policy): any text is refused with a located error or
//! accepted, never a panic; an accepted document survives being stored
//! (re-serialized) and read back unchanged, as the daemon reads it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match client::vpn_policy::parse(text, Path::new("fuzz.toml")) {
        Ok(doc) => {
            for c in &doc.connections {
                let _ = c.protocol_order();
                let _ = c.interface_name();
                for p in c.protocol_order() {
                    let _ = c.targets(p);
                }
            }
            let stored = toml::to_string(&doc).expect("an accepted document serializes");
            let again = client::vpn_policy::parse(&stored, Path::new("stored.toml"))
                .expect("a stored document reads back");
            assert_eq!(again, doc);
        }
        Err(e) => assert!(e.line >= 1 && e.column >= 1),
    }
});
