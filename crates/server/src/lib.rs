//! The foundation of `ras server`: configuration, the state directory, the
//! local user store, the static address pool, the server certificate, the
//! TUN device and the listening sockets. The per-session protocol glue
//! sits on top of these.

pub mod access_policy;
pub mod accounting;
pub mod cert;
pub mod config;
pub mod dhcp_relay;
pub mod dhcp_source;
pub mod dialin_service;
pub mod dynauth;
pub mod hooks;
pub mod listen;
pub mod pool;
pub mod pptp_service;
pub mod ra;
pub mod radius_auth;
pub mod radius_config;
pub mod radius_io;
pub mod radius_setup;
pub mod router;
pub mod session_accounting;
pub mod session_id;
pub mod sessions;
pub mod sstp_service;
pub mod state;
pub mod tun;
pub mod users;

pub use session_id::SessionId;
