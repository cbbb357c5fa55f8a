//! ESP (RFC 4303) in user space.
//!
//! One [`EspSa`] protects one direction of traffic. Outbound, it turns an IP
//! payload (transport mode, RFC 4303 §3.1.1) or a whole inner IP packet
//! (tunnel mode, §3.1.2: next header 4 or 41) into an ESP packet in a
//! caller-owned buffer. Inbound, it checks the anti-replay window, verifies
//! the ICV, decrypts in place and hands back the next header and the payload
//! range. [`InboundSas`] holds the inbound SAs by SPI so that an old and a new
//! SA overlap during a rekey.

mod error;
mod inbound_set;
mod lifetime;
mod packet;
mod replay;
mod sa;
mod suite;
mod transform;

pub use error::EspError;
pub use inbound_set::InboundSas;
pub use lifetime::{LifetimeLimits, LifetimeStatus};
pub use packet::{
    Decapsulated, ESP_HEADER_LEN, NEXT_HEADER_IPV4, NEXT_HEADER_IPV6, NEXT_HEADER_NO_NEXT,
};
pub use replay::{ReplayCheck, ReplayWindow};
pub use sa::{EspCounters, EspSa, EspSaConfig};
pub use suite::{CipherSuite, Integrity};

#[cfg(test)]
mod tests;
