//! Table-driven proof of every condition and every constraint, each in a
//! matching and a non-matching case, then first-match-wins ordering, the
//! default for unmatched requests, and the two evaluation steps.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use policy::{
    AuthMethod, Authenticated, ConditionMiss, ConstraintFailure, DenyReason, EncryptionLevel,
    EncryptionUsed, IpsecCipher, NasPortType, Outcome, PreAuth, Request, TunnelType,
    BUILTIN_POLICY_NAME,
};
use support::{at, set};

/// Wednesday 2026-11-18, 10:00 UTC.
const WEDNESDAY_10: &str = "2026-11-18T10:00:00Z";

/// The facts every row starts from; a row changes one of them.
struct Facts {
    user: &'static str,
    groups: Vec<String>,
    class: Option<Vec<Vec<u8>>>,
    tunnel: TunnelType,
    port: NasPortType,
    calling: Option<&'static str>,
    client: Option<IpAddr>,
    time: &'static str,
    auth: Authenticated,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            user: "alice",
            groups: vec!["VPN-Users".into(), "staff".into()],
            class: None,
            tunnel: TunnelType::Sstp,
            port: NasPortType::Virtual,
            calling: Some("192.0.2.7"),
            client: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))),
            time: WEDNESDAY_10,
            auth: Authenticated {
                method: AuthMethod::MsChapV2,
                encryption: EncryptionUsed::Tls,
                sessions_of_user: 0,
            },
        }
    }
}

impl Facts {
    fn request(&self) -> Request<'_> {
        Request {
            user_name: self.user,
            groups: &self.groups,
            radius_class: self.class.as_deref(),
            tunnel_type: self.tunnel,
            nas_port_type: self.port,
            calling_station_id: self.calling,
            client_address: self.client,
            time: at(self.time),
        }
    }
}

type Change = fn(&mut Facts);

fn same(_: &mut Facts) {}

struct ConditionRow {
    what: &'static str,
    /// Lines of `[policy.conditions]`.
    conditions: &'static str,
    /// `[policies]` lines (time zone).
    settings: &'static str,
    change: Change,
    /// `None`: must match; `Some(text)`: must miss, with this in the reason.
    miss: Option<&'static str>,
}

