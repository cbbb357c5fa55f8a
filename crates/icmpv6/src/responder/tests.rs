use super::*;
use proptest::prelude::*;

const SERVER_IID: [u8; 8] = [0x40, 0x7d, 0x61, 0xd3, 0x51, 0x8d, 0xdf, 0xe5];
const CLIENT_IID: [u8; 8] = [0, 0, 0, 0, 0, 0, 0, 0x21];

fn ip(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn server_ll() -> Ipv6Addr {
    link_local(SERVER_IID)
}

fn client_ll() -> Ipv6Addr {
    link_local(CLIENT_IID)
}

fn responder() -> Responder {
    Responder::new(
        SERVER_IID,
        Some(ip("fd00:1:2:3::1")),
        Some(RouterAdvert {
            prefix: ip("fd00:1:2:3::"),
            mtu: 1400,
        }),
    )
}

/// An IPv6 packet with `msg` (checksum computed unless `bad_sum`).
fn packet(src: Ipv6Addr, dst: Ipv6Addr, hop: u8, msg: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    ipv6_packet(&src, &dst, hop, msg.to_vec(), &mut out);
    out
}

fn echo_request(dst: Ipv6Addr) -> Vec<u8> {
    let mut msg = vec![ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 7];
    msg.extend_from_slice(b"abcdefghijklmnopqrstuvwxyz");
    packet(client_ll(), dst, 64, &msg)
}

fn ns(src: Ipv6Addr, dst: Ipv6Addr, target: Ipv6Addr, options: &[u8]) -> Vec<u8> {
    let mut msg = vec![NEIGHBOR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0];
    msg.extend_from_slice(&target.octets());
    msg.extend_from_slice(options);
    packet(src, dst, 255, &msg)
}

/// The checksum of a whole reply packet verifies, and its fields.
fn check(reply: &[u8]) -> (Ipv6Addr, Ipv6Addr, u8, &[u8]) {
    let len = usize::from(u16::from_be_bytes([reply[4], reply[5]]));
    assert_eq!(reply.len(), 40 + len);
    assert_eq!(reply[6], 58);
    let (src, dst) = (addr(&reply[8..24]), addr(&reply[24..40]));
    assert_eq!(checksum(&src, &dst, &reply[40..]), 0, "checksum");
    (src, dst, reply[7], &reply[40..])
}

#[test]
fn echo_request_to_the_link_local_address_is_answered() {
    let mut r = responder();
    let mut out = Vec::new();
    let request = echo_request(server_ll());
    assert_eq!(r.handle(Instant::now(), &request, &mut out), Verdict::Reply);
    let (src, dst, hop, msg) = check(&out);
    assert_eq!((src, dst, hop), (server_ll(), client_ll(), 64));
    // RFC 4443 §4.2: type 129, the request's identifier, sequence, data.
    assert_eq!(msg[0], ECHO_REPLY);
    assert_eq!(&msg[4..], &request[44..]);
    assert_eq!(r.stats().echo_replies, 1);

    // A wrong checksum is dropped (RFC 4443 §2.4), not answered.
    let mut bad = request.clone();
    bad[43] ^= 1;
    assert_eq!(r.handle(Instant::now(), &bad, &mut out), Verdict::Drop);
    // So is a request to a link-local address that is not ours.
    let other = echo_request(ip("fe80::99"));
    assert_eq!(r.handle(Instant::now(), &other, &mut out), Verdict::Drop);
    // A request to the global address is the host's (through the TUN).
    let global = echo_request(ip("fd00:1:2:3::1"));
    assert_eq!(r.handle(Instant::now(), &global, &mut out), Verdict::Pass);
    assert_eq!(r.stats().echo_replies, 1);
}

#[test]
fn everything_else_passes_untouched() {
    let mut r = responder();
    let mut out = Vec::new();
    // IPv4, and IPv6 to anywhere beyond the link.
    let v4 = [0x45u8; 60];
    assert_eq!(r.handle(Instant::now(), &v4, &mut out), Verdict::Pass);
    let far = echo_request(ip("2001:db8::1"));
    assert_eq!(r.handle(Instant::now(), &far, &mut out), Verdict::Pass);
    // Site-scope multicast is routed; link-scope multicast is not.
    let site = packet(client_ll(), ip("ff05::2"), 1, &[143, 0, 0, 0]);
    assert_eq!(r.handle(Instant::now(), &site, &mut out), Verdict::Pass);
    let mld = packet(client_ll(), ip("ff02::16"), 1, &[143, 0, 0, 0]);
    assert_eq!(r.handle(Instant::now(), &mld, &mut out), Verdict::Drop);
}

#[test]
fn router_solicitation_gets_an_advertisement_at_most_every_three_seconds() {
    let mut r = responder();
    let mut out = Vec::new();
    let rs = packet(
        client_ll(),
        ALL_ROUTERS,
        255,
        &[ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0],
    );
    let t0 = Instant::now();
    assert_eq!(r.handle(t0, &rs, &mut out), Verdict::Reply);
    let (src, dst, hop, msg) = check(&out);
    assert_eq!((src, dst, hop), (server_ll(), client_ll(), 255));
    assert_eq!(msg[0], 134);
    assert_eq!(&msg[32..48], &ip("fd00:1:2:3::").octets());
    // RFC 4861 §10 MIN_DELAY_BETWEEN_RAS.
    assert_eq!(
        r.handle(t0 + Duration::from_secs(1), &rs, &mut out),
        Verdict::Drop
    );
    assert_eq!(
        r.handle(t0 + Duration::from_secs(3), &rs, &mut out),
        Verdict::Reply
    );
    // §6.1.1: hop limit 255 only (a forwarded solicitation is forged).
    let mut forwarded = rs.clone();
    forwarded[7] = 254;
    let mut fresh = responder();
    assert_eq!(fresh.handle(t0, &forwarded, &mut out), Verdict::Drop);
    // From the unspecified address: answered to all nodes, and a Source
    // Link-Layer Address option makes it invalid.
    let anon = packet(
        Ipv6Addr::UNSPECIFIED,
        ALL_ROUTERS,
        255,
        &[ROUTER_SOLICITATION, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(fresh.handle(t0, &anon, &mut out), Verdict::Reply);
    assert_eq!(check(&out).1, ALL_NODES);
    let mut fresh = responder();
    let with_sll = packet(
        Ipv6Addr::UNSPECIFIED,
        ALL_ROUTERS,
        255,
        &[
            ROUTER_SOLICITATION,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            1,
            0,
            0,
            0,
            0,
            0,
            0,
        ],
    );
    assert_eq!(fresh.handle(t0, &with_sll, &mut out), Verdict::Drop);
    assert_eq!(fresh.stats().malformed, 1);
    // No advertisements configured: nothing to say.
    let mut quiet = Responder::new(SERVER_IID, None, None);
    assert_eq!(quiet.handle(t0, &rs, &mut out), Verdict::Drop);
}

#[test]
fn neighbor_solicitation_for_our_addresses_is_answered() {
    let mut r = responder();
    let mut out = Vec::new();
    let now = Instant::now();
    // Address resolution of the link-local address, to its
    // solicited-node group: a solicited Neighbor Advertisement, unicast.
    let q = ns(client_ll(), solicited_node(&server_ll()), server_ll(), &[]);
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Reply);
    let (src, dst, hop, msg) = check(&out);
    assert_eq!((src, dst, hop), (server_ll(), client_ll(), 255));
    assert_eq!(msg[0], NEIGHBOR_ADVERTISEMENT);
    assert_eq!(msg[4], 0x80 | 0x40, "Router and Solicited, no Override");
    assert_eq!(&msg[8..24], &server_ll().octets());
    assert_eq!(msg.len(), 24, "no Target Link-Layer Address option");
    // Reachability check of the global address, unicast to it.
    let global = ip("fd00:1:2:3::1");
    let q = ns(client_ll(), global, global, &[]);
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Reply);
    assert_eq!(check(&out).0, global);
    // Duplicate address detection of our address: answered to all nodes,
    // not solicited.
    let q = ns(
        Ipv6Addr::UNSPECIFIED,
        solicited_node(&server_ll()),
        server_ll(),
        &[],
    );
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Reply);
    let (_, dst, _, msg) = check(&out);
    assert_eq!((dst, msg[4]), (ALL_NODES, 0x80));
    // The client's own duplicate address detection is not answered (an
    // answer would make it give up its address).
    let q = ns(
        Ipv6Addr::UNSPECIFIED,
        solicited_node(&client_ll()),
        client_ll(),
        &[],
    );
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Drop);
    // Hop limit below 255, a multicast target, an option of length 0, or
    // a source link-layer option without a source: invalid.
    let mut forwarded = ns(client_ll(), solicited_node(&server_ll()), server_ll(), &[]);
    forwarded[7] = 64;
    assert_eq!(r.handle(now, &forwarded, &mut out), Verdict::Drop);
    let q = ns(client_ll(), ip("ff02::1"), ip("ff02::1"), &[]);
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Drop);
    let q = ns(
        client_ll(),
        server_ll(),
        server_ll(),
        &[1, 0, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Drop);
    let q = ns(
        Ipv6Addr::UNSPECIFIED,
        solicited_node(&server_ll()),
        server_ll(),
        &[1, 1, 0, 0, 0, 0, 0, 0],
    );
    assert_eq!(r.handle(now, &q, &mut out), Verdict::Drop);
    assert_eq!(r.stats().malformed, 4);
    assert_eq!(r.stats().neighbor_advertisements, 3);
}

