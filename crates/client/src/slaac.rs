//! The client's IPv6 global address from the server's Router
//! Advertisement (RFC 4861 §4.2, §4.6.2), formed with the interface
//! identifier IPv6CP negotiated (RFC 5072 §5). The kernel's own SLAAC is
//! switched off on the TUN: with no hardware address it would invent an
//! identifier the server does not route to this client.

use std::net::Ipv6Addr;

/// A prefix an advertisement offers for address autoconfiguration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertisedPrefix {
    pub prefix: Ipv6Addr,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
}

/// If `packet` is an ICMPv6 Router Advertisement, the first /64 prefix
/// with the autonomous flag. Bounds-checked: any bytes are safe.
pub fn autonomous_prefix(packet: &[u8]) -> Option<AdvertisedPrefix> {
    // IPv6 header (40 bytes), next header ICMPv6 (58), hop limit 255
    // (RFC 4861 §6.1.2), ICMPv6 type 134, code 0.
    if packet.len() < 56 || packet[0] >> 4 != 6 || packet[6] != 58 || packet[7] != 255 {
        return None;
    }
    let icmp = &packet[40..];
    if icmp[0] != 134 || icmp[1] != 0 {
        return None;
    }
    let mut options = &icmp[16..];
    while options.len() >= 8 {
        let len = usize::from(options[1]) * 8;
        if len == 0 || len > options.len() {
            return None;
        }
        let option = &options[..len];
        // §4.6.2 Prefix Information: type 3, length 4, A flag 0x40.
        if option[0] == 3 && len == 32 && option[2] == 64 && option[3] & 0x40 != 0 {
            let prefix: [u8; 16] = option[16..32].try_into().ok()?;
            return Some(AdvertisedPrefix {
                prefix: Ipv6Addr::from(prefix),
                valid_lifetime: u32::from_be_bytes(option[4..8].try_into().ok()?),
                preferred_lifetime: u32::from_be_bytes(option[8..12].try_into().ok()?),
            });
        }
        options = &options[len..];
    }
    None
}

/// The address in `prefix` with the link-local address's identifier.
pub fn address_in(prefix: Ipv6Addr, link_local: Ipv6Addr) -> Ipv6Addr {
    let p = prefix.segments();
    let l = link_local.segments();
    Ipv6Addr::new(p[0], p[1], p[2], p[3], l[4], l[5], l[6], l[7])
}

/// Stop the kernel's own router-advertisement processing on `dev`.
pub fn disable_kernel_ra(dev: &str) {
    for (knob, value) in [("accept_ra", "0"), ("autoconf", "0")] {
        let path = format!("/proc/sys/net/ipv6/conf/{dev}/{knob}");
        if let Err(e) = std::fs::write(&path, value) {
            tracing::debug!("{path}: {e}");
        }
    }
}

/// Add the address to `dev` (runs `ip`; called once per advertisement).
pub fn assign(dev: &str, address: Ipv6Addr, prefix: &AdvertisedPrefix) {
    let result = std::process::Command::new("ip")
        .args([
            "-6",
            "addr",
            "replace",
            &format!("{address}/64"),
            "dev",
            dev,
        ])
        .args(["valid_lft", &prefix.valid_lifetime.to_string()])
        .args(["preferred_lft", &prefix.preferred_lifetime.to_string()])
        .output();
    match result {
        Ok(out) if out.status.success() => tracing::info!("IPv6 address {address}/64 on {dev}"),
        Ok(out) => tracing::warn!(
            "adding {address} to {dev}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ),
        Err(e) => tracing::warn!("cannot run ip: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ra(prefix: Ipv6Addr, flags: u8) -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 48, 58, 255];
        p.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[134, 0, 0, 0, 64, 0, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        p.extend_from_slice(&[3, 4, 64, flags, 0, 1, 81, 128, 0, 0, 56, 64, 0, 0, 0, 0]);
        p.extend_from_slice(&prefix.octets());
        p
    }

    #[test]
    fn finds_the_autonomous_prefix() {
        let prefix: Ipv6Addr = "fd00:1:2:3::".parse().unwrap();
        let found = autonomous_prefix(&ra(prefix, 0xc0)).unwrap();
        assert_eq!(found.prefix, prefix);
        assert_eq!(
            (found.valid_lifetime, found.preferred_lifetime),
            (86_400, 14_400)
        );
        assert_eq!(autonomous_prefix(&ra(prefix, 0x80)), None, "no A flag");
        let mut bad = ra(prefix, 0xc0);
        bad[7] = 64;
        assert_eq!(autonomous_prefix(&bad), None, "hop limit must be 255");
        bad = ra(prefix, 0xc0);
        bad[57] = 0;
        assert_eq!(autonomous_prefix(&bad), None, "zero-length option");
        for n in 0..bad.len() {
            let _ = autonomous_prefix(&ra(prefix, 0xc0)[..n]);
        }
        assert_eq!(
            address_in(prefix, "fe80::a:b:c:d".parse().unwrap()),
            "fd00:1:2:3:a:b:c:d".parse::<Ipv6Addr>().unwrap()
        );
    }
}
