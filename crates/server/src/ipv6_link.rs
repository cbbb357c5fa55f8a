//! A session's IPv6 once IPv6CP is up: the client's global address, the
//! server's answers on the link (echo, Neighbor Discovery, Router
//! Advertisements) and the first unsolicited advertisements.

use std::net::Ipv6Addr;
use std::time::Duration;

use bytes::Bytes;
use ppp::link::LinkUp;

/// The client's global address: the /64 and the interface identifier
/// IPv6CP negotiated (RFC 5072 §5).
pub fn client_ipv6(prefix: Ipv6Addr, interface_id: [u8; 8]) -> Ipv6Addr {
    let mut octets = prefix.octets();
    octets[8..].copy_from_slice(&interface_id);
    Ipv6Addr::from(octets)
}

/// The server's end of the link in IPv6: echo and Neighbor Discovery on
/// the link-local address IPv6CP gave our side, Router Advertisements with
/// the session's /64 (pppd and RRAS answer there from the PPP interface;
/// our TUN is shared, see the icmpv6 crate). The TUN holds prefix::1 for
/// the server's own /64 only.
pub fn responder(
    up: &LinkUp,
    session_prefix: Option<Ipv6Addr>,
    server_prefix: Option<Ipv6Addr>,
    mtu: u32,
) -> Option<icmpv6::Responder> {
    let v6 = up.ipv6.as_ref()?;
    let global = session_prefix
        .filter(|p| Some(*p) == server_prefix)
        .map(|p| Ipv6Addr::from(u128::from(p) | 1));
    let ra = session_prefix.map(|prefix| icmpv6::RouterAdvert { prefix, mtu });
    Some(icmpv6::Responder::new(v6.local_interface_id, global, ra))
}

/// RFC 4861 §6.2.4: a few initial unsolicited advertisements, so the
/// client learns the prefix even if it missed the first.
pub fn announce(tx: tunnel::PacketSender, local_interface_id: [u8; 8], prefix: Ipv6Addr, mtu: u32) {
    let ra = Bytes::from(crate::ra::router_advertisement(
        local_interface_id,
        prefix,
        mtu,
    ));
    tokio::spawn(async move {
        for delay in [0u64, 2, 6] {
            tokio::time::sleep(Duration::from_secs(delay)).await;
            if tx.send(ra.clone()).await.is_err() {
                break;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_address_is_the_prefix_and_the_interface_id() {
        let prefix: Ipv6Addr = "fd00:1:2:3::".parse().unwrap();
        assert_eq!(
            client_ipv6(prefix, [0, 0, 0, 0, 0, 0, 0xab, 0xcd]),
            "fd00:1:2:3::abcd".parse::<Ipv6Addr>().unwrap()
        );
    }
}
