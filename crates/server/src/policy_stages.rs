//! The remote access policies (`crates/policy`, docs/POLICIES.md) at the
//! three points of a session where the server asks them, as RRAS and NPS
//! do:
//!
//! 1. [`before_auth`]: the peer has named itself. The conditions are
//!    checked with what is known of the claimed user (its groups from the
//!    local store; nothing yet from RADIUS). A deny policy, or no policy
//!    matching, refuses with MS-CHAP error 649, "no dial-in permission".
//! 2. [`after_auth`]: the user is authenticated. Everything is checked
//!    again with the method it used, its RADIUS Class and the count of its
//!    other sessions; the matched policy's grant shapes the session
//!    (static address, timeouts).
//! 3. [`at_link_up`]: CCP is done. The encryption actually negotiated is
//!    checked against the policy's minimum, and the sessions-per-user limit
//!    against the user's other sessions that are up now.
//!
//! Each stage is a plain function: the facts and the time come in, the
//! decision and its one log line come out. No IO, no clock.

use std::time::{Duration, SystemTime};

use policy::{AuthMethod, EncryptionUsed, Grant, PolicySet};
use ppp::auth::Rejection;
use ppp::mppe::MppeStrength;
use tunnel::login_log::{self, method_name};

use crate::access_policy::{self, encryption, method_words};
use crate::radius_auth::{calling_station, Granted, TunnelKind};
use crate::session_record::Claimed;
use crate::SessionId;

/// Who is asking, for every stage.
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub session: SessionId,
    /// The peer's transport address ("ip:port") or line.
    pub peer: &'a str,
    pub tunnel: TunnelKind,
    /// Plain L2TP: the tunnel is not inside IPsec.
    pub plain_l2tp: bool,
    pub now: SystemTime,
}

impl Asking<'_> {
    /// What protects this session's link, given the MPPE CCP agreed on.
    fn encryption(&self, mppe: Option<MppeStrength>) -> EncryptionUsed {
        if self.plain_l2tp {
            access_policy::unprotected_tunnel_encryption(mppe)
        } else {
            encryption(self.tunnel, mppe)
        }
    }
}

/// A refusal before authentication: the MS-CHAP code the peer is told
/// and the text for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rejection: Rejection,
    pub why: String,
}

/// The policy that admitted a session, and the method the user used: the
/// link-up stage checks the grant's constraints again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub grant: Grant,
    pub method: AuthMethod,
}

/// Stage 1, when the peer has named itself. `groups` and `radius_class`
/// are what the authenticator knows before checking the credentials
/// (`radius_class: None`: not known yet, so policies that need it decide
/// after authentication).
pub fn before_auth(
    policies: &PolicySet,
    asking: Asking<'_>,
    user: &str,
    method: ppp::auth::AuthMethod,
    groups: &[String],
    radius_class: Option<&[Vec<u8>]>,
) -> Result<(), Refusal> {
    let station = calling_station(asking.peer);
    let request = access_policy::request(
        user,
        groups,
        radius_class,
        asking.tunnel,
        asking.peer,
        &station,
        asking.now,
    );
    match policies.evaluate_before_auth(&request) {
        policy::PreAuth::Refuse(decision) => {
            login_log::refused(asking.session.raw(), user, method_name(method), &decision);
            // MS-CHAP 649, as RRAS answers when the dial-in permission is
            // denied (RFC 2759 §6 lists the codes).
            Err(Refusal {
                rejection: Rejection::NoDialinPermission,
                why: "no dial-in permission".into(),
            })
        }
        _ => Ok(()),
    }
}

