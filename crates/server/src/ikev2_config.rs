//! `[ikev2]`: IKEv2 remote access (RFC 7296) on the `[ipsec]` sockets.
//!
//! Clients authenticate with EAP (EAP-MSCHAPv2 against the user store, or
//! relayed to RADIUS) and the server proves itself with the `[certificate]`
//! signature, as Windows, macOS/iOS and Android expect; a pre-shared key
//! (the `[ipsec]` key) can be allowed too, as RRAS's custom IPsec policy
//! does.

use std::time::Duration;

use serde::Deserialize;

/// `[ikev2]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ikev2ServerConfig {
    /// Serve IKEv2 (needs `[ipsec] enabled`, whose sockets it shares).
    /// Default true.
    pub enabled: bool,
    /// How clients authenticate: "eap" (the server signs with its
    /// certificate) and "psk" (the `[ipsec]` pre-shared key, both ways).
    /// Default `["eap"]`.
    pub auth: Vec<Ikev2AuthName>,
    /// The server's identity (IDr, RFC 7296 §3.5): a DNS name clients
    /// check against the certificate. Default: the certificate's first DNS
    /// name, else `server_name`.
    pub local_id: Option<String>,
    /// Check a silent client after this many seconds (§2.4) and give it
    /// up `liveness_timeout_secs` later. Defaults 30 and 60.
    pub liveness_interval_secs: u32,
    pub liveness_timeout_secs: u32,
    /// Offer MOBIKE (RFC 4555): clients that change networks keep their
    /// tunnel. Default true.
    pub mobike: bool,
    /// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not done) above
    /// which a new client must first return a cookie (RFC 7296 §2.6): one
    /// round trip more for everyone while a flood of spoofed
    /// IKE_SA_INITs cannot hold state. Default 64; 0 asks every client.
    pub cookie_threshold: usize,
}

/// `[ikev2] auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ikev2AuthName {
    Eap,
    Psk,
}

impl Default for Ikev2ServerConfig {
    fn default() -> Self {
        Ikev2ServerConfig {
            enabled: true,
            auth: vec![Ikev2AuthName::Eap],
            local_id: None,
            liveness_interval_secs: 30,
            liveness_timeout_secs: 60,
            mobike: true,
            cookie_threshold: 64,
        }
    }
}

impl Ikev2ServerConfig {
    pub fn eap(&self) -> bool {
        self.auth.contains(&Ikev2AuthName::Eap)
    }

    pub fn psk(&self) -> bool {
        self.auth.contains(&Ikev2AuthName::Psk)
    }

    pub fn liveness_interval(&self) -> Duration {
        Duration::from_secs(self.liveness_interval_secs.max(1).into())
    }

    pub fn liveness_timeout(&self) -> Duration {
        Duration::from_secs(self.liveness_timeout_secs.max(1).into())
    }
}
