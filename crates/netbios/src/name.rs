//! NetBIOS names: 16 octets (15 characters and a suffix byte) and a scope.
//!
//! RFC 1001 §14.1 maps the 16 octets to 32 characters `A`..`P` (one per
//! half-octet); §14.2 and RFC 1002 §4.1 carry that as the first label of a
//! DNS-style name whose further labels are the scope identifier. In name
//! service packets a name may end in a label string pointer (RFC 1002
//! §4.1.4, RFC 883 compression).

use std::fmt;

use thiserror::Error;

/// RFC 1002 §4.1: an encoded name, all labels and lengths, is at most 255 octets.
pub const MAX_ENCODED_LEN: usize = 255;
/// RFC 883 labels are at most 63 octets.
const MAX_LABEL: usize = 63;
/// How many label string pointers one name may follow before we give up:
/// pointers must point backwards, so this only bounds work, not validity.
const MAX_POINTERS: usize = 8;

/// Why a name could not be built or decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The packet ended inside a name.
    #[error("the packet ends inside a NetBIOS name")]
    Truncated,
    /// The first label is not 32 octets long.
    #[error("the first label of a NetBIOS name is {0} octets, not 32 (RFC 1001 §14.1)")]
    BadFirstLabelLength(usize),
    /// A character of the first label is outside `A`..`P`.
    #[error("the first label of a NetBIOS name holds a character outside A..P (RFC 1001 §14.1)")]
    BadFirstLevelCharacter,
    /// A scope label is empty or longer than 63 octets, or holds a dot.
    #[error("a NetBIOS scope label is empty, longer than 63 octets or holds a dot")]
    BadScopeLabel,
    /// The encoded name is longer than 255 octets.
    #[error("the encoded NetBIOS name is longer than 255 octets (RFC 1002 §4.1)")]
    TooLong,
    /// A label length octet has the reserved top bits 01 or 10.
    #[error("a label length octet uses the reserved prefix 0x{0:02x}")]
    ReservedLabelType(u8),
    /// A label string pointer where none is allowed, or one that does not point backwards.
    #[error("a label string pointer is not allowed here or does not point backwards")]
    BadPointer,
    /// The name given as text has more than 15 characters.
    #[error("a NetBIOS name has at most 15 characters, not {0}")]
    TooManyCharacters(usize),
    /// The name given as text is empty.
    #[error("a NetBIOS name is not empty")]
    Empty,
}

/// A NetBIOS name: the 16 octets and the scope identifier (empty for none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetbiosName {
    octets: [u8; 16],
    scope: String,
}

