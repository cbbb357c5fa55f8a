//! What the IKEv2 responder asks its driver to do and tells it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::esp::EspSaConfig;

pub use crate::ikev1::events::{DownReason, IkeSaId, Transmit};

use super::traffic_selectors::TrafficSelector;

/// How the client proved its identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// AUTH with a pre-shared key (§2.15).
    SharedKey,
    /// EAP (§2.16), e.g. EAP-MSCHAPv2 against the user store or RADIUS.
    Eap,
    /// AUTH signed with the key of a certificate from a trusted CA (§2.15).
    Certificate,
}

impl std::fmt::Display for ClientAuthMethod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ClientAuthMethod::SharedKey => "pre-shared key",
            ClientAuthMethod::Eap => "EAP",
            ClientAuthMethod::Certificate => "certificate",
        })
    }
}

/// An authenticated client asks for a tunnel: the driver decides (access
/// policy, address) and answers with [`super::Ikev2Responder::authorize`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub ike_sa: IkeSaId,
    pub peer: SocketAddr,
    /// The client's identity, printable.
    pub identity: String,
    pub method: ClientAuthMethod,
    /// With a certificate: its subject DN, for the log.
    pub certificate_subject: Option<String>,
    /// With a certificate: it and its issuer, for an OCSP or CRL
    /// distribution point check before `authorize` (the driver's, so that
    /// no fetch holds the responder).
    pub certificate: Option<crate::ikev1::certificates::PeerCertificate>,
    /// The configuration payload asked for an IPv4 / IPv6 address.
    pub wants_ipv4: bool,
    pub wants_ipv6: bool,
}

/// The driver's EAP server's answer to an `EapStart` or `EapResponse`
/// (RFC 7296 §2.16), given to [`super::Ikev2Responder::eap_reply`].
pub enum EapReply {
    /// The next EAP Request.
    Continue(Vec<u8>),
    /// EAP Success, the method's MSK, and the identity the client proved.
    Success {
        packet: Vec<u8>,
        msk: zeroize::Zeroizing<Vec<u8>>,
        identity: String,
    },
    /// EAP Failure; `reason` is for the log only (the client sees the
    /// Failure packet, the same for every cause).
    Failure { packet: Vec<u8>, reason: String },
}

/// The driver's answer to an [`AuthorizationRequest`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Authorization {
    /// The client's virtual address (INTERNAL_IP4_ADDRESS, §3.15.1).
    pub ipv4: Option<Ipv4Addr>,
    /// Its IPv6 address (INTERNAL_IP6_ADDRESS), given only if it asked.
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub dns: Vec<IpAddr>,
    pub nbns: Vec<Ipv4Addr>,
    /// Split DNS for Apple clients (RFC 8598).
    pub dns_domain: Option<String>,
    /// What the client may reach (TSr is narrowed to these, §2.9); empty:
    /// everything.
    pub routes: Vec<TrafficSelector>,
    /// Networks behind the client (RADIUS Framed-Route): the client's side
    /// (TSi) covers them too, as far as the client proposed them (§2.9:
    /// narrowed, never widened).
    pub client_networks: Vec<TrafficSelector>,
}

/// An ESP SA pair in tunnel mode agreed on (IKE_AUTH or CREATE_CHILD_SA).
pub struct ChildSa {
    pub ike_sa: IkeSaId,
    /// Where to send ESP (the peer's current address and port).
    pub peer: SocketAddr,
    /// ESP goes in UDP on the NAT-T port (RFC 3948) rather than as IP
    /// protocol 50 (§2.23: whenever a NAT was detected).
    pub udp_encapsulated: bool,
    pub inbound: EspSaConfig,
    pub outbound: EspSaConfig,
    /// Narrowed selectors: the client's side (its virtual address) and
    /// ours (the routes it may reach).
    pub client_selectors: Vec<TrafficSelector>,
    pub server_selectors: Vec<TrafficSelector>,
    pub virtual_ipv4: Option<Ipv4Addr>,
    /// The client's identity, for logs.
    pub identity: String,
    /// A human description of the suite ("aes256gcm16").
    pub suite: String,
    /// The inbound SPI of the child SA this one replaces (a rekey).
    pub replaces_inbound_spi: Option<u32>,
}

/// What happened.
pub enum Ikev2Event {
    /// IKE_AUTH completed: the peer is authenticated.
    IkeSaUp {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        identity: String,
        suite: String,
        nat: String,
    },
    /// A client wants EAP: answer with `eap_reply` (the first Request,
    /// normally EAP-Identity, RFC 3748 §5.1: Windows' IKE identity is its
    /// address, not the user).
    EapStart {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        ike_identity: String,
    },
    /// Make our signature (`offload_signatures`): run the job, on any
    /// thread, and give its result to `signature_ready`. The answer that
    /// carries our AUTH (an EAP client's first EAP round, or IKE_AUTH for
    /// a client that signed) waits for it.
    SignatureNeeded(Box<super::signature_job::SignatureJob>),
    /// The client's EAP Response: answer with `eap_reply`.
    EapResponse { ike_sa: IkeSaId, packet: Vec<u8> },
    /// Decide on this client (policy, address), then call `authorize`.
    AuthorizationNeeded(Box<AuthorizationRequest>),
    /// Install these ESP SAs.
    ChildSaUp(Box<ChildSa>),
    /// Remove the ESP SAs with these SPIs.
    ChildSaDown {
        ike_sa: IkeSaId,
        inbound_spi: u32,
        outbound_spi: u32,
        reason: DownReason,
    },
    /// The IKE SA and all its children are gone (its address may be freed).
    IkeSaDown {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        reason: DownReason,
    },
    /// An IKE SA that asked the driver something (EAP, an authorization)
    /// ended before it was up: whatever the driver set aside for it goes.
    Abandoned { ike_sa: IkeSaId, peer: SocketAddr },
    /// The peer's address changed (a NAT mapping, or MOBIKE, RFC 4555):
    /// send ESP there from now on, in UDP or not.
    PeerMoved {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        udp_encapsulated: bool,
    },
    /// A refusal or a dropped message, worth one log line.
    Refused { peer: SocketAddr, reason: String },
}
