//! Sequence numbers and the two halves of the PPTP sliding window
//! (RFC 2637 §4.2–§4.4).
//!
//! * [`SendWindow`]: assigns sequence numbers, counts packets in flight
//!   against the peer's Packet Recv. Window Size (§4.2.1), takes cumulative
//!   acknowledgments (§4.2.5), and on an acknowledgment time-out (§4.4)
//!   declares the packets in flight lost (GRE never retransmits) and halves
//!   its congestion window (§4.4.2, Appendix A).
//! * [`ReceiveWindow`]: a small bounded reorder buffer. RFC 2637 §4.3 allows
//!   out-of-sequence packets to be either discarded or reordered by the
//!   receiver; this one holds up to `capacity` packets past a gap for at most
//!   a time-out, then skips the gap. Duplicates, packets older than what was
//!   delivered, and packets implausibly far ahead are dropped and counted.
//!
//! Sequence numbers are 32-bit serial numbers compared modulo 2^32
//! (RFC 1982 style), so everything here works across the wrap at
//! `u32::MAX`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Signed distance from `from` to `to` in 32-bit serial arithmetic.
pub fn seq_diff(from: u32, to: u32) -> i32 {
    to.wrapping_sub(from) as i32
}

/// Is `a` before `b` in serial arithmetic?
pub fn seq_before(a: u32, b: u32) -> bool {
    seq_diff(a, b) > 0
}

/// Counters of the send side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Data packets given a sequence number.
    pub sent: u64,
    /// Acknowledgments that moved the window.
    pub acks: u64,
    /// Acknowledgments for packets never sent or already acknowledged.
    pub stale_acks: u64,
    /// Acknowledgment time-outs (§4.4).
    pub ack_timeouts: u64,
    /// Packets declared lost by acknowledgment time-outs.
    pub lost: u64,
}

/// The send half: sequence numbers, packets in flight, the peer's window.
#[derive(Debug, Clone)]
pub struct SendWindow {
    next_seq: u32,
    /// Oldest unacknowledged sequence number.
    una: u32,
    peer_window: u16,
    cwnd: u16,
    enforce: bool,
    ack_timeout: Duration,
    /// When the window last made progress while packets were in flight.
    progress_at: Option<Instant>,
    stats: SendStats,
}

impl SendWindow {
    /// A send window starting at sequence number `initial_seq`.
    ///
    /// `peer_window` is the peer's Packet Recv. Window Size (0: none
    /// advertised, so not enforced); with `enforce` false the window is only
    /// tracked, never closed (the behaviour of MS-PTPT, which ignores the
    /// peer's window).
    pub fn new(initial_seq: u32, peer_window: u16, enforce: bool, ack_timeout: Duration) -> Self {
        Self {
            next_seq: initial_seq,
            una: initial_seq,
            peer_window,
            cwnd: peer_window.max(1),
            enforce,
            ack_timeout,
            progress_at: None,
            stats: SendStats::default(),
        }
    }

    /// The sequence number the next data packet gets.
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Packets sent and neither acknowledged nor declared lost.
    pub fn in_flight(&self) -> u32 {
        self.next_seq.wrapping_sub(self.una)
    }

    /// The peer's advertised receive window.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Updates the peer's receive window (e.g. from a late call reply).
    pub fn set_peer_window(&mut self, w: u16) {
        self.peer_window = w;
        self.cwnd = self.cwnd.clamp(1, w.max(1));
    }

    /// The window in force: the smaller of the peer's window and the
    /// congestion window; `None` when not enforced.
    pub fn effective_window(&self) -> Option<u16> {
        if !self.enforce || self.peer_window == 0 {
            None
        } else {
            Some(self.cwnd.min(self.peer_window).max(1))
        }
    }

    /// May another data packet be sent now (§4.2.2: the window closes when
    /// the peer's window of packets is unacknowledged)?
    pub fn can_send(&self) -> bool {
        match self.effective_window() {
            None => true,
            Some(w) => self.in_flight() < u32::from(w),
        }
    }

