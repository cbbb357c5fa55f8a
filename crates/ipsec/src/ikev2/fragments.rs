//! Reassembly of IKE message fragments (RFC 7383 §2.6).
//!
//! Each fragment is verified and decrypted on its own before it is kept
//! (§2.6: "the receiver MUST verify each fragment's integrity"), so a
//! forged fragment never displaces a real one. The issue asks for no cap
//! on the fragment count, so the bound is on bytes: the decrypted content
//! of one message may not exceed [`MAX_REASSEMBLED`], and a message that
//! never completes is dropped by the caller's timeout (§2.6.1 leaves the
//! timing to the implementation).

use std::collections::BTreeMap;
use thiserror::Error;
use zeroize::Zeroizing;

use super::encrypted::{seal_fragment, DirectionKeys, SkError, SkTransform};
use super::wire::{Header, GENERIC_HEADER_LEN, HEADER_LEN};

/// Upper bound on one reassembled message (inner payload bytes). IKE_AUTH
/// with a certificate chain and EAP is a few kilobytes; 64 KiB is the
/// largest IKE message length a UDP datagram could have carried.
pub const MAX_REASSEMBLED: usize = 64 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FragmentError {
    /// §2.5: Fragment Number starts at 1 and is at most Total Fragments.
    #[error("fragment {number} of {total} is out of range")]
    OutOfRange { number: u16, total: u16 },
    /// §2.6: a fragment with a different total than its predecessors
    /// (while this message is assembled) is dropped.
    #[error("fragment says {got} fragments, earlier ones said {expected}")]
    TotalChanged { expected: u16, got: u16 },
    #[error("the reassembled message would exceed {MAX_REASSEMBLED} bytes")]
    TooLarge,
    /// §2.5: only the first fragment names the inner chain's first payload.
    #[error("fragment 1 names no first payload")]
    NoFirstPayload,
}

/// Fragments of one message (one Message ID) being reassembled.
#[derive(Default)]
pub struct Reassembly {
    total: u16,
    first_payload: u8,
    parts: BTreeMap<u16, Zeroizing<Vec<u8>>>,
    bytes: usize,
}

/// A complete message: the first inner payload type and the concatenated
/// inner payload bytes.
pub struct Reassembled {
    pub first_payload: u8,
    pub inner: Zeroizing<Vec<u8>>,
}

impl Reassembly {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one verified, decrypted fragment. `next` is the SKF payload's
    /// Next Payload. Returns the whole message once every fragment is in;
    /// duplicates are ignored.
    pub fn add(
        &mut self,
        number: u16,
        total: u16,
        next: u8,
        content: Zeroizing<Vec<u8>>,
    ) -> Result<Option<Reassembled>, FragmentError> {
        if number == 0 || number > total {
            return Err(FragmentError::OutOfRange { number, total });
        }
        if self.total == 0 {
            self.total = total;
        } else if self.total != total {
            return Err(FragmentError::TotalChanged {
                expected: self.total,
                got: total,
            });
        }
        if self.parts.contains_key(&number) {
            return Ok(None);
        }
        if number == 1 {
            if next == 0 {
                return Err(FragmentError::NoFirstPayload);
            }
            self.first_payload = next;
        }
        if self.bytes + content.len() > MAX_REASSEMBLED {
            return Err(FragmentError::TooLarge);
        }
        self.bytes += content.len();
        self.parts.insert(number, content);
        if self.parts.len() < self.total as usize {
            return Ok(None);
        }
        let mut inner = Zeroizing::new(Vec::with_capacity(self.bytes));
        for part in self.parts.values() {
            inner.extend_from_slice(part);
        }
        self.parts.clear();
        self.bytes = 0;
        Ok(Some(Reassembled {
            first_payload: self.first_payload,
            inner,
        }))
    }

    /// How many bytes are held (for memory accounting by the caller).
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }
}

