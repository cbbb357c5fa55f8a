//! `ras server`: [`server::Server::start`] builds everything from the
//! configuration; the control path every session takes is in
//! [`pipeline`] (docs/CONTROL-PATH.md); below them, the configuration, the
//! state directory, the local user store, the address sources, the server
//! certificate, the TUN device, RADIUS and the listening sockets.

pub mod access_policy;
pub mod accounting;
pub mod acct_session_id;
pub mod acme;
pub mod acme_challenge;
pub mod acme_http;
pub mod address;
pub mod admin_api;
pub mod admin_client;
pub mod admin_https;
pub mod admin_page;
pub mod admin_snapshot;
pub mod admin_socket;
pub mod admin_token;
pub mod admin_view;
pub mod authenticator;
pub mod cert;
pub mod cert_issue;
pub mod cert_rules;
pub mod config;
pub mod config_check;
pub mod crl;
pub mod dhcp_relay;
pub mod dhcp_source;
pub mod dialin_service;
pub mod dynauth;
pub mod failure_log;
pub mod ikev2_config;
pub mod ikev2_proposals;
pub mod ikev2_service;
pub mod ipsec_config;
pub mod ipsec_service;
pub mod ipv6_link;
pub mod l2tp_service;
pub mod lan_interface;
pub mod listen;
pub mod metrics;
pub mod metrics_render;
pub mod netbios_config;
pub mod netbios_driver;
pub mod netbios_ip;
pub mod netbios_lan;
pub mod netbios_sink;
pub mod netbios_task;
pub mod notice;
pub mod pipeline;
pub mod policy_stages;
pub mod pool;
pub mod pptp_service;
pub mod privilege;
pub mod privilege_threads;
pub mod proc_status;
pub mod ra;
pub mod radius_auth;
pub mod radius_config;
pub mod radius_io;
pub mod radius_setup;
pub mod reload;
pub mod reload_plan;
pub mod router;
pub mod server;
pub mod session_accounting;
pub mod session_id;
pub mod session_record;
pub mod session_settings;
pub mod sessions;
pub mod sstp_service;
pub mod state;
pub mod tun;
pub mod users;

pub use session_id::SessionId;
