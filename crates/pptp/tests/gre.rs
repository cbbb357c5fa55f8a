//! Enhanced GRE header (RFC 2637 §4.1) and the per-call data channel
//! (§4.2–§4.4).

use std::time::{Duration, Instant};

use pptp::gre::{self, GreError, GreHeader};
use pptp::gre_session::{GreConfig, GreSession, SendError};
use pptp::window::{seq_before, seq_diff};
use proptest::prelude::*;

#[test]
fn header_byte_exact() {
    let mut out = Vec::new();
    gre::encode(0x0102, Some(5), Some(0xfffffffe), b"\xff\x03", &mut out).unwrap();
    assert_eq!(
        hex::encode(&out),
        // K|S, A|ver 1, 0x880B, len 2, call 0x0102, seq 5, ack, payload
        "3081880b00020102".to_string() + "00000005" + "fffffffe" + "ff03"
    );
    let mut ack_only = Vec::new();
    gre::encode(7, None, Some(9), &[], &mut ack_only).unwrap();
    assert_eq!(hex::encode(&ack_only), "2081880b0000000700000009");
    let mut seq_only = Vec::new();
    gre::encode(7, Some(1), None, b"x", &mut seq_only).unwrap();
    assert_eq!(hex::encode(&seq_only), "3001880b000100070000000178");
}

#[test]
fn decode_rejections() {
    let mut good = Vec::new();
    gre::encode(7, Some(1), Some(2), b"abc", &mut good).unwrap();
    assert!(gre::decode(&good).is_ok());

    let mut b = good.clone();
    b[1] &= !7; // version 0 (RFC 2784 GRE)
    assert_eq!(gre::decode(&b), Err(GreError::BadVersion(0)));
    let mut b = good.clone();
    b[3] = 0x00; // protocol 0x8800
    assert_eq!(gre::decode(&b), Err(GreError::BadProtocol(0x8800)));
    let mut b = good.clone();
    b[0] &= !0x20; // K clear
    assert_eq!(gre::decode(&b), Err(GreError::NoKey));
    let mut b = good.clone();
    b[0] |= 0x80; // checksum present
    assert!(matches!(
        gre::decode(&b),
        Err(GreError::UnsupportedFlags(_))
    ));
    let mut b = good.clone();
    b[0] |= 0x40; // routing present
    assert!(matches!(
        gre::decode(&b),
        Err(GreError::UnsupportedFlags(_))
    ));
    // Truncated in header, in the ack, and in the payload.
    for cut in [0, 5, 8, 13, good.len() - 1] {
        assert!(
            matches!(gre::decode(&good[..cut]), Err(GreError::Truncated { .. })),
            "cut {cut}"
        );
    }
    // A payload with S clear.
    let mut b = Vec::new();
    GreHeader {
        payload_len: 1,
        call_id: 7,
        seq: None,
        ack: None,
    }
    .encode(&mut b);
    b.push(0);
    assert_eq!(gre::decode(&b), Err(GreError::PayloadWithoutSequence));
    assert_eq!(
        gre::encode(1, None, None, b"x", &mut Vec::new()),
        Err(GreError::PayloadWithoutSequence)
    );
    assert!(matches!(
        gre::encode(1, Some(0), None, &vec![0; 70_000], &mut Vec::new()),
        Err(GreError::PayloadTooLong(70_000))
    ));
    assert_eq!(gre::peek_call_id(&good), Some(7));
    assert_eq!(gre::peek_call_id(&good[..4]), None);
}

