//! IKEv1 fragmentation: the extension Cisco, Microsoft and strongSwan
//! share (no RFC; announced by the "FRAGMENTATION" vendor ID). A whole
//! ISAKMP message, header and encrypted body as they are, is cut into
//! pieces; each piece travels as an unencrypted ISAKMP message with the same
//! cookies, exchange type and message ID whose one payload is a FRAGMENT
//! payload (type 132):
//!
//! ```text
//! generic payload header (4) | Fragment ID (2) | Fragment Number (1) | Flags (1) | data
//! ```
//!
//! numbers count from 1 and flag bit 0 marks the last piece. Main Mode
//! messages 5 and 6 with certificates are over 1500 bytes, which a path
//! that drops IP fragments (common behind NAT) never delivers whole.
//!
//! Reassembly takes hostile input: pieces are bounded in number and bytes,
//! a second different copy of a piece or a piece past the last ends the
//! reassembly, and one that does not complete in time is forgotten.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::wire::{payload, Header, GENERIC_HEADER_LEN, HEADER_LEN, MAX_MESSAGE_LEN};

/// Flag bit 0: the last fragment.
pub const LAST_FRAGMENT: u8 = 0x01;
/// The fragment payload's own header: the generic 4 bytes, ID, number, flags.
pub const FRAGMENT_HEADER_LEN: usize = GENERIC_HEADER_LEN + 4;
/// strongSwan's default (`charon.fragment_size`): 1280 bytes of IP packet.
/// Less the IPv4 and UDP headers and the non-ESP marker of port 4500, an
/// ISAKMP fragment message of this size fits every IPv4 path.
pub const DEFAULT_FRAGMENT_SIZE: usize = 1280 - 20 - 8 - 4;
/// Fragments of one message we accept at most (16 KiB in 1 KiB pieces).
pub const MAX_FRAGMENTS: u8 = 16;
/// A reassembly not finished in this time is dropped.
pub const REASSEMBLY_TIMEOUT: Duration = Duration::from_secs(10);

/// One parsed FRAGMENT payload body (after the generic header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub id: u16,
    pub number: u8,
    pub last: bool,
    pub data: &'a [u8],
}

impl<'a> Fragment<'a> {
    pub fn parse(body: &'a [u8]) -> Option<Fragment<'a>> {
        if body.len() < 4 {
            return None;
        }
        Some(Fragment {
            id: u16::from_be_bytes([body[0], body[1]]),
            number: body[2],
            last: body[3] & LAST_FRAGMENT != 0,
            data: &body[4..],
        })
    }
}

/// Cuts `message` (a whole ISAKMP message) into fragment messages of at
/// most `max_len` bytes each, under `header` (the message's own header:
/// cookies, exchange and message ID are kept; flags are cleared).
pub fn fragment(message: &[u8], header: &Header, id: u16, max_len: usize) -> Vec<Vec<u8>> {
    let room = max_len
        .saturating_sub(HEADER_LEN + FRAGMENT_HEADER_LEN)
        .max(64);
    let count = message.len().div_ceil(room);
    let mut out = Vec::with_capacity(count);
    for (i, piece) in message.chunks(room).enumerate() {
        let last = i + 1 == count;
        let total = HEADER_LEN + FRAGMENT_HEADER_LEN + piece.len();
        let mut m = Vec::with_capacity(total);
        m.resize(HEADER_LEN, 0);
        let h = Header {
            next_payload: payload::FRAGMENT,
            flags: 0,
            length: total as u32,
            ..*header
        };
        h.write(&mut m);
        m.extend_from_slice(&[0, 0]);
        m.extend_from_slice(&((FRAGMENT_HEADER_LEN + piece.len()) as u16).to_be_bytes());
        m.extend_from_slice(&id.to_be_bytes());
        m.push((i + 1) as u8);
        m.push(if last { LAST_FRAGMENT } else { 0 });
        m.extend_from_slice(piece);
        out.push(m);
    }
    out
}

/// What one more fragment did to a reassembly.
#[derive(Debug, PartialEq, Eq)]
pub enum Reassembled {
    /// More pieces are needed.
    Incomplete,
    /// Every piece is here: the whole message.
    Complete(Vec<u8>),
    /// The piece was refused; the reason is for the log.
    Refused(&'static str),
}

/// The pieces of one fragmented message from one peer.
#[derive(Debug, Default)]
pub struct Reassembly {
    id: Option<u16>,
    pieces: BTreeMap<u8, Vec<u8>>,
    last: Option<u8>,
    bytes: usize,
    started: Option<Instant>,
}

impl Reassembly {
    /// When this reassembly is given up, if one is under way.
    pub fn deadline(&self) -> Option<Instant> {
        self.started.map(|s| s + REASSEMBLY_TIMEOUT)
    }

    /// Drops the pieces when the reassembly took too long.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.deadline().is_some_and(|d| now >= d) {
            *self = Reassembly::default();
            return true;
        }
        false
    }

    fn reset(&mut self, id: u16, now: Instant) {
        *self = Reassembly {
            id: Some(id),
            started: Some(now),
            ..Reassembly::default()
        };
    }

    /// Adds the FRAGMENT payload body `body`.
    pub fn add(&mut self, now: Instant, body: &[u8]) -> Reassembled {
        self.expire(now);
        let Some(f) = Fragment::parse(body) else {
            return Reassembled::Refused("a fragment payload shorter than its header");
        };
        if f.number == 0 || f.number > MAX_FRAGMENTS {
            return Reassembled::Refused("a fragment number out of range");
        }
        match self.id {
            // A newer message replaces an unfinished older one (strongSwan
            // counts IDs up; a retransmission keeps its ID).
            Some(id) if f.id != id => self.reset(f.id, now),
            None => self.reset(f.id, now),
            _ => {}
        }
        if let Some(old) = self.pieces.get(&f.number) {
            if old.as_slice() == f.data {
                return Reassembled::Incomplete;
            }
            *self = Reassembly::default();
            return Reassembled::Refused("two different fragments with one number");
        }
        if f.last {
            if self.last.is_some() || self.pieces.keys().any(|&n| n > f.number) {
                *self = Reassembly::default();
                return Reassembled::Refused("fragments past the last one");
            }
            self.last = Some(f.number);
        } else if self.last.is_some_and(|l| f.number > l) {
            *self = Reassembly::default();
            return Reassembled::Refused("fragments past the last one");
        }
        if self.bytes + f.data.len() > MAX_MESSAGE_LEN {
            *self = Reassembly::default();
            return Reassembled::Refused("fragments over the message size limit");
        }
        self.bytes += f.data.len();
        self.pieces.insert(f.number, f.data.to_vec());
        match self.last {
            Some(last) if self.pieces.len() == last as usize => {
                let whole: Vec<u8> = std::mem::take(&mut self.pieces)
                    .into_values()
                    .flatten()
                    .collect();
                *self = Reassembly::default();
                Reassembled::Complete(whole)
            }
            _ => Reassembled::Incomplete,
        }
    }
}
