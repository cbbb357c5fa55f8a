//! The inbound anti-replay window (RFC 4303 §3.4.3).
//!
//! The receiver checks a sequence number *before* verifying the ICV (cheap
//! rejection of duplicates) and records it only *after* the ICV verified, so
//! a forged packet cannot move the window.

/// Result of checking a sequence number against the window.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum ReplayCheck {
    /// New: ahead of the window or an unseen slot inside it.
    Fresh,
    /// Already received.
    Duplicate,
    /// Left of the window (or zero, which is never sent: §3.3.3).
    TooOld,
}

/// A sliding window of received sequence numbers; the size is a multiple of
/// 64 bits and at least 64 (RFC 4303 §3.4.3: 32 minimum, 64 recommended).
#[derive(Clone, Debug)]
pub struct ReplayWindow {
    /// Circular bitmap: bit `seq % size` stands for `seq` while it is in the window.
    bits: Vec<u64>,
    size: u32,
    /// Highest sequence number accepted so far (0: none yet).
    top: u32,
}

impl ReplayWindow {
    /// A window of at least `size` bits, rounded up to a multiple of 64,
    /// clamped to 64..=65536.
    pub fn new(size: u32) -> Self {
        let size = size.clamp(64, 65536).div_ceil(64) * 64;
        ReplayWindow {
            bits: vec![0; (size / 64) as usize],
            size,
            top: 0,
        }
    }

    /// Window size in bits.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Highest sequence number accepted.
    pub fn highest(&self) -> u32 {
        self.top
    }

    fn slot(&self, seq: u32) -> (usize, u64) {
        let index = seq % self.size;
        ((index / 64) as usize, 1u64 << (index % 64))
    }

    /// Checks `seq` without recording it.
    pub fn check(&self, seq: u32) -> ReplayCheck {
        if seq == 0 {
            return ReplayCheck::TooOld;
        }
        if seq > self.top {
            return ReplayCheck::Fresh;
        }
        if self.top - seq >= self.size {
            return ReplayCheck::TooOld;
        }
        let (word, mask) = self.slot(seq);
        if self.bits[word] & mask != 0 {
            ReplayCheck::Duplicate
        } else {
            ReplayCheck::Fresh
        }
    }

    /// Records `seq` as received; call only after the ICV verified and
    /// [`check`](Self::check) said `Fresh`.
    pub fn accept(&mut self, seq: u32) {
        if self.check(seq) != ReplayCheck::Fresh {
            return;
        }
        if seq > self.top {
            let advance = seq - self.top;
            if advance >= self.size {
                self.bits.iter_mut().for_each(|w| *w = 0);
            } else {
                // Clear the slots that now stand for the new numbers
                // top+1 ..= seq (they held numbers that left the window).
                for s in self.top + 1..=seq {
                    let (word, mask) = self.slot(s);
                    self.bits[word] &= !mask;
                }
            }
            self.top = seq;
        }
        let (word, mask) = self.slot(seq);
        self.bits[word] |= mask;
    }
}
