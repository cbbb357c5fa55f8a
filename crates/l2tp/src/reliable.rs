//! Reliable delivery of control messages (RFC 2661 §5.8).
//!
//! Every control message but the ZLB carries Ns, counted per tunnel from
//! 0 modulo 65536; every message carries Nr, the next Ns expected (an
//! acknowledgement of everything before it). Unacknowledged messages are
//! retransmitted with exponential back-off; the peer's Receive Window
//! Size bounds how many are outstanding. Received messages are delivered
//! in order; duplicates are acknowledged and dropped; messages ahead of a
//! gap are held within our window. A ZLB (header only) acknowledges when
//! no message goes the other way in time (delayed ack, §5.8).

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::header::ControlHeader;
use crate::seq::{seq_le, seq_lt};

/// Timers and windows of reliable delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReliableConfig {
    /// Our receive window, advertised in SCCRQ/SCCRP (§4.4.3 Receive
    /// Window Size; 4 when the peer sends none).
    pub recv_window: u16,
    /// First retransmission timeout (§5.8 recommends 1 second).
    pub initial_timeout: Duration,
    /// Cap of the back-off (§5.8: at least 8 seconds).
    pub max_timeout: Duration,
    /// Retransmissions before the peer is declared gone (§5.8 recommends 5).
    pub max_retries: u32,
    /// How long an acknowledgement waits for a message to ride on before
    /// a ZLB is sent (§5.8 leaves the delay to the implementation).
    pub ack_delay: Duration,
    /// Most messages queued behind the peer's window.
    pub max_queued: usize,
}

impl Default for ReliableConfig {
    fn default() -> Self {
        ReliableConfig {
            recv_window: 8,
            initial_timeout: Duration::from_secs(1),
            max_timeout: Duration::from_secs(8),
            max_retries: 5,
            ack_delay: Duration::from_millis(100),
            max_queued: 64,
        }
    }
}

/// The peer did not acknowledge a message after every retransmission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("control message {ns} not acknowledged after {retries} retransmissions")]
pub struct RetriesExhausted {
    /// Ns of the message.
    pub ns: u16,
    /// Retransmissions made.
    pub retries: u32,
}

/// Too many messages wait behind the peer's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("control transmit queue full")]
pub struct QueueFull;

#[derive(Debug)]
struct InFlight {
    ns: u16,
    session_id: u16,
    body: Vec<u8>,
    /// Retransmissions so far.
    retries: u32,
    timeout: Duration,
    /// When to retransmit; `None` until first sent.
    deadline: Option<Instant>,
    send_now: bool,
}

/// A received control message delivered in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    /// Session ID from the header.
    pub session_id: u16,
    /// The AVP octets.
    pub body: Vec<u8>,
}

/// Reliable delivery state of one tunnel.
#[derive(Debug)]
pub struct Reliable {
    config: ReliableConfig,
    /// Ns of the next new message.
    next_ns: u16,
    /// Nr: Ns expected next from the peer.
    expected: u16,
    /// The peer's receive window (§5.8).
    peer_window: u16,
    in_flight: VecDeque<InFlight>,
    queued: VecDeque<(u16, Vec<u8>)>,
    /// Out-of-order messages by Ns, within our window.
    held: BTreeMap<u16, Delivered>,
    delivered: VecDeque<Delivered>,
    ack_due: Option<Instant>,
    /// Count of duplicates seen (for logs and tests).
    duplicates: u64,
}

impl Reliable {
    /// New state: Ns and Nr start at 0 (§5.8); the peer's window is 4
    /// until its Receive Window Size is known (§4.4.3).
    pub fn new(config: ReliableConfig) -> Self {
        Reliable {
            config,
            next_ns: 0,
            expected: 0,
            peer_window: 4,
            in_flight: VecDeque::new(),
            queued: VecDeque::new(),
            held: BTreeMap::new(),
            delivered: VecDeque::new(),
            ack_due: None,
            duplicates: 0,
        }
    }

    #[cfg(test)]
    fn starting_at(config: ReliableConfig, ns: u16, nr: u16) -> Self {
        let mut r = Self::new(config);
        r.next_ns = ns;
        r.expected = nr;
        r
    }

    /// Sets the peer's Receive Window Size (0 is invalid, §4.4.3: kept 1).
    pub fn set_peer_window(&mut self, window: u16) {
        self.peer_window = window.max(1);
    }

    /// The peer's window.
    pub fn peer_window(&self) -> u16 {
        self.peer_window
    }

    /// Duplicates received so far.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// Whether every message sent was acknowledged and none waits.
    pub fn is_idle(&self) -> bool {
        self.in_flight.is_empty() && self.queued.is_empty()
    }

