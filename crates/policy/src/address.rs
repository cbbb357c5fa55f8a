//! Where the call comes from: client address prefixes (CIDR) and
//! Calling-Station-Id patterns.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::serde_util::via_str;

/// An address or a prefix, `"192.0.2.7"`, `"192.0.2.0/24"`,
/// `"2001:db8::/32"`. An IPv4-mapped IPv6 client address
/// (`::ffff:192.0.2.7`, as a dual-stack socket reports IPv4 peers) is
/// compared as the IPv4 address it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressPattern {
    network: IpAddr,
    prefix_len: u8,
}

impl AddressPattern {
    /// Whether `addr` is in the prefix. An IPv4-mapped IPv6 address
    /// (RFC 4291 §2.5.5.2) is the IPv4 client it carries: both the address
    /// and the pattern are compared in that canonical form, so `::/0`
    /// means IPv6 clients only.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.contains_as_written(addr.to_canonical())
    }

    fn contains_as_written(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix_len))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(net)
            }
            _ => false,
        }
    }
}

impl fmt::Display for AddressPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for AddressPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not an IP address or prefix like \"192.0.2.0/24\"");
        let (addr, len) = match s.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (s, None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match len {
            None => max,
            Some(l) => l.parse::<u8>().ok().filter(|l| *l <= max).ok_or_else(bad)?,
        };
        let pattern = AddressPattern {
            network,
            prefix_len,
        };
        // A prefix whose address has host bits set (`192.0.2.7/24`) is
        // refused: the operator may have meant the single address.
        if !pattern.contains_as_written(network) {
            return Err(format!(
                "`{s}` has host bits set: write the network (like \"192.0.2.0/24\") or the single address"
            ));
        }
        // `::ffff:192.0.2.0/120` is the IPv4 prefix 192.0.2.0/24.
        if let IpAddr::V6(v6) = network {
            if let (Some(v4), true) = (v6.to_ipv4_mapped(), prefix_len >= 96) {
                return Ok(AddressPattern {
                    network: IpAddr::V4(v4),
                    prefix_len: prefix_len - 96,
                });
            }
        }
        Ok(pattern)
    }
}

impl<'de> Deserialize<'de> for AddressPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "an IP address or prefix")
    }
}

/// A Calling-Station-Id pattern (RFC 2865 §5.31: the phone number for a
/// dial-up call; RRAS puts the client's IP address there for a VPN
/// tunnel). Exact, ignoring ASCII case, or a prefix when it ends in `*`
/// (`"+4930*"`, `"192.0.2.*"`); `"*"` alone matches any id that is
/// present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallingStationPattern {
    text: String,
}

impl CallingStationPattern {
    /// Whether `id` matches.
    pub fn matches(&self, id: &str) -> bool {
        match self.text.strip_suffix('*') {
            Some(prefix) => id
                .get(..prefix.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(prefix)),
            None => id.eq_ignore_ascii_case(&self.text),
        }
    }
}

impl fmt::Display for CallingStationPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CallingStationPattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an empty Calling-Station-Id pattern matches nothing".into());
        }
        if s.len() > 253 {
            // RFC 2865 §5: an attribute value is at most 253 octets.
            return Err("a Calling-Station-Id is at most 253 octets (RFC 2865 §5)".into());
        }
        if s[..s.len() - 1].contains('*') {
            return Err(format!(
                "`{s}`: `*` is only allowed at the end (a prefix match)"
            ));
        }
        Ok(CallingStationPattern { text: s.to_owned() })
    }
}

impl<'de> Deserialize<'de> for CallingStationPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "a Calling-Station-Id, or a prefix ending in *")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AddressPattern {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn prefixes_and_single_addresses() {
        assert!(p("192.0.2.0/24").contains(ip("192.0.2.255")));
        assert!(!p("192.0.2.0/24").contains(ip("192.0.3.0")));
        assert!(p("192.0.2.7").contains(ip("192.0.2.7")));
        assert!(!p("192.0.2.7").contains(ip("192.0.2.8")));
        assert!(p("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!p("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(p("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!p("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(p("::/0").contains(ip("2001:db8::1")));
        // A dual-stack socket's view of an IPv4 peer, and the reverse.
        assert!(p("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert!(!p("192.0.2.0/24").contains(ip("::ffff:192.0.3.7")));
        assert!(p("::ffff:0:0/96").contains(ip("192.0.2.7")));
        assert!(p("::ffff:0:0/96").contains(ip("::ffff:192.0.2.7")));
        assert!(!p("::ffff:0:0/96").contains(ip("2001:db8::1")));
        assert_eq!(p("::ffff:192.0.2.0/120").to_string(), "192.0.2.0/24");
        // IPv4 clients are not IPv6 clients, whichever socket saw them.
        assert!(!p("::/0").contains(ip("192.0.2.7")));
        assert!(!p("::/0").contains(ip("::ffff:192.0.2.7")));
    }

    #[test]
    fn bad_prefixes_are_refused() {
        for (s, needle) in [
            ("192.0.2.7/24", "host bits"),
            ("192.0.2.0/33", "not an IP address"),
            ("192.0.2/24", "not an IP address"),
            ("2001:db8::/129", "not an IP address"),
            ("example.com", "not an IP address"),
        ] {
            let e = s.parse::<AddressPattern>().unwrap_err();
            assert!(e.contains(needle), "{s}: {e}");
        }
    }

    #[test]
    fn calling_station_patterns() {
        let exact: CallingStationPattern = "+49 30 1234".parse().unwrap();
        assert!(exact.matches("+49 30 1234"));
        assert!(!exact.matches("+49 30 12345"));
        let prefix: CallingStationPattern = "00-1A-2B*".parse().unwrap();
        assert!(prefix.matches("00-1a-2b-3c-4d-5e"));
        assert!(!prefix.matches("00-1A"));
        let any: CallingStationPattern = "*".parse().unwrap();
        assert!(any.matches("anything"));
        // Byte offsets inside a multi-byte character must not panic.
        let p: CallingStationPattern = "ab*".parse().unwrap();
        assert!(!p.matches("aé"));
        assert!("a*b".parse::<CallingStationPattern>().is_err());
        assert!("".parse::<CallingStationPattern>().is_err());
    }
}
