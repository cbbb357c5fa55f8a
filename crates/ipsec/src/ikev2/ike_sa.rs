//! The state one IKEv2 SA keeps on the responder side.

use std::net::SocketAddr;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::ike_crypto::ikev2_keys::IkeSaKeys;
use crate::ike_crypto::HashAlg;
use crate::ikev1::nat_detection::NatState;

use super::encrypted::{DirectionKeys, SkTransform};
use super::events::IkeSaId;
use super::fragments::Reassembly;
use super::sa_payload::Proposal;
use super::traffic_selectors::TrafficSelector;

/// What the IKE_AUTH request asked for while the driver decides.
pub(crate) struct PendingChild {
    pub message_id: u32,
    pub proposals: Vec<Proposal>,
    pub tsi: Vec<TrafficSelector>,
    pub tsr: Vec<TrafficSelector>,
    pub cp_requested: bool,
    pub wants_ipv4: bool,
    pub wants_ipv6: bool,
    pub requested_since: Instant,
}

/// An EAP conversation in IKE_AUTH (RFC 7296 §2.16), carried between the
/// client and the driver's EAP server.
pub(crate) struct EapStage {
    /// The first IKE_AUTH's child request; `message_id` is the request we
    /// answer next.
    pub pending: PendingChild,
    /// The client's IDi body, which its final AUTH signs.
    pub idi_body: Vec<u8>,
    /// The driver has not answered the last EAP message yet.
    pub owe_answer: bool,
    /// Our first answer (IDr, AUTH) has gone out.
    pub sent_auth: bool,
    /// The driver's first EAP answer, held while our signature is made.
    pub held_reply: Option<super::events::EapReply>,
    /// Set when the EAP method succeeded: the key of both final AUTHs.
    pub msk: Option<Zeroizing<Vec<u8>>>,
    pub eap_identity: Option<String>,
    pub since: Instant,
}

pub(crate) enum Stage {
    /// IKE_SA_INIT answered; waiting for IKE_AUTH (a half-open SA).
    HalfOpen,
    /// EAP in progress: still unauthenticated, still counted half-open.
    Eap(Box<EapStage>),
    /// The client is authenticated; the driver decides on its tunnel.
    Authorizing(Box<PendingChild>),
    Established,
}

/// An ESP SA pair of this IKE SA.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ChildRecord {
    pub inbound_spi: u32,
    pub outbound_spi: u32,
    pub suite: crate::esp::CipherSuite,
    pub client_selectors: Vec<TrafficSelector>,
    pub server_selectors: Vec<TrafficSelector>,
}

/// A request we sent (liveness check or delete) and await the answer to.
pub(crate) struct OurRequest {
    pub message_id: u32,
    pub datagrams: Vec<Vec<u8>>,
    pub first_sent: Instant,
    pub last_sent: Instant,
    pub attempts: u32,
}

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The peer talks to our NAT-T port: answer from it, with the non-ESP
    /// marker.
    pub on_nat_t: bool,
    pub nat: NatState,
    pub prf: HashAlg,
    pub protection: SkTransform,
    pub keys: IkeSaKeys,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    /// RealMessage1/2 of §2.15: our AUTH signs the response, the peer's
    /// the request.
    pub init_request: Vec<u8>,
    pub init_response: Vec<u8>,
    pub peer_fragments: bool,
    /// RFC 7427 hash algorithms the peer announced (empty: none).
    pub peer_hashes: Vec<u16>,
    pub stage: Stage,
    /// The Message ID of the next request the peer may send (§2.2).
    pub expected_request: u32,
    /// Our answer to the last request, resent when it is retransmitted.
    pub last_response: Option<(u32, Vec<Vec<u8>>)>,
    pub identity: String,
    /// The key of our shared-key AUTH payloads: the pre-shared key, or
    /// after EAP the MSK (§2.16).
    pub auth_key: Option<Zeroizing<Vec<u8>>>,
    /// The client authenticates with EAP.
    pub eap: bool,
    /// The client authenticated with a certificate: our AUTH is a
    /// signature too (with our certificate's chain).
    pub by_certificate: bool,
    /// Both sides announced MOBIKE (RFC 4555 §3.4).
    pub mobike: bool,
    /// Our NAT-timeout probe extension was offered and agreed
    /// (`nat_probe`).
    pub nat_probe: bool,
    /// A delayed probe to send: when, and its cookie (one per IKE SA).
    pub pending_probe: Option<(Instant, u32)>,
    pub children: Vec<ChildRecord>,
    /// The selectors the client's tunnel was narrowed to at IKE_AUTH: a
    /// client whose last child expired recreates it with these.
    pub tunnel_selectors: Option<(Vec<TrafficSelector>, Vec<TrafficSelector>)>,
    pub created: Instant,
    pub last_heard: Instant,
    pub reassembly: Option<(u32, Reassembly, Instant)>,
    pub our_next_request: u32,
    pub our_request: Option<OurRequest>,
    pub suite: String,
    /// An IKE SA rekey replaced this one (§2.18): its children live on in
    /// the new SA, so its removal reports nothing.
    pub rekeyed_away: bool,
    /// Our signature in IKE_AUTH, when the driver makes it
    /// (`offload_signatures`).
    pub our_signature: super::signature_job::OurAuth,
    /// The driver's authorization, held while our signature is made.
    pub held_decision: Option<Result<super::events::Authorization, String>>,
}

impl IkeSa {
    /// Keys of messages from the initiator (SK_ei, SK_ai).
    pub fn initiator_keys(&self) -> DirectionKeys<'_> {
        DirectionKeys {
            encr: &self.keys.sk_ei,
            integ: &self.keys.sk_ai,
        }
    }

    /// Keys of our messages (SK_er, SK_ar).
    pub fn responder_keys(&self) -> DirectionKeys<'_> {
        DirectionKeys {
            encr: &self.keys.sk_er,
            integ: &self.keys.sk_ar,
        }
    }

    pub fn is_half_open(&self) -> bool {
        matches!(self.stage, Stage::HalfOpen | Stage::Eap(_))
    }
}