impl NetbiosName {
    /// Builds a name from at most 15 characters, upper-cased and padded with
    /// spaces, and the suffix byte (0x00 workstation, 0x20 server, 0x1D master
    /// browser …), with no scope.
    pub fn new(name: &str, suffix: u8) -> Result<Self, NameError> {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return Err(NameError::Empty);
        }
        if bytes.len() > 15 {
            return Err(NameError::TooManyCharacters(bytes.len()));
        }
        let mut octets = [b' '; 16];
        for (o, b) in octets.iter_mut().zip(bytes) {
            *o = b.to_ascii_uppercase();
        }
        octets[15] = suffix;
        Ok(Self {
            octets,
            scope: String::new(),
        })
    }

    /// Builds a name from its 16 raw octets and a scope (checked).
    pub fn from_octets(octets: [u8; 16], scope: &str) -> Result<Self, NameError> {
        let name = Self {
            octets,
            scope: scope.to_owned(),
        };
        if !scope.is_empty() {
            for label in scope.split('.') {
                if label.is_empty() || label.len() > MAX_LABEL {
                    return Err(NameError::BadScopeLabel);
                }
            }
        }
        if name.encoded_len() > MAX_ENCODED_LEN {
            return Err(NameError::TooLong);
        }
        Ok(name)
    }

    /// The same name in another scope.
    pub fn with_scope(&self, scope: &str) -> Result<Self, NameError> {
        Self::from_octets(self.octets, scope)
    }

    /// The 16 octets.
    pub fn octets(&self) -> &[u8; 16] {
        &self.octets
    }

    /// The suffix byte (the 16th octet).
    pub fn suffix(&self) -> u8 {
        self.octets[15]
    }

    /// The scope identifier, empty for none.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Whether the name starts with `*` (the wildcard of node status
    /// queries and broadcast datagrams): MS-NBTE §3.1.5.1 says a node never
    /// defends such a name.
    pub fn is_wildcard(&self) -> bool {
        self.octets[0] == b'*'
    }

    /// RFC 1001 §14.1: the 32-character first-level encoding of the 16
    /// octets, each half-octet added to 'A', followed by `.scope` if any.
    pub fn first_level(&self) -> String {
        let mut s = String::with_capacity(33 + self.scope.len());
        for b in self.octets {
            s.push(char::from(b'A' + (b >> 4)));
            s.push(char::from(b'A' + (b & 0x0f)));
        }
        if !self.scope.is_empty() {
            s.push('.');
            s.push_str(&self.scope);
        }
        s
    }

    /// How many octets [`Self::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let scope = if self.scope.is_empty() {
            0
        } else {
            self.scope.len() + 1
        };
        1 + 32 + scope + 1
    }

    /// RFC 1001 §14.2 / RFC 1002 §4.1: the second-level encoding, a length
    /// octet (0x20), the 32 first-level characters, one label per scope
    /// part and the terminating zero octet. Never compressed.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(32);
        for b in self.octets {
            out.push(b'A' + (b >> 4));
            out.push(b'A' + (b & 0x0f));
        }
        if !self.scope.is_empty() {
            for label in self.scope.split('.') {
                // Checked at construction: 1..=63 octets.
                out.push(label.len() as u8);
                out.extend_from_slice(label.as_bytes());
            }
        }
        out.push(0);
    }

    /// Decodes a name at `offset` of `packet`; returns it and the offset
    /// just after it. With `allow_pointers` a label string pointer (RFC 1002
    /// §4.1.4) may end the name; it must point backwards, so a packet can
    /// never make the decoder loop.
    pub fn decode(
        packet: &[u8],
        offset: usize,
        allow_pointers: bool,
    ) -> Result<(Self, usize), NameError> {
        let mut labels: Vec<&[u8]> = Vec::new();
        let mut pos = offset;
        let mut end_after: Option<usize> = None;
        let mut pointers = 0;
        let mut total = 0usize;
        loop {
            let len = *packet.get(pos).ok_or(NameError::Truncated)?;
            match len & 0xc0 {
                0x00 => {}
                0xc0 => {
                    if !allow_pointers || pointers == MAX_POINTERS {
                        return Err(NameError::BadPointer);
                    }
                    let low = *packet.get(pos + 1).ok_or(NameError::Truncated)?;
                    let target = usize::from(u16::from_be_bytes([len & 0x3f, low]));
                    if target >= pos {
                        return Err(NameError::BadPointer);
                    }
                    end_after.get_or_insert(pos + 2);
                    pointers += 1;
                    pos = target;
                    continue;
                }
                other => return Err(NameError::ReservedLabelType(other)),
            }
            let len = usize::from(len);
            total += 1 + len;
            // RFC 1035 §2.3.4: 255 octets at most, length octets and the
            // final zero included; the same bound `from_octets` applies, so
            // whatever decodes also encodes and decodes again.
            if total > MAX_ENCODED_LEN {
                return Err(NameError::TooLong);
            }
            if len == 0 {
                pos += 1;
                break;
            }
            let label = packet
                .get(pos + 1..pos + 1 + len)
                .ok_or(NameError::Truncated)?;
            labels.push(label);
            pos += 1 + len;
        }
        let end = end_after.unwrap_or(pos);
        let first = labels.first().ok_or(NameError::BadFirstLabelLength(0))?;
        if first.len() != 32 {
            return Err(NameError::BadFirstLabelLength(first.len()));
        }
        let mut octets = [0u8; 16];
        for (o, pair) in octets.iter_mut().zip(first.chunks_exact(2)) {
            let hi = pair[0].wrapping_sub(b'A');
            let lo = pair[1].wrapping_sub(b'A');
            if hi > 15 || lo > 15 {
                return Err(NameError::BadFirstLevelCharacter);
            }
            *o = (hi << 4) | lo;
        }
        let mut scope = String::new();
        for label in &labels[1..] {
            if label.contains(&b'.') {
                return Err(NameError::BadScopeLabel);
            }
            if !scope.is_empty() {
                scope.push('.');
            }
            // Scope labels are DNS labels; bytes outside ASCII are kept as
            // replacement characters rather than refused.
            scope.push_str(&String::from_utf8_lossy(label));
        }
        let name = Self::from_octets(octets, &scope)?;
        Ok((name, end))
    }
}

