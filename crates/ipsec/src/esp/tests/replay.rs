//! The anti-replay window (RFC 4303 §3.4.3), directly and through an SA.

use std::collections::BTreeSet;
use std::time::Instant;

use proptest::prelude::*;

use super::super::{EspError, ReplayCheck, ReplayWindow};
use super::{sa, ALL_SUITES};

#[test]
fn in_window_duplicate_too_old_far_ahead_and_shift() {
    let mut w = ReplayWindow::new(64);
    assert_eq!(w.size(), 64);
    assert_eq!(w.check(0), ReplayCheck::TooOld, "0 is never sent");
    w.accept(100);
    assert_eq!(w.check(100), ReplayCheck::Duplicate);
    assert_eq!(w.check(99), ReplayCheck::Fresh, "in window, unseen");
    assert_eq!(w.check(37), ReplayCheck::Fresh, "left edge: 100 - 63");
    assert_eq!(w.check(36), ReplayCheck::TooOld, "just outside");
    w.accept(60);
    assert_eq!(w.check(60), ReplayCheck::Duplicate);
    // Far ahead: the whole window moves and forgets everything.
    w.accept(100_000);
    assert_eq!(w.highest(), 100_000);
    assert_eq!(w.check(100), ReplayCheck::TooOld);
    assert_eq!(w.check(99_999), ReplayCheck::Fresh);
    // Shift by less than the window: old bits that stay inside are kept.
    w.accept(99_990);
    w.accept(100_010);
    assert_eq!(w.check(99_990), ReplayCheck::Duplicate);
    assert_eq!(w.check(100_000), ReplayCheck::Duplicate);
    assert_eq!(w.check(99_995), ReplayCheck::Fresh);
    assert_eq!(w.check(100_010 - 64), ReplayCheck::TooOld);
    // Numbers near the top of the sequence space.
    w.accept(u32::MAX);
    assert_eq!(w.check(u32::MAX), ReplayCheck::Duplicate);
    assert_eq!(w.check(u32::MAX - 63), ReplayCheck::Fresh);
    assert_eq!(w.check(u32::MAX - 64), ReplayCheck::TooOld);
}

#[test]
fn window_size_is_rounded_to_64_bits() {
    assert_eq!(ReplayWindow::new(0).size(), 64);
    assert_eq!(ReplayWindow::new(65).size(), 128);
    assert_eq!(ReplayWindow::new(1024).size(), 1024);
}

/// The SA checks the window before the ICV and updates it after: a replay
/// of a genuine packet is refused and counted; the original got through.
#[test]
fn sa_drops_replays_and_counts_them() {
    let now = Instant::now();
    for suite in ALL_SUITES {
        let mut out = sa(1, suite, now);
        let mut inb = sa(1, suite, now);
        let mut packets = Vec::new();
        for _ in 0..5 {
            let mut buf = Vec::new();
            out.encapsulate(now, 17, b"payload", &mut buf).unwrap();
            packets.push(buf);
        }
        // Out of order within the window is fine.
        for i in [4, 0, 2, 1, 3] {
            inb.decapsulate(now, &mut packets[i].clone()).unwrap();
        }
        for p in &packets {
            let seq = u32::from_be_bytes(p[4..8].try_into().unwrap());
            assert_eq!(
                inb.decapsulate(now, &mut p.clone()),
                Err(EspError::Replayed(seq))
            );
        }
        assert_eq!(inb.counters().replayed, 5);
        assert_eq!(inb.counters().packets, 5);
    }
}

proptest! {
    /// The window agrees with a model that remembers every accepted number.
    #[test]
    fn window_matches_a_model(
        size in prop_oneof![Just(64u32), Just(128), Just(1024)],
        steps in proptest::collection::vec((0u32..3000, any::<bool>()), 1..400),
    ) {
        let mut w = ReplayWindow::new(size);
        let mut seen = BTreeSet::new();
        let mut top = 0u32;
        for (seq, accept) in steps {
            let expected = if seq == 0 || (seq <= top && top - seq >= size) {
                ReplayCheck::TooOld
            } else if seen.contains(&seq) {
                ReplayCheck::Duplicate
            } else {
                ReplayCheck::Fresh
            };
            prop_assert_eq!(w.check(seq), expected, "seq {} top {}", seq, top);
            // Only accept what the SA would: fresh and authentic.
            if accept && expected == ReplayCheck::Fresh {
                w.accept(seq);
                seen.insert(seq);
                top = top.max(seq);
            }
        }
    }
}
