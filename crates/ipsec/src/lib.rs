//! IPsec in user space, as sans-IO cores: no sockets, no clock (`now: Instant`
//! is passed in), no tokio. Every input from the network is parsed without
//! panicking; a bad packet costs that packet, a typed error and a counter.
//!
//! - [`esp`]: Encapsulating Security Payload (RFC 4303) security associations,
//!   outbound encapsulation, inbound decapsulation with anti-replay, and the
//!   inbound SA set used across rekeys.
//! - [`ike_crypto`]: IKE hashes and PRFs, Diffie-Hellman groups, the IKE
//!   message ciphers and the IKEv1 key derivation (RFC 2409).
//! - [`udp_encap`]: UDP encapsulation of ESP for NAT traversal (RFC 3948).

pub mod esp;
pub mod ike_crypto;
pub mod ikev1;
pub mod ikev2;
pub mod udp_encap;