#[test]
fn every_condition_matches_and_misses() {
    let rows = [
        ConditionRow {
            what: "users, listed in another case",
            conditions: r#"users = ["bob", "ALICE"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "users, not listed",
            conditions: r#"users = ["bob"]"#,
            settings: "",
            change: same,
            miss: Some(r#"users: "alice" is not listed"#),
        },
        ConditionRow {
            what: "local groups, any of them, any case",
            conditions: r#"groups = ["admins", "vpn-users"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "local groups, member of none",
            conditions: r#"groups = ["admins"]"#,
            settings: "",
            change: same,
            miss: Some(r#"groups: the user is in none of "admins""#),
        },
        ConditionRow {
            what: "RADIUS Class present",
            conditions: r#"radius_class = ["staff", "ops"]"#,
            settings: "",
            change: |f| f.class = Some(vec![b"other".to_vec(), b"ops".to_vec()]),
            miss: None,
        },
        ConditionRow {
            what: "RADIUS Class different",
            conditions: r#"radius_class = ["staff"]"#,
            settings: "",
            change: |f| f.class = Some(vec![b"Staff".to_vec()]),
            miss: Some(r#"radius_class: no RADIUS Class is one of "staff""#),
        },
        ConditionRow {
            what: "RADIUS Class absent after authentication",
            conditions: r#"radius_class = ["staff"]"#,
            settings: "",
            change: same,
            miss: Some(r#"radius_class: no RADIUS Class is one of "staff""#),
        },
        ConditionRow {
            what: "day and time inside the window",
            conditions: r#"day_and_time = ["Mon-Fri 08:00-18:00"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "day and time on a Sunday",
            conditions: r#"day_and_time = ["Mon-Fri 08:00-18:00"]"#,
            settings: "",
            change: |f| f.time = "2026-11-22T10:00:00Z",
            miss: Some(r#"day_and_time: Sun 10:00 UTC is outside "Mon-Fri 08:00-18:00""#),
        },
        ConditionRow {
            what: "day and time after hours",
            conditions: r#"day_and_time = ["Mon-Fri 08:00-18:00"]"#,
            settings: "",
            change: |f| f.time = "2026-11-18T18:00:00Z",
            miss: Some("day_and_time: Wed 18:00 UTC is outside"),
        },
        ConditionRow {
            what: "day and time in the configured zone (10:00 UTC is 19:00 in Tokyo)",
            conditions: r#"day_and_time = ["Mon-Fri 08:00-18:00"]"#,
            settings: r#"time_zone = "Asia/Tokyo""#,
            change: same,
            miss: Some("day_and_time: Wed 19:00 Asia/Tokyo is outside"),
        },
        ConditionRow {
            what: "day and time in a fixed offset (10:00 UTC is 07:00 at -03:00)",
            conditions: r#"day_and_time = ["Mon-Fri 07:00-08:00"]"#,
            settings: r#"time_zone = "-03:00""#,
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "tunnel type listed",
            conditions: r#"tunnel_types = ["pptp", "sstp"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "tunnel type not listed",
            conditions: r#"tunnel_types = ["sstp", "ikev2"]"#,
            settings: "",
            change: |f| f.tunnel = TunnelType::L2tp,
            miss: Some("tunnel_types: l2tp is not listed"),
        },
        ConditionRow {
            what: "dial-up",
            conditions: r#"tunnel_types = ["dialup"]"#,
            settings: "",
            change: |f| f.tunnel = TunnelType::Dialup,
            miss: None,
        },
        ConditionRow {
            what: "NAS port type listed",
            conditions: r#"nas_port_types = ["virtual"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "NAS port type not listed",
            conditions: r#"nas_port_types = ["virtual"]"#,
            settings: "",
            change: |f| f.port = NasPortType::Async,
            miss: Some("nas_port_types: async is not listed"),
        },
        ConditionRow {
            what: "Calling-Station-Id prefix",
            conditions: r#"calling_station_ids = ["+4930*", "192.0.2.*"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "Calling-Station-Id exact, different",
            conditions: r#"calling_station_ids = ["192.0.2.70"]"#,
            settings: "",
            change: same,
            miss: Some(r#"calling_station_ids: "192.0.2.7" matches none"#),
        },
        ConditionRow {
            what: "Calling-Station-Id absent",
            conditions: r#"calling_station_ids = ["*"]"#,
            settings: "",
            change: |f| f.calling = None,
            miss: Some("calling_station_ids: the request has no Calling-Station-Id"),
        },
        ConditionRow {
            what: "client address in a prefix",
            conditions: r#"client_addresses = ["198.51.100.0/24", "192.0.2.0/28"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "client address, exact IPv6",
            conditions: r#"client_addresses = ["2001:db8::7"]"#,
            settings: "",
            change: |f| f.client = Some("2001:db8::7".parse().unwrap()),
            miss: None,
        },
        ConditionRow {
            what: "client address outside",
            conditions: r#"client_addresses = ["192.0.2.8/29"]"#,
            settings: "",
            change: same,
            miss: Some("client_addresses: 192.0.2.7 is in none"),
        },
        ConditionRow {
            what: "client address absent",
            conditions: r#"client_addresses = ["0.0.0.0/0"]"#,
            settings: "",
            change: |f| f.client = None,
            miss: Some("client_addresses: the request has no client address"),
        },
        ConditionRow {
            what: "several conditions all holding",
            conditions: r#"users = ["alice"]
groups = ["staff"]
tunnel_types = ["sstp"]
day_and_time = ["Wed"]"#,
            settings: "",
            change: same,
            miss: None,
        },
        ConditionRow {
            what: "several conditions, the last failing",
            conditions: r#"users = ["alice"]
groups = ["staff"]
tunnel_types = ["pptp"]"#,
            settings: "",
            change: same,
            miss: Some("tunnel_types: sstp is not listed"),
        },
    ];
    for row in rows {
        let text = format!(
            "[policies]\n{}\n[[policy]]\nname = \"P\"\naccess = \"grant\"\n[policy.conditions]\n{}\n",
            row.settings, row.conditions
        );
        let set = set(&text);
        let mut facts = Facts::default();
        (row.change)(&mut facts);
        let decision = set.evaluate_after_auth(&facts.request(), &facts.auth);
        match row.miss {
            None => {
                assert!(decision.is_granted(), "{}: {decision}", row.what);
                assert_eq!(decision.policy.as_ref().unwrap().name, "P", "{}", row.what);
                assert!(decision.skipped.is_empty(), "{}", row.what);
            }
            Some(reason) => {
                assert_eq!(
                    decision.deny_reason(),
                    Some(&DenyReason::NoPolicyMatched),
                    "{}: {decision}",
                    row.what
                );
                assert!(decision.policy.is_none());
                assert_eq!(decision.skipped.len(), 1, "{}", row.what);
                let line = decision.to_string();
                assert!(
                    line.contains(&format!("policy[0] \"P\": {reason}")),
                    "{}: {line}",
                    row.what
                );
            }
        }
        // Before authentication the answer is the same, except that a
        // RADIUS Class condition waits for the Class (if nothing else
        // already failed).
        let before = set.evaluate_before_auth(&facts.request());
        let waits_for_class = row.conditions.contains("radius_class") && facts.class.is_none() && {
            // Another condition failing decides first.
            row.miss.is_some_and(|m| m.starts_with("radius_class"))
        };
        match (before, row.miss) {
            (PreAuth::Undecided { policy }, _) if waits_for_class => {
                assert_eq!(policy.name, "P")
            }
            (PreAuth::Proceed(d), None) => assert!(d.is_granted(), "{}", row.what),
            (PreAuth::Refuse(d), Some(_)) => {
                assert_eq!(d.deny_reason(), Some(&DenyReason::NoPolicyMatched))
            }
            (other, _) => panic!("{}: before auth: {other:?}", row.what),
        }
    }
}

struct ConstraintRow {
    what: &'static str,
    /// Lines of `[policy.constraints]`.
    constraints: &'static str,
    /// Extra lines of `[policy.conditions]`.
    conditions: &'static str,
    change: Change,
    expect: Expect,
}

enum Expect {
    /// Granted, and the grant passes this check.
    Grant(fn(&policy::Grant) -> bool),
    /// Refused by the policy's constraint, with this in the reason.
    Refuse(&'static str),
}

#[test]
fn every_constraint_holds_and_fails() {
    use Expect::{Grant, Refuse};
    let rows = [
        ConstraintRow {
            what: "auth method allowed",
            constraints: r#"auth_methods = ["eap-mschapv2", "mschapv2"]"#,
            conditions: "",
            change: same,
            expect: Grant(|g| {
                g.auth_methods == Some(vec![AuthMethod::EapMsChapV2, AuthMethod::MsChapV2])
            }),
        },
        ConstraintRow {
            what: "auth method not allowed",
            constraints: r#"auth_methods = ["eap-mschapv2", "peap"]"#,
            conditions: "",
            change: |f| f.auth.method = AuthMethod::Pap,
            expect: Refuse(
                "constraint auth_methods: the client authenticated with pap, the policy allows eap-mschapv2, peap",
            ),
        },
        ConstraintRow {
            what: "CHAP under its [auth] name chap-md5",
            constraints: r#"auth_methods = ["chap-md5"]"#,
            conditions: "",
            change: |f| f.auth.method = AuthMethod::Chap,
            expect: Grant(|g| g.auth_methods == Some(vec![AuthMethod::Chap])),
        },
        ConstraintRow {
            what: "strongest: SSTP's TLS meets it",
            constraints: r#"min_encryption = "strongest""#,
            conditions: "",
            change: same,
            expect: Grant(|g| g.min_encryption == EncryptionLevel::Strongest),
        },
        ConstraintRow {
            what: "strongest: MPPE 128 meets it",
            constraints: r#"min_encryption = "strongest""#,
            conditions: "",
            change: |f| f.auth.encryption = EncryptionUsed::Mppe { bits: 128 },
            expect: Grant(|g| g.min_encryption == EncryptionLevel::Strongest),
        },
        ConstraintRow {
            what: "strongest: MPPE 56 does not",
            constraints: r#"min_encryption = "strongest""#,
            conditions: "",
            change: |f| f.auth.encryption = EncryptionUsed::Mppe { bits: 56 },
            expect: Refuse(
                "constraint min_encryption: the link has MPPE 56-bit (level strong), the policy requires at least strongest",
            ),
        },
        ConstraintRow {
            what: "strong: IPsec DES meets it",
            constraints: r#"min_encryption = "strong""#,
            conditions: "",
            change: |f| f.auth.encryption = EncryptionUsed::Ipsec(IpsecCipher::Des),
            expect: Grant(|g| g.min_encryption == EncryptionLevel::Strong),
        },
        ConstraintRow {
            what: "basic: no encryption does not",
            constraints: r#"min_encryption = "basic""#,
            conditions: "",
            change: |f| f.auth.encryption = EncryptionUsed::None,
            expect: Refuse("the link has no encryption (level none)"),
        },
        ConstraintRow {
            what: "none: no encryption is accepted",
            constraints: r#"min_encryption = "none""#,
            conditions: "",
            change: |f| f.auth.encryption = EncryptionUsed::None,
            expect: Grant(|g| g.min_encryption == EncryptionLevel::None),
        },
        ConstraintRow {
            what: "idle timeout set",
            constraints: "idle_timeout_secs = 900",
            conditions: "",
            change: same,
            expect: Grant(|g| g.idle_timeout == Some(Duration::from_secs(900))),
        },
        ConstraintRow {
            what: "idle timeout absent",
            constraints: "session_timeout_secs = 60",
            conditions: "",
            change: same,
            expect: Grant(|g| g.idle_timeout.is_none()),
        },
        ConstraintRow {
            what: "session timeout set",
            constraints: "session_timeout_secs = 28800",
            conditions: "",
            change: same,
            expect: Grant(|g| g.session_timeout == Some(Duration::from_secs(28800))),
        },
        ConstraintRow {
            what: "session timeout absent",
            constraints: "idle_timeout_secs = 60",
            conditions: "",
            change: same,
            expect: Grant(|g| g.session_timeout.is_none()),
        },
        ConstraintRow {
            what: "session timeout cut to the end of the day-and-time window",
            constraints: "session_timeout_secs = 28800",
            conditions: r#"day_and_time = ["Wed 08:00-10:30"]"#,
            change: same,
            expect: Grant(|g| g.session_timeout == Some(Duration::from_secs(30 * 60))),
        },
        ConstraintRow {
            what: "a window alone gives a session timeout",
            constraints: "idle_timeout_secs = 60",
            conditions: r#"day_and_time = ["Tue 20:00-24:00", "Wed 00:00-12:00"]"#,
            change: same,
            expect: Grant(|g| g.session_timeout == Some(Duration::from_secs(2 * 3600))),
        },
        ConstraintRow {
            what: "static address for the one user",
            constraints: r#"static_address = "10.0.10.50""#,
            conditions: r#"users = ["alice"]"#,
            change: same,
            expect: Grant(|g| {
                g.static_address == Some(Ipv4Addr::new(10, 0, 10, 50))
                    && g.max_sessions_per_user == Some(1)
            }),
        },
        ConstraintRow {
            what: "static address already in use by the user's other session",
            constraints: r#"static_address = "10.0.10.50""#,
            conditions: r#"users = ["alice"]"#,
            change: |f| f.auth.sessions_of_user = 1,
            expect: Refuse("max_sessions_per_user: the user already has 1 session(s), the policy allows 1"),
        },
        ConstraintRow {
            what: "no static address",
            constraints: "max_sessions_per_user = 3",
            conditions: "",
            change: same,
            expect: Grant(|g| g.static_address.is_none()),
        },
        ConstraintRow {
            what: "sessions under the limit",
            constraints: "max_sessions_per_user = 2",
            conditions: "",
            change: |f| f.auth.sessions_of_user = 1,
            expect: Grant(|g| g.max_sessions_per_user == Some(2)),
        },
        ConstraintRow {
            what: "sessions at the limit",
            constraints: "max_sessions_per_user = 2",
            conditions: "",
            change: |f| f.auth.sessions_of_user = 2,
            expect: Refuse(
                "constraint max_sessions_per_user: the user already has 2 session(s), the policy allows 2",
            ),
        },
    ];
    for row in rows {
        let text = format!(
            "[[policy]]\nname = \"C\"\naccess = \"grant\"\n[policy.conditions]\nnas_port_types = [\"virtual\"]\n{}\n[policy.constraints]\n{}\n\
             [[policy]]\nname = \"after\"\naccess = \"grant\"\n",
            row.conditions, row.constraints
        );
        let set = set(&text);
        let mut facts = Facts::default();
        (row.change)(&mut facts);
        let decision = set.evaluate_after_auth(&facts.request(), &facts.auth);
        // The policy whose conditions matched decides, either way: a failed
        // constraint does not fall through to "after".
        assert_eq!(
            decision.policy.as_ref().map(|p| p.name.as_str()),
            Some("C"),
            "{}: {decision}",
            row.what
        );
        match row.expect {
            Grant(check) => {
                let g = decision
                    .grant()
                    .unwrap_or_else(|| panic!("{}: {decision}", row.what));
                assert!(check(g), "{}: {g:?}", row.what);
            }
            Refuse(reason) => {
                assert!(
                    matches!(decision.outcome, Outcome::Deny(DenyReason::Constraint(_))),
                    "{}: {decision}",
                    row.what
                );
                let line = decision.to_string();
                assert!(
                    line.starts_with("policy[0] \"C\" refused access: constraint "),
                    "{line}"
                );
                assert!(line.contains(reason), "{}: {line}", row.what);
            }
        }
    }
}

#[test]
fn first_match_wins() {
    let set = set(r#"
[[policy]]
name = "No PPTP"
access = "deny"
[policy.conditions]
tunnel_types = ["pptp"]

[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
groups = ["staff"]
[policy.constraints]
idle_timeout_secs = 600

[[policy]]
name = "Everyone"
access = "grant"
[policy.constraints]
idle_timeout_secs = 60
"#);
    // A staff member over PPTP hits the deny policy first.
    let mut facts = Facts {
        tunnel: TunnelType::Pptp,
        ..Facts::default()
    };
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().index, 0);
    assert_eq!(
        d.to_string(),
        "policy[0] \"No PPTP\" refused access: it is a deny policy and its conditions matched (tunnel pptp)"
    );
    // Over SSTP the deny policy is skipped; "Staff" matches before
    // "Everyone".
    facts.tunnel = TunnelType::Sstp;
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().name, "Staff");
    assert_eq!(
        d.grant().unwrap().idle_timeout,
        Some(Duration::from_secs(600))
    );
    assert_eq!(d.skipped.len(), 1);
    assert_eq!(
        d.skipped[0].miss,
        ConditionMiss::TunnelType {
            got: TunnelType::Sstp
        }
    );
    // Not in "staff": the catch-all.
    facts.groups = vec![];
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().name, "Everyone");
    assert_eq!(
        d.grant().unwrap().idle_timeout,
        Some(Duration::from_secs(60))
    );
    assert_eq!(d.skipped.len(), 2);
    assert_eq!(
        d.to_string(),
        "policy[2] \"Everyone\" granted access (idle timeout 60 s)"
    );
}

#[test]
fn a_failed_constraint_refuses_rather_than_falling_through() {
    let set = set(r#"
[[policy]]
name = "EAP only"
access = "grant"
[policy.constraints]
auth_methods = ["eap-mschapv2"]
"#);
    let facts = Facts::default();
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(
        d.deny_reason(),
        Some(&DenyReason::Constraint(ConstraintFailure::AuthMethod {
            used: AuthMethod::MsChapV2,
            allowed: vec![AuthMethod::EapMsChapV2],
        }))
    );
}

#[test]
fn disabled_policies_are_skipped() {
    let set = set(r#"
[[policy]]
name = "Off"
access = "deny"
enabled = false

[[policy]]
name = "On"
access = "grant"
"#);
    let facts = Facts::default();
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().name, "On");
    assert_eq!(d.skipped[0].miss, ConditionMiss::Disabled);
}

#[test]
fn unmatched_requests_follow_the_default() {
    let policies = r#"
[[policy]]
name = "PPTP only"
access = "grant"
[policy.conditions]
tunnel_types = ["pptp"]
"#;
    let facts = Facts::default();
    // Default: deny, as NPS.
    let deny = set(policies);
    let d = deny.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy, None);
    assert_eq!(d.deny_reason(), Some(&DenyReason::NoPolicyMatched));
    assert_eq!(
        d.to_string(),
        "refused access: no policy matched, and [policies] unmatched = \"deny\" (the NPS default): \
         policy[0] \"PPTP only\": tunnel_types: sstp is not listed"
    );
    assert!(matches!(
        deny.evaluate_before_auth(&facts.request()),
        PreAuth::Refuse(_)
    ));
    // Configured: grant, with no constraints.
    let grant = set(&format!("[policies]\nunmatched = \"grant\"\n{policies}"));
    let d = grant.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy, None);
    assert_eq!(d.grant(), Some(&policy::Grant::default()));
    assert!(d
        .to_string()
        .starts_with("no policy matched; access granted by default"));
}

#[test]
fn no_policy_configured_is_the_builtin_grant() {
    let set = set("");
    assert_eq!(set.len(), 1);
    assert_eq!(set.names().collect::<Vec<_>>(), [BUILTIN_POLICY_NAME]);
    let facts = Facts {
        tunnel: TunnelType::Pptp,
        ..Facts::default()
    };
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert!(d.policy.as_ref().unwrap().builtin);
    assert_eq!(d.grant(), Some(&policy::Grant::default()));
    assert!(d.to_string().starts_with("built-in policy"), "{d}");
}

#[test]
fn before_authentication() {
    let set = set(r#"
[[policy]]
name = "Contractors by Class"
access = "deny"
[policy.conditions]
tunnel_types = ["pptp"]
radius_class = ["contractor"]

[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
groups = ["staff"]
[policy.constraints]
auth_methods = ["eap-mschapv2"]
min_encryption = "strongest"
"#);
    let mut facts = Facts::default();
    // SSTP: the Class policy fails on its tunnel type, which is known, so
    // "Staff" decides before authentication and tells the server what to
    // offer in LCP and CCP.
    match set.evaluate_before_auth(&facts.request()) {
        PreAuth::Proceed(d) => {
            let g = d.grant().unwrap();
            assert_eq!(g.auth_methods, Some(vec![AuthMethod::EapMsChapV2]));
            assert_eq!(g.min_encryption.mppe_bits_meeting(), &[128]);
        }
        other => panic!("{other:?}"),
    }
    // PPTP: only the Class can decide the first policy.
    facts.tunnel = TunnelType::Pptp;
    match set.evaluate_before_auth(&facts.request()) {
        PreAuth::Undecided { policy } => assert_eq!(policy.index, 0),
        other => panic!("{other:?}"),
    }
    // After authentication, with the Class, it does.
    facts.class = Some(vec![b"contractor".to_vec()]);
    facts.auth.encryption = EncryptionUsed::Mppe { bits: 128 };
    facts.auth.method = AuthMethod::EapMsChapV2;
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().index, 0);
    assert_eq!(
        d.to_string(),
        "policy[0] \"Contractors by Class\" refused access: it is a deny policy and its conditions \
         matched (tunnel pptp, RADIUS Class \"contractor\")"
    );
    // Without that Class: "Staff" grants.
    facts.class = Some(vec![b"employee".to_vec()]);
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    assert_eq!(d.policy.as_ref().unwrap().name, "Staff");
    assert!(d.is_granted());
}

#[test]
fn peer_supplied_text_cannot_forge_log_lines() {
    let set = set(r#"
[[policy]]
name = "Bob"
access = "grant"
[policy.conditions]
users = ["bob"]
"#);
    let user = "eve\nINFO policy[0] \"Bob\" granted access";
    let facts = Facts {
        user: Box::leak(user.to_owned().into_boxed_str()),
        ..Facts::default()
    };
    let d = set.evaluate_after_auth(&facts.request(), &facts.auth);
    let line = d.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.contains(r#""eve\nINFO policy[0] \"Bob\" granted access" is not listed"#),
        "{line}"
    );
}
