//! Where a VPN server is reached for each protocol (ours: CM-FORMATS §1 gives the VPN
//! server file no address syntax).
//!
//! A server address is one of:
//! - `host`: every protocol on its own well-known port, SSTP 443 (MS-SSTP §2.1: HTTPS),
//!   PPTP 1723 (RFC 2637 §1.3 / §2), L2TP 1701 inside IPsec (RFC 3193 §4: IKE on UDP
//!   500/4500, L2TP on UDP 1701);
//! - `host:PORT`: `PORT` is the port of one protocol only, never of all of them, since no
//!   server speaks SSTP and PPTP on one port: it is SSTP's when the profile tries SSTP
//!   (the port a `TunnelAddress` names is the HTTPS server's), else that of the profile's
//!   protocol (a PPTP-only profile); the other protocol keeps its well-known port.
//!   L2TP/IPsec never takes a written port: its ports are fixed by RFC 3193 and every
//!   L2TP/IPsec server (Windows, xl2tpd, SoftEther) uses them; neither does IKEv2
//!   (RFC 7296 §2: UDP 500, then 4500 under NAT, RFC 3948 §3);
//! - `sstp://host[:PORT]` or `pptp://host[:PORT]`: the server is tried with that protocol
//!   only, on `PORT` or the protocol's well-known port. Two entries (`Main=sstp://vpn:8443`,
//!   `MainPPTP=pptp://vpn:1724`) give both protocols their own ports. There is no
//!   `l2tp://` form, since L2TP has no port to choose.
//!
//! IPv6 literals are written in brackets when a port follows (`[fd00::1]:8443`).

use crate::model::VpnProtocol;

/// SSTP's well-known port (MS-SSTP §2.1: SSTP runs over HTTPS).
pub const SSTP_PORT: u16 = 443;
/// PPTP's well-known port (RFC 2637 §1.3: the control connection is TCP port 1723).
pub const PPTP_PORT: u16 = 1723;
/// L2TP's well-known port (RFC 2661 §8.1: UDP 1701), also inside IPsec (RFC 3193 §4).
pub const L2TP_PORT: u16 = 1701;
/// IKE's well-known port (RFC 7296 §2: IKE messages on UDP 500; the client floats to
/// 4500 when a NAT is detected, §2.23).
pub const IKE_PORT: u16 = 500;

/// The well-known port of `protocol` (`None` for the ones the dialer does not build).
pub fn default_port(protocol: VpnProtocol) -> Option<u16> {
    match protocol {
        VpnProtocol::Sstp => Some(SSTP_PORT),
        VpnProtocol::Pptp => Some(PPTP_PORT),
        VpnProtocol::L2tp => Some(L2TP_PORT),
        VpnProtocol::Ikev2 => Some(IKE_PORT),
    }
}

/// A parsed server address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// `Some` when written with a scheme: the server is tried with this protocol only.
    pub only: Option<VpnProtocol>,
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// The port as written.
    pub port: Option<u16>,
}

impl ServerAddress {
    /// Parses a server address (module docs). The error says what is accepted.
    pub fn parse(text: &str) -> Result<ServerAddress, String> {
        if text.is_empty() || text.len() > 255 {
            return Err(format!("{text:?} must have 1 to 255 characters"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{text:?} must not contain spaces"));
        }
        let (only, rest) = match text.split_once("://") {
            Some((scheme, rest)) => match VpnProtocol::from_name(&scheme.to_ascii_lowercase()) {
                Some(p @ (VpnProtocol::Sstp | VpnProtocol::Pptp)) => (Some(p), rest),
                _ => {
                    return Err(format!(
                        "{text:?}: the scheme {scheme:?} is not sstp:// or pptp://"
                    ))
                }
            },
            None => (None, text),
        };
        let bad = |why: &str| {
            format!("{text:?}: {why} (write host, host:port, [IPv6]:port, sstp://host:port or pptp://host:port)")
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(p.strip_prefix(':').ok_or_else(|| bad("junk after ]"))?),
                ),
            }
        } else if rest.matches(':').count() > 1 {
            // A bare IPv6 literal: no port can follow it unbracketed.
            (rest, None)
        } else {
            match rest.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.contains(['/', '?', '#', '@', '[', ']']) {
            return Err(bad("not a host name or address"));
        }
        let port = match port {
            None => None,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => Some(n),
                _ => return Err(bad("the port is not a number from 1 to 65535")),
            },
        };
        Ok(ServerAddress {
            only,
            host: host.to_owned(),
            port,
        })
    }

    /// The protocol a written port belongs to, in a profile that tries `protocols`
    /// (never L2TP, whose ports are fixed).
    pub fn port_owner(&self, protocols: &[VpnProtocol]) -> Option<VpnProtocol> {
        self.only.or_else(|| {
            if protocols.contains(&VpnProtocol::Sstp) {
                Some(VpnProtocol::Sstp)
            } else {
                // IPsec's ports are fixed (RFC 3193 §4, RFC 7296 §2).
                protocols
                    .iter()
                    .copied()
                    .find(|p| !matches!(p, VpnProtocol::L2tp | VpnProtocol::Ikev2))
            }
        })
    }

