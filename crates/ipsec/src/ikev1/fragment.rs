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
/// Fragments of one message we accept at most: a 16 KiB message in
/// 512-byte pieces. The byte limit (`MAX_MESSAGE_LEN`) bounds the memory.
pub const MAX_FRAGMENTS: u8 = 32;
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
    // At least 64 bytes a piece, and never more than 255 pieces (the
    // number is one byte).
    let room = max_len
        .saturating_sub(HEADER_LEN + FRAGMENT_HEADER_LEN)
        .max(64)
        .max(message.len().div_ceil(255));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ikev1::wire::{exchange, VERSION_1_0};

    fn header() -> Header {
        Header {
            initiator_cookie: [1; 8],
            responder_cookie: [2; 8],
            next_payload: 5,
            version: VERSION_1_0,
            exchange: exchange::MAIN_MODE,
            flags: 1,
            message_id: 0,
            length: 0,
        }
    }

    /// The FRAGMENT payload body of a fragment message.
    fn body(m: &[u8]) -> &[u8] {
        &m[HEADER_LEN + GENERIC_HEADER_LEN..]
    }

    fn piece(id: u16, number: u8, last: bool, data: &[u8]) -> Vec<u8> {
        let mut b = id.to_be_bytes().to_vec();
        b.push(number);
        b.push(u8::from(last));
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn a_message_cut_small_comes_back_whole_in_any_order() {
        let message: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        let pieces = fragment(&message, &header(), 3, 200);
        assert_eq!(pieces.len(), message.len().div_ceil(200 - 36));
        for p in &pieces {
            assert!(p.len() <= 200);
            let h = Header::parse(p).unwrap();
            assert_eq!(h.next_payload, payload::FRAGMENT);
            assert_eq!(h.flags, 0, "fragment messages are not encrypted as such");
            assert_eq!((h.initiator_cookie, h.responder_cookie), ([1; 8], [2; 8]));
        }
        let last = Fragment::parse(body(pieces.last().unwrap())).unwrap();
        assert!(last.last && last.id == 3 && last.number as usize == pieces.len());
        let now = Instant::now();
        let mut r = Reassembly::default();
        let mut order: Vec<&Vec<u8>> = pieces.iter().rev().collect();
        order.swap(1, 3);
        let (tail, head) = order.split_at(order.len() - 1);
        for p in tail {
            assert_eq!(r.add(now, body(p)), Reassembled::Incomplete);
        }
        // A retransmitted copy of a piece changes nothing.
        assert_eq!(r.add(now, body(tail[0])), Reassembled::Incomplete);
        assert_eq!(r.add(now, body(head[0])), Reassembled::Complete(message));
        assert_eq!(r.deadline(), None, "nothing kept after completion");
    }

    #[test]
    fn two_different_pieces_with_one_number_end_the_reassembly() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(
            r.add(now, &piece(1, 1, false, b"aaaa")),
            Reassembled::Incomplete
        );
        assert_eq!(
            r.add(now, &piece(1, 1, false, b"bbbb")),
            Reassembled::Refused("two different fragments with one number")
        );
        // Started over: piece 2 alone (last) does not complete anything.
        assert_eq!(
            r.add(now, &piece(1, 2, true, b"cc")),
            Reassembled::Incomplete
        );
    }

    #[test]
    fn numbers_out_of_range_and_past_the_last_are_refused() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(
            r.add(now, &piece(1, 0, false, b"x")),
            Reassembled::Refused("a fragment number out of range")
        );
        assert_eq!(
            r.add(now, &piece(1, MAX_FRAGMENTS + 1, false, b"x")),
            Reassembled::Refused("a fragment number out of range")
        );
        assert_eq!(
            r.add(now, &piece(1, 2, true, b"x")),
            Reassembled::Incomplete
        );
        assert_eq!(
            r.add(now, &piece(1, 3, false, b"x")),
            Reassembled::Refused("fragments past the last one")
        );
        assert_eq!(
            r.add(now, &piece(1, 3, false, b"x")),
            Reassembled::Incomplete
        );
        assert_eq!(
            r.add(now, &piece(1, 2, true, b"x")),
            Reassembled::Refused("fragments past the last one")
        );
        assert_eq!(
            r.add(now, &[0, 1, 2]),
            Reassembled::Refused("a fragment payload shorter than its header")
        );
    }

    #[test]
    fn more_bytes_than_a_message_may_have_are_refused() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        let big = vec![0u8; MAX_MESSAGE_LEN / 2 + 1];
        assert_eq!(
            r.add(now, &piece(1, 1, false, &big)),
            Reassembled::Incomplete
        );
        assert_eq!(
            r.add(now, &piece(1, 2, false, &big)),
            Reassembled::Refused("fragments over the message size limit")
        );
        assert_eq!(r.deadline(), None, "the pieces are dropped");
    }

    #[test]
    fn a_reassembly_that_never_completes_is_forgotten() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(
            r.add(now, &piece(9, 1, false, b"first")),
            Reassembled::Incomplete
        );
        assert_eq!(r.deadline(), Some(now + REASSEMBLY_TIMEOUT));
        assert!(!r.expire(now + REASSEMBLY_TIMEOUT / 2));
        assert!(r.expire(now + REASSEMBLY_TIMEOUT));
        assert_eq!(r.deadline(), None);
        // The late last piece alone is not a message.
        let later = now + REASSEMBLY_TIMEOUT * 2;
        assert_eq!(
            r.add(later, &piece(9, 2, true, b"last")),
            Reassembled::Incomplete
        );
    }

    #[test]
    fn a_new_fragment_id_replaces_an_unfinished_message() {
        let now = Instant::now();
        let mut r = Reassembly::default();
        assert_eq!(
            r.add(now, &piece(1, 1, false, b"old")),
            Reassembled::Incomplete
        );
        assert_eq!(
            r.add(now, &piece(2, 1, true, b"new")),
            Reassembled::Complete(b"new".to_vec())
        );
    }
}
