//! The server's GRE demultiplexer as a pure core: which call a datagram
//! read from a raw IP socket (protocol 47) belongs to.
//!
//! A PAC serves many calls over one raw socket. RFC 2637 §4.1 puts only
//! the receiver's Call ID in the enhanced GRE header, so the server hands
//! out Call IDs unique across all its control connections (a
//! [`CallTable`]) and takes a datagram for a call only when it also comes
//! from that call's client address: a datagram with a guessed Call ID
//! from elsewhere costs only itself. Clients behind one NAT share an
//! address and are told apart by the Call ID alone.
//!
//! Nothing here touches a socket or a clock: the driver reads datagrams,
//! asks [`CallTable::route`] where each goes, counts the ones that go
//! nowhere in a [`DropLog`], and writes the log's [`DropSummary`] when it
//! is due (the time is passed in).

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Range;
use std::time::{Duration, Instant};

use crate::gre::BASE_HEADER_LEN;
use crate::IP_PROTOCOL_GRE;

/// RFC 791 §3.1: the IPv4 header without options.
const IPV4_MIN_HEADER: usize = 20;
/// RFC 791 §3.1: the More Fragments flag and the Fragment Offset, in the
/// Flags/Fragment Offset word.
const IPV4_MF_AND_OFFSET: u16 = 0x3fff;
/// RFC 2637 §4.1: enhanced GRE is version 1 and carries PPP (0x880B).
const GRE_VERSION: u8 = 1;
const GRE_PROTOCOL_PPP: u16 = 0x880b;

/// Why a datagram is not an IPv4 datagram carrying enhanced GRE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// Shorter than the IPv4 header it announces (or than 20 octets).
    #[error("truncated IPv4 header ({0} octets)")]
    TruncatedIp(usize),
    /// The IP version is not 4.
    #[error("IP version {0}, not 4")]
    NotIpv4(u8),
    /// RFC 791 §3.1: the Internet Header Length is at least 5 words.
    #[error("IPv4 header length {0} words, below 5")]
    BadHeaderLength(u8),
    /// A fragment: the kernel reassembles before a raw socket sees the
    /// datagram, so one here was crafted.
    #[error("IPv4 fragment")]
    Fragment,
    /// Another IP protocol than GRE.
    #[error("IP protocol {0}, not GRE")]
    NotGre(u8),
    /// Fewer octets than the enhanced GRE header's first eight.
    #[error("truncated GRE header ({0} octets)")]
    TruncatedGre(usize),
    /// RFC 2637 §4.1: PPTP's GRE is version 1.
    #[error("GRE version {0}, not 1 (enhanced GRE)")]
    GreVersion(u8),
    /// RFC 2637 §4.1: PPTP's GRE carries PPP, protocol type 0x880B.
    #[error("GRE protocol type {0:#06x}, not PPP")]
    GreProtocol(u16),
    /// The driver could not read the datagram at all (a receive slot
    /// without data).
    #[error("unreadable datagram")]
    Unreadable,
}

/// The parts of an IPv4 datagram that route it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipv4Gre {
    /// The source address.
    pub source: Ipv4Addr,
    /// Where the GRE packet lies in the datagram.
    pub gre: Range<usize>,
}

/// The source and the GRE packet of an IPv4 datagram as a raw socket
/// returns it (header included).
pub fn parse_ipv4_gre(datagram: &[u8]) -> Result<Ipv4Gre, Malformed> {
    let first = *datagram.first().ok_or(Malformed::TruncatedIp(0))?;
    if first >> 4 != 4 {
        return Err(Malformed::NotIpv4(first >> 4));
    }
    let words = first & 0x0f;
    let ihl = usize::from(words) * 4;
    if ihl < IPV4_MIN_HEADER {
        return Err(Malformed::BadHeaderLength(words));
    }
    if datagram.len() < ihl {
        return Err(Malformed::TruncatedIp(datagram.len()));
    }
    if u16::from_be_bytes([datagram[6], datagram[7]]) & IPV4_MF_AND_OFFSET != 0 {
        return Err(Malformed::Fragment);
    }
    if datagram[9] != IP_PROTOCOL_GRE {
        return Err(Malformed::NotGre(datagram[9]));
    }
    let source = Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]);
    // The Total Length bounds the GRE packet when it is sane; when it is
    // not, the datagram's own length does (the GRE header's Payload
    // Length is checked again when the call decodes it).
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    let end = if total >= ihl && total <= datagram.len() {
        total
    } else {
        datagram.len()
    };
    Ok(Ipv4Gre {
        source,
        gre: ihl..end,
    })
}

