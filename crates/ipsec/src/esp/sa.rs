//! One ESP security association, for one direction of traffic.

use std::time::Instant;

use zeroize::Zeroizing;

use super::error::EspError;
use super::lifetime::{LifetimeLimits, LifetimeStatus};
use super::packet::{be_u32, padding_is_valid, Decapsulated, ESP_HEADER_LEN, TRAILER_LEN};
use super::replay::{ReplayCheck, ReplayWindow};
use super::suite::CipherSuite;
use super::transform::Transform;

/// RFC 4303 §3.3.3: with 32-bit sequence numbers the counter must not
/// cycle; 2^32 - 1 is the last number that may be sent.
const LAST_SEQ: u32 = u32::MAX;

/// Ask for a rekey this many packets before the sequence space runs out, so
/// the new SA is ready before [`EspError::SequenceExhausted`].
const SEQ_REKEY_MARGIN: u32 = 1 << 20;

/// The largest IP payload ESP can carry in one IPv4/IPv6 packet.
const MAX_PAYLOAD: usize = 65535;

/// Everything needed to set up an SA. Keys are zeroized on drop.
pub struct EspSaConfig {
    pub spi: u32,
    pub suite: CipherSuite,
    /// Encryption key; for GCM followed by the 4-byte salt (RFC 4106 §8.1).
    pub cipher_key: Zeroizing<Vec<u8>>,
    /// Integrity key (empty for GCM).
    pub integrity_key: Zeroizing<Vec<u8>>,
    pub lifetime: LifetimeLimits,
    /// Anti-replay window in bits (inbound); rounded up to a multiple of 64.
    pub replay_window: u32,
}

/// Packet and failure counters of one SA.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EspCounters {
    /// Packets encapsulated or accepted.
    pub packets: u64,
    /// Payload bytes encapsulated or accepted (what byte lifetimes count).
    pub bytes: u64,
    /// Inbound packets dropped as duplicates or too old.
    pub replayed: u64,
    /// Inbound packets whose ICV did not verify.
    pub auth_failed: u64,
    /// Inbound packets too short, misaligned or with bad padding.
    pub malformed: u64,
}

/// One direction of an ESP SA: the keyed transform, the outbound sequence
/// counter or the inbound replay window, lifetimes and counters.
pub struct EspSa {
    spi: u32,
    suite: CipherSuite,
    transform: Transform,
    /// Last sequence number sent (0: none yet; the first packet carries 1).
    seq: u32,
    replay: ReplayWindow,
    lifetime: LifetimeLimits,
    created: Instant,
    counters: EspCounters,
}

impl EspSa {
    /// Keys an SA created at `now`.
    pub fn new(config: &EspSaConfig, now: Instant) -> Result<Self, EspError> {
        Ok(EspSa {
            spi: config.spi,
            suite: config.suite,
            transform: Transform::new(config.suite, &config.cipher_key, &config.integrity_key)?,
            seq: 0,
            replay: ReplayWindow::new(config.replay_window),
            lifetime: config.lifetime,
            created: now,
            counters: EspCounters::default(),
        })
    }

    pub fn spi(&self) -> u32 {
        self.spi
    }

    pub fn suite(&self) -> CipherSuite {
        self.suite
    }

    pub fn counters(&self) -> EspCounters {
        self.counters
    }

    /// The last sequence number sent.
    pub fn last_seq(&self) -> u32 {
        self.seq
    }

    /// The anti-replay window (inbound).
    pub fn replay_window(&self) -> &ReplayWindow {
        &self.replay
    }

    /// Lifetime status at `now`; also `RekeyDue` when the outbound sequence
    /// space is nearly used and `Expired` once it is used up.
    pub fn lifetime_status(&self, now: Instant) -> LifetimeStatus {
        let by_limits = self
            .lifetime
            .status_at(self.created, now, self.counters.bytes);
        let by_seq = if self.seq == LAST_SEQ {
            LifetimeStatus::Expired
        } else if self.seq >= LAST_SEQ - SEQ_REKEY_MARGIN {
            LifetimeStatus::RekeyDue
        } else {
            LifetimeStatus::Fresh
        };
        worst(by_limits, by_seq)
    }

    /// Overhead an encapsulated packet adds at most, for buffer sizing.
    pub fn max_overhead(&self) -> usize {
        ESP_HEADER_LEN
            + self.suite.iv_len()
            + TRAILER_LEN
            + (self.suite.alignment() - 1)
            + self.suite.icv_len()
    }