    /// Queues a control message body for reliable delivery.
    pub fn send(&mut self, session_id: u16, body: Vec<u8>) -> Result<(), QueueFull> {
        if self.queued.len() >= self.config.max_queued {
            return Err(QueueFull);
        }
        self.queued.push_back((session_id, body));
        self.fill_window();
        Ok(())
    }

    fn fill_window(&mut self) {
        while self.in_flight.len() < self.peer_window as usize {
            let Some((session_id, body)) = self.queued.pop_front() else {
                break;
            };
            self.in_flight.push_back(InFlight {
                ns: self.next_ns,
                session_id,
                body,
                retries: 0,
                timeout: self.config.initial_timeout,
                deadline: None,
                send_now: true,
            });
            self.next_ns = self.next_ns.wrapping_add(1);
        }
    }

    /// Handles a received control message header and body (empty: ZLB).
    /// In-order messages become available from [`Reliable::poll_delivered`].
    pub fn handle_received(
        &mut self,
        now: Instant,
        ns: u16,
        nr: u16,
        session_id: u16,
        body: &[u8],
    ) {
        self.acknowledge(nr);
        if body.is_empty() {
            // §5.8: a ZLB only acknowledges; its Ns is not consumed.
            return;
        }
        let ahead = ns.wrapping_sub(self.expected);
        if ahead == 0 {
            self.delivered.push_back(Delivered {
                session_id,
                body: body.to_vec(),
            });
            self.expected = self.expected.wrapping_add(1);
            while let Some(next) = self.held.remove(&self.expected) {
                self.delivered.push_back(next);
                self.expected = self.expected.wrapping_add(1);
            }
            self.schedule_ack(now + self.config.ack_delay);
        } else if seq_lt(ns, self.expected) {
            // §5.8: a duplicate is acknowledged (its ack may have been
            // lost) and dropped.
            self.duplicates += 1;
            self.schedule_ack(now);
        } else if ahead < self.config.recv_window {
            // Ahead of a gap but within our window: hold it (bounded by
            // the window), and say at once what we miss.
            self.held.entry(ns).or_insert_with(|| Delivered {
                session_id,
                body: body.to_vec(),
            });
            self.schedule_ack(now);
        }
        // Beyond our window: dropped; the peer retransmits.
    }

    /// Acknowledges at once (a StopCCN, §5.7, is not left waiting).
    pub fn ack_now(&mut self, now: Instant) {
        self.schedule_ack(now);
    }

    fn schedule_ack(&mut self, at: Instant) {
        self.ack_due = Some(self.ack_due.map_or(at, |due| due.min(at)));
    }

    /// Applies the peer's Nr: everything before it was received.
    fn acknowledge(&mut self, nr: u16) {
        // An Nr beyond what we sent is bogus (or stale from a previous
        // tunnel): ignore it.
        if !seq_le(nr, self.next_ns) {
            return;
        }
        let mut acked = false;
        while self.in_flight.front().is_some_and(|m| seq_lt(m.ns, nr)) {
            self.in_flight.pop_front();
            acked = true;
        }
        if acked {
            self.fill_window();
        }
    }

    /// The next in-order received message.
    pub fn poll_delivered(&mut self) -> Option<Delivered> {
        self.delivered.pop_front()
    }

