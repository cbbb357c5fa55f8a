//! What the server hands each new session that a reload may change
//! (reload.rs): the remote access policies and the DNS and WINS servers
//! told in IPCP. The pipeline reads the current value when a session asks;
//! a session that already has its answer keeps it.

use std::net::Ipv4Addr;
use std::sync::Arc;

use arc_swap::ArcSwap;

/// The settings new sessions get.
pub struct SessionSettings {
    /// The remote access policies (the built-in grant-all when none are
    /// configured).
    pub policies: Arc<policy::PolicySet>,
    /// What clients are told: DNS and WINS servers (IPCP, RFC 1877).
    pub dns: [Option<Ipv4Addr>; 2],
    pub wins: [Option<Ipv4Addr>; 2],
}

/// The settings shared by the pipeline and the reloader: one atomic
/// pointer, swapped whole.
pub type SharedSessionSettings = Arc<ArcSwap<SessionSettings>>;

impl SessionSettings {
    /// These settings, ready to share and swap.
    pub fn shared(self) -> SharedSessionSettings {
        Arc::new(ArcSwap::from_pointee(self))
    }
}
