//! Whatever a peer sends (user name, Calling-Station-Id, RADIUS Class,
//! addresses) and whatever instant the caller passes, evaluation neither
//! panics nor lets a line break into the log line; and arbitrary text as a
//! policy document is either refused or gives a set that evaluates.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use policy::{
    parse_document, AuthMethod, Authenticated, EncryptionUsed, NasPortType, PreAuth, Request,
    TunnelType,
};
use proptest::prelude::*;

const POLICIES: &str = r#"
[policies]
time_zone = "America/New_York"

[[policy]]
name = "deny by class"
access = "deny"
[policy.conditions]
calling_station_ids = ["+1*", "x*"]
radius_class = ["bad"]

[[policy]]
name = "users"
access = "grant"
[policy.conditions]
users = ["Ünïcode", "alice"]
groups = ["g"]
day_and_time = ["Sun 22:00-06:00", "Mon-Fri 08:00-18:00"]
client_addresses = ["::ffff:0:0/96", "10.0.0.0/8"]
[policy.constraints]
session_timeout_secs = 1
max_sessions_per_user = 1

[[policy]]
name = "rest"
access = "deny"
[policy.conditions]
nas_port_types = ["virtual"]
"#;

proptest! {
    #[test]
    fn peer_input_never_panics_or_forges_lines(
        user in ".{0,300}",
        calling in proptest::option::of(".{0,300}"),
        class in proptest::option::of(proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..4)),
        groups in proptest::collection::vec(".{0,40}", 0..4),
        secs in any::<u64>(),
        addr in proptest::option::of(any::<u128>()),
        port in 0usize..20,
        mppe in any::<u16>(),
        sessions in any::<u32>(),
    ) {
        let set = parse_document(POLICIES).unwrap();
        let time = SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(secs)).unwrap_or(SystemTime::UNIX_EPOCH);
        let request = Request {
            groups: &groups,
            radius_class: class.as_deref(),
            calling_station_id: calling.as_deref(),
            client_address: addr.map(|a| IpAddr::from(a.to_be_bytes())),
            ..Request::new(&user, TunnelType::Pptp, NasPortType::ALL[port], time)
        };
        if let PreAuth::Refuse(d) | PreAuth::Proceed(d) = set.evaluate_before_auth(&request) {
            prop_assert!(!d.to_string().contains(['\n', '\r']));
        }
        let auth = Authenticated {
            method: AuthMethod::Pap,
            encryption: EncryptionUsed::Mppe { bits: mppe },
            sessions_of_user: sessions,
        };
        let d = set.evaluate_after_auth(&request, &auth);
        let line = d.to_string();
        prop_assert!(!line.contains(['\n', '\r']), "{}", line);
        // Peer text is cut: the line stays short whatever was sent.
        prop_assert!(line.chars().count() < 1200, "{}", line.len());
    }

    #[test]
    fn arbitrary_documents_are_refused_or_evaluate(text in "(\\[\\[policy\\]\\]\n|name = \"[a-z]{0,3}\"\n|access = \"(grant|deny)\"\n|\\[policy\\.(conditions|constraints)\\]\n|users = \\[\"[a-z]{0,2}\"\\]\n|day_and_time = \\[\"[A-Za-z ,:0-9-]{0,20}\"\\]\n|static_address = \"10\\.0\\.0\\.[0-9]\"\n|max_sessions_per_user = [0-9]{1,3}\n|enabled = false\n){0,24}") {
        if let Ok(set) = parse_document(&text) {
            let r = Request::new("a", TunnelType::Sstp, NasPortType::Virtual, SystemTime::UNIX_EPOCH);
            let _ = set.evaluate_before_auth(&r);
            let auth = Authenticated { method: AuthMethod::Pap, encryption: EncryptionUsed::None, sessions_of_user: 0 };
            let d = set.evaluate_after_auth(&r, &auth);
            // With no [[policy]] the built-in grant decides.
            if !text.contains("[[policy]]") {
                prop_assert!(d.policy.unwrap().builtin);
            }
        }
    }
}
