//! What a session asks of its owner.

use std::future::Future;
use std::pin::Pin;

use ppp::auth::AuthRequest;
use ppp::link::{LinkUp, NetworkSettings};

use crate::live::LiveSession;
pub use session::{AuthAnswer, EndReason, SessionInfo};

/// A boxed future: hooks run on the control path only, never per packet.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Where received IP packets go (the TUN device). Synchronous and
/// non-blocking: a packet that cannot be written at once is dropped, as a
/// router would, so one slow consumer never stalls a session.
pub trait PacketSink: Send + Sync {
    fn send(&self, packet: &[u8]);
    /// A packet from the peer, handed over like [`PacketSink::send`];
    /// says whether it is the peer's activity for the idle timeout
    /// (RFC 2865 §5.28). The server's NetBIOS gateway takes clients' name
    /// service and datagram packets, which are not. Default: sent, and it is.
    fn send_from_peer(&self, packet: &[u8]) -> bool {
        self.send(packet);
        true
    }
    /// The session has handed over everything it had for now: a batching
    /// sink writes its batch (one wake-up and one coalesced write for all
    /// the packets of one TLS read, instead of one per packet).
    fn flush(&self) {}
}

/// How a tunnel authenticated its peer without the owner's help.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TunnelAuthMethod {
    /// A certificate from a trusted CA signed the peer's AUTH (IKEv2,
    /// RFC 7296 §2.15).
    Certificate,
}

/// The owner of a server session (`ras server`): it decides who logs in
/// and what network they get, and hears when the session ends.
pub trait ServerHooks: Send + Sync + 'static {
    /// Check credentials.
    fn authenticate(&self, info: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer>;
    /// A tunnel that authenticated the peer itself, without `authenticate`
    /// (IKEv2 with a client certificate), says how before it asks
    /// `network`, so that policies see the method. The default does
    /// nothing.
    fn authenticated_by_tunnel(&self, _info: &SessionInfo, _method: TunnelAuthMethod) {}
    /// A client certificate the tunnel verified (chain, CRL files): its
    /// status over the network (OCSP, a CRL distribution point), asked
    /// before `network`. An error refuses the client. The default has no
    /// such check.
    fn certificate_status(
        &self,
        _info: &SessionInfo,
        _certificate: &ipsec::ikev1::certificates::PeerCertificate,
    ) -> BoxFuture<Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
    /// The user is authenticated: decide the network settings (addresses
    /// from the pool, policy). An error refuses the user.
    fn network(&self, info: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>>;
    /// The link is up: register the session's addresses and hand back the
    /// queue of IP packets to send through the tunnel.
    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<crate::PacketReceiver, String>>;
    /// The session ended, and why (called exactly once if `network` was
    /// asked, whatever its answer).
    fn down(&self, info: &SessionInfo, reason: &EndReason);
    /// The owner's live view of the session (counters, stop requests),
    /// asked once `network` succeeded. `None` (the default): nobody
    /// watches.
    fn live(&self, _info: &SessionInfo) -> Option<std::sync::Arc<LiveSession>> {
        None
    }
    /// When the link is up: the answers for the server's own end of the
    /// link in IPv6 (echo and Neighbor Discovery on its link-local
    /// address, see the `icmpv6` crate), applied to the peer's packets
    /// before they reach the sink. `None` (the default): every packet
    /// goes to the sink.
    fn link_responder(&self, _info: &SessionInfo, _up: &LinkUp) -> Option<icmpv6::Responder> {
        None
    }
    /// The /64 the session's IPv6 address comes from, once `network`
    /// succeeded (tunnels without IPv6CP, like IKEv2, hand out a whole
    /// address). `None` (the default): no IPv6.
    fn ipv6_prefix(&self, _info: &SessionInfo) -> Option<std::net::Ipv6Addr> {
        None
    }
    /// When the link is up, and again once `up` succeeded: the sources
    /// the peer may send from (its addresses, the networks routed to it).
    /// Packets from any other source are dropped before the sink. `None`
    /// (the default): no check.
    fn source_filter(&self, _info: &SessionInfo, _up: &LinkUp) -> Option<session::SourceFilter> {
        None
    }
    /// Once `up` succeeded: the networks routed through the session
    /// (RADIUS Framed-Route), `(network, length)`; IKEv2 lets the child
    /// SA's client side cover them. Empty (the default): none.
    fn routed_networks(&self, _info: &SessionInfo) -> Vec<(std::net::IpAddr, u8)> {
        Vec::new()
    }
}

/// The owner of a client session (`ras connect`, `ras dial`): it is told
/// how far the connection got and carries the traffic once it is up.
pub trait ClientHooks: Send + Sync + 'static {
    /// The transport to the server is up (the PPTP call is established)
    /// and PPP starts; authentication comes next. For progress displays;
    /// the default does nothing.
    fn transport_up(&self, _info: &SessionInfo) {}
    /// The link is up: set up the host's side (addresses, routes) and hand
    /// back the queue of IP packets to send through the tunnel.
    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<crate::PacketReceiver, String>>;
    /// Once `up` succeeded: a source the session task reads IP packets
    /// from itself (the client's TUN device), besides the queue `up`
    /// returned. `None` (the default): the queue only.
    fn packet_source(&self, _info: &SessionInfo) -> Option<Box<dyn crate::PacketSource>> {
        None
    }
}

/// Whose session it is: the role-generic drivers (SSTP, a serial line)
/// take either owner, and the owner decides the session's role.
#[derive(Clone)]
pub enum Owner {
    /// A server session.
    Server(std::sync::Arc<dyn ServerHooks>),
    /// A client session.
    Client(std::sync::Arc<dyn ClientHooks>),
}

impl Owner {
    /// The session role this owner runs.
    pub fn role(&self) -> session::Role {
        match self {
            Owner::Server(_) => session::Role::Server,
            Owner::Client(_) => session::Role::Client,
        }
    }
}
