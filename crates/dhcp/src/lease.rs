//! One address leased under one identity: the RFC 2131 client state
//! machine (§4.4, figure 5), without sockets or clocks.
//!
//! ```text
//!  Selecting --OFFER--> Requesting --ACK--> Bound --T1--> Renewing --T2--> Rebinding --expiry--> lost
//!      ^                    |                 ^              |  ACK            |  ACK
//!      +------- NAK --------+                 +--------------+-----------------+
//! ```
//! NAK while acquiring restarts from DISCOVER (§3.1 step 5) until the
//! acquisition deadline; NAK while renewing or rebinding loses the lease.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::MessageType;

use crate::message::{self, Identity, Reply};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255:67 on the configured interface.
    Broadcast,
    /// One server's port 67.
    Server(Ipv4Addr),
}

/// Bytes to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    pub to: Destination,
    pub bytes: Vec<u8>,
}

/// RFC 2131 §4.4.5: retransmissions while renewing or rebinding wait half
/// the remaining time, but at least this long.
pub const MIN_EXTEND_RETRANSMIT: Duration = Duration::from_secs(60);

/// A lease time of all ones means "infinite" (RFC 2132 §9.2).
const INFINITE: u32 = u32::MAX;

/// What the lease holds once bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Binding {
    pub addr: Ipv4Addr,
    pub server: Ipv4Addr,
    /// When to renew (T1), rebind (T2) and when the lease ends; `None` for
    /// an infinite lease.
    pub t1: Option<Instant>,
    pub t2: Option<Instant>,
    pub expiry: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Selecting,
    Requesting {
        offered: Ipv4Addr,
        server: Ipv4Addr,
    },
    Bound,
    Renewing,
    Rebinding,
    /// Released, lost or failed: nothing more to do.
    Done,
}

/// What a step of the lease produced for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// First binding (an ACK in REQUESTING).
    Bound(Ipv4Addr),
    /// An ACK extended the lease.
    Extended(Ipv4Addr),
    /// A NAK or expiry took the address away.
    Lost(Ipv4Addr),
    /// No address within the acquisition deadline.
    Failed,
}

/// Acquisition timing: retransmit after `retransmit`, doubling each time
/// (RFC 2131 §4.1), and give up at `deadline`.
#[derive(Debug, Clone, Copy)]
pub struct Acquire {
    pub retransmit: Duration,
    pub deadline: Instant,
}

/// One lease.
#[derive(Debug, Clone)]
pub struct Lease {
    identity: Identity,
    xid: u32,
    state: State,
    binding: Option<Binding>,
    acquire: Acquire,
    /// The delay before the next acquisition retransmission.
    backoff: Duration,
    /// When the current timer fires.
    timer: Option<Instant>,
}

