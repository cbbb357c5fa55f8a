//! DHCPv4 on behalf of remote access clients, as RRAS does it: a sans-IO
//! lease engine that leases addresses in blocks (one identity per
//! address), renews, rebinds and releases them, and falls back to APIPA
//! when no server answers; and a DHCPINFORM relay. No sockets, no clock,
//! no tokio here: the server's drivers own those.
//!
//! Messages are encoded and decoded with `dhcproto`; everything received
//! goes through [`message::decode`], which bounds and checks it first.

pub mod apipa;
pub mod engine;
pub mod lease;
pub mod message;
pub mod relay;

#[cfg(test)]
mod engine_tests;

pub use engine::{Allocation, Engine, EngineConfig, Event, HeldLease, SessionKey};
pub use lease::{Destination, Transmit};
pub use relay::{Relay, RelayError, Relayed};
