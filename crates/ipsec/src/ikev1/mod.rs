//! IKEv1 (RFC 2407, 2408, 2409) as a sans-IO responder for L2TP/IPsec:
//! Main Mode with pre-shared keys or certificates (RSA and ECDSA
//! signatures, RFC 2409 §5.1, RFC 4754), IKEv1 fragmentation, Quick Mode
//! for transport-mode ESP,
//! NAT traversal (RFC 3947 and the drafts clients still send),
//! Informational exchanges and Dead Peer Detection (RFC 3706).
//!
//! - [`wire`]: the ISAKMP header and payload chain.
//! - [`sa_payload`]: SA, proposal and transform payloads.
//! - [`payloads`]: identification, notification, delete, NAT-OA bodies.
//! - [`proposal`]: choosing within the operator's policy.
//! - [`vendor_ids`], [`nat_detection`]: extensions and NAT-D.
//! - [`certificates`], [`signature_auth`]: CERT/CR payloads, chains and
//!   identities; messages 5 and 6 with signatures.
//! - [`fragment`]: IKEv1 fragmentation and bounded reassembly.
//! - [`responder`]: the endpoint; [`config`] and [`events`] its interface.
//! - [`initiator`]: the client endpoint (L2TP/IPsec client); [`initiator_config`]
//!   its settings, [`offer`] what it proposes and accepts.

mod certificate_status;
pub mod certificates;
pub mod config;
pub mod crypt;
pub mod events;
pub mod fragment;
mod ike_sa;
mod informational;
pub mod initiator;
pub mod initiator_config;
mod initiator_informational;
mod initiator_main_mode;
mod initiator_quick_mode;
mod main_mode;
pub mod nat_detection;
pub mod ocsp;
pub mod offer;
pub mod payloads;
pub mod proposal;
mod quick_mode;
pub mod responder;
pub mod revocation;
pub mod sa_payload;
pub mod signature_auth;
pub mod vendor_ids;
pub mod wire;

pub use config::{PskTable, ResponderConfig};
pub use events::{ChildSa, DownReason, IkeEvent, IkeSaId, Transmit};
pub use initiator::Initiator;
pub use initiator_config::{IkeOffer, InitiatorConfig};
pub use proposal::ProposalPolicy;
pub use responder::{Responder, ResponderStats};
