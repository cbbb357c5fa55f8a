//! A LAN interface's IPv4 address and subnet broadcast address, as the
//! kernel has them now (getifaddrs).

use std::net::Ipv4Addr;

/// An interface's first IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LanInterface {
    pub name: String,
    pub address: Ipv4Addr,
    /// The subnet broadcast address (RFC 919 §7 "directed broadcast"):
    /// the kernel's, else computed from the netmask.
    pub broadcast: Ipv4Addr,
    pub prefix_len: u8,
}

impl LanInterface {
    /// Whether `addr` is on this interface's subnet.
    pub fn on_subnet(&self, addr: Ipv4Addr) -> bool {
        let mask = prefix_mask(self.prefix_len);
        u32::from(addr) & mask == u32::from(self.address) & mask
    }
}

fn prefix_mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len.min(32)))
    }
}

/// Why an interface cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum LanInterfaceError {
    #[error("listing the host's interfaces: {0}")]
    List(#[source] nix::Error),
    #[error("interface {0} does not exist or has no IPv4 address")]
    NoAddress(String),
}

/// Looks `name` up.
pub fn lan_interface(name: &str) -> Result<LanInterface, LanInterfaceError> {
    let addrs = nix::ifaddrs::getifaddrs().map_err(LanInterfaceError::List)?;
    for a in addrs {
        if a.interface_name != name {
            continue;
        }
        let Some(address) = a
            .address
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip())
        else {
            continue;
        };
        let mask = a
            .netmask
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map_or(Ipv4Addr::BROADCAST, |s| s.ip());
        let prefix_len = u32::from(mask).leading_ones() as u8;
        let computed = Ipv4Addr::from(u32::from(address) | !prefix_mask(prefix_len));
        // An address added without `brd` has none in the kernel, and
        // getifaddrs then reports the address itself: only a broadcast
        // address of the subnet other than our own is taken.
        let kernel = a
            .broadcast
            .as_ref()
            .and_then(|s| s.as_sockaddr_in())
            .map(|s| s.ip());
        let mut interface = LanInterface {
            name: name.to_owned(),
            address,
            broadcast: computed,
            prefix_len,
        };
        if let Some(b) = kernel.filter(|b| *b != address && interface.on_subnet(*b)) {
            interface.broadcast = b;
        }
        return Ok(interface);
    }
    Err(LanInterfaceError::NoAddress(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_has_an_address() {
        let lo = lan_interface("lo").unwrap();
        assert_eq!(lo.address, Ipv4Addr::LOCALHOST);
        assert_eq!(lo.prefix_len, 8);
        assert!(lo.on_subnet(Ipv4Addr::new(127, 1, 2, 3)));
        assert!(!lo.on_subnet(Ipv4Addr::new(10, 0, 0, 1)));
        assert!(matches!(
            lan_interface("no-such-if0"),
            Err(LanInterfaceError::NoAddress(_))
        ));
    }
}
