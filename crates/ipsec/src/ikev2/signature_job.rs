//! Our signature in IKE_AUTH (RFC 7296 §2.15; for EAP clients in the
//! first answer, §2.16), as work the driver may run on another thread.
//!
//! An RSA-2048 signature costs more than everything else a handshake needs
//! on the responder (DH, four exchanges' encryption, MSCHAPv2) together;
//! signed on the thread that answers every IKE datagram, it caps a burst of
//! certificate + EAP handshakes at one core. With
//! `Ikev2Config::offload_signatures` the responder does not sign: it emits
//! [`super::Ikev2Event::SignatureNeeded`] when the client asks for EAP (the
//! octets to sign are known from IKE_SA_INIT on, §2.15), or when a client
//! that signed itself asks for authorization, and holds the answer that
//! carries our AUTH (the first EAP round's; IKE_AUTH's once authorized)
//! until the driver returns the [`SignedAuth`]. The signature overlaps the
//! driver's EAP-Identity round or its authorization.

use std::sync::Arc;
use std::time::Instant;

use super::auth::signed_octets;
use super::events::IkeSaId;
use super::ike_sa::{IkeSa, Stage};
use super::responder::Ikev2Responder;
use super::signature_auth::{ServerCredential, SignatureAuthError};

/// One signature to make: `run` it anywhere, give the result to
/// [`super::Ikev2Responder::signature_ready`].
pub struct SignatureJob {
    pub ike_sa: IkeSaId,
    credential: Arc<ServerCredential>,
    signed: Vec<u8>,
    peer_hashes: Vec<u16>,
}

/// A finished [`SignatureJob`]: the AUTH method and data, or why there
/// are none.
pub struct SignedAuth {
    pub ike_sa: IkeSaId,
    pub(crate) result: Result<(u8, Vec<u8>), SignatureAuthError>,
}

impl SignatureJob {
    /// The job for our AUTH in `sa` (§2.15: it signs our IKE_SA_INIT
    /// response, the initiator's nonce and prf(SK_pr, IDr)); `sa` now
    /// waits for it.
    pub(crate) fn for_sa(
        sa: &mut IkeSa,
        credential: Arc<ServerCredential>,
        idr_body: &[u8],
    ) -> Self {
        let signed = signed_octets(sa.prf, &sa.init_response, &sa.ni, &sa.keys.sk_pr, idr_body);
        sa.our_signature = OurAuth::Pending;
        SignatureJob {
            ike_sa: sa.id,
            credential,
            signed,
            peer_hashes: sa.peer_hashes.clone(),
        }
    }

    /// Signs (the slow part; no responder state is touched).
    pub fn run(self) -> SignedAuth {
        SignedAuth {
            ike_sa: self.ike_sa,
            result: self.credential.sign(&self.signed, &self.peer_hashes),
        }
    }
}

/// Where our signature for an IKE SA stands.
pub(crate) enum OurAuth {
    /// Made (or keyed with the PSK) where the answer is built.
    Inline,
    /// A [`SignatureJob`] is out; the answer that carries it waits.
    Pending,
    /// The job came back.
    Done(Result<(u8, Vec<u8>), SignatureAuthError>),
}

impl OurAuth {
    /// The signature the driver made, if it did (then `Inline` again).
    pub(crate) fn take_done(&mut self) -> Option<Result<(u8, Vec<u8>), SignatureAuthError>> {
        match std::mem::replace(self, OurAuth::Inline) {
            OurAuth::Done(result) => Some(result),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl Ikev2Responder {
    /// The driver made our signature (`SignatureNeeded`): the answer that
    /// waited for it (the first EAP round's, or IKE_AUTH's for a client
    /// that signed, once authorized) goes out now.
    pub fn signature_ready(&mut self, now: Instant, signed: SignedAuth) {
        let ike_sa = signed.ike_sa;
        let Some(&spi_r) = self.ids.get(&ike_sa) else {
            return; // the SA ended meanwhile
        };
        let Some(sa) = self.sas.get_mut(&spi_r) else {
            return;
        };
        if !matches!(sa.our_signature, OurAuth::Pending) {
            return;
        }
        sa.our_signature = OurAuth::Done(signed.result);
        match &mut sa.stage {
            Stage::Eap(stage) => {
                if let Some(reply) = stage.held_reply.take() {
                    self.eap_reply(now, ike_sa, reply);
                }
            }
            Stage::Authorizing(_) => {
                if let Some(decision) = sa.held_decision.take() {
                    self.authorize(now, ike_sa, decision);
                }
            }
            _ => {}
        }
    }
}
