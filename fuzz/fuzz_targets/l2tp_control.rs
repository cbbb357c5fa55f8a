//! Fuzz the L2TP control path: the header and AVP decoders (hidden AVPs
//! too), an encode/decode round trip of whatever decodes, and an LNS
//! tunnel fed the input as a run of control messages. Each message is
//! given a valid header with consecutive Ns, so the fuzzer's AVP octets
//! reach the state machine; timers run in between.
#![no_main]

use std::time::{Duration, Instant};

use l2tp::header::ControlHeader;
use l2tp::{ControlMessage, Tunnel, TunnelConfig};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz";

fuzz_target!(|data: &[u8]| {
    let _ = l2tp::header::decode(data);
    if let Ok(m) = ControlMessage::decode(data, Some(SECRET)) {
        let mut out = Vec::new();
        if m.encode(Some(SECRET), &mut out).is_ok() {
            assert_eq!(ControlMessage::decode(&out, Some(SECRET)), Ok(m));
        }
    }

    let t0 = Instant::now();
    let config = TunnelConfig {
        secret: (data.first().is_some_and(|b| b & 1 == 1)).then(|| SECRET.to_vec()),
        max_sessions: 4,
        ..TunnelConfig::default()
    };
    let mut lns = Tunnel::new_lns(config, 22, [7; 16], t0);
    let mut now = t0;
    let mut ns = 0u16;
    let mut rest = data;
    while rest.len() >= 3 {
        let len = (rest[0] as usize) % 200;
        let session_id = u16::from(rest[1] % 4);
        let reorder = rest[2] % 8 == 0;
        rest = &rest[3..];
        let (body, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        let header = ControlHeader {
            tunnel_id: 22,
            session_id,
            ns: if reorder { ns.wrapping_add(1) } else { ns },
            nr: 0,
        };
        if !reorder && !body.is_empty() {
            ns = ns.wrapping_add(1);
        }
        lns.handle_input(now, &header.to_message(body));
        while lns.poll_transmit(now).is_some() {}
        while lns.poll_event().is_some() {}
        now += Duration::from_millis(u64::from(len as u8) * 40);
        lns.handle_timeout(now);
        assert!(lns.session_count() <= 4);
    }
});