/// The receiver's Call ID of an enhanced GRE packet (RFC 2637 §4.1: the
/// low 16 bits of the Key field), with the reason when it is none.
pub fn gre_call_id(gre: &[u8]) -> Result<u16, Malformed> {
    if gre.len() < BASE_HEADER_LEN {
        return Err(Malformed::TruncatedGre(gre.len()));
    }
    let version = gre[1] & 0x07;
    if version != GRE_VERSION {
        return Err(Malformed::GreVersion(version));
    }
    let protocol = u16::from_be_bytes([gre[2], gre[3]]);
    if protocol != GRE_PROTOCOL_PPP {
        return Err(Malformed::GreProtocol(protocol));
    }
    Ok(u16::from_be_bytes([gre[6], gre[7]]))
}

/// Why a datagram belongs to no call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Misroute {
    /// Not an IPv4 datagram carrying enhanced GRE, or truncated.
    Malformed(Malformed),
    /// No call has this Call ID.
    UnknownCall {
        /// The Call ID in the datagram.
        call_id: u16,
        /// Where it came from.
        source: Ipv4Addr,
    },
    /// The call belongs to a client at another address.
    WrongSource {
        /// The Call ID in the datagram.
        call_id: u16,
        /// Where it came from.
        source: Ipv4Addr,
    },
}

impl From<Malformed> for Misroute {
    fn from(m: Malformed) -> Self {
        Misroute::Malformed(m)
    }
}

impl fmt::Display for Misroute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Misroute::Malformed(m) => m.fmt(f),
            Misroute::UnknownCall { call_id, source } => {
                write!(f, "GRE for unknown call {call_id} from {source}")
            }
            Misroute::WrongSource { call_id, source } => {
                write!(
                    f,
                    "GRE for call {call_id} from {source}, not the call's client"
                )
            }
        }
    }
}

impl std::error::Error for Misroute {}

/// A datagram that belongs to a call.
#[derive(Debug, PartialEq, Eq)]
pub struct Routed<'a, T> {
    /// Our Call ID.
    pub call_id: u16,
    /// Where the GRE packet lies in the datagram.
    pub gre: Range<usize>,
    /// What the call was registered with (its queue, say).
    pub target: &'a T,
}

#[derive(Debug)]
struct Route<T> {
    peer: Ipv4Addr,
    target: T,
}

/// The calls of a server, by our Call ID: each with its client's address
/// and a target the driver chooses (the call's queue).
#[derive(Debug)]
pub struct CallTable<T> {
    /// Where the search for a free ID starts: IDs are handed out in turn
    /// so that a released one is not reused at once (a stray datagram of
    /// the old call would land in the new one).
    next: u16,
    calls: HashMap<u16, Route<T>>,
}

impl<T> Default for CallTable<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> CallTable<T> {
    /// An empty table; the first Call ID handed out is 1.
    pub fn new() -> Self {
        Self {
            next: 1,
            calls: HashMap::new(),
        }
    }

    /// Calls registered.
    pub fn len(&self) -> usize {
        self.calls.len()
    }

    /// No call registered?
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The client address of call `call_id`.
    pub fn peer(&self, call_id: u16) -> Option<Ipv4Addr> {
        self.calls.get(&call_id).map(|r| r.peer)
    }

    /// A Call ID no other call uses (never 0, which a refused
    /// Outgoing-Call-Reply carries), routed to `peer`'s datagrams and
    /// `target`; `None` if all 65,535 are taken.
    pub fn register(&mut self, peer: Ipv4Addr, target: T) -> Option<u16> {
        for _ in 0..=u16::MAX {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            if id != 0 && !self.calls.contains_key(&id) {
                self.calls.insert(id, Route { peer, target });
                return Some(id);
            }
        }
        None
    }

    /// Forgets call `call_id`, returning its target.
    pub fn release(&mut self, call_id: u16) -> Option<T> {
        self.calls.remove(&call_id).map(|r| r.target)
    }

    /// The call `datagram` (IPv4 header included) belongs to, if it comes
    /// from that call's client.
    pub fn route(&self, datagram: &[u8]) -> Result<Routed<'_, T>, Misroute> {
        let Ipv4Gre { source, gre } = parse_ipv4_gre(datagram)?;
        let call_id = gre_call_id(&datagram[gre.clone()])?;
        match self.calls.get(&call_id) {
            None => Err(Misroute::UnknownCall { call_id, source }),
            Some(route) if route.peer != source => Err(Misroute::WrongSource { call_id, source }),
            Some(route) => Ok(Routed {
                call_id,
                gre,
                target: &route.target,
            }),
        }
    }
}

