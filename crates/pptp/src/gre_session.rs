//! The GRE data channel of one call (RFC 2637 §4): sequence numbers, the
//! peer's receive window, piggy-backed and ack-only acknowledgments, and an
//! in-order delivery path with a bounded reorder buffer.
//!
//! ```text
//! session.handle_datagram(now, &gre_bytes)?;          // from the GRE socket
//! while let Some(ppp) = session.poll_received() {}    // PPP frames, in order
//! session.send(now, &ppp_frame)?;                     // a PPP frame to send
//! while let Some(d) = session.poll_transmit() {}      // GRE datagrams to write
//! if let Some(t) = session.poll_timeout() {}          // arm one timer
//! session.handle_timeout(now);
//! ```
//!
//! Acknowledgments (§4.2, §4.2.5): the Acknowledgment Number is the highest
//! sequence number received. It rides on the next data packet when there is
//! one; otherwise an ack-only packet (no sequence number, no payload) goes
//! out when the ack timer (`ack_delay`, 100 ms by default, as MS-PTPT's
//! Packet Acknowledgment Timer) expires, or at once when half of our
//! advertised receive window is unacknowledged, so a peer that honours the
//! window never stalls on us.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::gre::{self, GreError};
use crate::window::{ReceiveParams, ReceiveStats, ReceiveWindow, SendStats, SendWindow};

/// Buffers kept for reuse by [`GreSession::recycle`]: enough for a batch
/// of datagrams, so a busy call allocates nothing per packet.
const SPARE_LIMIT: usize = 64;
/// Larger buffers are freed rather than kept: spares stay a few hundred
/// KiB per call at most, whatever the peer sent.
const SPARE_MAX_CAPACITY: usize = 4096;

/// Configuration of a GRE data channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GreConfig {
    /// Delay before a standalone acknowledgment when no data goes out.
    pub ack_delay: Duration,
    /// Our Packet Recv. Window Size, as advertised in the call messages.
    pub recv_window: u16,
    /// Packets held past a gap for reordering (0 disables reordering).
    pub reorder_capacity: usize,
    /// How long a gap is waited for before it is skipped.
    pub reorder_timeout: Duration,
    /// Packets more than this far ahead are dropped (see [`ReceiveParams`]).
    pub max_ahead: u32,
    /// Consecutive out-of-window packets after which the receiver resyncs.
    pub resync_after: u32,
    /// Honour the peer's receive window (RFC 2637 §4.2). MS-PTPT peers
    /// ignore windows; turning this off never queues.
    pub enforce_peer_window: bool,
    /// Acknowledgment time-out after which packets in flight count as lost
    /// and the window reopens (§4.4).
    pub ack_timeout: Duration,
    /// Payloads queued while the window is closed; more are dropped.
    pub send_queue_limit: usize,
    /// Datagrams waiting in `poll_transmit`; more are refused.
    pub transmit_queue_limit: usize,
    /// Received payloads waiting in `poll_received`; more are dropped.
    pub receive_queue_limit: usize,
    /// The first sequence number sent.
    pub initial_seq: u32,
}

impl Default for GreConfig {
    fn default() -> Self {
        Self {
            ack_delay: Duration::from_millis(100),
            recv_window: 64,
            reorder_capacity: 32,
            reorder_timeout: Duration::from_millis(50),
            max_ahead: 4096,
            resync_after: 8,
            enforce_peer_window: true,
            ack_timeout: Duration::from_secs(1),
            send_queue_limit: 64,
            transmit_queue_limit: 256,
            receive_queue_limit: 256,
            initial_seq: 0,
        }
    }
}

/// Why [`GreSession::send`] refused a payload.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// Longer than the 16-bit Payload Length field allows.
    #[error("payload of {0} octets is too long for GRE")]
    TooLong(usize),
    /// The peer's window is closed and the send queue is full.
    #[error("send window closed and queue full")]
    WindowFull,
    /// The caller is not draining `poll_transmit`.
    #[error("transmit queue full")]
    TransmitQueueFull,
}

/// Counters of a GRE data channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GreStats {
    /// Send-window counters.
    pub send: SendStats,
    /// Receive-window counters.
    pub receive: ReceiveStats,
    /// Ack-only packets sent.
    pub ack_only_sent: u64,
    /// Acknowledgments piggy-backed on data packets.
    pub acks_piggybacked: u64,
    /// Payloads dropped because the window was closed and the queue full.
    pub send_dropped: u64,
    /// Datagrams that failed to decode.
    pub malformed: u64,
    /// Datagrams for another Call ID.
    pub wrong_call_id: u64,
}

