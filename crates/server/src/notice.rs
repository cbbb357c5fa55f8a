//! What the server tells its operator when it starts and stops, one line
//! each, on standard output (`ras server` prints them; tests and scripts
//! read them, so the texts are stable). The server crate says *what*
//! happened; the binary decides where it goes.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use zeroize::Zeroizing;

/// One line for the operator.
pub enum Notice {
    /// The demo user was created; its password is shown this once.
    DemoUser { password: Zeroizing<String> },
    /// The server's certificate.
    Certificate {
        self_signed: bool,
        fingerprint_sha256: String,
    },
    /// The DHCP relay runs.
    DhcpRelay {
        servers: Vec<Ipv4Addr>,
        giaddr: Ipv4Addr,
    },
    /// Authentication goes to RADIUS.
    Radius {
        servers: Vec<SocketAddr>,
        spool: Option<PathBuf>,
    },
    /// The configured remote access policies, in evaluation order.
    Policies { names: Vec<String> },
    /// The RFC 5176 listener.
    DynamicAuthorization { listen: SocketAddr },
    /// Dial-in lines answered.
    Dialin { devices: Vec<String> },
    /// How L2TP is served: inside IPsec only (`plain` empty), or also as
    /// plain L2TP on these UDP addresses; and its port limit.
    L2tp { plain: Vec<SocketAddr>, ports: u32 },
    /// A pre-shared key for L2TP/IPsec was created; shown this once.
    IpsecPsk {
        psk: Zeroizing<String>,
        file: PathBuf,
    },
    /// L2TP/IPsec: where IKE listens, and whether raw ESP could be opened.
    Ipsec {
        /// IKEv1 (L2TP/IPsec) answered too (`[ipsec] ikev1`).
        ikev1: bool,
        ike: Option<SocketAddr>,
        nat_t: Option<SocketAddr>,
        raw_esp_error: Option<String>,
        /// IKEv2 on the same sockets: how clients authenticate, in words.
        ikev2: Option<String>,
    },
    /// L2TP/IPsec is switched off.
    IpsecOff,
    /// The server is ready: what it listens on and where addresses come
    /// from.
    Listening(Listening),
    /// IPv6 for clients.
    Ipv6 { prefix: Ipv6Addr },
    /// The admin API listens on this Unix socket.
    Admin { socket: std::path::PathBuf },
    /// The admin API and the web status page over HTTPS.
    AdminHttps { listen: SocketAddr },
    /// Stopping: the sessions are being ended.
    Stopping { sessions: usize },
    /// The DHCP leases given back on the way out.
    DhcpReleased { leases: usize },
    /// Accounting records that could not be sent before the stop.
    SpoolKept { records: u64 },
    /// Stopped.
    Stopped { addresses_in_use: u64 },
}

/// What [`Notice::Listening`] says.
pub struct Listening {
    /// SSTP listeners (empty: SSTP off) and the port limit.
    pub sstp: Vec<SocketAddr>,
    pub sstp_ports: u32,
    /// PPTP listeners (empty: PPTP off) and the port limit.
    pub pptp: Vec<SocketAddr>,
    pub pptp_ports: u32,
    pub addresses: AddressesNote,
    pub tun: String,
}

/// Where client addresses come from, for [`Listening`].
pub enum AddressesNote {
    Dhcp {
        interface: String,
        block: u16,
    },
    Pool {
        server: Ipv4Addr,
        /// "first-last" per range.
        ranges: Vec<(Ipv4Addr, Ipv4Addr)>,
    },
}

fn joined<T: fmt::Display>(items: &[T], with: &str) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(with)
}

