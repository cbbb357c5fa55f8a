//! Which network the machine is on, as a key for what is remembered per
//! network (the NAT timeout, nat_probe.rs).
//!
//! Our own address does not tell networks apart: two home routers both
//! hand out 192.168.1.x, and a new DHCP lease on the same network changes
//! it. What does: the local prefix (the uplink's address masked to its
//! prefix length), the default gateway, and the gateway's link-layer
//! address from the neighbour table (ARP for IPv4, RFC 826; Neighbor
//! Discovery for IPv6, RFC 4861 §7) — the router itself. The key is
//!
//! ```text
//! 192.168.1.0/24 via 192.168.1.1 at 02:fc:00:00:00:05   (gateway known)
//! 192.168.1.0/24                                        (no gateway MAC)
//! 192.168.1.23                                          (address not found)
//! ```
//!
//! The facts come from `ip -json` (as netwatch.rs reads routes), so no
//! new parser of kernel output is written here.

use std::net::IpAddr;

use super::netwatch::ip_json;
use serde_json::Value;

/// The key of the network behind `local` now. Runs `ip` three times
/// (a few milliseconds): call it off the runtime's threads where it can
/// wait.
pub fn network_key(local: IpAddr) -> String {
    let addrs = ip_json(&["addr", "show"]);
    let Some((dev, prefix)) = addrs.as_ref().and_then(|a| interface_of(a, local)) else {
        return key_of(local, None, None);
    };
    let family = if local.is_ipv4() { "-4" } else { "-6" };
    let gateway =
        ip_json(&[family, "route", "show", "default", "dev", &dev]).and_then(|r| gateway_of(&r));
    let router = gateway.and_then(|gw| {
        let neigh = ip_json(&["neigh", "show", &gw.to_string(), "dev", &dev])?;
        lladdr_of(&neigh, gw).map(|mac| (gw, mac))
    });
    key_of(
        local,
        Some(prefix),
        router.as_ref().map(|(g, m)| (*g, m.as_str())),
    )
}

/// The key from the facts found (module comment).
pub fn key_of(local: IpAddr, prefix: Option<u8>, router: Option<(IpAddr, &str)>) -> String {
    let Some(prefix) = prefix else {
        return local.to_string();
    };
    let net = format!("{}/{prefix}", masked(local, prefix));
    match router {
        Some((gw, mac)) => format!("{net} via {gw} at {}", mac.to_ascii_lowercase()),
        None => net,
    }
}

/// `addr` with the bits after `prefix` cleared.
fn masked(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            IpAddr::V4((bits & mask).into())
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            IpAddr::V6((bits & mask).into())
        }
    }
}

/// From `ip -json addr show`: the interface holding `local`, and its
/// prefix length there.
fn interface_of(addrs: &Value, local: IpAddr) -> Option<(String, u8)> {
    addrs.as_array()?.iter().find_map(|link| {
        let name = link.get("ifname")?.as_str()?;
        link.get("addr_info")?.as_array()?.iter().find_map(|a| {
            let here: IpAddr = a.get("local")?.as_str()?.parse().ok()?;
            let len = u8::try_from(a.get("prefixlen")?.as_u64()?).ok()?;
            (here == local && len <= if local.is_ipv4() { 32 } else { 128 })
                .then(|| (name.to_owned(), len))
        })
    })
}

/// From `ip -json route show default dev X`: the gateway of the lowest
/// metric default route.
fn gateway_of(routes: &Value) -> Option<IpAddr> {
    routes
        .as_array()?
        .iter()
        .filter_map(|r| {
            let gw: IpAddr = r.get("gateway")?.as_str()?.parse().ok()?;
            let metric = r.get("metric").and_then(Value::as_u64).unwrap_or(0);
            Some((metric, gw))
        })
        .min_by_key(|(metric, _)| *metric)
        .map(|(_, gw)| gw)
}