    /// Counters.
    pub fn stats(&self) -> &SendStats {
        &self.stats
    }

    /// Assigns the next sequence number to a packet sent at `now`.
    pub fn on_send(&mut self, now: Instant) -> u32 {
        let seq = self.next_seq;
        if self.in_flight() == 0 {
            self.progress_at = Some(now);
        }
        self.next_seq = self.next_seq.wrapping_add(1);
        self.stats.sent += 1;
        seq
    }

    /// Takes a cumulative acknowledgment (§4.2.5): every packet up to and
    /// including `ack` is acknowledged. Returns whether the window moved.
    pub fn on_ack(&mut self, now: Instant, ack: u32) -> bool {
        let newly = ack.wrapping_sub(self.una).wrapping_add(1);
        if newly == 0 || newly > self.in_flight() {
            self.stats.stale_acks += 1;
            return false;
        }
        self.una = ack.wrapping_add(1);
        self.stats.acks += 1;
        // §4.2.3 opening the window; grow the congestion window back by one
        // per acknowledgment (Appendix A: slowly recover after a time-out).
        self.cwnd = self.cwnd.saturating_add(1).min(self.peer_window.max(1));
        self.progress_at = if self.in_flight() > 0 {
            Some(now)
        } else {
            None
        };
        true
    }

    /// When the acknowledgment time-out fires, if packets are in flight.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.in_flight() == 0 {
            return None;
        }
        self.progress_at.map(|t| t + self.ack_timeout)
    }

    /// Handles the acknowledgment time-out (§4.4): the packets in flight are
    /// lost (no retransmission in PPTP), the window reopens and the
    /// congestion window halves (§4.4.2). Returns whether it fired.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        match self.poll_timeout() {
            Some(t) if t <= now => {
                self.stats.ack_timeouts += 1;
                self.stats.lost += u64::from(self.in_flight());
                self.una = self.next_seq;
                self.cwnd = (self.cwnd / 2).max(1);
                self.progress_at = None;
                true
            }
            _ => false,
        }
    }
}

/// Counters of the receive side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Packets accepted (delivered now or buffered).
    pub accepted: u64,
    /// Packets delivered in order.
    pub delivered: u64,
    /// Packets that arrived out of order and were put back in order.
    pub reordered: u64,
    /// Packets seen before (dropped).
    pub duplicates: u64,
    /// Packets older than what was already delivered or skipped (dropped).
    pub too_old: u64,
    /// Packets implausibly far ahead (dropped).
    pub too_far_ahead: u64,
    /// Sequence numbers skipped as lost (gap time-out or a jump).
    pub lost: u64,
    /// Times the receiver resynchronised to a peer's new sequence space.
    pub resyncs: u64,
    /// Delivered packets dropped because the output queue was full.
    pub overflow: u64,
}

/// What [`ReceiveWindow::on_packet`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReceiveOutcome {
    /// Delivered or buffered.
    Accepted,
    /// Dropped: already received.
    Duplicate,
    /// Dropped: older than the delivery point.
    TooOld,
    /// Dropped: too far ahead of the delivery point.
    TooFarAhead,
}

/// Parameters of a [`ReceiveWindow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiveParams {
    /// Packets held past a gap (0: no reordering, a gap is skipped at once).
    pub capacity: usize,
    /// How long a gap is waited for before it is skipped.
    pub timeout: Duration,
    /// Packets more than this far ahead of the delivery point are dropped
    /// (up to `resync_after` of them in a row).
    pub max_ahead: u32,
    /// After this many consecutive out-of-window packets the receiver
    /// resynchronises to the peer's sequence numbers rather than stall.
    pub resync_after: u32,
    /// Bound on delivered payloads waiting to be taken.
    pub output_limit: usize,
}

/// How far back duplicate detection remembers delivered packets.
const HISTORY_BITS: u32 = 64;
/// Hard ceiling on the reorder buffer.
pub const MAX_REORDER_CAPACITY: usize = 1024;

