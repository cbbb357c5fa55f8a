//! Fuzz the MPPE receiver: any packet sequence, stateless or stateful, is
//! decrypted or dropped without panicking; payload ranges stay in bounds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use ppp::mppe::{MppeDecryptor, MppeSettings, MppeStrength};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let strength = [
        MppeStrength::Bits40,
        MppeStrength::Bits56,
        MppeStrength::Bits128,
    ][selector as usize % 3];
    let settings = MppeSettings {
        strength,
        stateless: selector & 4 != 0,
    };
    let mut decryptor = MppeDecryptor::new(&[selector; 16], settings);
    for chunk in rest.split(|&b| b == 0xa5) {
        let mut packet = chunk.to_vec();
        if let Ok(d) = decryptor.decrypt(&mut packet) {
            assert!(d.payload.end <= packet.len());
        }
    }
});