impl Lease {
    /// Starts acquiring: returns the lease and its DHCPDISCOVER.
    pub fn start(
        identity: Identity,
        xid: u32,
        now: Instant,
        acquire: Acquire,
    ) -> (Lease, Transmit) {
        let mut lease = Lease {
            identity,
            xid,
            state: State::Selecting,
            binding: None,
            acquire,
            backoff: acquire.retransmit,
            timer: None,
        };
        let t = lease.send_discover(now);
        (lease, t)
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    pub fn xid(&self) -> u32 {
        self.xid
    }

    /// The binding, once bound (also while renewing or rebinding).
    pub fn binding(&self) -> Option<&Binding> {
        self.binding.as_ref()
    }

    /// Still acquiring its first address.
    pub fn is_acquiring(&self) -> bool {
        matches!(self.state, State::Selecting | State::Requesting { .. })
    }

    /// Holds an address (bound, renewing or rebinding).
    pub fn is_bound(&self) -> bool {
        matches!(
            self.state,
            State::Bound | State::Renewing | State::Rebinding
        )
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// When [`Lease::handle_timeout`] wants to run.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    fn send_discover(&mut self, now: Instant) -> Transmit {
        self.state = State::Selecting;
        self.timer = Some(self.retransmit_at(now));
        Transmit {
            to: Destination::Broadcast,
            bytes: message::discover(&self.identity, self.xid),
        }
    }

    /// The next acquisition retransmission, never past the deadline.
    fn retransmit_at(&mut self, now: Instant) -> Instant {
        let at = now + self.backoff;
        // RFC 2131 §4.1 doubles the delay up to 64 s.
        self.backoff = (self.backoff * 2).min(Duration::from_secs(64));
        at.min(self.acquire.deadline)
    }

    /// A reply whose xid and chaddr the owner matched to this lease.
    /// `new_xid` is used if the reply starts a new transaction.
    pub fn handle_reply(
        &mut self,
        now: Instant,
        reply: &Reply,
        new_xid: u32,
    ) -> (Option<Change>, Option<Transmit>) {
        if reply.xid != self.xid || reply.chaddr != self.identity.chaddr {
            return (None, None);
        }
        match (self.state, reply.kind) {
            (State::Selecting, MessageType::Offer) => {
                // RFC 2131 §4.4.1: take the first offer. An offer needs a
                // server identifier (Table 3) and a usable address.
                let (Some(server), addr) = (reply.server_id, reply.yiaddr) else {
                    return (None, None);
                };
                if !usable(addr) {
                    return (None, None);
                }
                self.state = State::Requesting {
                    offered: addr,
                    server,
                };
                self.backoff = self.acquire.retransmit;
                self.timer = Some(self.retransmit_at(now));
                let bytes = message::request_selecting(&self.identity, self.xid, addr, server);
                (
                    None,
                    Some(Transmit {
                        to: Destination::Broadcast,
                        bytes,
                    }),
                )
            }
            (State::Requesting { offered, server }, MessageType::Ack) => {
                if reply.yiaddr != offered {
                    return (None, None);
                }
                match self.bind(now, offered, reply.server_id.unwrap_or(server), reply) {
                    Some(()) => (Some(Change::Bound(offered)), None),
                    None => (None, None),
                }
            }
            (State::Requesting { .. }, MessageType::Nak) => {
                // RFC 2131 §3.1 step 5: restart with a new DISCOVER.
                self.xid = new_xid;
                self.backoff = self.acquire.retransmit;
                if now >= self.acquire.deadline {
                    self.finish();
                    return (Some(Change::Failed), None);
                }
                (None, Some(self.send_discover(now)))
            }
            (State::Renewing | State::Rebinding, MessageType::Ack) => {
                let Some(b) = self.binding else {
                    return (None, None);
                };
                if reply.yiaddr != b.addr {
                    return (None, None);
                }
                match self.bind(now, b.addr, reply.server_id.unwrap_or(b.server), reply) {
                    Some(()) => (Some(Change::Extended(b.addr)), None),
                    None => (None, None),
                }
            }
            (State::Renewing | State::Rebinding, MessageType::Nak) => {
                let addr = self.binding.map(|b| b.addr);
                self.finish();
                (addr.map(Change::Lost), None)
            }
            _ => (None, None),
        }
    }

    /// Records an ACK: lease time and T1/T2 (RFC 2131 §4.4.5 defaults 0.5
    /// and 0.875 of the lease when absent or inconsistent). An ACK without
    /// a lease time (required by Table 3) is ignored.
    fn bind(
        &mut self,
        now: Instant,
        addr: Ipv4Addr,
        server: Ipv4Addr,
        reply: &Reply,
    ) -> Option<()> {
        let lease = reply.lease_time?;
        let (t1, t2, expiry) = if lease == INFINITE {
            (None, None, None)
        } else {
            let lease = u64::from(lease);
            let mut t1 = reply.renewal_time.map(u64::from).unwrap_or(lease / 2);
            let mut t2 = reply.rebinding_time.map(u64::from).unwrap_or(lease * 7 / 8);
            if !(t1 <= t2 && t2 <= lease) {
                t1 = lease / 2;
                t2 = lease * 7 / 8;
            }
            let at = |s: u64| Some(now + Duration::from_secs(s));
            (at(t1), at(t2), at(lease))
        };
        self.binding = Some(Binding {
            addr,
            server,
            t1,
            t2,
            expiry,
        });
        self.state = State::Bound;
        self.timer = t1;
        Some(())
    }

    /// The timer fired (it is harmless to call early: nothing happens).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        new_xid: u32,
    ) -> (Option<Change>, Option<Transmit>) {
        match self.timer {
            Some(t) if now >= t => {}
            _ => return (None, None),
        }
        match self.state {
            State::Selecting | State::Requesting { .. } if now >= self.acquire.deadline => {
                self.finish();
                (Some(Change::Failed), None)
            }
            State::Selecting => {
                self.timer = Some(self.retransmit_at(now));
                let bytes = message::discover(&self.identity, self.xid);
                (
                    None,
                    Some(Transmit {
                        to: Destination::Broadcast,
                        bytes,
                    }),
                )
            }
            State::Requesting { offered, server } => {
                self.timer = Some(self.retransmit_at(now));
                let bytes = message::request_selecting(&self.identity, self.xid, offered, server);
                (
                    None,
                    Some(Transmit {
                        to: Destination::Broadcast,
                        bytes,
                    }),
                )
            }
            State::Bound | State::Renewing | State::Rebinding => self.extend(now, new_xid),
            State::Done => {
                self.timer = None;
                (None, None)
            }
        }
    }

    /// RFC 2131 §4.4.5: from T1 ask the leasing server, from T2 any
    /// server, until the lease expires.
    fn extend(&mut self, now: Instant, new_xid: u32) -> (Option<Change>, Option<Transmit>) {
        let Some(b) = self.binding else {
            self.finish();
            return (None, None);
        };
        let (Some(t2), Some(expiry)) = (b.t2, b.expiry) else {
            self.timer = None;
            return (None, None);
        };
        if now >= expiry {
            self.finish();
            return (Some(Change::Lost(b.addr)), None);
        }
        let (state, to, until) = if now >= t2 {
            (State::Rebinding, Destination::Broadcast, expiry)
        } else {
            (State::Renewing, Destination::Server(b.server), t2)
        };
        if self.state != state {
            // A new transaction for each state (§4.4.5: a renewal is a new
            // exchange with its own xid).
            self.xid = new_xid;
        }
        self.state = state;
        let wait = ((until - now) / 2).max(MIN_EXTEND_RETRANSMIT);
        self.timer = Some((now + wait).min(until));
        let bytes = message::request_extend(&self.identity, self.xid, b.addr);
        (None, Some(Transmit { to, bytes }))
    }

    /// DHCPRELEASE for a held address (RFC 2131 §4.4.6); the lease is done
    /// either way.
    pub fn release(&mut self) -> Option<Transmit> {
        let out = if self.is_bound() {
            self.binding.map(|b| Transmit {
                to: Destination::Server(b.server),
                bytes: message::release(&self.identity, self.xid, b.addr, b.server),
            })
        } else {
            None
        };
        self.finish();
        out
    }

    fn finish(&mut self) {
        self.state = State::Done;
        self.timer = None;
    }
}

/// An address a server may give a client: not 0.0.0.0, broadcast,
/// multicast or loopback.
fn usable(addr: Ipv4Addr) -> bool {
    !(addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback())
}
