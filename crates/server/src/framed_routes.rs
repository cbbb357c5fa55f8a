//! Networks behind a client, from its RADIUS Access-Accept: Framed-Route
//! (RFC 2865 §5.22) and Framed-IPv6-Route (RFC 3162 §2.5), as RRAS/NPS
//! users give them to a branch router that dials in. While the session
//! is up the router sends those networks to it (router.rs), the kernel
//! sends them to the TUN (a route the session adds and removes itself),
//! and the session may send from them (its source filter).

use radius::FramedRoute;

/// The most framed routes one session gets; the rest are ignored with a
/// warning (an Access-Accept is at most 4096 octets, but nothing here
/// should grow with what a server sends).
pub const MAX_FRAMED_ROUTES: usize = 16;

/// The routes of an Access-Accept's attributes. A bad value is one
/// warning line naming the attribute and the value; the session goes on
/// without that route.
pub fn from_attributes(attrs: &[radius::Attribute], session_id: u64) -> Vec<FramedRoute> {
    use radius::dict::attr::{FRAMED_IPV6_ROUTE, FRAMED_ROUTE};
    let mut routes: Vec<FramedRoute> = Vec::new();
    for a in attrs {
        let (name, parsed) = match a.typ {
            FRAMED_ROUTE => ("Framed-Route", radius::parse_framed_route(&a.value)),
            FRAMED_IPV6_ROUTE => (
                "Framed-IPv6-Route",
                radius::parse_framed_ipv6_route(&a.value),
            ),
            _ => continue,
        };
        let value = shown(&a.value);
        match parsed {
            Ok(r) if routes.iter().any(|o| o.prefix == r.prefix && o.len == r.len) => {}
            Ok(_) if routes.len() == MAX_FRAMED_ROUTES => tracing::warn!(
                session_id,
                "RADIUS {name} \"{value}\" ignored: more than {MAX_FRAMED_ROUTES} routes for one session"
            ),
            Ok(r) => routes.push(r),
            Err(e) => tracing::warn!(session_id, "RADIUS {name} \"{value}\" ignored: {e}"),
        }
    }
    routes
}

/// The routes as one line ("10.77.0.0/24, 2001:db8:9::/48"), or empty.
pub fn listed(routes: &[FramedRoute]) -> String {
    routes
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value from the network, safe for one log line: printable ASCII kept,
/// anything else escaped, at most 80 characters.
fn shown(value: &[u8]) -> String {
    let mut out = String::new();
    for &b in value.iter().take(80) {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    if value.len() > 80 {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use radius::dict::attr::{FRAMED_IPV6_ROUTE, FRAMED_ROUTE};

    fn attr(typ: u8, text: &str) -> radius::Attribute {
        radius::Attribute::new(typ, text.as_bytes().to_vec())
    }

    #[test]
    fn good_routes_are_kept_bad_ones_dropped_and_the_count_bounded() {
        let mut attrs = vec![
            attr(FRAMED_ROUTE, "10.77.0.0/24 0.0.0.0 1"),
            attr(FRAMED_ROUTE, "10.77.0.9/24 0.0.0.0 1"),
            attr(FRAMED_ROUTE, "10.77.0.0 255.255.255.0"),
            attr(FRAMED_IPV6_ROUTE, "2001:db8:9::/48 :: 1"),
            attr(FRAMED_IPV6_ROUTE, "10.1.0.0/16"),
            attr(1, "10.1.0.0/16"),
        ];
        let got = from_attributes(&attrs, 1);
        assert_eq!(listed(&got), "10.77.0.0/24, 2001:db8:9::/48");
        for i in 0..40 {
            attrs.push(attr(FRAMED_ROUTE, &format!("10.{i}.0.0/16")));
        }
        assert_eq!(from_attributes(&attrs, 1).len(), MAX_FRAMED_ROUTES);
    }

    #[test]
    fn values_are_shown_escaped_and_short() {
        assert_eq!(shown(b"10.0.0.0/8 \"x\"\n"), "10.0.0.0/8 \\\"x\\\"\\x0a");
        assert_eq!(shown(&[b'a'; 100]).len(), 83);
    }
}