    /// Builds an ESP packet (RFC 4303 §2) carrying `payload` with
    /// `next_header` into `out`, replacing its contents. `out` keeps its
    /// capacity between calls, so a reused buffer means no allocation.
    ///
    /// Transport mode (§3.1.1): `payload` is the IP payload, e.g. a UDP
    /// datagram, and `next_header` its protocol (17). Tunnel mode (§3.1.2):
    /// `payload` is the whole inner packet and `next_header` is 4 or 41.
    pub fn encapsulate(
        &mut self,
        now: Instant,
        next_header: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EspError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(EspError::PayloadTooLarge(payload.len()));
        }
        if self
            .lifetime
            .status_at(self.created, now, self.counters.bytes)
            == LifetimeStatus::Expired
        {
            return Err(EspError::Expired);
        }
        // RFC 4303 §3.3.3: never let the counter cycle.
        if self.seq == LAST_SEQ {
            return Err(EspError::SequenceExhausted);
        }
        let seq = self.seq + 1;
        let iv = self.next_iv(seq)?;
        self.encapsulate_with(seq, &iv[..self.suite.iv_len()], next_header, payload, out)?;
        self.seq = seq;
        self.counters.packets += 1;
        self.counters.bytes += payload.len() as u64;
        Ok(())
    }

    /// The per-packet IV. GCM: the 64-bit sequence number, which never
    /// repeats under one key because the counter never wraps (RFC 4106 §3.1:
    /// "the IV MUST NOT repeat for a given key"; a counter is allowed).
    /// CBC: unpredictable random bytes (RFC 3602 §3).
    fn next_iv(&self, seq: u32) -> Result<[u8; 16], EspError> {
        let mut iv = [0u8; 16];
        if self.suite.is_aead() {
            iv[..8].copy_from_slice(&u64::from(seq).to_be_bytes());
        } else {
            aws_lc_rs::rand::fill(&mut iv).map_err(|_| EspError::Crypto("no random IV"))?;
        }
        Ok(iv)
    }

    /// Encapsulation with an explicit sequence number and IV: the published
    /// test vectors fix both. Does not touch the counter.
    pub(crate) fn encapsulate_with(
        &self,
        seq: u32,
        iv: &[u8],
        next_header: u8,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<(), EspError> {
        let align = self.suite.alignment();
        let unpadded = payload.len() + TRAILER_LEN;
        // RFC 4303 §2.4: pad so the trailer ends on the required boundary.
        let pad_len = (align - unpadded % align) % align;
        let body_start = ESP_HEADER_LEN + iv.len();
        let icv_len = self.suite.icv_len();

        out.clear();
        out.extend_from_slice(&self.spi.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(iv);
        out.extend_from_slice(payload);
        // RFC 4303 §2.4: padding bytes 1, 2, 3, ...
        out.extend((1..=pad_len).map(|b| b as u8));
        out.push(pad_len as u8);
        out.push(next_header);
        let icv_start = out.len();
        out.resize(icv_start + icv_len, 0);
        let (packet, icv) = out.split_at_mut(icv_start);
        self.transform.seal(packet, body_start, icv)
    }

    /// Checks, verifies and decrypts the ESP packet in `packet` in place
    /// (RFC 4303 §3.4). On success the payload is `packet[result.payload]`.
    /// Every failure is counted; replayed and forged packets never move the
    /// replay window.
    pub fn decapsulate(
        &mut self,
        now: Instant,
        packet: &mut [u8],
    ) -> Result<Decapsulated, EspError> {
        let result = self.decapsulate_inner(now, packet);
        match &result {
            Ok(d) => {
                self.counters.packets += 1;
                self.counters.bytes += d.payload.len() as u64;
            }
            Err(EspError::Replayed(_)) => self.counters.replayed += 1,
            Err(EspError::AuthenticationFailed) => self.counters.auth_failed += 1,
            Err(EspError::Truncated(_) | EspError::Misaligned(_) | EspError::BadPadding) => {
                self.counters.malformed += 1
            }
            Err(_) => {}
        }
        result
    }

    fn decapsulate_inner(
        &mut self,
        now: Instant,
        packet: &mut [u8],
    ) -> Result<Decapsulated, EspError> {
        let body_start = ESP_HEADER_LEN + self.suite.iv_len();
        let icv_len = self.suite.icv_len();
        if packet.len() < body_start + TRAILER_LEN + icv_len {
            return Err(EspError::Truncated(packet.len()));
        }
        let spi = be_u32(packet, 0);
        if spi != self.spi {
            return Err(EspError::UnknownSpi(spi));
        }
        let icv_start = packet.len() - icv_len;
        let body_len = icv_start - body_start;
        if !self.suite.is_aead() && !body_len.is_multiple_of(self.suite.alignment()) {
            return Err(EspError::Misaligned(body_len));
        }
        if self
            .lifetime
            .status_at(self.created, now, self.counters.bytes)
            == LifetimeStatus::Expired
        {
            return Err(EspError::Expired);
        }
        // RFC 4303 §3.4.3: check the window before the (expensive) ICV.
        let seq = be_u32(packet, 4);
        if self.replay.check(seq) != ReplayCheck::Fresh {
            return Err(EspError::Replayed(seq));
        }
        self.transform.open(packet, body_start, icv_start)?;
        let pad_len = usize::from(packet[icv_start - 2]);
        let next_header = packet[icv_start - 1];
        let Some(payload_end) = (icv_start - TRAILER_LEN)
            .checked_sub(pad_len)
            .filter(|&end| end >= body_start)
        else {
            return Err(EspError::BadPadding);
        };
        if !padding_is_valid(&packet[payload_end..icv_start - TRAILER_LEN]) {
            return Err(EspError::BadPadding);
        }
        // §3.4.3: update the window only once the packet is authentic.
        self.replay.accept(seq);
        Ok(Decapsulated {
            spi,
            seq,
            next_header,
            payload: body_start..payload_end,
        })
    }

    /// Test hook: the keyed transform, to build deliberately bad packets.
    #[cfg(test)]
    pub(crate) fn transform_for_tests(&self) -> &Transform {
        &self.transform
    }

    /// Test hook: pretend `count` packets were already sent.
    #[cfg(test)]
    pub(crate) fn set_last_seq(&mut self, seq: u32) {
        self.seq = seq;
    }
}

fn worst(a: LifetimeStatus, b: LifetimeStatus) -> LifetimeStatus {
    use LifetimeStatus::*;
    match (a, b) {
        (Expired, _) | (_, Expired) => Expired,
        (RekeyDue, _) | (_, RekeyDue) => RekeyDue,
        _ => Fresh,
    }
}
