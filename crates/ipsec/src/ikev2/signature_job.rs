//! Our signature for an EAP client's first IKE_AUTH answer (RFC 7296
//! §2.16: the responder authenticates itself first, with its certificate),
//! as work the driver may run on another thread.
//!
//! An RSA-2048 signature costs more than everything else a handshake needs
//! on the responder (DH, four exchanges' encryption, MSCHAPv2) together;
//! signed on the thread that answers every IKE datagram, it caps a burst of
//! certificate + EAP handshakes at one core. With
//! `Ikev2Config::offload_signatures` the responder does not sign: it emits
//! [`super::Ikev2Event::SignatureNeeded`] when the client asks for EAP (the
//! octets to sign are known from IKE_SA_INIT on, §2.15), holds its first
//! EAP answer until the driver returns the [`SignedAuth`], and the
//! signature overlaps the driver's EAP-Identity round.

use std::sync::Arc;

use super::events::IkeSaId;
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
    pub(crate) fn new(
        ike_sa: IkeSaId,
        credential: Arc<ServerCredential>,
        signed: Vec<u8>,
        peer_hashes: Vec<u16>,
    ) -> Self {
        SignatureJob {
            ike_sa,
            credential,
            signed,
            peer_hashes,
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

/// Where the responder's own AUTH for an EAP client stands.
pub(crate) enum OurAuth {
    /// Signed (or keyed with the PSK) in the first EAP answer itself.
    Inline,
    /// A [`SignatureJob`] is out; the first EAP answer waits for it.
    Pending,
    /// The job came back.
    Done(Result<(u8, Vec<u8>), SignatureAuthError>),
}
