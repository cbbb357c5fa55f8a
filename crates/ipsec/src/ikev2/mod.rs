//! IKEv2 (RFC 7296) as sans-IO building blocks: the message layout, the
//! payload bodies and the encrypted payload. The exchanges themselves
//! (responder and initiator state machines) build on these.
//!
//! - [`encrypted`]: the SK and SKF payloads (§3.14, RFC 7383).
//! - [`fragments`]: reassembly of RFC 7383 fragments.
//! - [`wire`]: the IKE header, the payload chain, exchange and payload types.
//! - [`sa_payload`]: SA payload proposals and transforms (§3.3).
//! - [`proposal`]: choosing IKE and ESP proposals within the policy.
//! - [`payloads`]: KE, Nonce, Notify, ID, AUTH, Delete, CERT/CERTREQ bodies.
//! - [`traffic_selectors`]: TSi/TSr (§3.13).
//! - [`config_payload`]: the configuration payload (§3.15).
//! - [`notify`]: notify message types (§3.10.1).

pub mod auth;
pub mod client_certificate;
pub mod config;
pub mod config_payload;
pub mod cookie;
mod eap;
pub mod encrypted;
pub mod events;
pub mod fragments;
mod ike_auth;
mod ike_sa;
mod informational;
pub mod initiator;
pub mod initiator_config;
mod initiator_exchanges;
mod initiator_ike_rekey;
mod initiator_nat_probe;
mod initiator_server_rekey;
pub mod nat_probe;
mod nat_probe_responder;
pub mod notify;
pub mod payloads;
pub mod proposal;
pub mod responder;
mod sa_init;
pub mod sa_payload;
pub mod server_signature;
pub mod signature_auth;
pub mod signature_job;
pub mod traffic_selectors;
pub mod wire;

pub use client_certificate::{ClientCertificateError, ClientTrust, VerifiedClient};
pub use config::{Ikev2Config, Ikev2PskTable, LocalIdentity};
pub use events::{
    Authorization, AuthorizationRequest, ChildSa, ClientAuthMethod, EapReply, Ikev2Event,
};
pub use initiator::{Ikev2ClientEvent, Ikev2Initiator};
pub use initiator_config::{ClientAuth, Ikev2InitiatorConfig, Ikev2Offer};
pub use responder::{Ikev2Responder, Ikev2Stats};
pub use server_signature::{ServerSignatureError, ServerTrust};
pub use signature_job::{SignatureJob, SignedAuth};