/// The GRE data channel of one call.
#[derive(Debug, Clone)]
pub struct GreSession {
    config: GreConfig,
    local_call_id: u16,
    peer_call_id: u16,
    send: SendWindow,
    recv: ReceiveWindow,
    send_queue: VecDeque<Vec<u8>>,
    /// How many payloads at the front of `send_queue` are PPP control
    /// frames (see [`GreSession::send_control`]).
    control_queued: usize,
    transmit: VecDeque<Vec<u8>>,
    /// Written datagrams given back, reused for the next ones.
    spare: Vec<Vec<u8>>,
    last_ack_sent: Option<u32>,
    ack_pending_since: Option<Instant>,
    unacked: u32,
    ack_only_sent: u64,
    acks_piggybacked: u64,
    send_dropped: u64,
    malformed: u64,
    wrong_call_id: u64,
}

impl GreSession {
    /// A data channel for a call: our Call ID (what the peer puts in the
    /// key), the peer's Call ID (what we put in the key), and the peer's
    /// Packet Recv. Window Size.
    pub fn new(config: GreConfig, local_call_id: u16, peer_call_id: u16, peer_window: u16) -> Self {
        let send = SendWindow::new(
            config.initial_seq,
            peer_window,
            config.enforce_peer_window,
            config.ack_timeout,
        );
        let recv = ReceiveWindow::new(ReceiveParams {
            capacity: config.reorder_capacity,
            timeout: config.reorder_timeout,
            max_ahead: config.max_ahead,
            resync_after: config.resync_after,
            output_limit: config.receive_queue_limit,
        });
        Self {
            config,
            local_call_id,
            peer_call_id,
            send,
            recv,
            send_queue: VecDeque::new(),
            control_queued: 0,
            transmit: VecDeque::new(),
            spare: Vec::new(),
            last_ack_sent: None,
            ack_pending_since: None,
            unacked: 0,
            ack_only_sent: 0,
            acks_piggybacked: 0,
            send_dropped: 0,
            malformed: 0,
            wrong_call_id: 0,
        }
    }

    /// Our Call ID.
    pub fn local_call_id(&self) -> u16 {
        self.local_call_id
    }

    /// The peer's Call ID.
    pub fn peer_call_id(&self) -> u16 {
        self.peer_call_id
    }

    /// The send window.
    pub fn send_window(&self) -> &SendWindow {
        &self.send
    }

    /// The receive window.
    pub fn receive_window(&self) -> &ReceiveWindow {
        &self.recv
    }

    /// Payloads queued behind a closed window.
    pub fn queued(&self) -> usize {
        self.send_queue.len()
    }

    /// Counters.
    pub fn stats(&self) -> GreStats {
        GreStats {
            send: *self.send.stats(),
            receive: *self.recv.stats(),
            ack_only_sent: self.ack_only_sent,
            acks_piggybacked: self.acks_piggybacked,
            send_dropped: self.send_dropped,
            malformed: self.malformed,
            wrong_call_id: self.wrong_call_id,
        }
    }

    /// Updates the peer's receive window.
    pub fn set_peer_window(&mut self, now: Instant, window: u16) {
        self.send.set_peer_window(window);
        self.flush_send_queue(now);
    }