#[test]
fn truncated_and_inconsistent_packets_are_dropped() {
    let mut r = responder();
    let mut out = Vec::new();
    let request = echo_request(server_ll());
    for n in 0..request.len() {
        let v = r.handle(Instant::now(), &request[..n], &mut out);
        assert_ne!(v, Verdict::Reply, "{n} bytes");
    }
    // A payload length beyond the packet.
    let mut long = request.clone();
    long[4] = 0xff;
    assert_eq!(r.handle(Instant::now(), &long, &mut out), Verdict::Drop);
    // Extension headers (hop-by-hop) before ICMPv6: not answered.
    let mut hbh = request.clone();
    hbh[6] = 0;
    assert_eq!(r.handle(Instant::now(), &hbh, &mut out), Verdict::Drop);
    // Trailing bytes beyond the payload length are not echoed.
    let mut padded = request.clone();
    padded.extend_from_slice(&[0xee; 8]);
    assert_eq!(r.handle(Instant::now(), &padded, &mut out), Verdict::Reply);
    assert_eq!(out.len(), request.len());
}

proptest! {
    /// Any bytes: no panic, and any reply is a well-formed packet from one
    /// of our addresses with a correct checksum.
    #[test]
    fn any_bytes_are_safe(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..200),
        kind in prop_oneof![Just(128u8), Just(133), Just(135), any::<u8>()],
        fix in any::<bool>(),
    ) {
        if fix && bytes.len() >= 41 {
            // Steer the bytes towards what is examined further.
            bytes[0] = 0x60;
            bytes[6] = 58;
            bytes[7] = 255;
            bytes[24..40].copy_from_slice(&server_ll().octets());
            bytes[40] = kind;
            let len = (bytes.len() - 40) as u16;
            bytes[4..6].copy_from_slice(&len.to_be_bytes());
        }
        let mut r = responder();
        let mut out = Vec::new();
        if r.handle(Instant::now(), &bytes, &mut out) == Verdict::Reply {
            let (src, _, _, _) = check(&out);
            prop_assert!(src == server_ll() || src == ip("fd00:1:2:3::1"));
        }
    }
}