/// Datagrams dropped since the last summary, by reason, and when that
/// summary was: a flood costs one log line per interval, not one per
/// datagram.
#[derive(Debug, Clone)]
pub struct DropLog {
    interval: Duration,
    counts: DropCounts,
    logged_at: Option<Instant>,
}

/// Counts of dropped datagrams by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    /// Not IPv4 GRE, or truncated.
    pub malformed: u64,
    /// For no call.
    pub unknown_call: u64,
    /// For a call, from another address than its client's.
    pub wrong_source: u64,
    /// For a call whose queue was full.
    pub queue_full: u64,
    /// The latest unknown call and its source, and the latest misdirected
    /// one: enough to tell a stale client from a spoofer.
    pub last_unknown: Option<(u16, Ipv4Addr)>,
    /// See `last_unknown`.
    pub last_wrong_source: Option<(u16, Ipv4Addr)>,
}

impl DropCounts {
    /// Datagrams counted.
    pub fn total(&self) -> u64 {
        self.malformed + self.unknown_call + self.wrong_source + self.queue_full
    }
}

/// What a summary line says: the counts, and how long they took to gather
/// (`None` for the first summary after a quiet spell, written at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DropSummary {
    /// Counts since the last summary.
    pub counts: DropCounts,
    /// Time since the last summary.
    pub over: Option<Duration>,
}

impl DropLog {
    /// A log that summarises at most once per `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            counts: DropCounts::default(),
            logged_at: None,
        }
    }

    /// Counts one misrouted datagram.
    pub fn count(&mut self, why: &Misroute) {
        let c = &mut self.counts;
        match *why {
            Misroute::Malformed(_) => c.malformed += 1,
            Misroute::UnknownCall { call_id, source } => {
                c.unknown_call += 1;
                c.last_unknown = Some((call_id, source));
            }
            Misroute::WrongSource { call_id, source } => {
                c.wrong_source += 1;
                c.last_wrong_source = Some((call_id, source));
            }
        }
    }

    /// Counts a datagram for a call whose queue was full.
    pub fn count_queue_full(&mut self) {
        self.counts.queue_full += 1;
    }

    /// The counts not summarised yet.
    pub fn counts(&self) -> &DropCounts {
        &self.counts
    }

    /// Is anything counted since the last summary?
    pub fn pending(&self) -> bool {
        self.counts.total() > 0
    }

    /// When the next summary is due, if there is anything to say and the
    /// last summary was recent (else [`DropLog::poll_summary`] gives it at
    /// once).
    pub fn due(&self) -> Option<Instant> {
        if !self.pending() {
            return None;
        }
        self.logged_at.map(|t| t + self.interval)
    }

    /// The summary to write now, if there is anything to say and the
    /// interval has passed; the counts start over.
    pub fn poll_summary(&mut self, now: Instant) -> Option<DropSummary> {
        if !self.pending() || self.logged_at.is_some_and(|t| now < t + self.interval) {
            return None;
        }
        let summary = DropSummary {
            counts: std::mem::take(&mut self.counts),
            over: self.logged_at.map(|t| now.saturating_duration_since(t)),
        };
        self.logged_at = Some(now);
        Some(summary)
    }
}

