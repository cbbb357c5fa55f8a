//! RADIUS client (the NAS side) as a sans-IO protocol core.
//!
//! The crate never touches sockets or clocks: the caller passes `Instant`s
//! in, hands received datagrams to [`RadiusClient::handle_datagram`] and
//! writes out what [`RadiusClient::poll_transmit`] returns. Layers:
//!
//! * [`packet`]: the wire codec (RFC 2865 §3, §5), including Vendor-Specific
//!   attributes (RFC 2865 §5.26).
//! * [`dict`]: attribute type numbers and typed values for what a remote
//!   access server uses (RFC 2865, 2866, 2868, 2869, 3162, 3579, 5176).
//! * [`security`]: User-Password hiding (RFC 2865 §5.2), Request and
//!   Response Authenticators (RFC 2865 §3, RFC 2866 §3) and
//!   Message-Authenticator (RFC 3579 §3.2, RFC 2869 §5.14).
//! * [`microsoft`]: the Microsoft vendor attributes of RFC 2548 (MS-CHAP,
//!   MS-CHAPv2, MPPE keys and policy).
//! * [`request`]: Access-Request and Accounting-Request builders.
//! * [`response`]: verification of replies and their typed reading
//!   ([`AccessOutcome`]).
//! * [`client`]: transactions, identifiers, retransmission with
//!   exponential backoff (RFC 5080 §2.2.1) and primary/alternate failover.
//!
//! Every Access-Request and Accounting-Request this crate sends carries a
//! Message-Authenticator, and every Access-Accept, Access-Reject and
//! Access-Challenge must carry a valid one or it is refused (the BlastRADIUS
//! mitigation, CVE-2024-3596).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
pub mod dict;
pub mod framed_route;
pub mod microsoft;
pub mod packet;
pub mod request;
pub mod response;
pub mod security;

#[cfg(test)]
mod vectors;

pub use client::{
    ClientConfig, DatagramError, Event, RadiusClient, RetransmitConfig, SendError, ServerConfig,
    ServerId, TxId,
};
pub use framed_route::{
    parse_framed_ipv6_route, parse_framed_route, FramedRoute, FramedRouteError,
};
pub use packet::{Attribute, Code, DecodeError, EncodeError, Packet, SubAttribute, Vsa};
pub use request::Request;
pub use response::{Accept, AccessOutcome, Challenge, MppeKeys, Outcome, Reject, ResponseError};
pub use security::{Secret, VerifyError};
