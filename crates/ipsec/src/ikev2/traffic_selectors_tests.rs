use super::*;
use std::net::{IpAddr, Ipv4Addr};

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn round_trip_both_families() {
    let selectors = vec![
        TrafficSelector::any_ipv4(),
        TrafficSelector::any_ipv6(),
        TrafficSelector {
            protocol: 17,
            start_port: 1701,
            end_port: 1701,
            start: v4(10, 0, 0, 1),
            end: v4(10, 0, 0, 1),
        },
    ];
    let body = encode(&selectors);
    assert_eq!(body.len(), 4 + 16 + 40 + 16);
    assert_eq!(parse(&body).expect("TS"), selectors);
}

#[test]
fn narrowing_to_the_configured_routes() {
    // a Windows client proposes everything; the server narrows it to its
    // split-tunnel route 10.1.0.0/16
    let route = TrafficSelector {
        protocol: 0,
        start_port: 0,
        end_port: 65535,
        start: v4(10, 1, 0, 0),
        end: v4(10, 1, 255, 255),
    };
    assert_eq!(TrafficSelector::any_ipv4().intersect(&route), Some(route));
    let other = TrafficSelector::host(v4(192, 168, 1, 1));
    assert_eq!(route.intersect(&other), None);
    assert_eq!(TrafficSelector::any_ipv6().intersect(&route), None);
    let udp = TrafficSelector {
        protocol: 17,
        ..TrafficSelector::any_ipv4()
    };
    let tcp = TrafficSelector {
        protocol: 6,
        ..TrafficSelector::any_ipv4()
    };
    assert_eq!(udp.intersect(&tcp), None);
    assert_eq!(udp.intersect(&route).map(|t| t.protocol), Some(17));
}

#[test]
fn malformed_selectors_are_errors() {
    let body = encode(&[TrafficSelector::any_ipv4()]);
    for cut in 0..body.len() {
        assert!(parse(&body[..cut]).is_err(), "cut at {cut}");
    }
    let mut bad = body.clone();
    bad[7] = 17; // IPv4 selector with a length that is not 16
    assert!(parse(&bad).is_err());
    let mut count = body.clone();
    count[0] = 0;
    assert!(matches!(parse(&count), Err(TsError::Count { .. })));
}

#[test]
fn an_ipv4_prefix_spans_its_network() {
    let ts = TrafficSelector::ipv4_prefix(std::net::Ipv4Addr::new(10, 1, 2, 3), 16);
    assert_eq!(ts.start, IpAddr::from([10, 1, 0, 0]));
    assert_eq!(ts.end, IpAddr::from([10, 1, 255, 255]));
    let all = TrafficSelector::ipv4_prefix(std::net::Ipv4Addr::UNSPECIFIED, 0);
    assert_eq!(all, TrafficSelector::any_ipv4());
    let host = TrafficSelector::ipv4_prefix(std::net::Ipv4Addr::new(192, 0, 2, 9), 32);
    assert_eq!(host, TrafficSelector::host(IpAddr::from([192, 0, 2, 9])));
}
