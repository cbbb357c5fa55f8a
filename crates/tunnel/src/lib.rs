//! Tokio drivers that join a tunnel protocol core to a PPP [`ppp::link::Link`].
//!
//! The protocol cores (`ppp`, `sstp`) are sans-IO; this crate owns the
//! sockets' byte streams and the timers for one session, in either role.
//! Everything policy-related (who may log in, which address a client gets,
//! where IP packets go) is asked of the caller through [`ServerHooks`] or
//! [`ClientHooks`], so
//! the same driver serves `ras server` and `ras connect`.

mod datagram_batch;
pub mod direct_path;
mod end_reasons;
mod hooked;
mod hooks;
pub mod http_io;
pub mod ikev2_client;
pub mod ikev2_client_moves;
pub mod ikev2_client_nat;
mod ikev2_client_task;
pub mod ikev2_eap;
pub mod ikev2_server;
mod inbound;
pub mod ipsec_drops;
pub mod l2tp_client;
pub mod l2tp_client_transport;
mod l2tp_counters;
mod l2tp_data_routes;
mod l2tp_front;
pub mod l2tp_ipsec;
pub mod l2tp_ipsec_client;
mod l2tp_ipsec_client_task;
mod l2tp_peer;
pub mod l2tp_server;
mod l2tp_session;
mod l2tp_tunnel;
mod l2tp_udp;
pub mod live;
pub use session::login_log;
mod dh_stock_filler;
pub mod modem;
mod outcome;
mod packet_queue;
mod packet_source;
mod ppp_over_gre;
pub mod ppp_over_serial;
mod pptp_call_setup;
pub mod pptp_client;
mod pptp_gre_io;
mod pptp_refuse;
pub mod pptp_server;
pub mod serial;
mod signer_pool;
pub mod sstp_client;
pub mod sstp_server;
mod sstp_session;
mod udp_offload;

pub use hooks::{
    AuthAnswer, ClientHooks, Owner, PacketSink, ServerHooks, SessionInfo, TunnelAuthMethod,
};
pub use live::{LiveSession, Traffic};
pub use packet_queue::{
    packet_queue, queue, PacketReceiver, PacketSender, QueueReceiver, QueueSender, TryRecvError,
    TrySendError,
};
pub use packet_source::PacketSource;
pub use session::{EndReason, LostCarrier, SourceFilter, TerminateCause};

/// Types hook implementations need.
pub mod hooks_support {
    pub use crate::hooks::BoxFuture;
    pub use session::EndReason;
}
pub use outcome::Outcome;
pub use session::SessionStats;