/// The receive half: a bounded reorder buffer in front of in-order delivery.
#[derive(Debug, Clone)]
pub struct ReceiveWindow {
    params: ReceiveParams,
    /// Next sequence number to deliver; `None` before the first packet.
    expected: Option<u32>,
    /// Slot `i` holds sequence number `expected + i` (slot 0 is always empty).
    slots: VecDeque<Option<(Vec<u8>, Instant)>>,
    buffered: usize,
    /// Bit `i` set: `expected - 1 - i` was received.
    history: u64,
    /// Highest sequence number accepted, for acknowledgments.
    highest: Option<u32>,
    out_of_window_run: u32,
    output: VecDeque<Vec<u8>>,
    stats: ReceiveStats,
}

impl ReceiveWindow {
    /// An empty receive window.
    pub fn new(mut params: ReceiveParams) -> Self {
        params.capacity = params.capacity.min(MAX_REORDER_CAPACITY);
        params.max_ahead = params.max_ahead.clamp(params.capacity as u32 + 1, 1 << 30);
        params.resync_after = params.resync_after.max(1);
        params.output_limit = params.output_limit.max(1);
        Self {
            params,
            expected: None,
            slots: VecDeque::new(),
            buffered: 0,
            history: 0,
            highest: None,
            out_of_window_run: 0,
            output: VecDeque::new(),
            stats: ReceiveStats::default(),
        }
    }

    /// The highest sequence number accepted: the acknowledgment to send.
    pub fn highest(&self) -> Option<u32> {
        self.highest
    }

    /// The next sequence number to be delivered.
    pub fn expected(&self) -> Option<u32> {
        self.expected
    }

    /// Packets held in the reorder buffer.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Counters.
    pub fn stats(&self) -> &ReceiveStats {
        &self.stats
    }

    /// The next in-order payload.
    pub fn pop(&mut self) -> Option<Vec<u8>> {
        self.output.pop_front()
    }

    /// Payloads waiting in the output queue.
    pub fn pending(&self) -> usize {
        self.output.len()
    }

    /// Takes a packet with sequence number `seq`.
    pub fn on_packet(&mut self, now: Instant, seq: u32, payload: &[u8]) -> ReceiveOutcome {
        let Some(expected) = self.expected else {
            self.start_at(seq);
            self.accept(seq);
            self.deliver_front(payload.to_vec());
            return ReceiveOutcome::Accepted;
        };
        let d = seq.wrapping_sub(expected);
        if (d as i32) < 0 {
            let back = expected.wrapping_sub(seq) - 1;
            if back < HISTORY_BITS && self.history & (1u64 << back) != 0 {
                self.stats.duplicates += 1;
                return ReceiveOutcome::Duplicate;
            }
            if self.out_of_window(seq, payload) {
                return ReceiveOutcome::Accepted;
            }
            self.stats.too_old += 1;
            return ReceiveOutcome::TooOld;
        }
        if d == 0 {
            self.out_of_window_run = 0;
            self.accept(seq);
            if !self.slots.is_empty() {
                self.slots.pop_front();
            }
            self.deliver_front(payload.to_vec());
            self.drain_contiguous();
            return ReceiveOutcome::Accepted;
        }
        let idx = d as usize;
        if idx < self.params.capacity {
            if self.slots.len() <= idx {
                self.slots.resize(idx + 1, None);
            }
            if self.slots[idx].is_some() {
                self.stats.duplicates += 1;
                return ReceiveOutcome::Duplicate;
            }
            self.out_of_window_run = 0;
            self.accept(seq);
            self.slots[idx] = Some((payload.to_vec(), now));
            self.buffered += 1;
            self.stats.reordered += 1;
            return ReceiveOutcome::Accepted;
        }
        if d < self.params.max_ahead {
            // The gap is wider than the buffer: waiting cannot fill it in
            // time, so deliver what is held and jump (§4.3: the missing
            // packets are treated as lost; PPP copes with loss).
            self.out_of_window_run = 0;
            self.jump_to(seq);
            self.accept(seq);
            self.deliver_front(payload.to_vec());
            return ReceiveOutcome::Accepted;
        }
        if self.out_of_window(seq, payload) {
            return ReceiveOutcome::Accepted;
        }
        self.stats.too_far_ahead += 1;
        ReceiveOutcome::TooFarAhead
    }