/// Stage 2, once the user is authenticated: `user` is the authenticated
/// name, `claimed` what it said before, `granted` what RADIUS granted
/// (its Class is a condition; the grant's limits are applied to it), and
/// `sessions_of_user` the user's other sessions now. `Err`: refused, with
/// the reason (already logged).
pub fn after_auth(
    policies: &PolicySet,
    asking: Asking<'_>,
    user: &str,
    claimed: &Claimed,
    granted: &mut Granted,
    sessions_of_user: u32,
) -> Result<Admitted, String> {
    let station = calling_station(asking.peer);
    let request = access_policy::request(
        user,
        &claimed.groups,
        Some(&granted.class),
        asking.tunnel,
        asking.peer,
        &station,
        asking.now,
    );
    // EAP pass-through whose method was never seen: the common case.
    let method = claimed.method.unwrap_or(AuthMethod::EapMsChapV2);
    // The MPPE actually negotiated is checked again when the link is up.
    // Plain L2TP links negotiate no CCP (`links.l2tp`): nothing to assume.
    let assumed = if asking.plain_l2tp {
        asking.encryption(None)
    } else {
        asking.encryption(Some(MppeStrength::Bits128))
    };
    let auth = policy::Authenticated {
        method,
        encryption: assumed,
        sessions_of_user,
    };
    let decision = policies.evaluate_after_auth(&request, &auth);
    let Some(grant) = decision.grant().cloned() else {
        login_log::refused(asking.session.raw(), user, method_words(method), &decision);
        return Err(decision.to_string());
    };
    tracing::info!(
        session_id = asking.session.raw(),
        "user {}: {decision}",
        login_log::Quoted(user)
    );
    apply_limits(granted, &grant);
    Ok(Admitted { grant, method })
}

/// Stage 3, when the link is up: the grant's constraints against the
/// encryption negotiated (`mppe`, after CCP; SSTP is TLS and meets every
/// level) and the user's other sessions up now (`others_up` counts them,
/// asked only if the grant limits them). `Err`: refused, with the reason
/// (already logged).
pub fn at_link_up(
    admitted: &Admitted,
    asking: Asking<'_>,
    user: &str,
    mppe: Option<MppeStrength>,
    others_up: &dyn Fn() -> u32,
) -> Result<(), String> {
    let sessions_of_user = if admitted.grant.max_sessions_per_user.is_some() {
        others_up()
    } else {
        0
    };
    let auth = policy::Authenticated {
        method: admitted.method,
        encryption: asking.encryption(mppe),
        sessions_of_user,
    };
    policy::check_constraints(&admitted.grant, &auth).map_err(|failure| {
        let why = format!("refused by the remote access policy: {failure}");
        login_log::refused(
            asking.session.raw(),
            user,
            method_words(admitted.method),
            &why,
        );
        why
    })
}

