//! Fuzz the SSTP codec: packet decoding, control-message bodies and the
//! streaming deframer fed the input in random-sized chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sstp::codec::{decode_packet, Deframer};

fuzz_target!(|data: &[u8]| {
    let _ = decode_packet(data);
    let _ = sstp::codec::ControlMessage::decode_body(data);
    let _ = sstp::binding::parse_call_connected(data);
    let mut deframer = Deframer::new();
    let mut rest = data;
    while !rest.is_empty() {
        let step = (rest[0] as usize % 97) + 1;
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        rest = tail;
        let mut offered = chunk;
        while !offered.is_empty() {
            let taken = deframer.push(offered);
            offered = &offered[taken..];
            let mut progressed = taken > 0;
            loop {
                match deframer.next_packet() {
                    Ok(Some(p)) => {
                        assert!(p.len() <= 4095);
                        progressed = true;
                    }
                    Ok(None) => break,
                    Err(_) => return,
                }
            }
            if !progressed {
                return;
            }
        }
    }
});
