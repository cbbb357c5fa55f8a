//! The "PPP link up" log line's details, in words.

use ppp::link::LinkUp;

/// The client's IPv4 address, both link-local IPv6 addresses (RFC 5072
/// §5) and MPPE. `server`: this side is the server (its peer the client),
/// else the other way.
pub fn link_up_text(up: &LinkUp, server: bool) -> String {
    let mut parts = Vec::new();
    let pair = |local: String, peer: String| {
        if server {
            format!("client {peer} (server {local})")
        } else {
            format!("{local} (server {peer})")
        }
    };
    if let Some(v4) = &up.ipv4 {
        parts.push(pair(v4.local.to_string(), v4.peer.to_string()));
    }
    if let Some(v6) = &up.ipv6 {
        let ll = |iid: [u8; 8]| {
            let mut o = [0u8; 16];
            o[0] = 0xfe;
            o[1] = 0x80;
            o[8..].copy_from_slice(&iid);
            std::net::Ipv6Addr::from(o)
        };
        parts.push(pair(
            ll(v6.local_interface_id).to_string(),
            ll(v6.peer_interface_id).to_string(),
        ));
    }
    parts.push(match up.mppe {
        Some(m) => m.to_string(),
        None => "no MPPE".into(),
    });
    parts.join(", ")
}