/// From `ip -json neigh show GW dev X`: the gateway's link-layer address
/// (an entry that failed or is still being resolved has none).
fn lladdr_of(neigh: &Value, gateway: IpAddr) -> Option<String> {
    neigh.as_array()?.iter().find_map(|n| {
        let dst: IpAddr = n.get("dst")?.as_str()?.parse().ok()?;
        let mac = n.get("lladdr")?.as_str()?;
        // A MAC is short hex with colons; anything else is not used as
        // part of a file key.
        let plausible = !mac.is_empty()
            && mac.len() <= 64
            && mac.chars().all(|c| c.is_ascii_hexdigit() || c == ':');
        (dst == gateway && plausible).then(|| mac.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn two_home_networks_with_the_same_addresses_are_told_apart() {
        let gw = ip("192.168.1.1");
        let home = key_of(
            ip("192.168.1.23"),
            Some(24),
            Some((gw, "02:FC:00:00:00:05")),
        );
        let friend = key_of(
            ip("192.168.1.23"),
            Some(24),
            Some((gw, "52:54:00:aa:bb:cc")),
        );
        assert_eq!(home, "192.168.1.0/24 via 192.168.1.1 at 02:fc:00:00:00:05");
        assert_ne!(home, friend);
        // A new DHCP lease on the same network: the same key.
        assert_eq!(
            key_of(
                ip("192.168.1.57"),
                Some(24),
                Some((gw, "02:fc:00:00:00:05"))
            ),
            home
        );
        // No gateway MAC: the prefix; no prefix: the address.
        assert_eq!(key_of(ip("192.168.1.23"), Some(24), None), "192.168.1.0/24");
        assert_eq!(key_of(ip("192.168.1.23"), None, None), "192.168.1.23");
        assert_eq!(
            key_of(ip("2001:db8:1:2::17"), Some(64), None),
            "2001:db8:1:2::/64"
        );
        assert_eq!(key_of(ip("10.9.8.7"), Some(0), None), "0.0.0.0/0");
        assert_eq!(key_of(ip("10.9.8.7"), Some(32), None), "10.9.8.7/32");
    }

    #[test]
    fn the_facts_come_from_ip_json() {
        let addrs: Value = serde_json::from_str(
            r#"[{"ifname":"lo","addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8}]},
                {"ifname":"wlan0","addr_info":[{"family":"inet","local":"192.168.1.23","prefixlen":24},
                                               {"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#,
        )
        .unwrap();
        assert_eq!(
            interface_of(&addrs, ip("192.168.1.23")),
            Some(("wlan0".into(), 24))
        );
        assert_eq!(interface_of(&addrs, ip("192.168.1.24")), None);
        let bad: Value = serde_json::from_str(
            r#"[{"ifname":"x","addr_info":[{"local":"10.0.0.1","prefixlen":300}]}]"#,
        )
        .unwrap();
        assert_eq!(interface_of(&bad, ip("10.0.0.1")), None);

        let routes: Value = serde_json::from_str(
            r#"[{"dst":"default","gateway":"192.168.1.254","dev":"wlan0","metric":600},
                {"dst":"default","gateway":"192.168.1.1","dev":"wlan0","metric":100},
                {"dst":"default","dev":"wlan0","metric":50}]"#,
        )
        .unwrap();
        assert_eq!(gateway_of(&routes), Some(ip("192.168.1.1")));
        assert_eq!(gateway_of(&serde_json::json!({})), None);

        let neigh: Value = serde_json::from_str(
            r#"[{"dst":"192.168.1.1","dev":"wlan0","lladdr":"02:fc:00:00:00:05","state":["STALE"]},
                {"dst":"192.168.1.9","dev":"wlan0","lladdr":"02:fc:00:00:00:09","state":["REACHABLE"]}]"#,
        )
        .unwrap();
        assert_eq!(
            lladdr_of(&neigh, ip("192.168.1.1")).as_deref(),
            Some("02:fc:00:00:00:05")
        );
        let failed: Value =
            serde_json::from_str(r#"[{"dst":"192.168.1.1","dev":"wlan0","state":["FAILED"]}]"#)
                .unwrap();
        assert_eq!(lladdr_of(&failed, ip("192.168.1.1")), None);
        let odd: Value =
            serde_json::from_str(r#"[{"dst":"192.168.1.1","lladdr":"../../etc"}]"#).unwrap();
        assert_eq!(lladdr_of(&odd, ip("192.168.1.1")), None);
    }

    /// On this machine: the key of an address we hold names its prefix.
    #[test]
    fn the_key_of_a_local_address_names_its_prefix() {
        assert_eq!(network_key(ip("127.0.0.1")), "127.0.0.0/8");
        // An address nobody holds: the address itself.
        assert_eq!(network_key(ip("203.0.113.77")), "203.0.113.77");
    }
}