    /// Where to reach this server with `protocol` in a profile that tries `protocols`:
    /// `(host, port)`, or `None` when the address is for another protocol, the profile
    /// does not try `protocol`, or the protocol is not one the dialer builds.
    pub fn endpoint(
        &self,
        protocol: VpnProtocol,
        protocols: &[VpnProtocol],
    ) -> Option<(String, u16)> {
        if self.only.is_some_and(|p| p != protocol) || !protocols.contains(&protocol) {
            return None;
        }
        let default = default_port(protocol)?;
        let port = match self.port {
            Some(p) if self.port_owner(protocols) == Some(protocol) => p,
            _ => default,
        };
        Some((self.host.clone(), port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use VpnProtocol::*;

    fn ep(addr: &str, p: VpnProtocol, order: &[VpnProtocol]) -> Option<(String, u16)> {
        ServerAddress::parse(addr).unwrap().endpoint(p, order)
    }

    #[test]
    fn a_port_belongs_to_one_protocol() {
        let both = [Sstp, Pptp];
        // The case: Main=host:8443 with sstp then pptp.
        assert_eq!(ep("host:8443", Sstp, &both), Some(("host".into(), 8443)));
        assert_eq!(ep("host:8443", Pptp, &both), Some(("host".into(), 1723)));
        // PPTP first changes nothing: the bare port is still SSTP's.
        assert_eq!(
            ep("host:8443", Pptp, &[Pptp, Sstp]),
            Some(("host".into(), 1723))
        );
        // A PPTP-only profile: the port is PPTP's.
        assert_eq!(ep("host:1724", Pptp, &[Pptp]), Some(("host".into(), 1724)));
        // No port: each protocol's own.
        assert_eq!(ep("host", Sstp, &both), Some(("host".into(), 443)));
        assert_eq!(ep("host", Pptp, &both), Some(("host".into(), 1723)));
        // A scheme: that protocol only.
        assert_eq!(
            ep("pptp://host:1724", Pptp, &both),
            Some(("host".into(), 1724))
        );
        assert_eq!(ep("pptp://host:1724", Sstp, &both), None);
        assert_eq!(ep("SSTP://host", Sstp, &both), Some(("host".into(), 443)));
        assert_eq!(ep("host", L2tp, &both), None);
    }

    #[test]
    fn ikev2_takes_ike_port_and_never_a_written_one() {
        let ikev2_first = [Ikev2, Sstp, Pptp];
        assert_eq!(ep("host", Ikev2, &[Ikev2]), Some(("host".into(), 500)));
        assert_eq!(ep("host:4443", Ikev2, &[Ikev2]), Some(("host".into(), 500)));
        assert_eq!(
            ep("host:8443", Ikev2, &ikev2_first),
            Some(("host".into(), 500))
        );
        assert_eq!(
            ep("host:8443", Sstp, &ikev2_first),
            Some(("host".into(), 8443))
        );
        assert_eq!(ep("sstp://host", Ikev2, &ikev2_first), None);
    }

    #[test]
    fn l2tp_takes_its_fixed_port_and_never_a_written_one() {
        let l2tp_first = [L2tp, Sstp, Pptp];
        assert_eq!(ep("host", L2tp, &[L2tp]), Some(("host".into(), 1701)));
        // A written port is SSTP's, or PPTP's without SSTP; never L2TP's.
        assert_eq!(
            ep("host:8443", L2tp, &l2tp_first),
            Some(("host".into(), 1701))
        );
        assert_eq!(
            ep("host:8443", Sstp, &l2tp_first),
            Some(("host".into(), 8443))
        );
        assert_eq!(ep("host:1724", L2tp, &[L2tp]), Some(("host".into(), 1701)));
        assert_eq!(ep("pptp://host", L2tp, &l2tp_first), None);
        assert_eq!(
            ep("[fd00::1]", L2tp, &[L2tp]),
            Some(("fd00::1".into(), 1701))
        );
    }

    #[test]
    fn addresses_parse() {
        let a = ServerAddress::parse("[fd00::1]:8443").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fd00::1", Some(8443)));
        let a = ServerAddress::parse("fd00::1").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("fd00::1", None));
        for bad in [
            "",
            "a b",
            "host:",
            "host:0",
            "host:99999",
            "host:+1",
            "ftp://host",
            "l2tp://h",
            "[fd00::1",
            "[::1]x",
            "host/path",
            "user@host",
            "sstp://",
        ] {
            assert!(ServerAddress::parse(bad).is_err(), "{bad}");
        }
    }
}