/// Samba's notation: the 15 characters without trailing spaces, the suffix
/// in hex in angle brackets, then `.scope`; unprintable octets as `\xNN`.
impl fmt::Display for NetbiosName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let chars = &self.octets[..15];
        let trimmed = chars.len() - chars.iter().rev().take_while(|&&b| b == b' ').count();
        for &b in &chars[..trimmed] {
            if b.is_ascii_graphic() || b == b' ' {
                write!(f, "{}", char::from(b))?;
            } else {
                write!(f, "\\x{b:02x}")?;
            }
        }
        write!(f, "<{:02x}>", self.suffix())?;
        if !self.scope.is_empty() {
            write!(f, ".{}", self.scope)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1001 §14.1 example: "FRED" padded with spaces encodes to
    /// EGFCEFEECACACACACACACACACACACACA; with scope NETBIOS.COM, §14.2
    /// shows the wire form 0x20 EGFC… 0x07 NETBIOS 0x03 COM 0x00.
    #[test]
    fn rfc1001_fred_example() {
        let fred = NetbiosName::new("FRED", b' ').unwrap();
        assert_eq!(fred.first_level(), "EGFCEFEECACACACACACACACACACACACA");
        let scoped = fred.with_scope("NETBIOS.COM").unwrap();
        assert_eq!(
            scoped.first_level(),
            "EGFCEFEECACACACACACACACACACACACA.NETBIOS.COM"
        );
        let mut wire = Vec::new();
        scoped.encode(&mut wire);
        let mut expected = vec![0x20];
        expected.extend_from_slice(b"EGFCEFEECACACACACACACACACACACACA");
        expected.push(7);
        expected.extend_from_slice(b"NETBIOS");
        expected.push(3);
        expected.extend_from_slice(b"COM");
        expected.push(0);
        assert_eq!(wire, expected);
        assert_eq!(wire.len(), scoped.encoded_len());
        let (back, end) = NetbiosName::decode(&wire, 0, false).unwrap();
        assert_eq!(back, scoped);
        assert_eq!(end, wire.len());
        assert_eq!(back.to_string(), "FRED<20>.NETBIOS.COM");
    }

    /// The longest name (255 octets on the wire, RFC 1035 §2.3.4) goes both
    /// ways; one octet more is refused by the decoder and by the builder
    /// alike (a fuzzer found the decoder one octet stricter than the builder).
    #[test]
    fn longest_name_round_trips_and_one_more_is_refused() {
        let label = |n: usize| "S".repeat(n);
        let scope = format!("{}.{}.{}.{}", label(63), label(63), label(63), label(28));
        let longest = NetbiosName::new("PC", 0)
            .unwrap()
            .with_scope(&scope)
            .unwrap();
        assert_eq!(longest.encoded_len(), MAX_ENCODED_LEN);
        let mut wire = Vec::new();
        longest.encode(&mut wire);
        assert_eq!(wire.len(), MAX_ENCODED_LEN);
        assert_eq!(
            NetbiosName::decode(&wire, 0, false),
            Ok((longest, wire.len()))
        );

        let scope = format!("{}.{}.{}.{}", label(63), label(63), label(63), label(29));
        assert_eq!(
            NetbiosName::new("PC", 0).unwrap().with_scope(&scope),
            Err(NameError::TooLong)
        );
        let mut wire = wire.clone();
        let last_label = wire.len() - 30;
        assert_eq!(wire[last_label], 28);
        wire[last_label] = 29;
        wire.insert(last_label + 1, b'S');
        assert_eq!(
            NetbiosName::decode(&wire, 0, false),
            Err(NameError::TooLong)
        );
    }

    #[test]
    fn suffix_and_case() {
        let n = NetbiosName::new("workgroup", 0x1d).unwrap();
        assert_eq!(n.octets(), b"WORKGROUP      \x1d");
        assert_eq!(n.to_string(), "WORKGROUP<1d>");
        assert_eq!(
            NetbiosName::new("SIXTEENCHARACTER", 0),
            Err(NameError::TooManyCharacters(16))
        );
        assert_eq!(NetbiosName::new("", 0), Err(NameError::Empty));
    }

    #[test]
    fn pointer_must_point_backwards() {
        let n = NetbiosName::new("A", 0).unwrap();
        let mut p = Vec::new();
        n.encode(&mut p);
        let at = p.len();
        p.extend_from_slice(&[0xc0, 0x00]);
        let (back, end) = NetbiosName::decode(&p, at, true).unwrap();
        assert_eq!(back, n);
        assert_eq!(end, at + 2);
        assert_eq!(
            NetbiosName::decode(&p, at, false),
            Err(NameError::BadPointer)
        );
        // A pointer to itself would loop.
        let selfref = [0xc0, 0x00];
        assert_eq!(
            NetbiosName::decode(&selfref, 0, true),
            Err(NameError::BadPointer)
        );
    }

    #[test]
    fn bad_first_label() {
        let mut p = vec![32];
        p.extend_from_slice(&[b'Z'; 32]);
        p.push(0);
        assert_eq!(
            NetbiosName::decode(&p, 0, false),
            Err(NameError::BadFirstLevelCharacter)
        );
        assert_eq!(
            NetbiosName::decode(&[3, b'A', b'B', b'C', 0], 0, false),
            Err(NameError::BadFirstLabelLength(3))
        );
        assert_eq!(
            NetbiosName::decode(&[0x40], 0, false),
            Err(NameError::ReservedLabelType(0x40))
        );
        assert_eq!(
            NetbiosName::decode(&p[..10], 0, false),
            Err(NameError::Truncated)
        );
    }
}