impl fmt::Display for Listening {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ras server: ")?;
        if self.sstp.is_empty() {
            f.write_str("SSTP off")?;
        } else {
            write!(
                f,
                "SSTP on {} ({} ports)",
                joined(&self.sstp, ", "),
                self.sstp_ports
            )?;
        }
        f.write_str("; ")?;
        if self.pptp.is_empty() {
            f.write_str("PPTP off")?;
        } else {
            write!(
                f,
                "PPTP on {} ({} ports)",
                joined(&self.pptp, ", "),
                self.pptp_ports
            )?;
        }
        f.write_str("; ")?;
        match &self.addresses {
            AddressesNote::Dhcp { interface, block } => write!(
                f,
                "addresses from DHCP on {interface}, {block} at a time, leased when the first client connects"
            )?,
            AddressesNote::Pool { server, ranges } => {
                let ranges: Vec<String> = ranges.iter().map(|(a, b)| format!("{a}-{b}")).collect();
                write!(f, "server address {server}, clients {}", ranges.join(", "))?
            }
        }
        write!(f, "; TUN {}", self.tun)
    }
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::DemoUser { password } => write!(
                f,
                "created the demo user: name \"demo\", password \"{}\" (shown once; change it with `ras user passwd demo`)",
                password.as_str()
            ),
            Notice::Certificate {
                self_signed,
                fingerprint_sha256,
            } => write!(
                f,
                "certificate: {}SHA-256 fingerprint {fingerprint_sha256}",
                if *self_signed { "self-signed, " } else { "" }
            ),
            Notice::DhcpRelay { servers, giaddr } => write!(
                f,
                "DHCP relay: clients' DHCPINFORM to {} (giaddr {giaddr})",
                joined(servers, ", ")
            ),
            Notice::Radius { servers, spool } => write!(
                f,
                "RADIUS authentication via {}{}",
                joined(servers, " then "),
                match spool {
                    Some(p) => format!("; accounting spooled in {}", p.display()),
                    None => String::new(),
                }
            ),
            Notice::Policies { names } => write!(
                f,
                "remote access policies, in order: {}",
                names.join(", ")
            ),
            Notice::DynamicAuthorization { listen } => write!(
                f,
                "RADIUS dynamic authorization (Disconnect/CoA) on {listen}"
            ),
            Notice::Dialin { devices } => write!(f, "dial-in PPP on {}", devices.join(", ")),
            Notice::L2tp { plain, ports } if plain.is_empty() => write!(
                f,
                "L2TP: inside IPsec only ({ports} ports); plain L2TP is off and UDP 1701 is not bound ([l2tp] allow_plain enables it)"
            ),
            Notice::L2tp { plain, ports } => write!(
                f,
                "L2TP: also plain on UDP {} without IPsec, PPP in the clear ({ports} ports)",
                joined(plain, ", ")
            ),
            Notice::IpsecPsk { psk, file } => write!(
                f,
                "created the L2TP/IPsec pre-shared key \"{}\" (shown once; kept in {})",
                psk.as_str(),
                file.display()
            ),
            Notice::Ipsec {
                ikev1,
                ike,
                nat_t,
                raw_esp_error,
                ikev2,
            } => {
                let port = |a: &Option<SocketAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
                match ikev2 {
                    Some(how) if !ikev1 => write!(
                        f,
                        "IPsec: IKEv2 only ({how}; IKEv1 and L2TP/IPsec off) on UDP {} and {} (NAT-T)",
                        port(ike),
                        port(nat_t)
                    )?,
                    Some(how) => write!(
                        f,
                        "IPsec: L2TP/IPsec (IKEv1) and IKEv2 ({how}) on UDP {} and {} (NAT-T)",
                        port(ike),
                        port(nat_t)
                    )?,
                    None => write!(f, "L2TP/IPsec: IKEv1 on UDP {} and {} (NAT-T)", port(ike), port(nat_t))?,
                }
                match raw_esp_error {
                    None => f.write_str(", ESP also as IP protocol 50"),
                    Some(e) => write!(
                        f,
                        "; ESP only in UDP (raw ESP unavailable: {e}), so only clients behind NAT connect"
                    ),
                }
            }
            Notice::IpsecOff => f.write_str("L2TP/IPsec: off ([ipsec] enabled = false)"),
            Notice::Listening(l) => l.fmt(f),
            Notice::Ipv6 { prefix } => write!(f, "IPv6: clients in {prefix}/64"),
            Notice::Admin { socket } => write!(
                f,
                "admin API: {} (ras status, ras session, /metrics)",
                socket.display()
            ),
            Notice::AdminHttps { listen } => write!(
                f,
                "admin HTTPS: https://{listen}/ (status page, API and /metrics; bearer token)"
            ),
            Notice::Stopping { sessions } => {
                write!(f, "stopping: disconnecting {sessions} session(s)")
            }
            Notice::DhcpReleased { leases } => write!(f, "released {leases} DHCP lease(s)"),
            Notice::SpoolKept { records } => write!(
                f,
                "{records} accounting record(s) kept in the spool for the next start"
            ),
            Notice::Stopped { addresses_in_use } => {
                write!(f, "stopped; {addresses_in_use} address(es) still in use")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_l2tp_line_says_whether_plain_l2tp_is_served() {
        let off = Notice::L2tp {
            plain: vec![],
            ports: 128,
        }
        .to_string();
        assert!(
            off.starts_with("L2TP: inside IPsec only (128 ports); plain L2TP is off"),
            "{off}"
        );
        let on = Notice::L2tp {
            plain: vec!["0.0.0.0:1701".parse().unwrap()],
            ports: 4,
        }
        .to_string();
        assert_eq!(
            on,
            "L2TP: also plain on UDP 0.0.0.0:1701 without IPsec, PPP in the clear (4 ports)"
        );
    }

    #[test]
    fn the_ipsec_line_says_which_ike_versions_are_answered() {
        let line = |ikev1: bool, ikev2: Option<&str>| {
            Notice::Ipsec {
                ikev1,
                ike: Some("0.0.0.0:500".parse().unwrap()),
                nat_t: Some("0.0.0.0:4500".parse().unwrap()),
                raw_esp_error: None,
                ikev2: ikev2.map(str::to_owned),
            }
            .to_string()
        };
        assert_eq!(
            line(false, Some("EAP")),
            "IPsec: IKEv2 only (EAP; IKEv1 and L2TP/IPsec off) on UDP 0.0.0.0:500 and 0.0.0.0:4500 (NAT-T), ESP also as IP protocol 50"
        );
        assert!(line(true, Some("EAP")).starts_with("IPsec: L2TP/IPsec (IKEv1) and IKEv2 (EAP)"));
        assert!(line(true, None).starts_with("L2TP/IPsec: IKEv1 on UDP"));
    }

    #[test]
    fn the_ready_line_says_listeners_and_addresses() {
        let line = Notice::Listening(Listening {
            sstp: vec!["10.1.0.1:443".parse().unwrap(), "[::]:443".parse().unwrap()],
            sstp_ports: 128,
            pptp: vec![],
            pptp_ports: 128,
            addresses: AddressesNote::Pool {
                server: ip("10.0.10.20"),
                ranges: vec![(ip("10.0.10.21"), ip("10.0.10.29"))],
            },
            tun: "ras0".into(),
        })
        .to_string();
        assert_eq!(
            line,
            "ras server: SSTP on 10.1.0.1:443, [::]:443 (128 ports); PPTP off; server address 10.0.10.20, clients 10.0.10.21-10.0.10.29; TUN ras0"
        );
        let dhcp = Notice::Listening(Listening {
            sstp: vec![],
            sstp_ports: 1,
            pptp: vec!["0.0.0.0:1723".parse().unwrap()],
            pptp_ports: 5,
            addresses: AddressesNote::Dhcp {
                interface: "eth1".into(),
                block: 10,
            },
            tun: "ras1".into(),
        })
        .to_string();
        assert_eq!(
            dhcp,
            "ras server: SSTP off; PPTP on 0.0.0.0:1723 (5 ports); addresses from DHCP on eth1, 10 at a time, leased when the first client connects; TUN ras1"
        );
    }

    #[test]
    fn the_lines_tests_and_scripts_read() {
        let cert = Notice::Certificate {
            self_signed: true,
            fingerprint_sha256: "AB:CD".into(),
        };
        assert_eq!(
            cert.to_string(),
            "certificate: self-signed, SHA-256 fingerprint AB:CD"
        );
        assert_eq!(
            Notice::Ipv6 {
                prefix: "fd00:1::".parse().unwrap()
            }
            .to_string(),
            "IPv6: clients in fd00:1::/64"
        );
        assert_eq!(
            Notice::Stopped {
                addresses_in_use: 0
            }
            .to_string(),
            "stopped; 0 address(es) still in use"
        );
        assert_eq!(
            Notice::AdminHttps {
                listen: "127.0.0.1:8443".parse().unwrap()
            }
            .to_string(),
            "admin HTTPS: https://127.0.0.1:8443/ (status page, API and /metrics; bearer token)"
        );
        assert_eq!(
            Notice::DhcpReleased { leases: 20 }.to_string(),
            "released 20 DHCP lease(s)"
        );
        let radius = Notice::Radius {
            servers: vec![
                "10.0.0.5:1812".parse().unwrap(),
                "10.0.0.6:1812".parse().unwrap(),
            ],
            spool: Some("/var/lib/ras/accounting.db".into()),
        };
        assert_eq!(
            radius.to_string(),
            "RADIUS authentication via 10.0.0.5:1812 then 10.0.0.6:1812; accounting spooled in /var/lib/ras/accounting.db"
        );
    }
}
