//! End to end through this crate: a configuration document as an operator
//! writes it, parsed and validated, then connection attempts at different
//! instants, as the server will make them (pre-authentication check, then
//! the post-authentication check). Proves the refusal by day and time and
//! the log line that names the policy and the reason. (The same through a
//! running server is the lead's wiring test.)

mod support;

use std::time::Duration;

use policy::{
    AuthMethod, Authenticated, DenyReason, EncryptionUsed, NasPortType, PreAuth, Request,
    TunnelType,
};
use support::{at, set};

const CONFIG: &str = r#"
[policies]
time_zone = "Europe/Berlin"

[[policy]]
name = "No dial-in at night"
access = "deny"
[policy.conditions]
day_and_time = ["Mon-Sun 00:00-05:00"]

[[policy]]
name = "Staff in office hours"
access = "grant"
[policy.conditions]
groups = ["staff"]
day_and_time = ["Mon-Fri 08:00-18:00"]
[policy.constraints]
session_timeout_secs = 43200
idle_timeout_secs = 1800
"#;

fn attempt(set: &policy::PolicySet, instant: &str) -> (PreAuth, policy::Decision) {
    let groups = vec!["staff".to_owned()];
    let request = Request {
        groups: &groups,
        client_address: Some("203.0.113.5".parse().unwrap()),
        calling_station_id: Some("203.0.113.5"),
        ..Request::new("alice", TunnelType::Sstp, NasPortType::Virtual, at(instant))
    };
    let auth = Authenticated {
        method: AuthMethod::MsChapV2,
        encryption: EncryptionUsed::Tls,
        sessions_of_user: 0,
    };
    (
        set.evaluate_before_auth(&request),
        set.evaluate_after_auth(&request, &auth),
    )
}

#[test]
fn refused_on_saturday_with_the_policy_and_window_named() {
    let set = set(CONFIG);
    // Saturday 2026-11-21, 10:00 in Berlin (CET, UTC+1).
    let (before, after) = attempt(&set, "2026-11-21T09:00:00Z");
    let PreAuth::Refuse(decision) = before else {
        panic!("expected a refusal before authentication, got {before:?}");
    };
    assert_eq!(decision, after, "both steps agree");
    assert_eq!(decision.deny_reason(), Some(&DenyReason::NoPolicyMatched));
    assert_eq!(
        decision.to_string(),
        "refused access: no policy matched, and [policies] unmatched = \"deny\" (the NPS default): \
         policy[0] \"No dial-in at night\": day_and_time: Sat 10:00 Europe/Berlin is outside \"Mon-Sun 00:00-05:00\"; \
         policy[1] \"Staff in office hours\": day_and_time: Sat 10:00 Europe/Berlin is outside \"Mon-Fri 08:00-18:00\""
    );
}

#[test]
fn refused_at_night_by_the_deny_policy() {
    let set = set(CONFIG);
    // Tuesday 2026-11-24, 03:10 in Berlin.
    let (before, after) = attempt(&set, "2026-11-24T02:10:00Z");
    assert!(matches!(before, PreAuth::Refuse(_)), "{before:?}");
    assert_eq!(after.policy.as_ref().unwrap().name, "No dial-in at night");
    assert_eq!(
        after.to_string(),
        "policy[0] \"No dial-in at night\" refused access: it is a deny policy and its conditions \
         matched (day_and_time Tue 03:10 Europe/Berlin)"
    );
}

#[test]
fn granted_in_office_hours_until_the_window_closes() {
    let set = set(CONFIG);
    // Monday 2026-11-23, 17:00 in Berlin: one hour left in the window,
    // which is shorter than the 12-hour session timeout.
    let (before, after) = attempt(&set, "2026-11-23T16:00:00Z");
    assert!(matches!(before, PreAuth::Proceed(_)), "{before:?}");
    let grant = after.grant().expect("granted");
    assert_eq!(grant.session_timeout, Some(Duration::from_secs(3600)));
    assert_eq!(grant.idle_timeout, Some(Duration::from_secs(1800)));
    assert_eq!(
        after.to_string(),
        "policy[1] \"Staff in office hours\" granted access (idle timeout 1800 s, session timeout 3600 s)"
    );
    // Same wall-clock time in summer (CEST, UTC+2): still 17:00 local.
    let (_, summer) = attempt(&set, "2026-07-06T15:00:00Z");
    assert_eq!(
        summer.grant().unwrap().session_timeout,
        Some(Duration::from_secs(3600))
    );
    // Reconnecting at 18:00 local, when the session was cut, is refused.
    let (before, _) = attempt(&set, "2026-11-23T17:00:00Z");
    let PreAuth::Refuse(d) = before else {
        panic!("{before:?}")
    };
    assert!(
        d.to_string()
            .contains("Mon 18:00 Europe/Berlin is outside \"Mon-Fri 08:00-18:00\""),
        "{d}"
    );
}
