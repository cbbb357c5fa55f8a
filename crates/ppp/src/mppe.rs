//! MPPE, the Microsoft Point-to-Point Encryption data engine (RFC 3078).
//!
//! An [`MppeEncryptor`] turns a PPP protocol number and its payload into the
//! body of an MPPE packet; an [`MppeDecryptor`] does the reverse, in place.
//! The outer PPP protocol number (0x00FD, "compressed datagram") and CCP
//! itself (negotiation, Reset-Request/Ack) are the caller's business: this
//! module only needs to be told when the peer asked for a reset
//! ([`MppeEncryptor::reset_requested`]) and tells when we must ask for one
//! ([`MppeError::NeedReset`]).
//!
//! Wire format of the packet body (RFC 3078 §3):
//!
//! ```text
//!  0                   1                   2
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |A|B|C|D|    Coherency Count    | Encrypted data: PPP protocol field + payload ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```
//!
//! Key schedule (RFC 3078 §7 with RFC 3079 §3): each direction starts from
//! its 16-byte master key ([`crate::crypto::mppe_keys::MasterKeys`]); the
//! initial session key is derived from it, and every key change runs
//! RFC 3078 §7.3. In stateless mode the key changes before every packet
//! (including the first, coherency count 0); in stateful mode it changes
//! before every "flag" packet, the one whose coherency count's low octet is
//! 0xFF, i.e. once per 256 packets, and before the first packet sent after
//! a CCP Reset-Request (RFC 3078 §8.2).
//!
//! # Stateful mode as Windows and Linux implement it
//!
//! In stateful mode the A (flushed) bit means "the sender changed its
//! session key (RFC 3078 §7.3) and restarted RC4 with the new one", and
//! nothing else: it is set on flag packets and on the packet answering a
//! Reset-Request, and *not* on the first packet of the link (whose key is
//! the initial session key, RFC 3079 §3). The receiver changes its key once
//! for every packet with the A bit, after catching up on the flag packets
//! it missed. This is what Linux's ppp_mppe does ("contrary to RFC 3078,
//! sec. 3.1", found by experiment against Windows); a sender that only
//! restarted RC4 with the old key on a Reset-Request, or flagged its first
//! packet, desynchronises from it for good (issue 11).
//!
//! The price of these semantics: a key-changing packet that is lost or
//! overtaken cannot be noticed from the coherency count. Our encryptor
//! avoids the problem for its peer by answering a Reset-Request at the
//! block's flag packet (see `seal`), so its key follows from the count
//! alone. Linux's encryptor does not: it changes its key on every packet
//! after a Reset-Request, at any count, so each of its flushed packets
//! that is lost leaves a strict receiver (Linux's own decryptor included)
//! one key change behind for good, and every later reset adds one change
//! on both sides, never closing the gap.
//!
//! # Trial decryption of flushed packets (a deliberate deviation)
//!
//! RFC 3078 §8 assumes the receiver knows the sender's key state once a
//! flushed packet arrives; with lost flushed packets it does not. We are
//! therefore more forgiving than the strict model (and than the peer):
//! a stateful packet with the A bit is decrypted first with the key the
//! model predicts (one change per flag packet skipped, one for the A bit);
//! if that does not give a plausible datagram, with up to
//! `MAX_LOST_FLUSHES` (4) further key changes (RFC 3079 §3: each the next
//! key from the current one), one per flushed packet that may have been
//! lost, and the first key that gives a plausible datagram is kept.
//! "Plausible" is strict, so that a wrong key is accepted with negligible
//! probability: IPv4 (protocol 0x0021, possibly PFC-compressed) only with
//! version 4, IHL ≥ 5, a Total Length equal to the payload length and a
//! valid header checksum; IPv6 (0x0057) only with version 6 and a matching
//! Payload Length; IPCP and IPv6CP (which Linux encrypts too) only with the
//! predicted key, since nothing can check them. A flushed packet that
//! passes with no key is dropped ([`MppeError::Unverified`]) and changes
//! nothing: the decryptor discards until the next flushed packet (the
//! caller keeps sending Reset-Requests), which is tried from the same key
//! state, so the key change the dropped packet made is found by trial too.
//! This costs at most 5 RC4 key schedules, only for flushed packets.
//! Stateless mode, which changes the key on every packet and carries the
//! count of changes in the coherency count, needs none of this; it is the
//! default for that reason.
//!
//! Nothing here allocates per packet, loops more than a bounded number of
//! times (at most 2048 key changes for one stateless packet, 13 for a
//! stateful one), or panics on any input.

use std::ops::Range;

use crate::crypto::mppe_keys::{MppeKeySchedule, Rc4};

/// RFC 3078 §2: the negotiated session key strength (CCP option 18 bits L,
/// M and S).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MppeStrength {
    /// 40-bit keys (L bit): 8-byte key, first 3 octets fixed.
    Bits40,
    /// 56-bit keys (M bit): 8-byte key, first octet fixed.
    Bits56,
    /// 128-bit keys (S bit): 16-byte key.
    Bits128,
}

impl MppeStrength {
    /// RFC 3079 §3: SessionKeyLength in octets (8 for 40/56-bit, 16 for
    /// 128-bit).
    pub const fn key_len(self) -> usize {
        match self {
            MppeStrength::Bits40 | MppeStrength::Bits56 => 8,
            MppeStrength::Bits128 => 16,
        }
    }
}

/// The negotiated MPPE parameters of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MppeSettings {
    /// Session key strength.
    pub strength: MppeStrength,
    /// RFC 3078 §2: stateless mode (H bit): the key changes on every packet.
    pub stateless: bool,
}

impl std::fmt::Display for MppeSettings {
    /// "MPPE 128-bit stateless": what logs and status lines say.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bits = match self.strength {
            MppeStrength::Bits40 => 40,
            MppeStrength::Bits56 => 56,
            MppeStrength::Bits128 => 128,
        };
        let mode = if self.stateless {
            "stateless"
        } else {
            "stateful"
        };
        write!(f, "MPPE {bits}-bit {mode}")
    }
}

/// RFC 3078 §3: bit A, "flushed": the RC4 table was (re)initialized before
/// this packet was encrypted.
pub const FLAG_FLUSHED: u8 = 0x80;
/// RFC 3078 §3 / RFC 2118: bit B, MPPC only (history moved to front).
pub const FLAG_B: u8 = 0x40;
/// RFC 3078 §3 / RFC 2118: bit C, MPPC compressed packet.
pub const FLAG_COMPRESSED: u8 = 0x20;
/// RFC 3078 §3: bit D, the packet is encrypted.
pub const FLAG_ENCRYPTED: u8 = 0x10;
/// Length of the MPPE header (flag bits + coherency count).
pub const MPPE_HEADER_LEN: usize = 2;
/// Headroom [`MppeEncryptor::encrypt_in_place`] needs in front of the
/// payload: the MPPE header plus the 2-byte PPP protocol field.
pub const MPPE_HEADROOM: usize = MPPE_HEADER_LEN + 2;

/// RFC 3078 §3: the coherency count is 12 bits.
const CCOUNT_MASK: u16 = 0x0FFF;
/// Counts at least this far ahead of the expected one (modulo 4096) are
/// taken as old or duplicated packets rather than as a loss of 2048 or more.
const CCOUNT_HALF: u16 = 0x0800;

/// RFC 3078 §7.3: stateful mode changes the key on the "flag" packet, whose
/// coherency count has 0xFF as its low octet.
fn is_flag_packet(count: u16) -> bool {
    count & 0x00FF == 0x00FF
}

/// Why an MPPE packet could not be decrypted. Only [`MppeError::NeedReset`]
/// asks for action (a CCP Reset-Request); every other error means "drop
/// this packet".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MppeError {
    /// Shorter than the MPPE header plus one encrypted byte, or (encrypting
    /// in place) no room for the header.
    #[error("MPPE packet too short ({len} bytes)")]
    TooShort {
        /// The length that was given.
        len: usize,
    },
    /// RFC 3078 §3: the D bit is clear.
    #[error("MPPE packet without the D (encrypted) bit")]
    NotEncrypted,
    /// RFC 2118: the C bit is set, but MPPC compression is never negotiated.
    #[error("MPPC-compressed packet (C bit), but MPPC was not negotiated")]
    Compressed,
    /// The coherency count is behind the expected one: a duplicate or a
    /// reordered packet whose key is gone. Nothing changed.
    #[error("stale or duplicate MPPE packet: coherency count {count}, expected {expected}")]
    Stale {
        /// The packet's coherency count.
        count: u16,
        /// The count expected next.
        expected: u16,
    },
    /// RFC 3078 §8.2 (stateful mode): packets were lost; the decryptor now
    /// discards everything until a packet with the A bit. The caller MUST
    /// send a CCP Reset-Request (RFC 1962 §2.3). Returned once per loss.
    #[error(
        "MPPE packet loss (coherency count {count}, expected {expected}): send a CCP Reset-Request"
    )]
    NeedReset {
        /// The packet's coherency count.
        count: u16,
        /// The count that was expected.
        expected: u16,
    },
    /// RFC 3078 §8.2 (stateful mode): still waiting for a flushed packet
    /// after a loss.
    #[error("discarding MPPE packet {count} until a flushed packet resynchronizes")]
    Discarding {
        /// The packet's coherency count.
        count: u16,
    },
    /// Stateful mode: a flushed packet decrypted to no plausible datagram
    /// with the predicted key nor with any of the next few (see the module
    /// documentation). It is dropped, nothing changes, and the decryptor
    /// discards until the next flushed packet. When `entered` is true the
    /// decryptor was in sequence before, and the caller MUST send a CCP
    /// Reset-Request as for [`MppeError::NeedReset`].
    #[error("flushed MPPE packet {count} decrypted to no plausible datagram: discarding until the next flushed packet")]
    Unverified {
        /// The packet's coherency count.
        count: u16,
        /// The decryptor went into discard because of this packet.
        entered: bool,
    },
    /// The decrypted PPP protocol field is not a valid protocol number
    /// (RFC 1661 §2), or is missing. The key state stays in step.
    #[error("MPPE packet decrypted to an invalid PPP protocol field")]
    BadProtocol,
}

/// A decrypted packet: the inner protocol and where its payload lies in the
/// buffer given to [`MppeDecryptor::decrypt`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decrypted {
    /// The inner PPP protocol number (PFC-compressed 1-byte fields are
    /// expanded).
    pub protocol: u16,
    /// The payload's byte range within the packet buffer.
    pub payload: Range<usize>,
    /// The packet's coherency count.
    pub coherency_count: u16,
    /// Whether the A (flushed) bit was set.
    pub flushed: bool,
    /// How many coherency counts were skipped before this packet (lost
    /// packets; 0 when in sequence).
    pub lost: u16,
    /// Stateful mode: how many key changes beyond the predicted ones this
    /// flushed packet needed, i.e. how many flushed packets of the peer's
    /// were lost unseen (found by trial decryption; 0 almost always).
    pub lost_flushes: u8,
}

/// The sending half of an MPPE link (RFC 3078).
///
/// Key material is zeroized on drop and never shown by `Debug`.
pub struct MppeEncryptor {
    keys: MppeKeySchedule,
    rc4: Rc4,
    stateless: bool,
    /// Coherency count of the next packet.
    count: u16,
    /// Stateful mode: a Reset-Request arrived; the next packet changes the
    /// key and carries the A bit.
    flush_pending: bool,
}

impl std::fmt::Debug for MppeEncryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MppeEncryptor")
            .field("strength", &self.keys.strength())
            .field("stateless", &self.stateless)
            .field("count", &self.count)
            .field("flush_pending", &self.flush_pending)
            .finish_non_exhaustive()
    }
}

impl MppeEncryptor {
    /// An encryptor for this side's send direction, from its 16-byte master
    /// send key (`MasterKeys::send`, RFC 3079 §3.4 / RFC 2548
    /// MS-MPPE-Send-Key).
    pub fn new(master_send_key: &[u8; 16], settings: MppeSettings) -> Self {
        let keys = MppeKeySchedule::new(master_send_key, settings.strength);
        let rc4 = Rc4::new(keys.session_key());
        MppeEncryptor {
            keys,
            rc4,
            stateless: settings.stateless,
            count: 0,
            // The first packet uses the initial session key without the A
            // bit (see the module documentation; stateless packets all
            // carry it anyway).
            flush_pending: false,
        }
    }

    /// The peer sent a CCP Reset-Request (RFC 3078 §8.2): the next packet
    /// changes the session key (RFC 3078 §7.3), restarts RC4 with it and
    /// carries the A bit. Several Reset-Requests before that packet make
    /// one key change, as in Linux (the peer cannot know how many of its
    /// requests arrived). A no-op in stateless mode, where every packet
    /// already changes the key.
    pub fn reset_requested(&mut self) {
        self.flush_pending = true;
    }

    /// The coherency count the next packet will carry.
    pub fn coherency_count(&self) -> u16 {
        self.count
    }

    /// Append the MPPE packet body for `protocol` + `payload` to `out`:
    /// 2-byte header, then the encrypted 2-byte protocol field and payload
    /// (`payload.len() + 4` bytes in all). Allocates only if `out` must grow.
    pub fn encrypt(&mut self, protocol: u16, payload: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        out.reserve(MPPE_HEADROOM + payload.len());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&protocol.to_be_bytes());
        out.extend_from_slice(payload);
        self.seal(&mut out[start..]);
    }

    /// Zero-copy variant of [`encrypt`](Self::encrypt): `buf` holds
    /// [`MPPE_HEADROOM`] (4) bytes of headroom followed by the payload; on
    /// return it holds the whole MPPE packet body. Fails only if `buf` is
    /// shorter than the headroom (nothing is changed then).
    pub fn encrypt_in_place(&mut self, protocol: u16, buf: &mut [u8]) -> Result<(), MppeError> {
        if buf.len() < MPPE_HEADROOM {
            return Err(MppeError::TooShort { len: buf.len() });
        }
        buf[2..4].copy_from_slice(&protocol.to_be_bytes());
        self.seal(buf);
        Ok(())
    }

    /// `packet` = header space (2) + protocol field (2) + payload.
    fn seal(&mut self, packet: &mut [u8]) {
        let mut count = self.count;
        if !self.stateless && self.flush_pending {
            // Answer a Reset-Request by jumping to the flag packet of the
            // current block (a gap the receiver already expects): the key
            // then changes on flag packets only, so the key follows from
            // the coherency count alone and a lost flushed packet costs
            // nothing. A flushed packet at an ordinary count adds a key
            // change the receiver cannot count if that packet is lost, and
            // Linux then stays desynchronised for good (issue 11).
            count |= 0x00FF;
        }
        let mut flags = FLAG_ENCRYPTED;
        if self.stateless {
            // RFC 3078 §7.3: stateless mode changes the key before every
            // packet; the table is therefore always fresh (A bit).
            self.keys.change_key();
            self.rc4.rekey(self.keys.session_key());
            flags |= FLAG_FLUSHED;
        } else if self.flush_pending || is_flag_packet(count) {
            // RFC 3078 §7.3 (flag packet), §8.2 (answer to a Reset-Request):
            // one key change, a fresh RC4 table, the A bit.
            self.keys.change_key();
            self.rc4.rekey(self.keys.session_key());
            flags |= FLAG_FLUSHED;
        }
        self.flush_pending = false;
        let [hi, lo] = count.to_be_bytes();
        packet[0] = flags | hi;
        packet[1] = lo;
        self.rc4.apply_keystream(&mut packet[MPPE_HEADER_LEN..]);
        self.count = (count + 1) & CCOUNT_MASK;
    }
}

/// The receiving half of an MPPE link (RFC 3078).
///
/// Key material is zeroized on drop and never shown by `Debug`.
pub struct MppeDecryptor {
    keys: MppeKeySchedule,
    rc4: Rc4,
    stateless: bool,
    /// Coherency count expected next. The key schedule stands at the start
    /// of this packet (before any key change it entails).
    expected: u16,
    /// Stateful mode: packets were lost; discard until a flushed packet.
    discarding: bool,
}

impl std::fmt::Debug for MppeDecryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MppeDecryptor")
            .field("strength", &self.keys.strength())
            .field("stateless", &self.stateless)
            .field("expected", &self.expected)
            .field("discarding", &self.discarding)
            .finish_non_exhaustive()
    }
}

impl MppeDecryptor {
    /// A decryptor for this side's receive direction, from its 16-byte
    /// master receive key (`MasterKeys::recv`, RFC 2548 MS-MPPE-Recv-Key).
    pub fn new(master_recv_key: &[u8; 16], settings: MppeSettings) -> Self {
        let keys = MppeKeySchedule::new(master_recv_key, settings.strength);
        let rc4 = Rc4::new(keys.session_key());
        MppeDecryptor {
            keys,
            rc4,
            stateless: settings.stateless,
            expected: 0,
            discarding: false,
        }
    }

    /// Stateful mode: true while packets are being discarded after a loss,
    /// waiting for a flushed packet. CCP should keep (re)sending
    /// Reset-Requests on its timer while this holds.
    pub fn is_discarding(&self) -> bool {
        self.discarding
    }

    /// The coherency count expected next.
    pub fn expected_count(&self) -> u16 {
        self.expected
    }

    /// Decrypt an MPPE packet body (header first) in place. On success the
    /// inner protocol and the payload's range in `packet` are returned.
    ///
    /// - Stale or duplicated counts are refused ([`MppeError::Stale`])
    ///   without touching any state.
    /// - Stateless mode (RFC 3078 §8.1): the key is advanced once per
    ///   coherency count skipped, so any loss is recovered at once.
    /// - Stateful mode (RFC 3078 §8.2): a gap without the A bit makes the
    ///   decryptor discard packets until one with the A bit arrives and
    ///   returns [`MppeError::NeedReset`] once, then
    ///   [`MppeError::Discarding`]; the flushed packet is decrypted after
    ///   one key change per flag packet missed, or after a few more if the
    ///   peer's flushed packets were lost (trial decryption, see the module
    ///   documentation; [`MppeError::Unverified`] if no key fits).
    pub fn decrypt(&mut self, packet: &mut [u8]) -> Result<Decrypted, MppeError> {
        if packet.len() <= MPPE_HEADER_LEN {
            return Err(MppeError::TooShort { len: packet.len() });
        }
        let flags = packet[0] & 0xF0;
        let count = u16::from_be_bytes([packet[0] & 0x0F, packet[1]]);
        if flags & FLAG_COMPRESSED != 0 {
            return Err(MppeError::Compressed);
        }
        if flags & FLAG_ENCRYPTED == 0 {
            return Err(MppeError::NotEncrypted);
        }
        let flushed = flags & FLAG_FLUSHED != 0;
        let expected = self.expected;
        let lost = count.wrapping_sub(expected) & CCOUNT_MASK;
        if lost >= CCOUNT_HALF {
            return Err(MppeError::Stale { count, expected });
        }

        let mut lost_flushes = 0;
        if self.stateless {
            // RFC 3078 §7.3, §8.1: one key change per packet, the lost
            // ones included (lost + 1 <= 2048 iterations).
            for _ in 0..=lost {
                self.keys.change_key();
            }
            self.rc4.rekey(self.keys.session_key());
            self.rc4.apply_keystream(&mut packet[MPPE_HEADER_LEN..]);
        } else if flushed {
            match self.open_flushed(packet, lost) {
                Some(k) => lost_flushes = k,
                None => {
                    // Nothing committed: the next flushed packet is tried
                    // from the same key state (see the module docs).
                    let entered = !self.discarding;
                    self.discarding = true;
                    return Err(MppeError::Unverified { count, entered });
                }
            }
            self.discarding = false;
        } else {
            if self.discarding {
                return Err(MppeError::Discarding { count });
            }
            if lost != 0 {
                self.discarding = true;
                return Err(MppeError::NeedReset { count, expected });
            }
            if is_flag_packet(count) {
                // A flag packet without the A bit (Linux drops it): the
                // key changes all the same, as the count says it must.
                self.keys.change_key();
                self.rc4.rekey(self.keys.session_key());
            }
            self.rc4.apply_keystream(&mut packet[MPPE_HEADER_LEN..]);
        }
        self.expected = (count + 1) & CCOUNT_MASK;

        // RFC 1661 §2 / §6.5: the protocol field may be PFC-compressed to
        // one octet (an odd value); a 2-octet field has an even first and an
        // odd second octet.
        let first = packet[MPPE_HEADER_LEN];
        let (protocol, body) = if first & 1 == 1 {
            (u16::from(first), MPPE_HEADER_LEN + 1)
        } else {
            match packet.get(MPPE_HEADER_LEN + 1) {
                Some(&second) if second & 1 == 1 => {
                    (u16::from_be_bytes([first, second]), MPPE_HEADER_LEN + 2)
                }
                _ => return Err(MppeError::BadProtocol),
            }
        };
        Ok(Decrypted {
            protocol,
            payload: body..packet.len(),
            coherency_count: count,
            flushed,
            lost,
            lost_flushes,
        })
    }

    /// Stateful mode, a packet with the A bit (RFC 3078 §8.2): find its key
    /// and decrypt it in place. The key our model predicts comes first:
    /// one change per flag packet skipped since `expected` (at most 8, as
    /// `lost` < 2048), then the change the A bit announces. If the packet
    /// does not decrypt to a plausible datagram with it, up to
    /// [`MAX_LOST_FLUSHES`] further changes are tried, one per flushed
    /// packet of the sender's that may have been lost. Returns how many
    /// further changes it took, or `None` (and changes nothing) when no
    /// key gives a plausible datagram.
    ///
    /// Cost: at most `MAX_LOST_FLUSHES + 1` RC4 key schedules and
    /// `8 + MAX_LOST_FLUSHES + 1` key changes, on flushed packets only;
    /// the trials decrypt a copy of the first [`PROBE_LEN`] bytes on the
    /// stack, so nothing is allocated.
    fn open_flushed(&mut self, packet: &mut [u8], lost: u16) -> Option<u8> {
        let mut keys = self.keys.clone();
        let mut n = self.expected;
        let mut remaining = lost;
        while remaining > 0 {
            // Distance to the next flag count at or after n.
            let to_flag = 0x00FF - (n & 0x00FF);
            if to_flag >= remaining {
                break;
            }
            keys.change_key();
            n = (n + to_flag + 1) & CCOUNT_MASK;
            remaining -= to_flag + 1;
        }
        let body = &mut packet[MPPE_HEADER_LEN..];
        let probe_len = body.len().min(PROBE_LEN);
        let mut probe = [0u8; PROBE_LEN];
        for extra in 0..=MAX_LOST_FLUSHES {
            // The change this packet's A bit announces, then (extra > 0)
            // one more per lost flushed packet being tried.
            keys.change_key();
            let mut rc4 = Rc4::new(keys.session_key());
            probe[..probe_len].copy_from_slice(&body[..probe_len]);
            rc4.apply_keystream(&mut probe[..probe_len]);
            let accept = match plausibility(&probe[..probe_len], body.len()) {
                Plausible::Ip => true,
                // Nothing but an IP header check can tell a right key from
                // a wrong one, so other protocols get no trial.
                Plausible::Other => extra == 0,
                Plausible::No => false,
            };
            if accept {
                body[..probe_len].copy_from_slice(&probe[..probe_len]);
                rc4.apply_keystream(&mut body[probe_len..]);
                self.keys = keys;
                self.rc4 = rc4;
                return Some(extra);
            }
        }
        None
    }
}

/// How far into the decrypted body a trial looks: a 2-byte protocol field
/// and the largest IPv4 header (RFC 791 §3.1: IHL ≤ 15 words).
const PROBE_LEN: usize = 2 + 60;

/// How many lost flushed packets of the peer's a flushed packet may be
/// tried against (see the module documentation). Each needs a Reset-Request
/// round trip whose answer is lost; five in a row means the loss is so
/// heavy that stateful mode is hopeless anyway.
const MAX_LOST_FLUSHES: u8 = 4;

/// Network protocols other than IP that a stateful flushed packet may
/// carry with the predicted key: Linux's ppp_generic passes every frame
/// pppd writes to the unit through the compressor except LCP and CCP, so
/// IPCP and IPv6CP can arrive inside MPPE. Any other value in a flushed
/// packet is taken as a sign of a wrong key (a random 2-byte field hits
/// this list with a chance of 2 in 65536).
const OTHER_PROTOCOLS: [u16; 2] = [0x8021, 0x8057];

/// What a trial decryption looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plausible {
    /// An IPv4 or IPv6 datagram whose header checks out.
    Ip,
    /// One of [`OTHER_PROTOCOLS`]; cannot be checked further.
    Other,
    /// Anything else: most likely the wrong key.
    No,
}

/// Judge a trial decryption: `probe` is the start of the decrypted body
/// (protocol field first), `body_len` the length of the whole body.
/// Random bytes pass as IPv4 with a chance below 2^-40 and as IPv6 below
/// 2^-30 (the protocol field, the version nibble, and for IPv4 the total
/// length and the header checksum, for IPv6 the payload length).
fn plausibility(probe: &[u8], body_len: usize) -> Plausible {
    // RFC 1661 §2 / §6.5: a 1-octet (PFC) field is odd; a 2-octet one has
    // an even first and an odd second octet.
    let (protocol, field) = match probe {
        [first, ..] if first & 1 == 1 => (u16::from(*first), 1),
        [first, second, ..] if second & 1 == 1 => (u16::from_be_bytes([*first, *second]), 2),
        _ => return Plausible::No,
    };
    let ip = &probe[field..];
    let ip_len = body_len - field;
    let ok = match protocol {
        0x0021 => ipv4_header_ok(ip, ip_len),
        0x0057 => ipv6_header_ok(ip, ip_len),
        p if field == 2 && OTHER_PROTOCOLS.contains(&p) => return Plausible::Other,
        _ => false,
    };
    if ok {
        Plausible::Ip
    } else {
        Plausible::No
    }
}

/// RFC 791 §3.1: version 4, IHL ≥ 5, Total Length equal to the datagram's
/// length, and a header checksum that sums to all ones. `header` holds at
/// least the first `min(len, 60)` bytes of the datagram.
fn ipv4_header_ok(header: &[u8], len: usize) -> bool {
    let Some(&first) = header.first() else {
        return false;
    };
    let ihl = usize::from(first & 0x0F) * 4;
    if first >> 4 != 4 || ihl < 20 || ihl > len || header.len() < ihl {
        return false;
    }
    if usize::from(u16::from_be_bytes([header[2], header[3]])) != len {
        return false;
    }
    let sum = header[..ihl].chunks_exact(2).fold(0u32, |acc, w| {
        acc + u32::from(u16::from_be_bytes([w[0], w[1]]))
    });
    let folded = (sum & 0xFFFF) + (sum >> 16);
    let folded = (folded & 0xFFFF) + (folded >> 16);
    folded == 0xFFFF
}

/// RFC 8200 §3: version 6 and a Payload Length equal to what follows the
/// 40-byte header.
fn ipv6_header_ok(header: &[u8], len: usize) -> bool {
    if len < 40 || header.len() < 6 || header[0] >> 4 != 6 {
        return false;
    }
    usize::from(u16::from_be_bytes([header[4], header[5]])) == len - 40
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_STRENGTHS: [MppeStrength; 3] = [
        MppeStrength::Bits40,
        MppeStrength::Bits56,
        MppeStrength::Bits128,
    ];

    /// Arbitrary master key for the engine tests (one direction).
    const KEY: [u8; 16] = [
        0x8B, 0x7C, 0xDC, 0x14, 0x9B, 0x99, 0x3A, 0x1B, 0xA1, 0x18, 0xCB, 0x15, 0x3F, 0x56, 0xDC,
        0xCB,
    ];

    fn settings(strength: MppeStrength, stateless: bool) -> MppeSettings {
        MppeSettings {
            strength,
            stateless,
        }
    }

    fn pair(strength: MppeStrength, stateless: bool) -> (MppeEncryptor, MppeDecryptor) {
        let s = settings(strength, stateless);
        (MppeEncryptor::new(&KEY, s), MppeDecryptor::new(&KEY, s))
    }

    /// A well-formed IPv4 datagram (UDP, 10.0.0.1 → 10.0.0.2) of `len`
    /// bytes (at least 20), identification `id`, checksum set.
    fn ipv4_packet(id: u16, len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|n| (n as u8) ^ (id as u8)).collect();
        let [lh, ll] = (len as u16).to_be_bytes();
        let [ih, il] = id.to_be_bytes();
        p[..20].copy_from_slice(&[
            0x45, 0, lh, ll, ih, il, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ]);
        let sum = p[..20]
            .chunks(2)
            .fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = (sum & 0xFFFF) + (sum >> 16);
        let sum = (sum & 0xFFFF) + (sum >> 16);
        p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        p
    }

    /// A well-formed IPv6 datagram of `len` bytes (at least 40).
    fn ipv6_packet(seed: u8, len: usize) -> Vec<u8> {
        let mut p: Vec<u8> = (0..len).map(|n| (n as u8) ^ seed).collect();
        p[0] = 0x60;
        p[4..6].copy_from_slice(&((len - 40) as u16).to_be_bytes());
        p[6] = 17;
        p
    }

    /// Payload and inner protocol of test packet `i`: real IPv4 and IPv6
    /// datagrams (a flushed stateful packet must look like one, see the
    /// module documentation) and IPCP, which Linux encrypts too.
    fn plain(i: usize) -> (u16, Vec<u8>) {
        let len = (i * 37) % 1400;
        match i % 4 {
            0 | 3 => (0x0021, ipv4_packet(i as u16, 20 + len)),
            1 => (0x0057, ipv6_packet(i as u8, 40 + len)),
            _ => (
                0x8021,
                (0..len % 64)
                    .map(|n| (n as u8) ^ (i as u8).wrapping_mul(13))
                    .collect(),
            ),
        }
    }

    fn seal(enc: &mut MppeEncryptor, i: usize) -> Vec<u8> {
        let (protocol, payload) = plain(i);
        let mut out = Vec::new();
        enc.encrypt(protocol, &payload, &mut out);
        out
    }

    fn check_ok(packet: &[u8], got: &Decrypted, i: usize) {
        let (protocol, payload) = plain(i);
        assert_eq!(got.protocol, protocol, "packet {i}");
        assert_eq!(&packet[got.payload.clone()], &payload[..], "packet {i}");
    }

    /// Decrypt `packet`, which must succeed as test packet `i`.
    fn open_ok(dec: &mut MppeDecryptor, packet: &mut [u8], i: usize) -> Decrypted {
        let got = dec
            .decrypt(packet)
            .unwrap_or_else(|e| panic!("packet {i}: {e}"));
        check_ok(packet, &got, i);
        got
    }

    fn hex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    /// RFC 3079 §3.5: the sample message "test message" encrypted with the
    /// initial session key. A stateful encryptor encrypts its first packet
    /// (coherency count 0) with exactly that key, so a packet whose
    /// protocol field + payload spell "test message" (protocol 0x7465 "te")
    /// must carry the RFC's ciphertext after the header 0x10 0x00 (D; no
    /// A bit on the first stateful packet, see the module documentation).
    #[test]
    fn rfc3079_sample_message_known_answer() {
        let vectors = [
            (MppeStrength::Bits40, "92 91 37 91 7E 58 03 D6 68 D7 58 98"),
            // §3.5.2 misprints the last octet as 0x58; see mppe_keys tests.
            (MppeStrength::Bits56, "3F 10 68 33 FA 44 8D A8 42 BC 57 B8"),
            (MppeStrength::Bits128, "81 84 83 17 DF 68 84 62 72 FB 5A BE"),
        ];
        for (strength, cipher) in vectors {
            let (mut enc, mut dec) = pair(strength, false);
            let mut out = Vec::new();
            enc.encrypt(0x7465, b"st message", &mut out);
            let mut expected = vec![0x10, 0x00];
            expected.extend(hex(cipher));
            assert_eq!(out, expected, "{strength:?}");
            let got = dec.decrypt(&mut out).unwrap();
            assert_eq!(got.protocol, 0x7465);
            assert_eq!(&out[got.payload], b"st message");
            assert!(!got.flushed);
        }
    }

    #[test]
    fn round_trips_all_modes() {
        for strength in ALL_STRENGTHS {
            for stateless in [false, true] {
                let (mut enc, mut dec) = pair(strength, stateless);
                let mut out = Vec::new();
                for i in 0..700 {
                    let (protocol, payload) = plain(i);
                    out.clear();
                    enc.encrypt(protocol, &payload, &mut out);
                    assert_eq!(out.len(), payload.len() + 4);
                    let count = u16::from_be_bytes([out[0] & 0x0F, out[1]]);
                    assert_eq!(usize::from(count), i);
                    let flags = out[0] & 0xF0;
                    let fresh = stateless || i % 256 == 255;
                    let want = FLAG_ENCRYPTED | if fresh { FLAG_FLUSHED } else { 0 };
                    assert_eq!(flags, want, "{strength:?} stateless={stateless} i={i}");
                    if payload.len() > 8 {
                        assert_ne!(&out[4..12], &payload[..8], "not encrypted?");
                    }
                    let got = dec.decrypt(&mut out).unwrap();
                    check_ok(&out, &got, i);
                    assert_eq!(got.lost, 0);
                }
            }
        }
    }

    #[test]
    fn encrypt_in_place_matches_encrypt() {
        for strength in ALL_STRENGTHS {
            for stateless in [false, true] {
                let (mut a, mut dec) = pair(strength, stateless);
                let (mut b, _) = pair(strength, stateless);
                for i in 0..300 {
                    let (protocol, payload) = plain(i);
                    let mut out = Vec::new();
                    a.encrypt(protocol, &payload, &mut out);
                    let mut buf = vec![0u8; MPPE_HEADROOM];
                    buf.extend_from_slice(&payload);
                    b.encrypt_in_place(protocol, &mut buf).unwrap();
                    assert_eq!(buf, out);
                    let got = dec.decrypt(&mut buf).unwrap();
                    check_ok(&buf, &got, i);
                }
                assert_eq!(
                    b.encrypt_in_place(0x21, &mut [0u8; 3]),
                    Err(MppeError::TooShort { len: 3 })
                );
                // Nothing was consumed by the failed call.
                assert_eq!(b.coherency_count(), a.coherency_count());
            }
        }
    }

    /// `encrypt` appends and reuses the caller's buffer.
    #[test]
    fn encrypt_appends() {
        let (mut enc, mut dec) = pair(MppeStrength::Bits128, true);
        let mut out = vec![0xFF, 0x03, 0x00, 0xFD];
        enc.encrypt(0x0021, b"hello", &mut out);
        assert_eq!(&out[..4], &[0xFF, 0x03, 0x00, 0xFD]);
        let got = dec.decrypt(&mut out[4..]).unwrap();
        assert_eq!(got.protocol, 0x0021);
        assert_eq!(&out[4..][got.payload], b"hello");
    }

    #[test]
    fn coherency_count_wraps_at_4096() {
        for stateless in [false, true] {
            let (mut enc, mut dec) = pair(MppeStrength::Bits128, stateless);
            let mut out = Vec::new();
            for i in 0..(4096 * 2 + 300) {
                out.clear();
                let ip = ipv4_packet(i as u16, 36);
                enc.encrypt(0x0021, &ip, &mut out);
                let count = u16::from_be_bytes([out[0] & 0x0F, out[1]]);
                assert_eq!(usize::from(count), i % 4096);
                let got = dec.decrypt(&mut out).unwrap();
                assert_eq!(&out[got.payload], &ip[..]);
            }
        }
    }

    #[test]
    fn stateless_recovers_from_any_loss_up_to_half_the_count_space() {
        for strength in ALL_STRENGTHS {
            let (mut enc, mut dec) = pair(strength, true);
            let mut i = 0;
            // Gaps of 1, 255, 256, 2047 (the largest) and across the wrap.
            for gap in [1usize, 255, 256, 2047, 1000, 900] {
                let mut p = seal(&mut enc, i);
                open_ok(&mut dec, &mut p, i);
                for _ in 0..gap {
                    i += 1;
                    seal(&mut enc, i);
                }
                i += 1;
                let mut p = seal(&mut enc, i);
                let got = dec.decrypt(&mut p).unwrap();
                check_ok(&p, &got, i);
                assert_eq!(usize::from(got.lost), gap);
                i += 1;
            }
            assert!(i > 4096, "went across the wrap");
        }
    }

    #[test]
    fn duplicates_and_late_packets_are_dropped_without_harm() {
        for stateless in [false, true] {
            let (mut enc, mut dec) = pair(MppeStrength::Bits128, stateless);
            let p0 = seal(&mut enc, 0);
            let p1 = seal(&mut enc, 1);
            let p2 = seal(&mut enc, 2);
            let mut a = p0.clone();
            open_ok(&mut dec, &mut a, 0);
            let mut a = p0.clone();
            assert_eq!(
                dec.decrypt(&mut a),
                Err(MppeError::Stale {
                    count: 0,
                    expected: 1
                })
            );
            assert_eq!(a, p0, "refused packets are left untouched");
            let mut b = p1.clone();
            open_ok(&mut dec, &mut b, 1);
            let mut b = p1.clone();
            assert!(matches!(dec.decrypt(&mut b), Err(MppeError::Stale { .. })));
            let mut c = p2.clone();
            open_ok(&mut dec, &mut c, 2);
        }
    }

    #[test]
    fn stateful_loss_discards_until_flushed_packet_after_reset_request() {
        for strength in ALL_STRENGTHS {
            let (mut enc, mut dec) = pair(strength, false);
            for i in 0..10 {
                let mut p = seal(&mut enc, i);
                open_ok(&mut dec, &mut p, i);
            }
            seal(&mut enc, 10); // lost
            let mut p = seal(&mut enc, 11);
            assert_eq!(
                dec.decrypt(&mut p),
                Err(MppeError::NeedReset {
                    count: 11,
                    expected: 10
                })
            );
            assert!(dec.is_discarding());
            // Packets already in flight before the Reset-Request arrives.
            for i in 12..15 {
                let mut p = seal(&mut enc, i);
                assert_eq!(
                    dec.decrypt(&mut p),
                    Err(MppeError::Discarding { count: i as u16 })
                );
            }
            enc.reset_requested();
            let mut p = seal(&mut enc, 15);
            assert_eq!(p[0] & FLAG_FLUSHED, FLAG_FLUSHED);
            let got = dec.decrypt(&mut p).unwrap();
            check_ok(&p, &got, 15);
            assert!(got.flushed);
            // The answer jumps to the block's flag packet (0x0FF).
            assert_eq!(got.coherency_count, 0x0FF);
            assert_eq!(got.lost, 0x0FF - 10);
            assert!(!dec.is_discarding());
            for i in 16..600 {
                let mut p = seal(&mut enc, i);
                let count = u16::from_be_bytes([p[0] & 0x0F, p[1]]);
                assert_eq!(count, (0x100 + i - 16) as u16 & 0x0FFF);
                assert_eq!(p[0] & FLAG_FLUSHED != 0, count & 0xFF == 0xFF, "i={i}");
                open_ok(&mut dec, &mut p, i);
            }
        }
    }

    /// A loss that spans flag packets and the 4096 wrap: the flushed packet
    /// must be decrypted after one key change per missed flag packet.
    #[test]
    fn stateful_resync_across_flag_packets_and_wrap() {
        let (mut enc, mut dec) = pair(MppeStrength::Bits40, false);
        let mut i = 0;
        while i < 3500 {
            let mut p = seal(&mut enc, i);
            open_ok(&mut dec, &mut p, i);
            i += 1;
        }
        // Lose 3500..=4200 except one unflushed packet, which asks for a reset.
        while i <= 4200 {
            let mut p = seal(&mut enc, i);
            if i == 3700 {
                assert!(matches!(
                    dec.decrypt(&mut p),
                    Err(MppeError::NeedReset { .. })
                ));
            }
            i += 1;
        }
        enc.reset_requested();
        let mut p = seal(&mut enc, i);
        open_ok(&mut dec, &mut p, i);
        for i in i + 1..i + 600 {
            let mut p = seal(&mut enc, i);
            open_ok(&mut dec, &mut p, i);
        }
    }

    /// A flushed packet after a gap resynchronizes at once, no reset needed
    /// (here: the flag packet 255 after losing 250..=254).
    #[test]
    fn stateful_flag_packet_resynchronizes_without_reset() {
        let (mut enc, mut dec) = pair(MppeStrength::Bits128, false);
        for i in 0..250 {
            let mut p = seal(&mut enc, i);
            open_ok(&mut dec, &mut p, i);
        }
        for i in 250..255 {
            seal(&mut enc, i);
        }
        let mut p = seal(&mut enc, 255);
        let got = dec.decrypt(&mut p).unwrap();
        check_ok(&p, &got, 255);
        assert_eq!(got.lost, 5);
        let mut p = seal(&mut enc, 256);
        open_ok(&mut dec, &mut p, 256);
    }

    /// A Reset-Request without loss (e.g. a spurious one): the flushed packet
    /// arrives in sequence and both sides restart RC4 with the same key.
    #[test]
    fn stateful_reset_in_sequence() {
        let (mut enc, mut dec) = pair(MppeStrength::Bits56, false);
        for i in 0..40 {
            if i % 7 == 3 {
                enc.reset_requested();
            }
            let mut p = seal(&mut enc, i);
            assert_eq!(p[0] & FLAG_FLUSHED != 0, i % 7 == 3);
            open_ok(&mut dec, &mut p, i);
        }
    }

    #[test]
    fn malformed_packets_are_refused() {
        let (mut enc, mut dec) = pair(MppeStrength::Bits128, true);
        for len in 0..=2 {
            let mut p = vec![0x90; len];
            assert_eq!(dec.decrypt(&mut p), Err(MppeError::TooShort { len }));
        }
        let mut p = seal(&mut enc, 0);
        p[0] &= !FLAG_ENCRYPTED;
        assert_eq!(dec.decrypt(&mut p), Err(MppeError::NotEncrypted));
        p[0] |= FLAG_ENCRYPTED | FLAG_COMPRESSED;
        assert_eq!(dec.decrypt(&mut p), Err(MppeError::Compressed));
        // Nothing consumed: the genuine packet still decrypts.
        let mut p = seal(&mut enc, 0);
        let mut q = p.clone();
        open_ok(&mut dec, &mut p, 0);
        // Flipping the protocol field's low bit makes it invalid; the key
        // state still advances in step with the sender.
        let mut p = seal(&mut enc, 1);
        p[3] ^= 0x01;
        assert_eq!(dec.decrypt(&mut p), Err(MppeError::BadProtocol));
        let mut p = seal(&mut enc, 2);
        open_ok(&mut dec, &mut p, 2);
        // Old packet.
        assert!(matches!(dec.decrypt(&mut q), Err(MppeError::Stale { .. })));
    }

    /// RFC 1661 §6.5 PFC: a 1-byte protocol field is accepted on receive.
    #[test]
    fn pfc_compressed_protocol_field() {
        for stateless in [false, true] {
            // Key stream of packet 0 from an all-zero plaintext.
            let (mut enc, mut dec) = pair(MppeStrength::Bits128, stateless);
            let mut ks = Vec::new();
            enc.encrypt(0x0000, &[0u8; 8], &mut ks);
            let plain = [0x21u8, 1, 2, 3, 4, 5, 6, 7, 8];
            let mut p = ks[..2].to_vec();
            p.extend(ks[2..11].iter().zip(plain).map(|(k, b)| k ^ b));
            let got = dec.decrypt(&mut p).unwrap();
            assert_eq!(got.protocol, 0x0021);
            assert_eq!(got.payload, 3..11);
            assert_eq!(&p[got.payload], &[1, 2, 3, 4, 5, 6, 7, 8]);
        }
    }

    #[test]
    fn debug_prints_no_key_material() {
        let (enc, dec) = pair(MppeStrength::Bits128, false);
        let text = format!("{enc:?} {dec:?}");
        assert!(!text.contains("139"), "{text}"); // KEY[0] = 0x8B
        assert!(text.contains("MppeEncryptor") && text.contains("MppeDecryptor"));
    }

    /// What the network does to one packet.
    #[derive(Debug, Clone)]
    enum Net {
        Deliver,
        Drop,
        Duplicate,
        /// Hold back and deliver after this many more packets (reordering).
        Delay(u8),
    }

    fn net() -> impl Strategy<Value = Net> {
        prop_oneof![
            6 => Just(Net::Deliver),
            2 => Just(Net::Drop),
            1 => Just(Net::Duplicate),
            1 => (1u8..6).prop_map(Net::Delay),
        ]
    }

    /// Send `actions.len()` packets through a faulty network, then 60 over a
    /// clean one. A receiver-side CCP answers `NeedReset` with a
    /// Reset-Request reaching the sender `reset_delay` packets later, and
    /// repeats it every 8 packets while the decryptor keeps discarding
    /// (RFC 1962 restart timer). Every packet accepted must be the right
    /// plaintext, and the link must be back to full delivery at the end.
    fn simulate(strength: MppeStrength, stateless: bool, actions: &[Net], reset_delay: usize) {
        let (mut enc, mut dec) = pair(strength, stateless);
        let mut held: Vec<(usize, usize, Vec<u8>)> = Vec::new(); // (due, index, packet)
        let mut reset_at: Option<usize> = None;
        let mut last_request = 0usize;
        let total = actions.len() + 60;
        let mut delivered_tail = 0;
        for i in 0..total {
            if reset_at == Some(i) {
                enc.reset_requested();
                reset_at = None;
            }
            let packet = seal(&mut enc, i);
            let mut action = actions.get(i).cloned().unwrap_or(Net::Deliver);
            if !stateless && packet[0] & FLAG_FLUSHED != 0 {
                // Stateful mode cannot survive losing (or reordering) a
                // packet that changed the key: nothing tells the receiver
                // the change happened (see the module documentation).
                action = Net::Deliver;
            }
            let mut now: Vec<(usize, Vec<u8>)> = Vec::new();
            match action {
                Net::Deliver => now.push((i, packet)),
                Net::Drop => {}
                Net::Duplicate => {
                    now.push((i, packet.clone()));
                    now.push((i, packet));
                }
                Net::Delay(k) => held.push((i + usize::from(k), i, packet)),
            }
            // Held packets that are due go first if earlier than this one.
            held.sort_by_key(|h| h.0);
            while held.first().is_some_and(|h| h.0 <= i) {
                let (_, idx, p) = held.remove(0);
                now.insert(0, (idx, p));
            }
            for (idx, mut p) in now {
                match dec.decrypt(&mut p) {
                    Ok(got) => {
                        check_ok(&p, &got, idx);
                        if i >= actions.len() + 30 {
                            delivered_tail += 1;
                        }
                    }
                    Err(MppeError::Stale { .. }) => {}
                    Err(MppeError::NeedReset { .. }) if !stateless => {
                        if reset_at.is_none() {
                            reset_at = Some(i + 1 + reset_delay);
                            last_request = i;
                        }
                    }
                    Err(MppeError::Discarding { .. }) if !stateless => {
                        if reset_at.is_none() && i >= last_request + 8 {
                            reset_at = Some(i + 1 + reset_delay);
                            last_request = i;
                        }
                    }
                    Err(e) => panic!("packet {idx}: unexpected {e:?}"),
                }
            }
        }
        assert_eq!(delivered_tail, 30, "link did not recover");
        assert!(!dec.is_discarding());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn stateless_survives_loss_duplication_reordering(
            actions in proptest::collection::vec(net(), 0..600),
            s in 0usize..3,
        ) {
            simulate(ALL_STRENGTHS[s], true, &actions, 0);
        }

        #[test]
        fn stateful_survives_loss_duplication_reordering(
            actions in proptest::collection::vec(net(), 0..600),
            s in 0usize..3,
            reset_delay in 0usize..5,
        ) {
            simulate(ALL_STRENGTHS[s], false, &actions, reset_delay);
        }

        /// Long runs of loss, crossing flag packets and the 4096 wrap.
        #[test]
        fn burst_loss(
            start in 0usize..4096,
            burst in 1usize..1500,
            stateless in any::<bool>(),
            reset_delay in 0usize..5,
        ) {
            let mut actions = vec![Net::Deliver; start + burst];
            for a in &mut actions[start..] {
                *a = Net::Drop;
            }
            simulate(MppeStrength::Bits128, stateless, &actions, reset_delay);
        }

        /// Arbitrary bytes never panic, in any mode, and leave the
        /// decryptor usable.
        #[test]
        fn random_input_never_panics(
            packets in proptest::collection::vec(
                proptest::collection::vec(any::<u8>(), 0..64), 0..64),
            s in 0usize..3,
            stateless in any::<bool>(),
        ) {
            let (_, mut dec) = pair(ALL_STRENGTHS[s], stateless);
            for mut p in packets {
                let _ = dec.decrypt(&mut p);
            }
            let _ = dec.is_discarding();
        }

        /// Valid packets with random bit flips in the header never panic.
        #[test]
        fn mutated_headers_never_panic(
            flips in proptest::collection::vec((0usize..50, 0u8..8, any::<bool>()), 0..50),
            stateless in any::<bool>(),
        ) {
            let (mut enc, mut dec) = pair(MppeStrength::Bits40, stateless);
            for (i, (n, bit, flip)) in flips.into_iter().enumerate() {
                let mut p = seal(&mut enc, i);
                if flip {
                    let n = n % 2;
                    p[n] ^= 1 << bit;
                }
                let _ = dec.decrypt(&mut p);
            }
        }
    }

    /// Linux's ppp_mppe in stateful mode, modelled from its behaviour
    /// (drivers/net/ppp/ppp_mppe.c, read for behaviour only): the
    /// coherency count starts one before 0; the sender changes its key and
    /// sets the A bit on flag packets and on the first packet after
    /// `comp_reset` (pppd calls it when it sends the Reset-Ack), never on
    /// the first packet; the receiver drops a flag packet without the A
    /// bit, goes into discard on a gap (pppd then sends a Reset-Request),
    /// leaves it only on an A-bit packet after one key change per 256-block
    /// crossed, and changes its key once for every A-bit packet.
    struct LinuxMppe {
        keys: crate::crypto::mppe_keys::MppeKeySchedule,
        rc4: Rc4,
        ccount: u16,
        flush: bool,
        discard: bool,
    }

    impl LinuxMppe {
        fn new(strength: MppeStrength) -> Self {
            let keys = crate::crypto::mppe_keys::MppeKeySchedule::new(&KEY, strength);
            let rc4 = Rc4::new(keys.session_key());
            LinuxMppe {
                keys,
                rc4,
                ccount: CCOUNT_MASK,
                flush: false,
                discard: false,
            }
        }

        fn rekey(&mut self) {
            self.keys.change_key();
            self.rc4.rekey(self.keys.session_key());
        }

        fn compress(&mut self, i: usize) -> Vec<u8> {
            let (protocol, payload) = plain(i);
            self.compress_body(protocol, &payload)
        }

        fn compress_body(&mut self, protocol: u16, payload: &[u8]) -> Vec<u8> {
            self.ccount = (self.ccount + 1) & CCOUNT_MASK;
            let mut flags = FLAG_ENCRYPTED;
            if self.ccount & 0xFF == 0xFF || self.flush {
                self.rekey();
                flags |= FLAG_FLUSHED;
            }
            self.flush = false;
            let [hi, lo] = self.ccount.to_be_bytes();
            let mut out = vec![flags | hi, lo];
            let mut body = protocol.to_be_bytes().to_vec();
            body.extend_from_slice(payload);
            self.rc4.apply_keystream(&mut body);
            out.extend(body);
            out
        }

        fn comp_reset(&mut self) {
            self.flush = true;
        }

        /// The plaintext (protocol field + payload), or None (DECOMP_ERROR).
        fn decompress(&mut self, packet: &[u8]) -> Option<Vec<u8>> {
            let flushed = packet[0] & FLAG_FLUSHED != 0;
            let count = u16::from_be_bytes([packet[0] & 0x0F, packet[1]]);
            if count & 0xFF == 0xFF && !flushed {
                return None;
            }
            if !self.discard {
                self.ccount = (self.ccount + 1) & CCOUNT_MASK;
                if count != self.ccount {
                    self.discard = true;
                    return None;
                }
            } else {
                if !flushed {
                    return None;
                }
                while count & !0xFF != self.ccount & !0xFF {
                    self.keys.change_key();
                    self.ccount = (self.ccount + 256) & CCOUNT_MASK;
                }
                self.discard = false;
                self.ccount = count;
            }
            if flushed {
                self.rekey();
            }
            let mut body = packet[2..].to_vec();
            self.rc4.apply_keystream(&mut body);
            Some(body)
        }
    }

    fn plain_body(i: usize) -> Vec<u8> {
        let (protocol, payload) = plain(i);
        let mut body = protocol.to_be_bytes().to_vec();
        body.extend(payload);
        body
    }

    /// Issue 11: our stateful encryptor against Linux's decryptor. Packets
    /// are lost (one, then a run across a flag packet); every packet Linux
    /// cannot decrypt makes pppd send a Reset-Request, which reaches us a
    /// few packets later. Everything sent after the answer decrypts, the
    /// first packet of the link included.
    #[test]
    fn stateful_our_encryptor_resynchronises_linux() {
        for strength in ALL_STRENGTHS {
            let mut enc = MppeEncryptor::new(&KEY, settings(strength, false));
            let mut linux = LinuxMppe::new(strength);
            let lost = |i: usize| i == 10 || (300..=520).contains(&i) || i == 700;
            let mut reset_at = None;
            let mut resets = 0;
            let mut delivered = 0;
            for i in 0..1100 {
                if reset_at == Some(i) {
                    enc.reset_requested();
                    reset_at = None;
                    resets += 1;
                }
                let p = seal(&mut enc, i);
                if lost(i) {
                    continue;
                }
                match linux.decompress(&p) {
                    Some(body) => {
                        assert_eq!(body, plain_body(i), "{strength:?} packet {i}");
                        delivered += 1;
                    }
                    None => {
                        reset_at.get_or_insert(i + 3);
                    }
                }
            }
            assert_eq!(resets, 3, "{strength:?}");
            // Losses: 1 + 221 + 1; discarded while the Reset-Request
            // travels: 3 packets after each loss.
            assert_eq!(delivered, 1100 - 223 - 3 * 3, "{strength:?}");
        }
    }

    /// Issue 11: the flushed packet answering pppd's Reset-Request is lost
    /// too. Linux changes its key once per flushed packet it receives, so
    /// our answer must not cost a key change of its own (it jumps to the
    /// block's flag packet): the next flushed packet resynchronises Linux.
    #[test]
    fn stateful_lost_flushed_packet_still_resynchronises_linux() {
        for strength in ALL_STRENGTHS {
            let mut enc = MppeEncryptor::new(&KEY, settings(strength, false));
            let mut linux = LinuxMppe::new(strength);
            let mut delivered_after = 0;
            for i in 0..400 {
                // pppd's first Reset-Request (after the loss of 10) is
                // answered by packet 14, lost; its repeat by packet 20.
                if i == 14 || i == 20 {
                    enc.reset_requested();
                }
                let p = seal(&mut enc, i);
                if i == 10 || i == 14 {
                    continue;
                }
                match linux.decompress(&p) {
                    Some(body) => {
                        assert_eq!(body, plain_body(i), "{strength:?} packet {i}");
                        if i >= 20 {
                            delivered_after += 1;
                        }
                    }
                    None => assert!(i < 20, "{strength:?} packet {i} not decrypted"),
                }
            }
            assert_eq!(delivered_after, 380, "{strength:?}");
        }
    }

    /// Issue 11, the other way: Linux's encryptor against our decryptor,
    /// which asks for a reset (the Link sends the CCP Reset-Request, pppd
    /// answers with a Reset-Ack and resets its compressor).
    #[test]
    fn stateful_linux_encryptor_resynchronises_us() {
        for strength in ALL_STRENGTHS {
            let mut linux = LinuxMppe::new(strength);
            let mut dec = MppeDecryptor::new(&KEY, settings(strength, false));
            let lost = |i: usize| i == 0 || i == 40 || (250..=700).contains(&i);
            let mut reset_at = None;
            let mut delivered = 0;
            for i in 0..1200 {
                if reset_at == Some(i) {
                    linux.comp_reset();
                    reset_at = None;
                }
                let mut p = linux.compress(i);
                if lost(i) {
                    continue;
                }
                match dec.decrypt(&mut p) {
                    Ok(got) => {
                        check_ok(&p, &got, i);
                        delivered += 1;
                    }
                    Err(MppeError::NeedReset { .. }) => {
                        assert!(reset_at.is_none());
                        reset_at = Some(i + 2);
                    }
                    Err(MppeError::Discarding { .. }) => {}
                    Err(e) => panic!("{strength:?} packet {i}: {e}"),
                }
            }
            // Three losses (packet 0 too), each costing the packets sent
            // before the reset took effect; the long one ends early at
            // the flag packet 511, which resynchronises by itself.
            assert!(
                delivered > 1200 - 3 - 451 - 3 * 3,
                "{strength:?}: {delivered}"
            );
            assert!(!dec.is_discarding());
        }
    }

    /// Issue 11: Linux's encryptor changes its key on every flushed packet
    /// (the answer to each Reset-Request), at any count. Here 1 to 4 of
    /// those flushed packets are lost in a row (each time our Link repeats
    /// its Reset-Request); the next one must still decrypt, by trial, and
    /// everything after it, across flag packets. With 5 lost the bound is
    /// reached and the flushed packet is dropped, not mis-decrypted.
    #[test]
    fn stateful_lost_linux_flushed_packets_resynchronise_us() {
        for strength in ALL_STRENGTHS {
            for lost_flushes in 1..=5u8 {
                let label = format!(
                    "{}, {lost_flushes} lost",
                    MppeSettings {
                        strength,
                        stateless: false
                    }
                );
                let mut linux = LinuxMppe::new(strength);
                let mut dec = MppeDecryptor::new(&KEY, settings(strength, false));
                for i in 0..10 {
                    let mut p = linux.compress(i);
                    open_ok(&mut dec, &mut p, i);
                }
                linux.compress(10); // lost: we ask for a reset
                let mut p = linux.compress(11);
                assert!(matches!(
                    dec.decrypt(&mut p),
                    Err(MppeError::NeedReset { .. })
                ));
                let mut i = 12;
                for _ in 0..lost_flushes {
                    linux.comp_reset();
                    let p = linux.compress(i); // the flushed answer, lost
                    assert_eq!(p[0] & FLAG_FLUSHED, FLAG_FLUSHED);
                    i += 1;
                    // Unflushed packets before the next Reset-Request.
                    for _ in 0..3 {
                        let mut p = linux.compress(i);
                        assert!(
                            matches!(dec.decrypt(&mut p), Err(MppeError::Discarding { .. })),
                            "{label}: packet {i}"
                        );
                        i += 1;
                    }
                }
                linux.comp_reset();
                let mut p = linux.compress(i);
                if lost_flushes == 5 {
                    assert!(
                        matches!(
                            dec.decrypt(&mut p),
                            Err(MppeError::Unverified { entered: false, .. })
                        ),
                        "{label}"
                    );
                    assert!(dec.is_discarding());
                    continue;
                }
                let got = open_ok(&mut dec, &mut p, i);
                assert_eq!(got.lost_flushes, lost_flushes, "{label}");
                assert!(!dec.is_discarding());
                for i in i + 1..i + 700 {
                    let mut p = linux.compress(i);
                    let got = dec
                        .decrypt(&mut p)
                        .unwrap_or_else(|e| panic!("{label}: packet {i}: {e}"));
                    check_ok(&p, &got, i);
                    assert_eq!(got.lost_flushes, 0);
                }
            }
        }
    }

    /// A flushed packet that is not IP after a lost flushed packet: its
    /// predicted key is wrong and its protocol cannot be checked, so it is
    /// dropped (not handed up as garbage) and changes nothing; the next
    /// flushed IPv4 packet then finds both key changes by trial.
    #[test]
    fn stateful_non_ip_after_lost_flushed_packet_is_dropped() {
        for strength in ALL_STRENGTHS {
            let mut linux = LinuxMppe::new(strength);
            let mut dec = MppeDecryptor::new(&KEY, settings(strength, false));
            for i in 0..10 {
                let mut p = linux.compress(i);
                open_ok(&mut dec, &mut p, i);
            }
            linux.compress(10); // lost
            let mut p = linux.compress(11);
            assert!(matches!(
                dec.decrypt(&mut p),
                Err(MppeError::NeedReset { .. })
            ));
            linux.comp_reset();
            let _lost = linux.compress(12);
            linux.comp_reset();
            let ipcp = [0x01, 0x07, 0x00, 0x0A, 0x03, 0x06, 10, 0, 0, 1];
            let mut p = linux.compress_body(0x8021, &ipcp);
            assert_eq!(
                dec.decrypt(&mut p),
                Err(MppeError::Unverified {
                    count: 13,
                    entered: false
                }),
                "{strength:?}"
            );
            assert!(dec.is_discarding());
            let mut p = linux.compress(14);
            assert!(matches!(
                dec.decrypt(&mut p),
                Err(MppeError::Discarding { .. })
            ));
            linux.comp_reset();
            let mut p = linux.compress(15);
            let got = open_ok(&mut dec, &mut p, 15);
            assert_eq!(got.lost_flushes, 2, "{strength:?}");
            for i in 16..300 {
                let mut p = linux.compress(i);
                open_ok(&mut dec, &mut p, i);
            }
        }
    }

    /// In sequence, a flushed packet whose payload cannot be verified with
    /// the predicted key (here: a protocol that is neither IP nor an NCP
    /// Linux encrypts) is dropped and sends the decryptor into discard
    /// (`entered`: the caller sends a Reset-Request); the answer to that
    /// request decrypts by trial.
    #[test]
    fn stateful_unverifiable_flushed_packet_in_sequence_asks_for_reset() {
        let mut linux = LinuxMppe::new(MppeStrength::Bits128);
        let mut dec = MppeDecryptor::new(&KEY, settings(MppeStrength::Bits128, false));
        for i in 0..5 {
            let mut p = linux.compress(i);
            open_ok(&mut dec, &mut p, i);
        }
        linux.comp_reset();
        let mut p = linux.compress_body(0x0281, b"not ip at all");
        assert_eq!(
            dec.decrypt(&mut p),
            Err(MppeError::Unverified {
                count: 5,
                entered: true
            })
        );
        linux.comp_reset();
        let mut p = linux.compress(7); // an IPv4 datagram
        assert_eq!(open_ok(&mut dec, &mut p, 7).lost_flushes, 1);
    }

    #[test]
    fn plausibility_is_strict() {
        let ip4 = ipv4_packet(7, 100);
        let with = |field: &[u8], ip: &[u8]| {
            let mut b = field.to_vec();
            b.extend_from_slice(ip);
            let n = b.len();
            b.truncate(PROBE_LEN);
            plausibility(&b, n)
        };
        assert_eq!(with(&[0x00, 0x21], &ip4), Plausible::Ip);
        assert_eq!(with(&[0x21], &ip4), Plausible::Ip, "PFC");
        assert_eq!(with(&[0x00, 0x57], &ip4), Plausible::No);
        let mut bad = ip4.clone();
        bad[10] ^= 1;
        assert_eq!(with(&[0x00, 0x21], &bad), Plausible::No, "checksum");
        assert_eq!(with(&[0x00, 0x21], &ip4[..99]), Plausible::No, "length");
        let mut bad = ip4.clone();
        bad[0] = 0x44; // IHL 4; checksum fixed below would not help
        assert_eq!(with(&[0x00, 0x21], &bad), Plausible::No, "IHL");
        // Options: IHL 6 with a valid checksum is fine.
        let mut opt = ipv4_packet(9, 64);
        opt[0] = 0x46;
        opt[10..12].copy_from_slice(&[0, 0]);
        let sum = opt[..24]
            .chunks(2)
            .fold(0u32, |a, w| a + u32::from(u16::from_be_bytes([w[0], w[1]])));
        let sum = (sum & 0xFFFF) + (sum >> 16);
        let sum = (sum & 0xFFFF) + (sum >> 16);
        opt[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        assert_eq!(with(&[0x00, 0x21], &opt), Plausible::Ip, "options");
        let ip6 = ipv6_packet(3, 80);
        assert_eq!(with(&[0x00, 0x57], &ip6), Plausible::Ip);
        assert_eq!(with(&[0x57], &ip6), Plausible::Ip, "PFC");
        assert_eq!(with(&[0x00, 0x57], &ip6[..79]), Plausible::No);
        assert_eq!(with(&[0x00, 0x57], &ip6[..30]), Plausible::No);
        assert_eq!(with(&[0x80, 0x21], b"\x01\x01\x00\x04"), Plausible::Other);
        assert_eq!(with(&[0x80, 0x57], b""), Plausible::Other);
        assert_eq!(with(&[0x02, 0x81], b"xyz"), Plausible::No);
        assert_eq!(with(&[0x2B], b"xyz"), Plausible::No);
        assert_eq!(plausibility(&[], 0), Plausible::No);
        assert_eq!(plausibility(&[0x00], 1), Plausible::No);
        assert_eq!(plausibility(&[0x21], 1), Plausible::No);
    }

    proptest! {
        /// Random bytes never pass as an IP datagram (or as one of the
        /// NCPs, whose chance is 2 in 65536, so not tested here), and the
        /// check never panics whatever the lengths.
        #[test]
        fn random_bytes_are_not_plausible_ip(
            body in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let probe = &body[..body.len().min(PROBE_LEN)];
            prop_assert_ne!(plausibility(probe, body.len()), Plausible::Ip);
        }
    }
}
