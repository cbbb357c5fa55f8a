//! RADIUS Framed-Route (RFC 2865 §5.22) and Framed-IPv6-Route (RFC 3162
//! §2.5) values from an Access-Accept: any bytes give a route or an error,
//! never a panic, and a route is a well-formed network (host bits zero,
//! a length of its family, containing its own prefix) whose text form
//! reads back to the same network.
#![no_main]

use libfuzzer_sys::fuzz_target;
use radius::{parse_framed_ipv6_route, parse_framed_route, FramedRoute};

fn check(r: &FramedRoute) {
    let max = if r.prefix.is_ipv4() { 32 } else { 128 };
    assert!(r.len > 0 && r.len <= max);
    assert!(r.contains(r.prefix));
    let text = r.to_string();
    let again = if r.prefix.is_ipv4() {
        parse_framed_route(text.as_bytes())
    } else {
        parse_framed_ipv6_route(text.as_bytes())
    }
    .expect("a route's own text reads back");
    assert_eq!((again.prefix, again.len), (r.prefix, r.len));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = parse_framed_route(data) {
        check(&r);
    }
    if let Ok(r) = parse_framed_ipv6_route(data) {
        check(&r);
    }
});
