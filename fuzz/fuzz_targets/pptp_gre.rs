//! Fuzz the PPTP data path: the enhanced GRE decoder, and a GRE session fed
//! random datagrams (framed by a length octet) with timers and sends mixed in.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use pptp::gre;
use pptp::{GreConfig, GreSession};

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = gre::decode(data) {
        let mut out = Vec::new();
        gre::encode(
            p.header.call_id,
            p.header.seq,
            p.header.ack,
            p.payload,
            &mut out,
        )
        .expect("decoded packets re-encode");
        assert_eq!(gre::decode(&out), Ok(p));
    }

    let t0 = Instant::now();
    let mut now = t0;
    let config = GreConfig {
        reorder_capacity: 16,
        ..GreConfig::default()
    };
    let mut session = GreSession::new(config, 0x0102, 0x0304, 4);
    let mut rest = data;
    while let Some((&ctl, tail)) = rest.split_first() {
        let len = usize::from(ctl & 0x3f);
        let (datagram, tail) = tail.split_at(len.min(tail.len()));
        rest = tail;
        match ctl >> 6 {
            0 => {
                let _ = session.handle_datagram(now, datagram);
            }
            1 => {
                // A well-formed packet for this call, seq/ack from the bytes.
                let mut word = [0u8; 8];
                for (i, b) in datagram.iter().take(8).enumerate() {
                    word[i] = *b;
                }
                let seq = u32::from_be_bytes([word[0], word[1], word[2], word[3]]);
                let ack = u32::from_be_bytes([word[4], word[5], word[6], word[7]]);
                let mut pkt = Vec::new();
                let _ = gre::encode(0x0102, Some(seq % 64), Some(ack % 64), datagram, &mut pkt);
                let _ = session.handle_datagram(now, &pkt);
            }
            2 => {
                let _ = session.send(now, datagram);
            }
            _ => {
                now += Duration::from_millis(u64::from(ctl & 0x3f) * 10);
                session.handle_timeout(now);
            }
        }
        assert!(session.receive_window().buffered() <= 16);
        assert!(session.queued() <= 64);
        while session.poll_transmit().is_some() {}
        if ctl & 1 == 0 {
            while session.poll_received().is_some() {}
        }
        assert!(session.receive_window().pending() <= 256);
    }
});
