//! Inbound SAs by SPI, with overlap across a rekey.
//!
//! RFC 7296 §2.8: after a CHILD_SA rekey the peer may keep sending on the
//! old SA until it has switched, so the old inbound SA stays until it is
//! deleted or hard-expires. Both SPIs are in the set meanwhile, and each
//! packet goes to the SA its SPI names: no packet is lost at a rekey.

use std::collections::HashMap;
use std::time::Instant;

use super::error::EspError;
use super::lifetime::LifetimeStatus;
use super::packet::{spi_of, Decapsulated};
use super::sa::EspSa;

/// The inbound SAs of one peer (or of a whole server), keyed by SPI.
#[derive(Default)]
pub struct InboundSas {
    by_spi: HashMap<u32, EspSa>,
    /// Packets that named no SA we hold (RFC 4303 §3.4.2: discard, audit).
    unknown_spi: u64,
    /// Packets too short to carry an SPI.
    runts: u64,
}

impl InboundSas {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an SA (e.g. the new one of a rekey); returns the SA it replaced
    /// if the SPI was already present.
    pub fn insert(&mut self, sa: EspSa) -> Option<EspSa> {
        self.by_spi.insert(sa.spi(), sa)
    }

    /// Removes an SA (e.g. on an IKE Delete for the old one).
    pub fn remove(&mut self, spi: u32) -> Option<EspSa> {
        self.by_spi.remove(&spi)
    }

    pub fn get(&self, spi: u32) -> Option<&EspSa> {
        self.by_spi.get(&spi)
    }

    pub fn len(&self) -> usize {
        self.by_spi.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_spi.is_empty()
    }

    /// Packets dropped for an unknown SPI.
    pub fn unknown_spi_drops(&self) -> u64 {
        self.unknown_spi
    }

    /// Packets dropped for being shorter than an SPI.
    pub fn runt_drops(&self) -> u64 {
        self.runts
    }

    /// Decapsulates with the SA the packet's SPI names.
    pub fn decapsulate(
        &mut self,
        now: Instant,
        packet: &mut [u8],
    ) -> Result<Decapsulated, EspError> {
        let Some(spi) = spi_of(packet) else {
            self.runts += 1;
            return Err(EspError::Truncated(packet.len()));
        };
        match self.by_spi.get_mut(&spi) {
            Some(sa) => sa.decapsulate(now, packet),
            None => {
                self.unknown_spi += 1;
                Err(EspError::UnknownSpi(spi))
            }
        }
    }

    /// Drops the SAs past their hard lifetime at `now` and returns them
    /// (so the caller can log their counters).
    pub fn remove_expired(&mut self, now: Instant) -> Vec<EspSa> {
        let expired: Vec<u32> = self
            .by_spi
            .iter()
            .filter(|(_, sa)| sa.lifetime_status(now) == LifetimeStatus::Expired)
            .map(|(&spi, _)| spi)
            .collect();
        expired
            .into_iter()
            .filter_map(|spi| self.by_spi.remove(&spi))
            .collect()
    }

    /// SPIs whose SAs passed a soft limit at `now`: rekey them.
    pub fn rekey_due(&self, now: Instant) -> Vec<u32> {
        self.by_spi
            .iter()
            .filter(|(_, sa)| sa.lifetime_status(now) == LifetimeStatus::RekeyDue)
            .map(|(&spi, _)| spi)
            .collect()
    }
}