proptest! {
    #[test]
    fn header_roundtrip(call_id in any::<u16>(), seq in any::<Option<u32>>(), ack in any::<Option<u32>>(),
                        payload in proptest::collection::vec(any::<u8>(), 0..200)) {
        let payload = if seq.is_none() { Vec::new() } else { payload };
        let mut out = Vec::new();
        gre::encode(call_id, seq, ack, &payload, &mut out).unwrap();
        let p = gre::decode(&out).unwrap();
        prop_assert_eq!(p.header, GreHeader { payload_len: payload.len() as u16, call_id, seq, ack });
        prop_assert_eq!(p.payload, &payload[..]);
        prop_assert_eq!(p.header.len() + payload.len(), out.len());
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let _ = gre::decode(&bytes);
    }

    #[test]
    fn session_survives_random_datagrams(
        datagrams in proptest::collection::vec((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..8), 0u64..300), 0..200)
    ) {
        let t0 = Instant::now();
        let mut s = GreSession::new(GreConfig::default(), 1, 2, 8);
        let mut now = t0;
        let mut held_max = 0;
        for (seq, payload, dt) in datagrams {
            now += Duration::from_millis(dt);
            let _ = s.handle_datagram(now, &pkt(1, Some(seq), Some(seq ^ 0x5555), &payload));
            let _ = s.handle_datagram(now, &payload);
            s.handle_timeout(now);
            let _ = s.send(now, &payload);
            held_max = held_max.max(s.receive_window().buffered());
            while s.poll_received().is_some() {}
            while s.poll_transmit().is_some() {}
        }
        prop_assert!(held_max <= 32);
        prop_assert!(s.queued() <= 64);
    }
}

#[test]
fn serial_arithmetic() {
    assert!(seq_before(u32::MAX, 0));
    assert!(seq_before(u32::MAX - 5, 3));
    assert!(!seq_before(3, u32::MAX));
    assert_eq!(seq_diff(u32::MAX, 1), 2);
    assert_eq!(seq_diff(1, u32::MAX), -2);
}

// ---- the data channel ----

fn pkt(call_id: u16, seq: Option<u32>, ack: Option<u32>, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    gre::encode(call_id, seq, ack, payload, &mut v).unwrap();
    v
}

fn data(seq: u32) -> Vec<u8> {
    pkt(10, Some(seq), None, &seq.to_be_bytes())
}

fn received(s: &mut GreSession) -> Vec<u32> {
    std::iter::from_fn(|| s.poll_received())
        .map(|p| u32::from_be_bytes(p.try_into().unwrap()))
        .collect()
}

fn session() -> GreSession {
    // Our Call ID 10, the peer's 20, peer window 4.
    GreSession::new(GreConfig::default(), 10, 20, 4)
}

