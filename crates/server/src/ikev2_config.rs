//! `[ikev2]`: IKEv2 remote access (RFC 7296) on the `[ipsec]` sockets.
//!
//! Clients authenticate with EAP (EAP-MSCHAPv2 against the user store, or
//! relayed to RADIUS) and the server proves itself with the `[certificate]`
//! signature, as Windows, macOS/iOS and Android expect; a pre-shared key
//! (the `[ipsec]` key) can be allowed too, as RRAS's custom IPsec policy
//! does.

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::ikev2_proposals::{
    Ikev2CipherName, Ikev2EspName, Ikev2GroupName, Ikev2HashName, Ikev2Proposals,
};

/// `[ikev2]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ikev2ServerConfig {
    /// Serve IKEv2 (needs `[ipsec] enabled`, whose sockets it shares).
    /// Default true.
    pub enabled: bool,
    /// How clients authenticate: "eap" (the server signs with its
    /// certificate), "certificate" (a client certificate from `client_ca`;
    /// the server signs too) and "psk" (the `[ipsec]` pre-shared key, both
    /// ways). Default `["eap"]`.
    pub auth: Vec<Ikev2AuthName>,
    /// The CA certificates (PEM) client certificates must chain to, for
    /// `auth = ["certificate"]` (RFC 7296 §2.15, RFC 4945 §3.1).
    pub client_ca: Option<std::path::PathBuf>,
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
    /// Take part in our NAT-timeout probe extension (private-use notifies,
    /// docs/MOBILE-CLIENT.md "NAT-timeout detection"): a `ras client`
    /// behind a NAT asks for a probe after a delay and sets its keepalive
    /// below what its NAT keeps. Other clients never ask. Default true.
    pub nat_probe: bool,
    /// Split tunnelling: the IPv4 networks clients reach through the
    /// tunnel ("10.1.0.0/16"); their traffic selectors are narrowed to
    /// these (RFC 7296 §2.9), and Windows, macOS and strongSwan route only
    /// them. Empty (the default): everything.
    pub routes: Vec<Ipv4Route>,
    /// Logical ports: the most IKEv2 sessions at once (RRAS's WAN
    /// Miniport (IKEv2) ports); one more is refused with one log line.
    /// Default 128.
    pub ports: crate::config::PortLimit,
    /// Half-open IKE SAs (IKE_SA_INIT answered, IKE_AUTH not done) above
    /// which a new client must first return a cookie (RFC 7296 §2.6): one
    /// round trip more for everyone while a flood of spoofed
    /// IKE_SA_INITs cannot hold state. Default 64; 0 asks every client.
    pub cookie_threshold: usize,
    /// Accepted IKE SA ciphers (ikev2_proposals.rs). Default: all.
    pub ike_ciphers: Vec<Ikev2CipherName>,
    /// Accepted PRF and integrity hashes. Default: all.
    pub ike_hashes: Vec<Ikev2HashName>,
    /// Accepted Diffie-Hellman groups (IKE SA and child SA PFS). Default: all.
    pub ike_groups: Vec<Ikev2GroupName>,
    /// Accepted ESP suites of child SAs. Default: all.
    pub esp: Vec<Ikev2EspName>,
}

/// `[ikev2] routes` entry: an IPv4 network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Route {
    pub network: Ipv4Addr,
    pub length: u8,
}

impl FromStr for Ipv4Route {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an IPv4 network like \"10.1.0.0/16\"");
        let (addr, len) = s.split_once('/').unwrap_or((s, "32"));
        let network: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let length: u8 = len.parse().map_err(|_| bad())?;
        if length > 32 {
            return Err(bad());
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
        if u32::from(network) & !mask != 0 {
            return Err(format!("`{s}` has host bits set; write the network"));
        }
        Ok(Ipv4Route { network, length })
    }
}

impl<'de> Deserialize<'de> for Ipv4Route {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::config::via_str(d, "an IPv4 network like \"10.1.0.0/16\"")
    }
}

/// `[ikev2] auth` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ikev2AuthName {
    Eap,
    Psk,
    Certificate,
}

impl Default for Ikev2ServerConfig {
    fn default() -> Self {
        let proposals = Ikev2Proposals::default();
        Ikev2ServerConfig {
            enabled: true,
            auth: vec![Ikev2AuthName::Eap],
            client_ca: None,
            local_id: None,
            liveness_interval_secs: 30,
            liveness_timeout_secs: 60,
            mobike: true,
            nat_probe: true,
            routes: Vec::new(),
            ports: crate::config::PortLimit::DEFAULT,
            cookie_threshold: 64,
            ike_ciphers: proposals.ike_ciphers,
            ike_hashes: proposals.ike_hashes,
            ike_groups: proposals.ike_groups,
            esp: proposals.esp,
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

    pub fn certificate(&self) -> bool {
        self.auth.contains(&Ikev2AuthName::Certificate)
    }

    /// The proposal lists.
    pub fn proposals(&self) -> Ikev2Proposals {
        Ikev2Proposals {
            ike_ciphers: self.ike_ciphers.clone(),
            ike_hashes: self.ike_hashes.clone(),
            ike_groups: self.ike_groups.clone(),
            esp: self.esp.clone(),
        }
    }

    pub fn liveness_interval(&self) -> Duration {
        Duration::from_secs(self.liveness_interval_secs.max(1).into())
    }

    pub fn liveness_timeout(&self) -> Duration {
        Duration::from_secs(self.liveness_timeout_secs.max(1).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_networks_and_bad_ones_are_named_with_their_line() {
        let r: Ipv4Route = "10.1.0.0/16".parse().unwrap();
        assert_eq!((r.network, r.length), (Ipv4Addr::new(10, 1, 0, 0), 16));
        let host: Ipv4Route = "192.0.2.7".parse().unwrap();
        assert_eq!(host.length, 32);
        assert_eq!(
            "10.1.0.1/16".parse::<Ipv4Route>().unwrap_err(),
            "`10.1.0.1/16` has host bits set; write the network"
        );
        assert!("10.1.0.0/33".parse::<Ipv4Route>().is_err());
        #[derive(Deserialize)]
        struct File {
            #[allow(dead_code)]
            ikev2: Ikev2ServerConfig,
        }
        let e = toml::from_str::<File>("[ikev2]\nroutes = [\"10.0.0.0/8\",\n  \"nonsense\"]\n")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("line 3"), "{e}");
        assert!(e.contains("`nonsense` is not an IPv4 network"), "{e}");
    }
}
