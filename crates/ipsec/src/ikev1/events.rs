//! What the IKEv1 responder asks its driver to do and tells it.

use std::net::{IpAddr, SocketAddr};

use crate::esp::EspSaConfig;

use super::certificates::PeerCertificate;

/// Identifies one IKE SA for the driver (stable for its life).
pub type IkeSaId = u64;

/// A datagram to send. `from_nat_t_port`: send from the NAT-T socket,
/// prefixed with the four-byte non-ESP marker (RFC 3948 §2.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub remote: SocketAddr,
    pub from_nat_t_port: bool,
    pub bytes: Vec<u8>,
}

impl Transmit {
    /// A one-byte 0xFF NAT-keepalive (RFC 3948 §2.3) goes out on the NAT-T
    /// port as it is, without the non-ESP marker: no IKE message is that short.
    pub fn is_nat_keepalive(&self) -> bool {
        self.bytes == [crate::udp_encap::NAT_KEEPALIVE]
    }
}

/// An ESP SA pair Quick Mode agreed on.
pub struct ChildSa {
    pub ike_sa: IkeSaId,
    /// Where to send ESP (the peer's current address and port).
    pub peer: SocketAddr,
    /// ESP goes in UDP on the NAT-T port (RFC 3948) rather than as IP
    /// protocol 50.
    pub udp_encapsulated: bool,
    pub inbound: EspSaConfig,
    pub outbound: EspSaConfig,
    /// The peer's own address before its NAT (NAT-OA, RFC 3947 §5.2), when
    /// it sent one; inner checksums of transport mode refer to it.
    pub peer_original_address: Option<IpAddr>,
    /// The peer's UDP port of the protected traffic (1701 for L2TP, 0: any).
    pub peer_port: u16,
    /// The peer's identity, for logs.
    pub peer_identity: String,
    /// A human description of the suite ("aes256-cbc/hmac-sha1-96").
    pub suite: String,
}

/// Why an SA ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// The peer sent a Delete.
    DeletedByPeer,
    /// The peer stopped answering DPD.
    DeadPeer,
    /// Its lifetime ran out.
    Expired,
    /// The peer started over (INITIAL-CONTACT) or replaced it.
    Replaced,
    /// We closed it.
    Closed,
    /// The driver refused the peer's certificate after Main Mode (OCSP, a
    /// CRL distribution point, or no answer in time): why, for the log.
    CertificateRefused(String),
}

impl std::fmt::Display for DownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DownReason::DeletedByPeer => "deleted by the peer",
            DownReason::DeadPeer => "the peer stopped answering dead peer detection",
            DownReason::Expired => "its lifetime ran out",
            DownReason::Replaced => "the peer started over",
            DownReason::Closed => "closed",
            DownReason::CertificateRefused(why) => return write!(f, "certificate refused: {why}"),
        })
    }
}

/// What happened.
pub enum IkeEvent {
    /// Main Mode completed: the peer is authenticated.
    IkeSaUp {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        identity: String,
        suite: String,
        nat: String,
    },
    /// Main Mode completed with a certificate whose status the driver
    /// must ask online (OCSP, CRL distribution points) before anything
    /// else; the answer goes to
    /// [`Responder::certificate_status`](super::Responder::certificate_status).
    /// Until then Quick Mode is not answered. At most one per IKE SA.
    CertificateStatusNeeded {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        identity: String,
        certificate: Box<PeerCertificate>,
    },
    /// Quick Mode completed: install these ESP SAs.
    ChildSaUp(Box<ChildSa>),
    /// Remove the ESP SAs with these SPIs.
    ChildSaDown {
        ike_sa: IkeSaId,
        inbound_spi: u32,
        outbound_spi: u32,
        reason: DownReason,
    },
    /// The IKE SA and all its children are gone.
    IkeSaDown {
        ike_sa: IkeSaId,
        peer: SocketAddr,
        reason: DownReason,
    },
    /// The peer's NAT mapping changed: send ESP and IKE there from now on.
    PeerMoved { ike_sa: IkeSaId, peer: SocketAddr },
    /// A refusal or a dropped message, worth one log line.
    Refused { peer: SocketAddr, reason: String },
}
