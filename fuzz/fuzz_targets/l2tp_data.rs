//! Fuzz the L2TP data message decoder: never a panic, and what decodes
//! re-encodes (without the optional Length and Offset fields) to the same
//! addressing, sequence and payload.
#![no_main]

use l2tp::data::{decode_data, encode_data};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = l2tp::header::decode(data);
    if let Ok(m) = decode_data(data) {
        let mut out = Vec::new();
        encode_data(m.tunnel_id, m.session_id, m.sequence, m.payload, &mut out);
        let back = decode_data(&out).unwrap();
        assert_eq!(
            (back.tunnel_id, back.session_id, back.sequence, back.payload),
            (m.tunnel_id, m.session_id, m.sequence, m.payload)
        );
    }
});