/// Splits a protected message's inner payloads into SKF fragment messages
/// of at most `max_message_len` bytes each (RFC 7383 §2.5.1; strongSwan and
/// Windows use about 1280 for IPv4). Fails only if the limit leaves no room
/// for content or the message would need more than 65535 fragments.
pub fn fragment_message(
    transform: &SkTransform,
    keys: DirectionKeys<'_>,
    header: &Header,
    inner_first: u8,
    inner: &[u8],
    max_message_len: usize,
) -> Result<Vec<Vec<u8>>, SkError> {
    // Header, SKF generic header and its two numbers, then the largest
    // overhead the transform can add (a whole padding block for CBC).
    let fixed = HEADER_LEN + GENERIC_HEADER_LEN + 4 + transform.overhead(0);
    let chunk = max_message_len
        .checked_sub(fixed)
        .filter(|&c| c > 0)
        .ok_or(SkError::TooLong)?;
    let pieces: Vec<&[u8]> = if inner.is_empty() {
        vec![inner]
    } else {
        inner.chunks(chunk).collect()
    };
    let total = u16::try_from(pieces.len()).map_err(|_| SkError::TooLong)?;
    pieces
        .iter()
        .enumerate()
        .map(|(index, piece)| {
            seal_fragment(
                transform,
                keys,
                header,
                inner_first,
                index as u16 + 1,
                total,
                piece,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike_crypto::IkeCipher;
    use crate::ikev2::encrypted::{locate, open, SkCipher, SkInteg};
    use crate::ikev2::wire::{exchange, flags, payload};

    #[test]
    fn a_large_message_fragments_and_reassembles() {
        let transform = SkTransform {
            cipher: SkCipher::Cbc(IkeCipher::Aes256Cbc),
            integ: Some(SkInteg::HmacSha256_128),
        };
        let encr = [3u8; 32];
        let integ = [4u8; 32];
        let keys = DirectionKeys {
            encr: &encr,
            integ: &integ,
        };
        let header = Header::new([1; 8], [2; 8], exchange::IKE_AUTH, flags::RESPONSE, 1);
        let inner: Vec<u8> = (0..5000u32).map(|i| (i * 7) as u8).collect();
        let fragments = fragment_message(&transform, keys, &header, payload::CERT, &inner, 1280)
            .expect("split");
        assert_eq!(fragments.len(), 5);
        let mut r = Reassembly::new();
        let mut done = None;
        for message in fragments.iter().rev() {
            assert!(message.len() <= 1280, "{} bytes", message.len());
            let located = locate(message).expect("SKF");
            let (number, total) = located.fragment.expect("numbers");
            let content = open(&transform, keys, message, &located).expect("opens");
            done = r
                .add(number, total, located.next, content)
                .expect("accepted");
        }
        let done = done.expect("complete");
        assert_eq!(done.first_payload, payload::CERT);
        assert_eq!(&*done.inner, &inner[..]);
        assert!(fragment_message(&transform, keys, &header, payload::CERT, &inner, 60).is_err());
    }

    fn z(b: &[u8]) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(b.to_vec())
    }

    #[test]
    fn out_of_order_fragments_reassemble_in_order() {
        let mut r = Reassembly::new();
        assert!(r.add(3, 3, 0, z(b"ccc")).expect("ok").is_none());
        assert!(r.add(1, 3, 35, z(b"a")).expect("ok").is_none());
        assert!(r.add(1, 3, 35, z(b"a")).expect("duplicate").is_none());
        let done = r.add(2, 3, 0, z(b"bb")).expect("ok").expect("complete");
        assert_eq!(done.first_payload, 35);
        assert_eq!(&*done.inner, b"abbccc");
    }

    #[test]
    fn a_single_fragment_message_completes_at_once() {
        let mut r = Reassembly::new();
        let done = r.add(1, 1, 41, z(b"x")).expect("ok").expect("complete");
        assert_eq!(&*done.inner, b"x");
    }

    #[test]
    fn hostile_fragments_are_refused() {
        let mut r = Reassembly::new();
        assert_eq!(
            r.add(0, 2, 35, z(b"")).err(),
            Some(FragmentError::OutOfRange {
                number: 0,
                total: 2
            })
        );
        assert_eq!(
            r.add(3, 2, 0, z(b"")).err(),
            Some(FragmentError::OutOfRange {
                number: 3,
                total: 2
            })
        );
        r.add(2, 2, 0, z(b"b")).expect("ok");
        assert_eq!(
            r.add(1, 5, 35, z(b"a")).err(),
            Some(FragmentError::TotalChanged {
                expected: 2,
                got: 5
            })
        );
        assert_eq!(
            r.add(1, 2, 0, z(b"a")).err(),
            Some(FragmentError::NoFirstPayload)
        );
    }

    #[test]
    fn memory_is_bounded_by_bytes_not_by_count() {
        // many fragments are fine as long as the bytes stay within bounds
        let mut r = Reassembly::new();
        let total = 2000u16;
        for n in 2..=total {
            assert!(r.add(n, total, 0, z(&[0; 16])).expect("ok").is_none());
        }
        let done = r.add(1, total, 35, z(&[0; 16])).expect("ok").expect("done");
        assert_eq!(done.inner.len(), 16 * total as usize);
        // but not past the byte limit
        let mut r = Reassembly::new();
        let big = vec![0u8; 1200];
        let mut refused = false;
        for n in 1..=u16::MAX {
            match r.add(n, u16::MAX, 35, z(&big)) {
                Ok(None) => {}
                Ok(Some(_)) => panic!("cannot complete"),
                Err(FragmentError::TooLarge) => {
                    refused = true;
                    break;
                }
                Err(e) => panic!("unexpected {e}"),
            }
        }
        assert!(refused);
        assert!(r.held_bytes() <= MAX_REASSEMBLED);
    }
}
