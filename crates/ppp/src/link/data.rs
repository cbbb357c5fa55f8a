//! The data path of a link: received frames in, IP packets out. Nothing
//! here allocates per packet: decryption is in place and encryption
//! appends to a buffer the caller reuses.

use std::time::Instant;

use super::Link;

/// How often a stateful MPPE receiver repeats its Reset-Request while it
/// discards packets.
const RESET_REQUEST_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);
use crate::frame::{self, protocol};
use crate::mppe::MppeError;

/// What a received frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// A control packet, handled inside the link (or a dropped frame).
    Nothing,
    /// An IPv4 datagram for the network.
    Ipv4(&'a [u8]),
    /// An IPv6 datagram for the network.
    Ipv6(&'a [u8]),
}

/// Why an IP packet could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the PPP link is not up")]
    NotUp,
    #[error("the network protocol for this packet was not negotiated")]
    NotNegotiated,
    #[error("not an IPv4 or IPv6 packet")]
    NotIp,
}

impl Link {
    /// A PPP frame arrived from the transport (address/control optional).
    /// Control packets are consumed; IP datagrams are returned, decrypted
    /// in place when MPPE is on.
    pub fn handle_frame<'a>(&mut self, now: Instant, frame: &'a mut [u8]) -> Inbound<'a> {
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        let (proto, start) = match frame::decode(frame) {
            Ok(f) => (f.protocol, frame.len() - f.payload.len()),
            Err(e) => {
                tracing::debug!("dropped malformed PPP frame: {e}");
                self.stats.malformed += 1;
                return Inbound::Nothing;
            }
        };
        // Any traffic shows the peer is alive (adaptive keepalive).
        self.echo_outstanding = 0;
        match proto {
            protocol::IPV4 | protocol::IPV6 => {
                if self.decryptor.is_some() {
                    // RFC 3078 §2: once MPPE is negotiated, unencrypted
                    // datagrams are discarded.
                    self.stats.dropped += 1;
                    return Inbound::Nothing;
                }
                let payload = &frame[start..];
                self.deliver(proto, payload)
            }
            protocol::MPPE => self.decrypt(now, &mut frame[start..]),
            _ => {
                let payload = &frame[start..];
                if !self.handle_control(now, proto, payload) {
                    self.protocol_reject(proto, payload);
                }
                self.drive(now);
                Inbound::Nothing
            }
        }
    }

    fn deliver<'a>(&mut self, proto: u16, payload: &'a [u8]) -> Inbound<'a> {
        if !self.is_up() {
            self.stats.dropped += 1;
            return Inbound::Nothing;
        }
        match proto {
            protocol::IPV4 if self.ipcp.as_ref().is_some_and(|f| f.is_opened()) => {
                Inbound::Ipv4(payload)
            }
            protocol::IPV6 if self.ipv6cp.as_ref().is_some_and(|f| f.is_opened()) => {
                Inbound::Ipv6(payload)
            }
            _ => {
                self.stats.dropped += 1;
                Inbound::Nothing
            }
        }
    }

    fn decrypt<'a>(&mut self, now: Instant, packet: &'a mut [u8]) -> Inbound<'a> {
        let Some(decryptor) = &mut self.decryptor else {
            self.stats.dropped += 1;
            return Inbound::Nothing;
        };
        match decryptor.decrypt(packet) {
            Ok(d) => {
                if d.lost_flushes != 0 {
                    tracing::debug!(
                        "MPPE: resynchronised at coherency count {} by trial decryption (lost flushed packets of the peer's: {})",
                        d.coherency_count,
                        d.lost_flushes
                    );
                } else if d.lost != 0 {
                    tracing::debug!(
                        "MPPE: resynchronised at coherency count {} ({} packets lost)",
                        d.coherency_count,
                        d.lost
                    );
                }
                let payload = &packet[d.payload];
                self.deliver(d.protocol, payload)
            }
            Err(
                e @ (MppeError::NeedReset { .. }
                | MppeError::Discarding { .. }
                | MppeError::Unverified { .. }),
            ) => {
                // RFC 3078 §3 (stateful mode): after a loss, ask the peer to
                // flush with a CCP Reset-Request, and ask again (at most once
                // a second) while packets are still being discarded.
                self.stats.decrypt_errors += 1;
                let first = matches!(
                    e,
                    MppeError::NeedReset { .. } | MppeError::Unverified { entered: true, .. }
                );
                if first {
                    tracing::debug!("MPPE: {e}");
                }
                let due = self
                    .last_reset_request
                    .is_none_or(|t| now.saturating_duration_since(t) >= RESET_REQUEST_INTERVAL);
                if first || due {
                    if let Some(ccp) = &mut self.ccp {
                        let id = crate::ccp::request_reset(ccp);
                        if !first {
                            tracing::debug!(
                                "MPPE: still discarding at coherency count {}: Reset-Request {id} repeated",
                                decryptor.expected_count()
                            );
                        }
                        self.last_reset_request = Some(now);
                    }
                    self.drive(now);
                }
                Inbound::Nothing
            }
            Err(e) => {
                tracing::debug!("dropped MPPE packet: {e}");
                self.stats.decrypt_errors += 1;
                Inbound::Nothing
            }
        }
    }

    /// Append one PPP frame carrying `packet` (an IPv4 or IPv6 datagram,
    /// told apart by its version nibble) to `out`, encrypted when MPPE is
    /// on. `out` is not cleared, so several frames can be batched.
    pub fn send_ip(&mut self, packet: &[u8], out: &mut Vec<u8>) -> Result<(), SendError> {
        if !self.is_up() {
            return Err(SendError::NotUp);
        }
        let proto = match packet.first().map(|b| b >> 4) {
            Some(4) => protocol::IPV4,
            Some(6) => protocol::IPV6,
            _ => return Err(SendError::NotIp),
        };
        let negotiated = match proto {
            protocol::IPV4 => self.ipcp.as_ref().is_some_and(|f| f.is_opened()),
            _ => self.ipv6cp.as_ref().is_some_and(|f| f.is_opened()),
        };
        if !negotiated {
            return Err(SendError::NotNegotiated);
        }
        let options = self.frame_options();
        let before = out.len();
        if let Some(encryptor) = &mut self.encryptor {
            frame::encode_header(protocol::MPPE, options, out);
            encryptor.encrypt(proto, packet, out);
        } else {
            frame::encode(proto, packet, options, out);
        }
        self.stats.frames_out += 1;
        self.stats.bytes_out += (out.len() - before) as u64;
        Ok(())
    }
}
