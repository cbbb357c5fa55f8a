//! L2TP version 2 (RFC 2661) as a sans-IO protocol core.
//!
//! The crate owns no socket and no clock: the caller feeds UDP datagrams
//! (port 1701), passes `Instant`s in and drains what the core wants sent.
//! Layers:
//!
//! * [`header`]: the L2TP header of RFC 2661 §3.1 (control and data).
//! * [`avp`]: Attribute-Value Pairs (§4.1, §4.4), hidden AVPs (§4.3).
//! * [`message`]: control messages (§3.2, §6) as a list of typed AVPs.
//! * [`reliable`]: the reliable delivery of control messages (§5.8):
//!   Ns/Nr, the receive window, ZLB acknowledgements, retransmission.
//! * [`reason`]: StopCCN/CDN result codes and close reasons.
//! * [`tunnel`]: the control connection and its sessions (§5, §7) for the
//!   LAC and the LNS.
//! * [`data`]: data messages carrying PPP frames (§3.1, §5.4) without
//!   per-packet allocation.
//!
//! The state machine follows the quinn-proto API shape: `handle_*` inputs,
//! commands, and `poll_*` outputs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod avp;
pub mod data;
pub mod header;
pub mod message;
pub mod reason;
pub mod reliable;
pub mod seq;
pub mod tunnel;

pub use avp::{Avp, AvpError, AvpValue};
pub use data::{decode_data, encode_data, DataMessage};
pub use header::{ControlHeader, HeaderError};
pub use message::{ControlMessage, MessageError, MessageType};
pub use reliable::{Reliable, ReliableConfig};
pub use tunnel::{Event, Role, SessionCloseReason, Tunnel, TunnelCloseReason, TunnelConfig};

/// The UDP port of L2TP (RFC 2661 §8.1).
pub const UDP_PORT: u16 = 1701;
