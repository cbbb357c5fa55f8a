//! The foundation of `ras server`: configuration, the state directory, the
//! local user store, the static address pool, the server certificate, the
//! TUN device and the listening sockets. The per-session protocol glue
//! sits on top of these.

pub mod cert;
pub mod config;
pub mod hooks;
pub mod listen;
pub mod pool;
pub mod pptp_service;
pub mod ra;
pub mod router;
pub mod session_id;
pub mod sstp_service;
pub mod state;
pub mod tun;
pub mod users;

pub use session_id::SessionId;
