//! NetBIOS over TCP/IP (RFC 1001/1002) as a sans-IO core, and the RAS
//! NetBIOS datagram gateway built on it.
//!
//! The crate owns no socket and no clock: the caller feeds UDP payloads
//! from port 137 (name service) and 138 (datagram service), passes
//! `Instant`s in, and drains what the core wants sent. Layers:
//!
//! * [`name`]: NetBIOS names, their first-level encoding (RFC 1001 §14.1)
//!   and their second-level, DNS-like encoding with scope (RFC 1001 §14.2,
//!   RFC 1002 §4.1), label pointers included.
//! * [`name_service`]: the name service packets of RFC 1002 §4.2.
//! * [`datagram`]: the datagram service packets of RFC 1002 §4.4.
//! * [`gateway`]: the datagram gateway of ras-datagram-processing-q97559
//!   (names of remote clients registered on the LAN, the LAN → client rules
//!   with every knob, the client → LAN rule), with its [`config`],
//!   [`counters`], the [`gate`] of MulticastForwardRate, the
//!   [`name_table`] and the per-client [`delivery`] queues.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod counters;
pub mod datagram;
pub mod delivery;
pub mod gate;
pub mod gateway;
pub mod name;
pub mod name_service;
pub mod name_table;

pub use config::{ConfigError, GatewayConfig, Knobs, MulticastForwardRate, SessionTrafficRule};
pub use counters::Counters;
pub use datagram::{Datagram, DatagramBody, DatagramError, DatagramHeader, DatagramType};
pub use gateway::{
    ClientId, Destination, Event, Gateway, LanVerdict, RefusedBecause, Source, Transmit,
};
pub use name::{NameError, NetbiosName};
pub use name_service::{NamePacket, NameServiceError, Opcode, Rcode};
pub use name_table::{NameKind, NameState};

/// The UDP port of the NetBIOS name service (RFC 1002 §6 "Defined Constants").
pub const NAME_SERVICE_PORT: u16 = 137;
/// The UDP port of the NetBIOS datagram service (RFC 1002 §6).
pub const DATAGRAM_SERVICE_PORT: u16 = 138;