/// The grant's timeouts narrow RADIUS's: the shorter of the two wins
/// (RFC 2865 §5.27/§5.28 limits; NPS applies the policy's the same way).
fn apply_limits(granted: &mut Granted, grant: &Grant) {
    let shorter = |a: Option<u32>, b: Option<Duration>| {
        let b = b.map(|d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    granted.session_timeout = shorter(granted.session_timeout, grant.session_timeout);
    granted.idle_timeout = shorter(granted.idle_timeout, grant.idle_timeout);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(toml: &str) -> PolicySet {
        policy::parse_document(toml).expect("valid policies")
    }

    fn asking(tunnel: TunnelKind) -> Asking<'static> {
        Asking {
            session: SessionId::from_raw(3),
            peer: "192.0.2.7:40000",
            tunnel,
            plain_l2tp: false,
            now: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        }
    }

    fn claimed(groups: &[&str], method: Option<AuthMethod>) -> Claimed {
        Claimed {
            user: "alice".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            method,
        }
    }

    const STAFF: &str = r#"
[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
groups = ["staff"]
[policy.constraints]
session_timeout_secs = 600
idle_timeout_secs = 120
max_sessions_per_user = 1
min_encryption = "strongest"
"#;

    #[test]
    fn before_auth_refuses_with_649_when_no_policy_matches() {
        let p = set(STAFF);
        let a = asking(TunnelKind::Sstp);
        let method = ppp::auth::AuthMethod::MsChapV2;
        let refused = before_auth(&p, a, "bob", method, &[], Some(&[])).unwrap_err();
        assert_eq!(refused.rejection, Rejection::NoDialinPermission);
        let staff = ["staff".to_string()];
        assert_eq!(
            before_auth(&p, a, "alice", method, &staff, Some(&[])),
            Ok(())
        );
    }

    #[test]
    fn after_auth_applies_the_shorter_timeouts_and_counts_sessions() {
        let p = set(STAFF);
        let a = asking(TunnelKind::Pptp);
        let mut granted = Granted {
            session_timeout: Some(300),
            idle_timeout: Some(3600),
            ..Granted::default()
        };
        let staff = claimed(&["staff"], Some(AuthMethod::MsChapV2));
        let admitted = after_auth(&p, a, "alice", &staff, &mut granted, 0).unwrap();
        assert_eq!(admitted.method, AuthMethod::MsChapV2);
        assert_eq!(granted.session_timeout, Some(300), "RADIUS's is shorter");
        assert_eq!(granted.idle_timeout, Some(120), "the policy's is shorter");
        // One session already: over the limit.
        let why = after_auth(&p, a, "alice", &staff, &mut Granted::default(), 1).unwrap_err();
        assert!(why.contains("max_sessions_per_user"), "{why}");
        // No group: no policy.
        let none = claimed(&[], Some(AuthMethod::MsChapV2));
        let why = after_auth(&p, a, "alice", &none, &mut Granted::default(), 0).unwrap_err();
        assert!(why.contains("no policy matched"), "{why}");
    }

    #[test]
    fn at_link_up_checks_the_negotiated_encryption_and_the_sessions_up() {
        let p = set(STAFF);
        let staff = claimed(&["staff"], Some(AuthMethod::MsChapV2));
        let pptp = asking(TunnelKind::Pptp);
        let admitted = after_auth(&p, pptp, "alice", &staff, &mut Granted::default(), 0).unwrap();
        assert_eq!(
            at_link_up(&admitted, pptp, "alice", Some(MppeStrength::Bits128), &|| 0),
            Ok(())
        );
        let weak = at_link_up(&admitted, pptp, "alice", Some(MppeStrength::Bits40), &|| 0);
        assert!(weak.unwrap_err().contains("min_encryption"));
        let none = at_link_up(&admitted, pptp, "alice", None, &|| 0);
        assert!(none.is_err(), "no MPPE at all");
        let twice = at_link_up(&admitted, pptp, "alice", Some(MppeStrength::Bits128), &|| 1);
        assert!(twice.unwrap_err().contains("max_sessions_per_user"));
        // SSTP is TLS: strong whatever CCP said.
        let sstp = asking(TunnelKind::Sstp);
        assert_eq!(at_link_up(&admitted, sstp, "alice", None, &|| 0), Ok(()));
    }

    #[test]
    fn the_builtin_policy_admits_everyone_without_limits() {
        let p = PolicySet::new(&Default::default(), &[]).unwrap();
        let a = asking(TunnelKind::Sstp);
        let mut granted = Granted::default();
        let admitted = after_auth(&p, a, "anyone", &Claimed::default(), &mut granted, 7).unwrap();
        assert_eq!(admitted.method, AuthMethod::EapMsChapV2, "EAP never named");
        assert_eq!(admitted.grant.static_address, None);
        assert_eq!(granted, Granted::default());
        // No limit: a login does not count the user's sessions (that walks
        // the whole session table).
        assert!(!p.limits_sessions_per_user());
        assert_eq!(
            at_link_up(&admitted, a, "anyone", None, &|| unreachable!(
                "counted the user's sessions without a limit"
            )),
            Ok(())
        );
        assert!(set(STAFF).limits_sessions_per_user(), "STAFF sets one");
    }
}
