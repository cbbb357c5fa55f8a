//! Fuzz the profile INI reader: decoding (UTF-16 with BOM, UTF-8, Windows-1252), the
//! lossless document (parse then write must give the input back byte for byte), edits,
//! and validation of a .cms against the typed model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use profile::ini::IniDocument;

fuzz_target!(|data: &[u8]| {
    let Ok(mut doc) = IniDocument::parse(data) else {
        return;
    };
    assert_eq!(doc.to_bytes().expect("what was read can be written"), data);
    let _ = profile::parse::check_cms(&doc, std::path::Path::new("fuzz.cms"));
    let names: Vec<String> = doc
        .sections()
        .into_iter()
        .take(4)
        .map(|(s, _)| s.to_owned())
        .collect();
    for section in names {
        if doc.set(&section, "RedialCount", "7").is_ok() {
            assert_eq!(doc.get(&section, "RedialCount").map(|e| e.value), Some("7"));
        }
    }
    let _ = doc.set("Connection Manager", "ServiceName", "x");
    let text = doc.to_text();
    assert_eq!(IniDocument::parse_str(&text).to_text(), text);
});
