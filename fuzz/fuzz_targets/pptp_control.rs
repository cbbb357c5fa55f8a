//! Fuzz the PPTP control path: the message decoder, the streaming deframer
//! fed the input in random-sized chunks, and the PAC state machine fed the
//! same bytes (with timers run in between, and its Call ID requests
//! answered from the input).
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pptp::control::{Deframer, Message};
use pptp::{Pac, PacConfig};

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Message::decode(data) {
        assert_eq!(Message::decode(&m.to_vec()), Ok(m));
    }

    let mut deframer = Deframer::with_capacity(512);
    let t0 = Instant::now();
    let mut pac = Pac::new(
        PacConfig {
            max_calls: 4,
            ..PacConfig::default()
        },
        t0,
    );
    // Let the fuzzer reach the established state: a valid start request
    // first when the input's first byte is even.
    if data.first().is_some_and(|b| b % 2 == 0) {
        let sccrq =
            Message::StartControlConnectionRequest(pptp::control::StartControlConnectionRequest {
                protocol_version: pptp::control::PROTOCOL_VERSION,
                framing_capabilities: 3,
                bearer_capabilities: 3,
                maximum_channels: 0,
                firmware_revision: 0,
                host_name: Vec::new(),
                vendor_string: Vec::new(),
            });
        pac.handle_input(t0, &sccrq.to_vec());
    }
    let mut now = t0;
    let mut rest = data;
    while !rest.is_empty() {
        let step = (rest[0] as usize % 61) + 1;
        let (chunk, tail) = rest.split_at(step.min(rest.len()));
        rest = tail;

        let mut offered = chunk;
        while !offered.is_empty() && !deframer.is_poisoned() {
            let taken = deframer.push(offered);
            offered = &offered[taken..];
            while let Ok(Some(m)) = deframer.next_message() {
                assert_eq!(m.to_vec().len(), m.message_type().length());
            }
        }

        pac.handle_input(now, chunk);
        now += Duration::from_secs(u64::from(chunk[0] % 40));
        pac.handle_timeout(now);
        while pac.poll_transmit().is_some() {}
        while let Some(event) = pac.poll_event() {
            // Answer Call ID requests as a driver would: an ID taken from
            // the input (0 and duplicates are refused by the PAC and must
            // leave the request pending), else none.
            if let pptp::Event::CallIdNeeded { .. } = event {
                let id = match chunk[0] % 4 {
                    0 => None,
                    _ => Some(u16::from(chunk[0] % 8)),
                };
                match pac.assign_call_id(now, id) {
                    Ok(()) => {}
                    // A timer closed the connection after the request.
                    Err(pptp::AssignCallIdError::NoCallPending) => assert!(pac.is_closed()),
                    Err(_) => {
                        assert!(pac.call_id_pending().is_some());
                        pac.assign_call_id(now, None).unwrap();
                    }
                }
            }
        }
        assert!(pac.call_count() <= 4);
    }
});