    /// Retransmits what is due. Fails when a message ran out of retries:
    /// the tunnel must be torn down (§5.8).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), RetriesExhausted> {
        let config = self.config;
        for m in &mut self.in_flight {
            if m.deadline.is_some_and(|d| d <= now) {
                if m.retries >= config.max_retries {
                    return Err(RetriesExhausted {
                        ns: m.ns,
                        retries: m.retries,
                    });
                }
                m.retries += 1;
                m.timeout = (m.timeout * 2).min(config.max_timeout);
                m.deadline = None;
                m.send_now = true;
            }
        }
        Ok(())
    }

    /// The next datagram to send: new or retransmitted messages first,
    /// then a ZLB when an acknowledgement is due and nothing carried it.
    pub fn poll_transmit(&mut self, now: Instant, tunnel_id: u16) -> Option<Vec<u8>> {
        let nr = self.expected;
        if let Some(m) = self.in_flight.iter_mut().find(|m| m.send_now) {
            m.send_now = false;
            m.deadline = Some(now + m.timeout);
            // Any message carries our Nr: the pending ack rides on it.
            self.ack_due = None;
            let header = ControlHeader {
                tunnel_id,
                session_id: m.session_id,
                ns: m.ns,
                nr,
            };
            return Some(header.to_message(&m.body));
        }
        if self.ack_due.is_some_and(|due| due <= now) {
            self.ack_due = None;
            let header = ControlHeader {
                tunnel_id,
                session_id: 0,
                ns: self.next_ns,
                nr,
            };
            return Some(header.to_message(&[]));
        }
        None
    }

    /// When [`Reliable::handle_timeout`] or a delayed ack is next due.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let retransmit = self.in_flight.iter().filter_map(|m| m.deadline).min();
        match (retransmit, self.ack_due) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{decode, Packet};

    fn split(d: &[u8]) -> (ControlHeader, Vec<u8>) {
        match decode(d).unwrap() {
            Packet::Control { header, body } => (header, body.to_vec()),
            Packet::Data(_) => panic!("data message"),
        }
    }

    fn drain(r: &mut Reliable, now: Instant) -> Vec<(ControlHeader, Vec<u8>)> {
        std::iter::from_fn(|| r.poll_transmit(now, 1).map(|d| split(&d))).collect()
    }

    fn deliver(r: &mut Reliable, now: Instant, pkts: &[(ControlHeader, Vec<u8>)]) {
        for (h, b) in pkts {
            r.handle_received(now, h.ns, h.nr, h.session_id, b);
        }
    }

    fn bodies(r: &mut Reliable) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| r.poll_delivered().map(|d| d.body)).collect()
    }

    #[test]
    fn window_limits_outstanding_and_acks_open_it() {
        let t0 = Instant::now();
        let mut a = Reliable::new(ReliableConfig::default());
        a.set_peer_window(2);
        for i in 0..5u8 {
            a.send(0, vec![i]).unwrap();
        }
        let sent = drain(&mut a, t0);
        assert_eq!(sent.len(), 2);
        assert_eq!((sent[0].0.ns, sent[1].0.ns), (0, 1));
        // A ZLB acknowledging Ns 0 opens one slot.
        a.handle_received(t0, 2, 1, 0, &[]);
        let sent = drain(&mut a, t0);
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].0.ns, 2);
    }

    #[test]
    fn retransmits_with_backoff_then_gives_up() {
        let t0 = Instant::now();
        let config = ReliableConfig {
            max_retries: 3,
            ..ReliableConfig::default()
        };
        let mut a = Reliable::new(config);
        a.send(0, vec![1]).unwrap();
        assert_eq!(drain(&mut a, t0).len(), 1);
        let mut now = t0;
        let mut gaps = Vec::new();
        loop {
            let next = a.poll_timeout().unwrap();
            gaps.push(next - now);
            now = next;
            match a.handle_timeout(now) {
                Ok(()) => assert_eq!(drain(&mut a, now).len(), 1),
                Err(e) => {
                    assert_eq!(e.retries, 3);
                    break;
                }
            }
        }
        let secs: Vec<u64> = gaps.iter().map(|d| d.as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8]);
    }

    #[test]
    fn backoff_is_capped() {
        let t0 = Instant::now();
        let mut a = Reliable::new(ReliableConfig {
            max_retries: 10,
            ..ReliableConfig::default()
        });
        a.send(0, vec![1]).unwrap();
        drain(&mut a, t0);
        let mut now = t0;
        let mut last = Duration::ZERO;
        for _ in 0..8 {
            let next = a.poll_timeout().unwrap();
            last = next - now;
            now = next;
            a.handle_timeout(now).unwrap();
            drain(&mut a, now);
        }
        assert_eq!(last, Duration::from_secs(8));
    }

    #[test]
    fn reordered_messages_are_held_and_delivered_in_order() {
        let t0 = Instant::now();
        let mut b = Reliable::new(ReliableConfig::default());
        b.handle_received(t0, 2, 0, 0, &[2]);
        b.handle_received(t0, 1, 0, 0, &[1]);
        assert!(bodies(&mut b).is_empty());
        // The held ones made an immediate ack with Nr 0 (what we miss).
        let acks = drain(&mut b, t0);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].0.nr, 0);
        assert!(acks[0].1.is_empty());
        b.handle_received(t0, 0, 0, 0, &[0]);
        assert_eq!(bodies(&mut b), [vec![0], vec![1], vec![2]]);
    }

    #[test]
    fn duplicates_are_acked_at_once_and_dropped() {
        let t0 = Instant::now();
        let mut b = Reliable::new(ReliableConfig::default());
        b.handle_received(t0, 0, 0, 0, &[0]);
        assert_eq!(bodies(&mut b).len(), 1);
        // Delayed ack: nothing yet.
        assert!(drain(&mut b, t0).is_empty());
        assert_eq!(b.poll_timeout(), Some(t0 + Duration::from_millis(100)));
        b.handle_received(t0, 0, 0, 0, &[0]);
        assert!(bodies(&mut b).is_empty());
        assert_eq!(b.duplicates(), 1);
        let acks = drain(&mut b, t0);
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].0.nr, 1);
    }

    #[test]
    fn ack_rides_on_a_message() {
        let t0 = Instant::now();
        let mut b = Reliable::new(ReliableConfig::default());
        b.handle_received(t0, 0, 0, 0, &[0]);
        b.send(0, vec![9]).unwrap();
        let out = drain(&mut b, t0 + Duration::from_secs(1));
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].0.nr, 1);
        assert_eq!(out[0].1, [9]);
    }

    #[test]
    fn beyond_window_is_dropped() {
        let t0 = Instant::now();
        let mut b = Reliable::new(ReliableConfig {
            recv_window: 4,
            ..ReliableConfig::default()
        });
        b.handle_received(t0, 4, 0, 0, &[4]);
        b.handle_received(t0, 0, 0, 0, &[0]);
        assert_eq!(bodies(&mut b), [vec![0]]);
    }

    #[test]
    fn sequence_numbers_wrap() {
        let t0 = Instant::now();
        let mut a = Reliable::starting_at(ReliableConfig::default(), 65534, 0);
        let mut b = Reliable::starting_at(ReliableConfig::default(), 0, 65534);
        for i in 0..4u8 {
            a.send(0, vec![i]).unwrap();
        }
        let sent = drain(&mut a, t0);
        let ns: Vec<u16> = sent.iter().map(|(h, _)| h.ns).collect();
        assert_eq!(ns, [65534, 65535, 0, 1]);
        // Reordered across the wrap.
        deliver(
            &mut b,
            t0,
            &[
                sent[2].clone(),
                sent[0].clone(),
                sent[3].clone(),
                sent[1].clone(),
            ],
        );
        assert_eq!(bodies(&mut b), [vec![0], vec![1], vec![2], vec![3]]);
        let later = t0 + Duration::from_secs(1);
        let acks = drain(&mut b, later);
        deliver(&mut a, later, &acks);
        assert!(a.is_idle());
    }

    #[test]
    fn bogus_nr_is_ignored() {
        let t0 = Instant::now();
        let mut a = Reliable::new(ReliableConfig::default());
        a.send(0, vec![1]).unwrap();
        drain(&mut a, t0);
        a.handle_received(t0, 0, 5000, 0, &[]);
        assert!(!a.is_idle());
        a.handle_received(t0, 0, 1, 0, &[]);
        assert!(a.is_idle());
    }

    mod lossy {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            // Random loss, duplication and reordering between two ends with
            // sequence numbers starting near the wrap: every message arrives
            // once, in order.
            #[test]
            fn in_order_exactly_once(
                seed in any::<u64>(),
                start in 65500u16..=65535,
                count in 1usize..40,
            ) {
                let mut rng = seed | 1;
                let mut rand = move || { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; rng };
                let config = ReliableConfig { max_retries: 1000, ..ReliableConfig::default() };
                let mut a = Reliable::starting_at(config, start, 0);
                let mut b = Reliable::starting_at(config, 0, start);
                b.set_peer_window(4);
                a.set_peer_window(8);
                let mut now = Instant::now();
                let mut queued = 0;
                let mut got = Vec::new();
                let mut wire_ab: Vec<Vec<u8>> = Vec::new();
                let mut wire_ba: Vec<Vec<u8>> = Vec::new();
                for _ in 0..5000 {
                    if queued < count && a.send(0, vec![queued as u8]).is_ok() {
                        queued += 1;
                    }
                    while let Some(d) = a.poll_transmit(now, 1) {
                        match rand() % 10 { 0 | 1 => {}, 2 => { wire_ab.push(d.clone()); wire_ab.push(d) }, _ => wire_ab.push(d) }
                    }
                    while let Some(d) = b.poll_transmit(now, 1) {
                        if rand() % 10 > 1 { wire_ba.push(d) }
                    }
                    if wire_ab.len() > 1 { let i = (rand() as usize) % wire_ab.len(); let last = wire_ab.len() - 1; wire_ab.swap(i, last); }
                    for d in wire_ab.drain(..) { let (h, body) = split(&d); b.handle_received(now, h.ns, h.nr, h.session_id, &body); }
                    for d in wire_ba.drain(..) { let (h, body) = split(&d); a.handle_received(now, h.ns, h.nr, h.session_id, &body); }
                    got.extend(bodies(&mut b));
                    now += Duration::from_millis(50);
                    a.handle_timeout(now).unwrap();
                    b.handle_timeout(now).unwrap();
                    if queued == count && a.is_idle() { break; }
                }
                let want: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8]).collect();
                prop_assert_eq!(got, want);
                prop_assert!(a.is_idle());
            }
        }
    }
}
