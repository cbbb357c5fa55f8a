//! The server's TUN device settings: the pool's server address as a /32,
//! routes for the client ranges, and `prefix::1/64` when IPv6 is on; and
//! the sink sessions hand their clients' packets to. The device itself is
//! [`netdev::TunDevice`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use tunnel::PacketSink;

pub use netdev::{range_to_cidrs, TunDevice, TunError, TunSettings};

use crate::config::{Ipv4Range, TunConfig};

/// The server's settings for its TUN device.
pub fn server_settings(
    tun: &TunConfig,
    server: Ipv4Addr,
    client_ranges: &[Ipv4Range],
    ipv6_prefix: Option<Ipv6Addr>,
) -> TunSettings {
    let routes = client_ranges
        .iter()
        .flat_map(|r| range_to_cidrs(r.start(), r.end()))
        .map(|(a, l)| (IpAddr::V4(a), l))
        .collect();
    TunSettings {
        name: tun.name.as_str().to_owned(),
        mtu: tun.mtu,
        ipv4: Some((server, 32)),
        ipv6: ipv6_prefix.map(|p| (Ipv6Addr::from(u128::from(p) | 1), 64)),
        routes,
        offload: true,
    }
}

/// Received client packets go to the TUN device through the batching
/// writer; a full queue drops.
pub struct TunSink(pub Arc<netdev::TunWriter>);

impl PacketSink for TunSink {
    fn send(&self, packet: &[u8]) {
        self.0.send(packet);
    }
    fn flush(&self) {
        self.0.flush();
    }
}

/// A sink that drops everything (no TUN: tests and benchmarks).
pub struct NullSink;

impl PacketSink for NullSink {
    fn send(&self, _: &[u8]) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn server_settings_from_the_default_pool() {
        let pool = crate::pool::StaticPool::new(&crate::config::Ipv4Pool::default());
        let s = server_settings(
            &TunConfig::default(),
            pool.server(),
            &pool.client_ranges(),
            Some("fd01:2:3:4::".parse().unwrap()),
        );
        assert_eq!(s.name, "ras0");
        assert_eq!(s.ipv4, Some((ip("10.0.10.20"), 32)));
        assert_eq!(s.ipv6, Some(("fd01:2:3:4::1".parse().unwrap(), 64)));
        assert_eq!(s.routes.len(), 4);
    }
}
