//! PPTP (Point-to-Point Tunneling Protocol, RFC 2637) as a sans-IO protocol core.
//!
//! The crate owns no socket and no clock: the caller feeds bytes from the TCP
//! control connection (port 1723) and GRE datagrams (IP protocol 47), passes
//! `Instant`s in, and drains what the core wants written. Layers:
//!
//! * [`control`]: the control messages of RFC 2637 §2 (header, all fifteen
//!   messages, result and error codes) and a bounded streaming
//!   [`control::Deframer`] for the TCP byte stream.
//! * [`gre`]: the enhanced GRE header of RFC 2637 §4.1.
//! * [`window`]: 32-bit serial arithmetic, the send window (§4.2, §4.4) and
//!   the receive/reorder window (§4.2.4, §4.3).
//! * [`gre_session`]: the per-call GRE data channel built on them.
//! * [`pac`] / [`pns`]: the control-connection and outgoing-call state
//!   machines of §3 for the server (PAC) and the client (PNS).
//! * [`demux`]: the server's raw-socket demultiplexer: IPv4 + GRE parsing,
//!   the call table keyed by Call ID and client address, drop counts.
//!
//! The state machines follow the quinn-proto API shape: getters, `handle_*`
//! inputs, commands, and `poll_*` outputs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod conn;
pub mod control;
pub mod demux;
pub mod gre;
pub mod gre_session;
pub mod pac;
pub mod pns;
pub mod window;

pub use conn::{CallClearReason, CloseReason, ControlState, Event};
pub use control::{DecodeError, Deframer, Message};
pub use gre::{GreError, GreHeader, GrePacket};
pub use gre_session::{GreConfig, GreSession, GreStats, SendError};
pub use pac::{AssignCallIdError, Pac, PacConfig};
pub use pns::{Pns, PnsConfig};

/// The TCP port of the PPTP control connection (RFC 2637 §1.3.1).
pub const TCP_PORT: u16 = 1723;
/// The IP protocol number of GRE, which carries the PPTP data channel.
pub const IP_PROTOCOL_GRE: u8 = 47;
