//! PPP as a sans-IO protocol core.
//!
//! Nothing in this crate owns a socket, a task or a clock: every state
//! machine takes input (`handle_*`), and hands back what it wants sent
//! (`poll_transmit`), what happened (`poll_event`) and when it wants to be
//! woken (`poll_timeout`). See docs/ARCHITECTURE.md of the workspace.

pub mod auth;
pub mod cbcp;
pub mod ccp;
pub mod crypto;
pub mod fcs;
pub mod frame;
pub mod fsm;
pub mod hdlc;
pub mod ipcp;
pub mod ipv6cp;
pub mod lcp;
pub mod link;
pub mod link_rng;
pub mod loopback;
pub mod mppe;
pub mod packet;
