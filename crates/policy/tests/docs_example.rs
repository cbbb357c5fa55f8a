//! The configuration example in docs/POLICIES.md parses, validates and
//! behaves as the text around it says.

use std::time::{Duration, SystemTime};

use policy::{
    parse_document, AuthMethod, Authenticated, EncryptionUsed, NasPortType, Request, TunnelType,
};

fn example() -> &'static str {
    let doc = include_str!("../../../docs/POLICIES.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = doc[start..].find("```").expect("its end");
    &doc[start..start + len]
}

#[test]
fn the_documented_example_is_valid() {
    let set = parse_document(example()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        set.names().collect::<Vec<_>>(),
        [
            "No PPTP from the internet",
            "Staff in office hours",
            "Alice's fixed address"
        ]
    );
    // Saturday 2026-11-21 10:30 in Berlin: inside "Sat 09:00-12:00".
    let now = SystemTime::from("2026-11-21T09:30:00Z".parse::<jiff::Timestamp>().unwrap());
    let groups = vec!["staff".to_owned()];
    let request = Request {
        groups: &groups,
        ..Request::new("alice", TunnelType::Sstp, NasPortType::Virtual, now)
    };
    let auth = Authenticated {
        method: AuthMethod::EapMsChapV2,
        encryption: EncryptionUsed::Tls,
        sessions_of_user: 0,
    };
    let d = set.evaluate_after_auth(&request, &auth);
    assert_eq!(d.policy.as_ref().unwrap().name, "Staff in office hours");
    assert_eq!(
        d.grant().unwrap().session_timeout,
        Some(Duration::from_secs(90 * 60))
    );
    // Over PPTP from the internet the first policy refuses; from
    // 10.0.0.0/8 it does not apply.
    let outside = Request {
        tunnel_type: TunnelType::Pptp,
        client_address: Some("198.51.100.1".parse().unwrap()),
        ..request.clone()
    };
    let d = set.evaluate_after_auth(&outside, &auth);
    assert!(d.deny_reason().is_some());
    assert_eq!(d.policy.unwrap().index, 0);
    for inside in ["10.1.2.3", "10.255.255.255"] {
        let r = Request {
            client_address: Some(inside.parse().unwrap()),
            ..outside.clone()
        };
        assert_eq!(set.evaluate_after_auth(&r, &auth).policy.unwrap().index, 1);
    }
    for outside_addr in ["9.255.255.255", "11.0.0.0", "127.0.0.1", "255.255.255.255"] {
        let r = Request {
            client_address: Some(outside_addr.parse().unwrap()),
            ..outside.clone()
        };
        assert_eq!(
            set.evaluate_after_auth(&r, &auth).policy.unwrap().index,
            0,
            "{outside_addr}"
        );
    }
}
