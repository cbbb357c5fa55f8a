//! The state of one IKE SA on the responder.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Instant;

use zeroize::Zeroizing;

use crate::ike_crypto::{DhPrivate, HashAlg};

use super::crypt::MessageKeys;
use super::events::IkeSaId;
use super::fragment::Reassembly;
use super::nat_detection::NatState;
use super::proposal::{Phase1Choice, Phase2Choice};
use super::vendor_ids::PeerExtensions;

/// Where Main Mode stands (RFC 2409 §5, responder side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Sent message 2, waiting for the key exchange (message 3).
    SentSa,
    /// Sent message 4, waiting for the identity (message 5).
    SentKe,
    /// Sent message 6: authenticated.
    Established,
    /// The peer deleted it. Kept until the instant given only to read the
    /// peer's other Informationals: a client that hangs up sends Delete for
    /// its ESP SAs and its IKE SA back to back, and if they arrive the other
    /// way round the ESP Deletes must still be understood.
    Deleted(Instant),
}

impl Phase {
    /// Main Mode has not finished.
    pub(crate) fn is_half_open(self) -> bool {
        matches!(self, Phase::SentSa | Phase::SentKe)
    }
}

/// A Quick Mode between its message 2 and 3.
pub(crate) struct PendingQuickMode {
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub choice: Phase2Choice,
    pub inbound_spi: u32,
    pub pfs_secret: Option<Zeroizing<Vec<u8>>>,
    /// The IV for message 3: the last block of our message 2.
    pub iv: Vec<u8>,
    pub peer_port: u16,
    pub peer_original_address: Option<std::net::IpAddr>,
    pub started: Instant,
}

/// Dead peer detection (RFC 3706) state.
#[derive(Default)]
pub(crate) struct Dpd {
    pub sequence: u32,
    /// The R-U-THERE waiting for its ACK: sequence, first sent, last sent.
    pub pending: Option<(u32, Instant, Instant)>,
}

/// Remembered answers: a retransmitted request gets the same answer again
/// (RFC 2408 §5: IKEv1 retransmits whole messages).
pub(crate) const ANSWERS_KEPT: usize = 4;

pub(crate) struct IkeSa {
    pub id: IkeSaId,
    pub cookie_i: [u8; 8],
    pub cookie_r: [u8; 8],
    pub peer: SocketAddr,
    pub local: std::net::SocketAddr,
    pub on_nat_t_port: bool,
    pub phase: Phase,
    pub created: Instant,
    pub last_heard: Instant,
    pub expires: Option<Instant>,
    pub choice: Phase1Choice,
    /// The body of the initiator's SA payload (RFC 2409 §5: SAi_b).
    pub sa_i_b: Vec<u8>,
    pub extensions: PeerExtensions,
    pub dh: Option<DhPrivate>,
    pub g_xi: Vec<u8>,
    pub g_xr: Vec<u8>,
    pub ni: Vec<u8>,
    pub nr: Vec<u8>,
    pub skeyid: Option<Zeroizing<Vec<u8>>>,
    pub keys: Option<MessageKeys>,
    /// Main Mode's CBC chain.
    pub iv: Vec<u8>,
    pub nat: NatState,
    pub peer_identity: String,
    pub answers: VecDeque<(Vec<u8>, Vec<u8>)>,
    pub quick_modes: HashMap<u32, PendingQuickMode>,
    pub dpd: Dpd,
    /// The peer's fragmented message being put together.
    pub fragments: Reassembly,
    /// The Fragment ID of our next fragmented message.
    pub next_fragment_id: u16,
    /// Main Mode is done but the driver is still asking about the peer's
    /// certificate online (OCSP, CRL distribution point): until this
    /// deadline Quick Mode is not answered (the peer retransmits).
    pub status_pending: Option<Instant>,
}

impl IkeSa {
    /// The digest that recognises a retransmitted message.
    pub fn fingerprint(message: &[u8]) -> Vec<u8> {
        HashAlg::Sha256.digest(&[message])
    }

    /// The answer already given to this exact message, if any.
    pub fn answer_to(&self, fingerprint: &[u8]) -> Option<&[u8]> {
        self.answers
            .iter()
            .find(|(f, _)| f == fingerprint)
            .map(|(_, a)| a.as_slice())
    }

    pub fn remember(&mut self, fingerprint: Vec<u8>, answer: Vec<u8>) {
        if self.answers.len() == ANSWERS_KEPT {
            self.answers.pop_front();
        }
        self.answers.push_back((fingerprint, answer));
    }

    pub fn keys(&self) -> Option<&MessageKeys> {
        self.keys.as_ref()
    }
}