impl fmt::Display for DropSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        let last = |last: Option<(u16, Ipv4Addr)>| {
            last.map(|(id, src)| format!(" (last: call {id} from {src})"))
                .unwrap_or_default()
        };
        f.write_str("GRE datagrams dropped")?;
        if let Some(over) = self.over {
            write!(f, " in the last {:.0} s", over.as_secs_f64())?;
        }
        write!(
            f,
            ": {} for unknown calls{}, {} from the wrong address{}, {} malformed or truncated, {} over a call's full queue",
            c.unknown_call,
            last(c.last_unknown),
            c.wrong_source,
            last(c.last_wrong_source),
            c.malformed,
            c.queue_full,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 201, 1, 2);

    fn ipv4(src: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
        let mut d = vec![0u8; 20];
        d[0] = 0x45;
        let total = (20 + payload.len()) as u16;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        d[9] = proto;
        d[12..16].copy_from_slice(&src.octets());
        d.extend_from_slice(payload);
        d
    }

    /// Enhanced GRE (version 1, PPP) with a sequence number.
    fn gre(call_id: u16) -> Vec<u8> {
        let mut g = vec![0x30, 0x01, 0x88, 0x0b, 0x00, 0x04];
        g.extend_from_slice(&call_id.to_be_bytes());
        g.extend_from_slice(&1u32.to_be_bytes());
        g.extend_from_slice(b"ppp!");
        g
    }

    /// A table with call 1 (the client's).
    fn table() -> CallTable<&'static str> {
        let mut t = CallTable::new();
        assert_eq!(t.register(CLIENT, "call one"), Some(1));
        t
    }

    fn malformed(t: &CallTable<&str>, d: &[u8]) -> Malformed {
        match t.route(d) {
            Err(Misroute::Malformed(m)) => m,
            other => panic!("not malformed: {other:?}"),
        }
    }

    #[test]
    fn routes_a_calls_own_datagram() {
        let t = table();
        let d = ipv4(CLIENT, 47, &gre(1));
        let r = t.route(&d).unwrap();
        assert_eq!(r.call_id, 1);
        assert_eq!(&d[r.gre.clone()], &gre(1)[..]);
        assert_eq!(*r.target, "call one");
    }

    #[test]
    fn unknown_call_and_wrong_source() {
        let t = table();
        assert_eq!(
            t.route(&ipv4(CLIENT, 47, &gre(2))).unwrap_err(),
            Misroute::UnknownCall {
                call_id: 2,
                source: CLIENT
            }
        );
        let spoofer = Ipv4Addr::new(10, 201, 2, 2);
        assert_eq!(
            t.route(&ipv4(spoofer, 47, &gre(1))).unwrap_err(),
            Misroute::WrongSource {
                call_id: 1,
                source: spoofer
            }
        );
    }

    #[test]
    fn hostile_ip_headers() {
        let t = table();
        let good = ipv4(CLIENT, 47, &gre(1));
        assert_eq!(malformed(&t, &[]), Malformed::TruncatedIp(0));
        assert_eq!(malformed(&t, &good[..12]), Malformed::TruncatedIp(12));
        assert_eq!(malformed(&t, &good[..19]), Malformed::TruncatedIp(19));
        // IHL below 5, for every value.
        for words in 0..5u8 {
            let mut d = good.clone();
            d[0] = 0x40 | words;
            assert_eq!(malformed(&t, &d), Malformed::BadHeaderLength(words));
        }
        // IHL 15 (60 octets) on a shorter datagram.
        let mut d = good.clone();
        d[0] = 0x4f;
        assert_eq!(malformed(&t, &d), Malformed::TruncatedIp(good.len()));
        // IPv6 and version 0.
        let mut d = good.clone();
        d[0] = 0x65;
        assert_eq!(malformed(&t, &d), Malformed::NotIpv4(6));
        d[0] = 0x05;
        assert_eq!(malformed(&t, &d), Malformed::NotIpv4(0));
        // Not GRE.
        assert_eq!(
            malformed(&t, &ipv4(CLIENT, 17, &gre(1))),
            Malformed::NotGre(17)
        );
        // Fragments: a first one (More Fragments) and a later one.
        let mut d = good.clone();
        d[6] = 0x20;
        assert_eq!(malformed(&t, &d), Malformed::Fragment);
        let mut d = good.clone();
        d[7] = 0x01;
        assert_eq!(malformed(&t, &d), Malformed::Fragment);
        // Don't Fragment alone is a whole datagram.
        let mut d = good.clone();
        d[6] = 0x40;
        assert_eq!(t.route(&d).unwrap().call_id, 1);
    }

    #[test]
    fn ip_options_are_skipped() {
        let t = table();
        // IHL 6: one word of options (four No-Operation octets).
        let mut d = ipv4(CLIENT, 47, &[]);
        d[0] = 0x46;
        d.extend_from_slice(&[1, 1, 1, 1]);
        d.extend_from_slice(&gre(1));
        let total = d.len() as u16;
        d[2..4].copy_from_slice(&total.to_be_bytes());
        let r = t.route(&d).unwrap();
        assert_eq!(r.gre, 24..d.len());
        assert_eq!(&d[r.gre], &gre(1)[..]);
    }

    #[test]
    fn total_length_bounds_the_gre_packet() {
        let t = table();
        // Trailing octets after the IP datagram (Ethernet padding) are
        // not GRE.
        let mut d = ipv4(CLIENT, 47, &gre(1));
        let len = d.len();
        d.extend_from_slice(&[0; 6]);
        assert_eq!(t.route(&d).unwrap().gre, 20..len);
        // A Total Length past the end, or inside the header, is ignored.
        for total in [u16::MAX, 4] {
            let mut d = ipv4(CLIENT, 47, &gre(1));
            d[2..4].copy_from_slice(&total.to_be_bytes());
            assert_eq!(t.route(&d).unwrap().gre, 20..d.len());
        }
    }

    #[test]
    fn hostile_gre_headers() {
        let t = table();
        let g = gre(1);
        for cut in 0..BASE_HEADER_LEN {
            assert_eq!(
                malformed(&t, &ipv4(CLIENT, 47, &g[..cut])),
                Malformed::TruncatedGre(cut)
            );
        }
        // Plain GRE (version 0, RFC 2784) and version 7.
        let mut plain = g.clone();
        plain[1] = 0x00;
        assert_eq!(
            malformed(&t, &ipv4(CLIENT, 47, &plain)),
            Malformed::GreVersion(0)
        );
        plain[1] = 0x07;
        assert_eq!(
            malformed(&t, &ipv4(CLIENT, 47, &plain)),
            Malformed::GreVersion(7)
        );
        // Version 1 carrying IPv4 instead of PPP.
        let mut ip = g.clone();
        ip[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        assert_eq!(
            malformed(&t, &ipv4(CLIENT, 47, &ip)),
            Malformed::GreProtocol(0x0800)
        );
        // The demultiplexer agrees with the GRE decoder's own peek.
        for d in [&g[..], &plain, &ip, &g[..7]] {
            assert_eq!(gre_call_id(d).ok(), crate::gre::peek_call_id(d));
        }
    }

    #[test]
    fn call_ids_are_unique_never_zero_and_taken_in_turn() {
        let mut t = CallTable::new();
        let peer = Ipv4Addr::new(192, 0, 2, 1);
        let a = t.register(peer, 'a').unwrap();
        let b = t.register(peer, 'b').unwrap();
        assert_eq!((a, b), (1, 2));
        assert_eq!(t.len(), 2);
        assert_eq!(t.release(a), Some('a'));
        assert_eq!(t.release(a), None);
        // Not reused at once.
        assert_eq!(t.register(peer, 'c'), Some(3));
        assert_eq!(t.peer(3), Some(peer));
        assert_eq!(t.peer(a), None);
    }

    #[test]
    fn a_full_table_registers_nothing_and_wraps_past_zero() {
        let mut t = CallTable::new();
        let peer = Ipv4Addr::new(192, 0, 2, 1);
        for want in 1..=u16::MAX {
            assert_eq!(t.register(peer, ()), Some(want));
        }
        assert_eq!(t.len(), usize::from(u16::MAX));
        assert_eq!(t.register(peer, ()), None);
        // A freed ID is found again, after the wrap (0 is skipped).
        t.release(9);
        assert_eq!(t.register(peer, ()), Some(9));
        assert!(!t.is_empty());
    }

    #[test]
    fn summaries_are_rate_limited() {
        let interval = Duration::from_secs(5);
        let src = Ipv4Addr::new(192, 0, 2, 7);
        let t0 = Instant::now();
        let mut log = DropLog::new(interval);
        assert_eq!(log.due(), None, "nothing to say");
        assert_eq!(log.poll_summary(t0), None);
        // The first drop after a quiet spell is summarised at once.
        log.count(&Misroute::UnknownCall {
            call_id: 9,
            source: src,
        });
        let first = log.poll_summary(t0).unwrap();
        assert_eq!(first.over, None);
        assert_eq!(first.counts.unknown_call, 1);
        assert_eq!(
            first.to_string(),
            "GRE datagrams dropped: 1 for unknown calls (last: call 9 from 192.0.2.7), \
             0 from the wrong address, 0 malformed or truncated, 0 over a call's full queue"
        );
        assert!(!log.pending());
        // A flood right after waits for the interval, counted.
        for _ in 0..100_000 {
            log.count(&Misroute::UnknownCall {
                call_id: 9,
                source: src,
            });
        }
        log.count(&Misroute::WrongSource {
            call_id: 1,
            source: src,
        });
        log.count(&Misroute::Malformed(Malformed::Fragment));
        log.count_queue_full();
        assert_eq!(log.poll_summary(t0 + Duration::from_secs(1)), None);
        assert!(log.pending());
        assert_eq!(log.counts().unknown_call, 100_000);
        assert_eq!(log.counts().total(), 100_003);
        assert_eq!(log.due(), Some(t0 + interval));
        let second = log.poll_summary(t0 + interval).unwrap();
        assert_eq!(second.over, Some(interval));
        assert_eq!(
            second.to_string(),
            "GRE datagrams dropped in the last 5 s: 100000 for unknown calls (last: call 9 from 192.0.2.7), \
             1 from the wrong address (last: call 1 from 192.0.2.7), 1 malformed or truncated, 1 over a call's full queue"
        );
        assert!(!log.pending());
        assert_eq!(log.due(), None);
    }
}
