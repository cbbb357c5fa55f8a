//! What a session counts.

/// Counters of one session: the transport's octets (the driver's) and the
/// IP packets the link carried (the core's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Octets read from the transport.
    pub bytes_in: u64,
    /// Octets written to the transport.
    pub bytes_out: u64,
    /// IP packets received from the peer.
    pub packets_in: u64,
    /// Of `packets_in`, those that are not activity for the idle timeout
    /// (RFC 2865 §5.28 Idle-Timeout): the NetBIOS name service and
    /// datagram packets the server's gateway takes (seed: datagram
    /// traffic does not keep a session alive).
    pub packets_in_not_activity: u64,
    /// IP packets sent to the peer.
    pub packets_out: u64,
    /// IP octets received from the peer (what RADIUS accounting reports).
    pub ip_bytes_in: u64,
    /// IP octets sent to the peer.
    pub ip_bytes_out: u64,
    /// IP packets from the network dropped (not up yet, queue full).
    pub dropped_out: u64,
}
