//! Who an L2TP datagram came from, and how to answer it.
//!
//! The LNS does not own its transport: plain L2TP arrives on a UDP socket,
//! L2TP/IPsec (RFC 3193) arrives decrypted from an ESP security
//! association. The front end that owns the transport names the peer and
//! hands over a reply sink with each datagram.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

/// The peer of an L2TP tunnel, as the transport sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum L2tpPeer {
    /// Plain L2TP over UDP (RFC 2661 §8.1) from this address.
    Plain(SocketAddr),
    /// L2TP inside IPsec (RFC 3193): `sa` is the IPsec driver's id of the
    /// security association, `addr` the client's outer address (for logs
    /// and RADIUS Calling-Station-Id).
    Ipsec {
        /// The IPsec driver's id of the SA.
        sa: u64,
        /// The client's outer address.
        addr: SocketAddr,
    },
}

impl L2tpPeer {
    /// The client's (outer) address.
    pub fn addr(&self) -> SocketAddr {
        match self {
            L2tpPeer::Plain(a) | L2tpPeer::Ipsec { addr: a, .. } => *a,
        }
    }
}

impl fmt::Display for L2tpPeer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            L2tpPeer::Plain(a) => write!(f, "{a}"),
            L2tpPeer::Ipsec { sa, addr } => write!(f, "{addr} (IPsec SA {sa})"),
        }
    }
}

/// Sends one L2TP datagram (control or data) to a peer: for plain UDP a
/// non-blocking `send_to` the peer's address, for IPsec an ESP
/// encapsulation on the peer's SA. It must not block (the LNS calls it
/// from its tunnel and session tasks); a datagram it cannot send at once
/// is dropped, as a router would (reliable delivery retransmits control
/// messages, §5.8; PPP copes with lost data).
///
/// The sink given with a tunnel's first datagram (its SCCRQ) serves the
/// tunnel for its whole life.
pub type L2tpReply = Arc<dyn Fn(Vec<u8>) + Send + Sync>;