    /// Takes one GRE datagram (the IP payload) from the network.
    ///
    /// Malformed datagrams and datagrams for another call are dropped with an
    /// error (and counted); the session stays usable.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), GreError> {
        let packet = match gre::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.malformed += 1;
                return Err(e);
            }
        };
        if packet.header.call_id != self.local_call_id {
            self.wrong_call_id += 1;
            return Err(GreError::WrongCallId {
                got: packet.header.call_id,
                expected: self.local_call_id,
            });
        }
        if let Some(ack) = packet.header.ack {
            if self.send.on_ack(now, ack) {
                self.flush_send_queue(now);
            }
        }
        if let Some(seq) = packet.header.seq {
            let before = self.recv.highest();
            self.recv.on_packet(now, seq, packet.payload);
            if self.recv.highest() != before {
                self.unacked = self.unacked.saturating_add(1);
                if self.ack_pending_since.is_none() {
                    self.ack_pending_since = Some(now);
                }
                let threshold = u32::from((self.config.recv_window / 2).max(1));
                if self.unacked >= threshold {
                    self.send_ack_only();
                }
            }
        }
        Ok(())
    }

    /// The next payload (PPP frame) received, in sequence order.
    pub fn poll_received(&mut self) -> Option<Vec<u8>> {
        self.recv.pop()
    }

    /// Sends a payload (a PPP frame). When the peer's window is closed the
    /// payload waits in a bounded queue; when that is full it is dropped.
    pub fn send(&mut self, now: Instant, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > usize::from(u16::MAX) {
            return Err(SendError::TooLong(payload.len()));
        }
        if !self.send_queue.is_empty() || !self.send.can_send() {
            if self.send_queue.len() >= self.config.send_queue_limit {
                self.send_dropped += 1;
                return Err(SendError::WindowFull);
            }
            self.send_queue.push_back(payload.to_vec());
            return Ok(());
        }
        if self.transmit.len() >= self.config.transmit_queue_limit {
            self.send_dropped += 1;
            return Err(SendError::TransmitQueueFull);
        }
        self.transmit_data(now, payload);
        Ok(())
    }

    /// Sends a PPP control frame (LCP, authentication, an NCP, a CCP
    /// Reset-Request). Like [`send`](Self::send), except that behind a
    /// closed window it waits ahead of queued data, and a full queue gives
    /// up its newest data payload to make room. A CCP Reset-Request stuck
    /// behind a second of IP packets, or refused for them, keeps a stateful
    /// MPPE peer discarding everything we send (RFC 3078 §8.2) — that
    /// is what the CI saw with pptp-linux's window of 3 and 20 % loss.
    pub fn send_control(&mut self, now: Instant, payload: &[u8]) -> Result<(), SendError> {
        if payload.len() > usize::from(u16::MAX) {
            return Err(SendError::TooLong(payload.len()));
        }
        if self.send_queue.is_empty() && self.send.can_send() {
            if self.transmit.len() >= self.config.transmit_queue_limit {
                self.send_dropped += 1;
                return Err(SendError::TransmitQueueFull);
            }
            self.transmit_data(now, payload);
            return Ok(());
        }
        if self.send_queue.len() >= self.config.send_queue_limit {
            if self.control_queued >= self.send_queue.len() {
                self.send_dropped += 1;
                return Err(SendError::WindowFull);
            }
            // The newest data payload goes: it is the least likely to
            // still matter by the time the window opens.
            self.send_queue.pop_back();
            self.send_dropped += 1;
        }
        self.send_queue
            .insert(self.control_queued, payload.to_vec());
        self.control_queued += 1;
        Ok(())
    }

    /// The next GRE datagram to write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    /// Gives back a buffer (a datagram from [`poll_transmit`](Self::poll_transmit)
    /// once written, or a payload from [`poll_received`](Self::poll_received)
    /// once used) so that the next datagram reuses its allocation. At most
    /// a batch's worth is kept.
    pub fn recycle(&mut self, mut buffer: Vec<u8>) {
        if self.spare.len() < SPARE_LIMIT && buffer.capacity() <= SPARE_MAX_CAPACITY {
            buffer.clear();
            self.spare.push(buffer);
        }
    }

    /// The earliest deadline of the ack timer, the reorder time-out and the
    /// acknowledgment time-out.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let ack = self.ack_pending_since.map(|t| t + self.config.ack_delay);
        [ack, self.recv.poll_timeout(), self.send.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Handles the timers that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.recv.handle_timeout(now);
        if let Some(t) = self.ack_pending_since {
            if t + self.config.ack_delay <= now {
                self.send_ack_only();
            }
        }
        if self.send.handle_timeout(now) {
            self.flush_send_queue(now);
        }
    }

    /// The acknowledgment to put in the next packet, if there is news.
    fn take_ack(&mut self) -> Option<u32> {
        let highest = self.recv.highest()?;
        if self.last_ack_sent == Some(highest) && self.ack_pending_since.is_none() {
            return None;
        }
        self.last_ack_sent = Some(highest);
        self.ack_pending_since = None;
        self.unacked = 0;
        Some(highest)
    }

    fn transmit_data(&mut self, now: Instant, payload: &[u8]) {
        let seq = self.send.on_send(now);
        let ack = self.take_ack();
        if ack.is_some() {
            self.acks_piggybacked += 1;
        }
        let mut out = self.spare.pop().unwrap_or_default();
        // The length was checked against u16 and a sequence number is given,
        // so encoding cannot fail.
        if gre::encode(self.peer_call_id, Some(seq), ack, payload, &mut out).is_ok() {
            self.transmit.push_back(out);
        }
    }

    fn send_ack_only(&mut self) {
        if self.transmit.len() >= self.config.transmit_queue_limit {
            return; // stays pending; retried on the next timeout
        }
        let Some(ack) = self.take_ack() else {
            return;
        };
        let mut out = self.spare.pop().unwrap_or_default();
        if gre::encode(self.peer_call_id, None, Some(ack), &[], &mut out).is_ok() {
            self.ack_only_sent += 1;
            self.transmit.push_back(out);
        }
    }

    fn flush_send_queue(&mut self, now: Instant) {
        while self.send.can_send() && self.transmit.len() < self.config.transmit_queue_limit {
            let Some(p) = self.send_queue.pop_front() else {
                break;
            };
            self.control_queued = self.control_queued.saturating_sub(1);
            self.transmit_data(now, &p);
        }
    }
}
