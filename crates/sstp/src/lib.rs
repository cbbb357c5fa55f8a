//! MS-SSTP (Secure Socket Tunneling Protocol) as a sans-IO protocol core.
//!
//! The crate never touches sockets, TLS or clocks: the caller feeds the bytes
//! that came out of the TLS stream, passes `Instant`s in, and drains the bytes
//! to write back. Layers:
//!
//! * [`http`]: the `SSTP_DUPLEX_POST` request / `200 OK` response that opens
//!   the HTTPS stream (MS-SSTP §4.1, HTTPS Layer Establishment).
//! * [`codec`] / [`attributes`]: SSTP packets (MS-SSTP §2.2), including a
//!   bounded streaming [`codec::Deframer`].
//! * [`binding`]: the crypto binding (certificate hash, HLAK, CMK, Compound
//!   MAC; MS-SSTP §3.2.5.2, §3.3.5.2.3).
//! * [`client`] / [`server`]: the connection state machines (MS-SSTP §3.2,
//!   §3.3), with the common timers and abort/disconnect procedures of §3.1.
//!
//! The state machines follow the quinn-proto API shape: getters, `handle_*`
//! inputs, commands, and `poll_*` outputs.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod attributes;
pub mod binding;
pub mod client;
pub mod codec;
mod conn;
mod connection;
pub mod http;
pub mod server;

pub use attributes::{Attribute, CryptoBindingAttr, StatusCode, StatusInfo};
pub use binding::{
    BindingError, CertificateHashes, HashProtocol, HigherLayerKeys, Hlak, Role,
    CERT_HASH_PROTOCOL_SHA1, CERT_HASH_PROTOCOL_SHA256,
};
pub use client::{ClientConfig, ClientConnection};
pub use codec::{CodecError, ControlMessage, Deframer, MessageType, Packet};
pub use conn::{AbortCause, CloseReason, Event, SendError, StateError, Timers};
pub use connection::Connection;
pub use server::{ServerConfig, ServerConnection};

/// The PPP protocol number carried by a PPP frame as SSTP transports it.
///
/// SSTP data packets carry a PPP frame without HDLC framing (MS-SSTP §2.2.3).
/// Peers may or may not include the `FF 03` address/control bytes and may use
/// protocol-field compression (RFC 1661 §6.5), so both are tolerated here.
/// Returns `None` for a frame too short to hold a protocol field.
pub fn ppp_protocol(frame: &[u8]) -> Option<u16> {
    // A valid PPP protocol number has an even high octet (RFC 1661 §2), so a
    // leading 0xFF can only be the HDLC address byte.
    let f = if frame.len() >= 2 && frame[0] == 0xFF && frame[1] == 0x03 {
        &frame[2..]
    } else {
        frame
    };
    let b0 = *f.first()?;
    if b0 & 1 == 1 {
        // Protocol-field compression: a single odd octet.
        Some(u16::from(b0))
    } else {
        let b1 = *f.get(1)?;
        Some(u16::from_be_bytes([b0, b1]))
    }
}

/// Whether a PPP frame carries network-layer traffic (RFC 1661 §2: protocol
/// numbers below 0x8000 are network-layer datagrams; 0x8000 and above are
/// NCPs and link-layer control protocols such as LCP, CHAP and EAP).
///
/// An unparseable frame counts as network-layer so that it is held back
/// before the crypto binding is verified.
pub fn is_network_layer_frame(frame: &[u8]) -> bool {
    match ppp_protocol(frame) {
        Some(p) => p < 0x8000,
        None => true,
    }
}
