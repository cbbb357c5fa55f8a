//! The server to connect to: `sstp://HOST[:PORT]`, `pptp://HOST[:PORT]`,
//! `l2tp://HOST[:PORT]`, `ikev2://HOST[:PORT]`, or
//! a dial-up line `serial:///dev/ttyX[?number=ACCESS_NUMBER]`.

use std::fmt;

/// Tunnel protocols `ras connect` speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Sstp,
    Pptp,
    /// L2TP (RFC 2661), inside IPsec (RFC 3193) unless asked otherwise.
    L2tp,
    /// IKEv2 remote access (RFC 7296) with tunnel-mode ESP: no PPP.
    Ikev2,
    /// PPP over a serial line (a modem dialing `number`, or a null-modem
    /// line when there is no number).
    Serial,
}

impl Protocol {
    /// The URL scheme.
    pub fn scheme(self) -> &'static str {
        match self {
            Protocol::Sstp => "sstp",
            Protocol::Pptp => "pptp",
            Protocol::L2tp => "l2tp",
            Protocol::Ikev2 => "ikev2",
            Protocol::Serial => "serial",
        }
    }

    /// The port used when the target names none.
    pub fn default_port(self) -> u16 {
        match self {
            Protocol::Sstp => 443,
            Protocol::Pptp => 1723,
            // RFC 2661 §8.1.
            Protocol::L2tp => 1701,
            // RFC 7296 §2: IKE listens on UDP 500 (and 4500 after a NAT).
            Protocol::Ikev2 => 500,
            Protocol::Serial => 0,
        }
    }
}

/// A parsed `PROTOCOL://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub protocol: Protocol,
    /// Host name or address (IPv6 without brackets); for `serial`, the
    /// device path.
    pub host: String,
    pub port: u16,
    /// `serial` only: the access number to dial (`?number=`).
    pub number: Option<String>,
}

/// Why a target could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("expected PROTOCOL://HOST[:PORT] (e.g. sstp://vpn.example.com), got {0:?}")]
    Shape(String),
    #[error("unsupported protocol {0:?} (supported: sstp, pptp, l2tp, ikev2, serial)")]
    Protocol(String),
    #[error("bad port in {0:?}")]
    Port(String),
    #[error("empty host in {0:?}")]
    Host(String),
}

impl Target {
    pub fn parse(text: &str) -> Result<Target, TargetError> {
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| TargetError::Shape(text.into()))?;
        let protocol = match scheme.to_ascii_lowercase().as_str() {
            "sstp" => Protocol::Sstp,
            "pptp" => Protocol::Pptp,
            "l2tp" => Protocol::L2tp,
            "ikev2" => Protocol::Ikev2,
            "serial" => return Self::parse_serial(text, rest),
            other => return Err(TargetError::Protocol(other.into())),
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| TargetError::Shape(text.into()))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(TargetError::Shape(text.into())),
            };
            (host, port)
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (rest, None),
            }
        };
        if host.is_empty() {
            return Err(TargetError::Host(text.into()));
        }
        let port = match port {
            Some(p) => p.parse().map_err(|_| TargetError::Port(text.into()))?,
            None => protocol.default_port(),
        };
        Ok(Target {
            protocol,
            host: host.to_owned(),
            port,
            number: None,
        })
    }

    /// `serial:///dev/ttyS0?number=5551234`: an absolute device path and
    /// an optional access number (digits, spaces and dial punctuation).
    fn parse_serial(text: &str, rest: &str) -> Result<Target, TargetError> {
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (rest, None),
        };
        if !path.starts_with('/') || path.len() < 2 {
            return Err(TargetError::Host(text.into()));
        }
        let mut number = None;
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            match pair.split_once('=') {
                Some(("number", n))
                    if !n.is_empty()
                        && n.chars()
                            .all(|c| c.is_ascii_digit() || " -()*#+,TtPpWw".contains(c)) =>
                {
                    number = Some(n.to_owned())
                }
                _ => return Err(TargetError::Shape(text.into())),
            }
        }
        Ok(Target {
            protocol: Protocol::Serial,
            host: path.to_owned(),
            port: 0,
            number,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.protocol == Protocol::Serial {
            write!(f, "serial://{}", self.host)?;
            if let Some(n) = &self.number {
                write!(f, "?number={n}")?;
            }
            return Ok(());
        }
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}",
                self.protocol.scheme(),
                self.host,
                self.port
            )
        } else {
            write!(
                f,
                "{}://{}:{}",
                self.protocol.scheme(),
                self.host,
                self.port
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_and_ports() {
        let t = Target::parse("sstp://vpn.example.com").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("vpn.example.com", 443));
        let t = Target::parse("SSTP://10.0.0.1:8443/").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("10.0.0.1", 8443));
        let t = Target::parse("sstp://[fd00::1]:4443").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("fd00::1", 4443));
        assert_eq!(Target::parse("sstp://[fd00::1]").unwrap().port, 443);
        assert!(matches!(
            Target::parse("vpn.example.com"),
            Err(TargetError::Shape(_))
        ));
        // ikev2:// is supported now; another unknown scheme still is not.
        assert!(matches!(
            Target::parse("openvpn://x"),
            Err(TargetError::Protocol(_))
        ));
        let t = Target::parse("ikev2://x").unwrap();
        assert_eq!((t.protocol, t.port), (Protocol::Ikev2, 500));
        let t = Target::parse("l2tp://10.0.0.1").unwrap();
        assert_eq!((t.protocol, t.port), (Protocol::L2tp, 1701));
        assert_eq!(t.to_string(), "l2tp://10.0.0.1:1701");
        let t = Target::parse("pptp://10.0.0.1").unwrap();
        assert_eq!((t.protocol, t.port), (Protocol::Pptp, 1723));
        assert_eq!(t.to_string(), "pptp://10.0.0.1:1723");
        assert_eq!(Target::parse("PPTP://h:1724").unwrap().port, 1724);
        assert_eq!(
            Target::parse("sstp://h").unwrap().to_string(),
            "sstp://h:443"
        );
        assert!(matches!(
            Target::parse("sstp://x:99999"),
            Err(TargetError::Port(_))
        ));
        assert!(matches!(
            Target::parse("sstp://:443"),
            Err(TargetError::Host(_))
        ));
    }

    #[test]
    fn parses_serial_lines() {
        let t = Target::parse("serial:///dev/pts/7?number=555-1234").unwrap();
        assert_eq!(t.protocol, Protocol::Serial);
        assert_eq!(t.host, "/dev/pts/7");
        assert_eq!(t.number.as_deref(), Some("555-1234"));
        assert_eq!(t.to_string(), "serial:///dev/pts/7?number=555-1234");
        let t = Target::parse("serial:///dev/ttyS0").unwrap();
        assert_eq!((t.host.as_str(), t.number), ("/dev/ttyS0", None));
        assert!(matches!(
            Target::parse("serial://dev/ttyS0"),
            Err(TargetError::Host(_))
        ));
        assert!(matches!(
            Target::parse("serial:///dev/ttyS0?number=1;rm"),
            Err(TargetError::Shape(_))
        ));
        assert!(matches!(
            Target::parse("serial:///dev/ttyS0?speed=9600"),
            Err(TargetError::Shape(_))
        ));
    }
}