    /// Counts an out-of-window packet; after `resync_after` in a row,
    /// restarts at `seq` and delivers it (returns true).
    fn out_of_window(&mut self, seq: u32, payload: &[u8]) -> bool {
        self.out_of_window_run += 1;
        if self.out_of_window_run < self.params.resync_after {
            return false;
        }
        self.stats.resyncs += 1;
        self.out_of_window_run = 0;
        self.flush_buffer();
        self.start_at(seq);
        self.highest = None;
        self.accept(seq);
        self.deliver_front(payload.to_vec());
        true
    }

    fn start_at(&mut self, seq: u32) {
        self.expected = Some(seq);
        self.slots.clear();
        self.buffered = 0;
        self.history = 0;
    }

    fn accept(&mut self, seq: u32) {
        self.stats.accepted += 1;
        match self.highest {
            Some(h) if !seq_before(h, seq) => {}
            _ => self.highest = Some(seq),
        }
    }

    /// Delivers the payload of sequence number `expected` and advances.
    fn deliver_front(&mut self, payload: Vec<u8>) {
        self.history = (self.history << 1) | 1;
        if let Some(e) = self.expected.as_mut() {
            *e = e.wrapping_add(1);
        }
        self.stats.delivered += 1;
        if payload.is_empty() {
            return;
        }
        if self.output.len() >= self.params.output_limit {
            self.stats.overflow += 1;
            return;
        }
        self.output.push_back(payload);
    }

    /// Skips sequence number `expected` as lost.
    fn skip_front(&mut self) {
        self.history <<= 1;
        if let Some(e) = self.expected.as_mut() {
            *e = e.wrapping_add(1);
        }
        self.stats.lost += 1;
    }

    /// Delivers buffered packets while the front of the buffer is filled.
    fn drain_contiguous(&mut self) {
        while let Some(Some(_)) = self.slots.front() {
            if let Some(Some((p, _))) = self.slots.pop_front() {
                self.buffered -= 1;
                self.deliver_front(p);
            }
        }
        if self.buffered == 0 {
            self.slots.clear();
        }
    }

    /// Delivers everything held, skipping the gaps, leaving `expected` past
    /// the last slot.
    fn flush_buffer(&mut self) {
        while let Some(slot) = self.slots.pop_front() {
            match slot {
                Some((p, _)) => {
                    self.buffered -= 1;
                    self.deliver_front(p);
                }
                None => {
                    if self.buffered == 0 {
                        break;
                    }
                    self.skip_front();
                }
            }
        }
        self.slots.clear();
        self.buffered = 0;
    }

    /// Flushes the buffer, then skips to `seq` (which becomes `expected`).
    fn jump_to(&mut self, seq: u32) {
        self.flush_buffer();
        let Some(e) = self.expected else {
            self.start_at(seq);
            return;
        };
        let gap = seq.wrapping_sub(e);
        self.stats.lost += u64::from(gap);
        self.history = if gap >= HISTORY_BITS {
            0
        } else {
            self.history << gap
        };
        self.expected = Some(seq);
    }

    /// When the oldest held packet's gap time-out expires.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.buffered == 0 {
            return None;
        }
        self.slots
            .iter()
            .flatten()
            .map(|(_, t)| *t)
            .min()
            .map(|t| t + self.params.timeout)
    }

    /// Skips gaps whose time-out expired and delivers what follows them.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(deadline) = self.poll_timeout() {
            if deadline > now {
                break;
            }
            // Skip the gap in front of the first held packet.
            while let Some(None) = self.slots.front() {
                self.slots.pop_front();
                self.skip_front();
            }
            self.drain_contiguous();
        }
    }
}
