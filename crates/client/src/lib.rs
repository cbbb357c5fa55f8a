//! The VPN client behind `ras connect`: it dials a server, authenticates,
//! and brings up a TUN device with the negotiated addresses, DNS servers
//! and routes, taking them down again when the connection ends.

pub mod dns;
pub mod echo_probe;
pub mod ikev2;
pub mod l2tp;
pub mod network;
pub mod pptp;
pub mod routes;
pub mod serial;
pub mod slaac;
pub mod sstp;
pub mod target;
pub mod verify;
pub mod vpn_policy;