#[test]
fn in_order_delivery() {
    let now = Instant::now();
    let mut s = session();
    for seq in 100..110 {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    assert_eq!(received(&mut s), (100..110).collect::<Vec<_>>());
    assert_eq!(s.stats().receive.delivered, 10);
}

#[test]
fn reordering_repaired_within_buffer() {
    let now = Instant::now();
    let mut s = session();
    s.handle_datagram(now, &data(0)).unwrap();
    for seq in [3, 1, 4, 2, 5] {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    assert_eq!(received(&mut s), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(s.receive_window().buffered(), 0);
}

#[test]
fn gap_skipped_after_timeout() {
    let t0 = Instant::now();
    let mut s = session();
    s.handle_datagram(t0, &data(0)).unwrap();
    s.handle_datagram(t0, &data(2)).unwrap();
    s.handle_datagram(t0, &data(3)).unwrap();
    assert_eq!(received(&mut s), vec![0]);
    let deadline = s.poll_timeout().unwrap();
    assert!(deadline <= t0 + Duration::from_millis(100));
    s.handle_timeout(t0 + Duration::from_millis(50));
    assert_eq!(received(&mut s), vec![2, 3]);
    assert_eq!(s.stats().receive.lost, 1);
    // Seq 1 arriving now is too old.
    s.handle_datagram(t0 + Duration::from_millis(60), &data(1))
        .unwrap();
    assert_eq!(received(&mut s), Vec::<u32>::new());
    assert_eq!(s.stats().receive.too_old, 1);
}

#[test]
fn duplicates_dropped() {
    let now = Instant::now();
    let mut s = session();
    for seq in [0, 1, 1, 0, 3, 3, 2, 2] {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    assert_eq!(received(&mut s), vec![0, 1, 2, 3]);
    assert_eq!(s.stats().receive.duplicates, 4);
}

#[test]
fn too_old_and_too_far_dropped() {
    let now = Instant::now();
    let mut s = session();
    s.handle_datagram(now, &data(1000)).unwrap();
    s.handle_datagram(now, &data(500)).unwrap(); // far behind
    s.handle_datagram(now, &data(1000 + 100_000)).unwrap(); // far ahead
    s.handle_datagram(now, &data(1001)).unwrap();
    assert_eq!(received(&mut s), vec![1000, 1001]);
    let st = s.stats().receive;
    assert_eq!(st.too_old, 1);
    assert_eq!(st.too_far_ahead, 1);
}

#[test]
fn big_gap_jumps_ahead() {
    let now = Instant::now();
    let mut s = session();
    s.handle_datagram(now, &data(0)).unwrap();
    s.handle_datagram(now, &data(5)).unwrap(); // held
    s.handle_datagram(now, &data(200)).unwrap(); // beyond the buffer: jump
    assert_eq!(received(&mut s), vec![0, 5, 200]);
    assert_eq!(s.stats().receive.lost, 199 - 1);
}

#[test]
fn resyncs_after_a_run_of_out_of_window_packets() {
    let now = Instant::now();
    let mut s = session();
    s.handle_datagram(now, &data(1_000_000)).unwrap();
    // The peer restarted at 0: eight in a row are out of window, then resync.
    for seq in 0..10 {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    assert_eq!(received(&mut s), vec![1_000_000, 7, 8, 9]);
    assert_eq!(s.stats().receive.resyncs, 1);
}

#[test]
fn wraps_around_u32_max() {
    let now = Instant::now();
    let mut s = session();
    let seqs = [u32::MAX - 2, u32::MAX - 1, 0, u32::MAX, 1, 2];
    for seq in seqs {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    assert_eq!(
        received(&mut s),
        vec![u32::MAX - 2, u32::MAX - 1, u32::MAX, 0, 1, 2]
    );
    // Acks follow the highest across the wrap.
    assert_eq!(s.receive_window().highest(), Some(2));

    // Sending across the wrap.
    let cfg = GreConfig {
        initial_seq: u32::MAX - 1,
        ..GreConfig::default()
    };
    let mut s = GreSession::new(cfg, 10, 20, 8);
    for _ in 0..4 {
        s.send(now, b"p").unwrap();
    }
    let seqs: Vec<u32> = std::iter::from_fn(|| s.poll_transmit())
        .map(|d| gre::decode(&d).unwrap().header.seq.unwrap())
        .collect();
    assert_eq!(seqs, vec![u32::MAX - 1, u32::MAX, 0, 1]);
    // A cumulative ack of 0 acknowledges three.
    s.handle_datagram(now, &pkt(10, None, Some(0), &[]))
        .unwrap();
    assert_eq!(s.send_window().in_flight(), 1);
}

#[test]
fn acks_piggybacked_on_data() {
    let now = Instant::now();
    let mut s = session();
    s.handle_datagram(now, &data(41)).unwrap();
    s.send(now, b"reply").unwrap();
    let d = s.poll_transmit().unwrap();
    let p = gre::decode(&d).unwrap();
    assert_eq!(p.header.call_id, 20);
    assert_eq!(p.header.seq, Some(0));
    assert_eq!(p.header.ack, Some(41));
    assert_eq!(p.payload, b"reply");
    // Nothing new to acknowledge: no ack timer, no ack on the next packet.
    assert!(s.poll_transmit().is_none());
    s.send(now, b"more").unwrap();
    let p2 = s.poll_transmit().unwrap();
    assert_eq!(gre::decode(&p2).unwrap().header.ack, None);
    assert_eq!(s.stats().ack_only_sent, 0);
}

#[test]
fn ack_only_after_timer() {
    let t0 = Instant::now();
    let mut s = session();
    s.handle_datagram(t0, &data(7)).unwrap();
    assert!(s.poll_transmit().is_none());
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_millis(100));
    s.handle_timeout(t - Duration::from_millis(1));
    assert!(s.poll_transmit().is_none());
    s.handle_timeout(t);
    let d = s.poll_transmit().unwrap();
    assert_eq!(hex::encode(&d), "2081880b0000001400000007");
    assert_eq!(s.stats().ack_only_sent, 1);
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn ack_at_once_at_half_window() {
    let now = Instant::now();
    let cfg = GreConfig {
        recv_window: 8,
        ..GreConfig::default()
    };
    let mut s = GreSession::new(cfg, 10, 20, 4);
    for seq in 0..4 {
        s.handle_datagram(now, &data(seq)).unwrap();
    }
    let d = s.poll_transmit().unwrap();
    assert_eq!(gre::decode(&d).unwrap().header.ack, Some(3));
}

#[test]
fn peer_window_closes_and_reopens() {
    let t0 = Instant::now();
    let mut s = session(); // peer window 4
    for i in 0..6u8 {
        s.send(t0, &[i]).unwrap();
    }
    let sent: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(sent.len(), 4);
    assert_eq!(s.queued(), 2);
    // Ack of seq 1 opens two slots.
    s.handle_datagram(t0, &pkt(10, None, Some(1), &[])).unwrap();
    let more: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    assert_eq!(more.len(), 2);
    assert_eq!(gre::decode(&more[1]).unwrap().header.seq, Some(5));
    // A stale ack is ignored.
    s.handle_datagram(t0, &pkt(10, None, Some(0), &[])).unwrap();
    assert_eq!(s.stats().send.stale_acks, 1);
}

/// A PPP control frame (a CCP Reset-Request, an LCP Echo) behind a closed
/// window goes out before the queued data, and a full queue makes room for
/// it by dropping its newest data payload.
#[test]
fn control_frames_jump_the_queue() {
    let t0 = Instant::now();
    let mut s = session(); // peer window 4, queue of 64
    for i in 0..4 + 64u32 {
        s.send(t0, &i.to_be_bytes()).unwrap();
    }
    while s.poll_transmit().is_some() {}
    assert_eq!(s.send(t0, b"late data"), Err(SendError::WindowFull));
    s.send_control(t0, b"reset-request").unwrap();
    s.send_control(t0, b"echo-request").unwrap();
    assert_eq!(s.queued(), 64);
    assert_eq!(s.stats().send_dropped, 3);
    // The peer acknowledges the first four: the two control frames go
    // first, in the order given, then the oldest data.
    s.handle_datagram(t0, &pkt(10, None, Some(3), &[])).unwrap();
    let out: Vec<_> = std::iter::from_fn(|| s.poll_transmit()).collect();
    let payloads: Vec<Vec<u8>> = out
        .iter()
        .map(|d| gre::decode(d).unwrap().payload.to_vec())
        .collect();
    assert_eq!(payloads[0], b"reset-request");
    assert_eq!(payloads[1], b"echo-request");
    assert_eq!(payloads[2], 4u32.to_be_bytes());
    assert_eq!(payloads[3], 5u32.to_be_bytes());
    // With the window open a control frame goes straight out.
    let mut s = session();
    s.send_control(t0, b"lcp").unwrap();
    assert_eq!(s.queued(), 0);
    assert!(s.poll_transmit().is_some());
}

#[test]
fn ack_timeout_reopens_window() {
    let t0 = Instant::now();
    let mut s = session();
    for i in 0..5u8 {
        s.send(t0, &[i]).unwrap();
    }
    while s.poll_transmit().is_some() {}
    assert_eq!(s.queued(), 1);
    let t = s.poll_timeout().unwrap();
    assert_eq!(t, t0 + Duration::from_secs(1));
    s.handle_timeout(t);
    assert_eq!(s.stats().send.ack_timeouts, 1);
    assert_eq!(s.stats().send.lost, 4);
    assert!(s.poll_transmit().is_some());
    assert_eq!(s.queued(), 0);
    // The congestion window halved to 2.
    assert_eq!(s.send_window().effective_window(), Some(2));
}

#[test]
fn not_enforcing_window_never_queues() {
    let now = Instant::now();
    let cfg = GreConfig {
        enforce_peer_window: false,
        ..GreConfig::default()
    };
    let mut s = GreSession::new(cfg, 10, 20, 1);
    for _ in 0..100 {
        s.send(now, b"x").unwrap();
        assert!(s.poll_transmit().is_some());
    }
    assert_eq!(s.queued(), 0);
}

#[test]
fn flooding_is_bounded() {
    let t0 = Instant::now();
    let mut s = session();
    // A flood of out-of-order packets never holds more than the buffer.
    s.handle_datagram(t0, &data(0)).unwrap();
    for seq in (2..40_000u32).rev() {
        let _ = s.handle_datagram(t0, &data(seq));
        assert!(s.receive_window().buffered() <= 32);
    }
    // Undrained deliveries are capped too.
    let mut s = session();
    for seq in 0..10_000 {
        s.handle_datagram(t0, &data(seq)).unwrap();
    }
    assert_eq!(s.receive_window().pending(), 256);
    assert_eq!(s.stats().receive.overflow, 10_000 - 256);
    // Sends beyond window and queue are refused.
    let mut s = session();
    let mut refused = 0;
    for _ in 0..1000 {
        if s.send(t0, b"x") == Err(SendError::WindowFull) {
            refused += 1;
        }
    }
    assert_eq!(refused, 1000 - 4 - 64);
    assert!(matches!(
        s.send(t0, &vec![0; 70_000]),
        Err(SendError::TooLong(_))
    ));
}

#[test]
fn wrong_call_id_and_garbage_rejected() {
    let now = Instant::now();
    let mut s = session();
    assert!(matches!(
        s.handle_datagram(now, &pkt(11, Some(0), None, b"x")),
        Err(GreError::WrongCallId {
            got: 11,
            expected: 10
        })
    ));
    assert!(s.handle_datagram(now, b"\x00").is_err());
    let st = s.stats();
    assert_eq!((st.wrong_call_id, st.malformed), (1, 1));
    assert!(s.poll_received().is_none());
}

#[test]
fn two_sessions_talk() {
    let t0 = Instant::now();
    let mut a = GreSession::new(GreConfig::default(), 1, 2, 64);
    let mut b = GreSession::new(GreConfig::default(), 2, 1, 64);
    for i in 0..1000u32 {
        a.send(t0, &i.to_be_bytes()).unwrap();
        while let Some(d) = a.poll_transmit() {
            b.handle_datagram(t0, &d).unwrap();
        }
        while let Some(d) = b.poll_transmit() {
            a.handle_datagram(t0, &d).unwrap();
        }
    }
    assert_eq!(received(&mut b).len(), 256); // capped, undrained
    assert_eq!(a.stats().send.sent, 1000);
    assert!(a.send_window().in_flight() < 64);
}

#[test]
fn recycled_buffers_are_reused_and_cleared() {
    let now = Instant::now();
    let mut s = session();
    s.send(now, b"first payload, longer than the second")
        .unwrap();
    let first = s.poll_transmit().unwrap();
    let mut expected = Vec::new();
    gre::encode(
        s.peer_call_id(),
        Some(0),
        None,
        b"first payload, longer than the second",
        &mut expected,
    )
    .unwrap();
    assert_eq!(first, expected);
    let allocation = first.as_ptr();
    s.recycle(first);
    // The next datagram lands in the same allocation, with nothing of the
    // old one left over.
    s.send(now, b"second").unwrap();
    let second = s.poll_transmit().unwrap();
    assert_eq!(second.as_ptr(), allocation);
    let mut expected = Vec::new();
    gre::encode(s.peer_call_id(), Some(1), None, b"second", &mut expected).unwrap();
    assert_eq!(second, expected);
    // Only a batch's worth is kept: the rest is freed, not hoarded.
    let config = GreConfig {
        enforce_peer_window: false,
        ..GreConfig::default()
    };
    let mut s = GreSession::new(config, 10, 20, 4);
    for _ in 0..1000 {
        s.recycle(Vec::with_capacity(2048));
    }
    let sent: Vec<Vec<u8>> = (0..200u32)
        .map(|i| {
            s.send(now, &i.to_be_bytes()).unwrap();
            s.poll_transmit().unwrap()
        })
        .collect();
    let reused = sent.iter().filter(|d| d.capacity() == 2048).count();
    assert!(reused > 0 && reused < 200, "{reused} of 200 reused");
}
