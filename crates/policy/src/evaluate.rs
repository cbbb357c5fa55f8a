//! Evaluating a request against the ordered policies: first match wins,
//! as NPS does.
//!
//! The server knows different things at different moments, so evaluation
//! comes in two steps:
//!
//! 1. [`PolicySet::evaluate_before_auth`], when the tunnel is up and the
//!    peer has named itself (the user name from PAP/CHAP/EAP-Identity): who,
//!    which local groups, when, which tunnel and port type, from where. It
//!    can refuse at once (a deny policy matched, or nothing matched), or
//!    tell the server which authentication methods the matched policy
//!    allows so that LCP offers only those. When a policy's condition needs
//!    a RADIUS Class, which only arrives in the Access-Accept, it answers
//!    [`PreAuth::Undecided`].
//! 2. [`PolicySet::evaluate_after_auth`], once the user is authenticated
//!    and the link's encryption is known: everything again (the Class is
//!    known now, the clock may have moved), then the matched policy's
//!    constraints: the method actually used, the encryption negotiated, the
//!    user's other sessions now.
//!
//! As in NPS, a request that matches a granting policy's conditions but
//! fails one of its constraints is refused; evaluation does not go on to
//! the next policy.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use crate::address::{AddressPattern, CallingStationPattern};
use crate::config::{Access, ConditionsConfig, ConstraintsConfig};
use crate::day_time::{DayTimeWindow, LocalTime, TimeZoneSetting, WeekMask};
use crate::names::{AuthMethod, EncryptionLevel, EncryptionUsed, NasPortType, TunnelType};

/// What the server knows about a connection attempt before it is
/// authenticated.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// The user name the peer gave (PAP Peer-ID, CHAP Name, EAP Identity).
    pub user_name: &'a str,
    /// The user's groups in the local store (empty when the user is not
    /// there, e.g. with RADIUS).
    pub groups: &'a [String],
    /// The RADIUS Class values of the Access-Accept (RFC 2865 §5.25);
    /// `None` while they are not known, i.e. before authentication when
    /// RADIUS is used. After authentication `None` means "no Class".
    pub radius_class: Option<&'a [Vec<u8>]>,
    /// How the client reached the server.
    pub tunnel_type: TunnelType,
    /// The port type (RRAS: `Virtual` for every tunnel).
    pub nas_port_type: NasPortType,
    /// The Calling-Station-Id: the caller's number for dial-up, the
    /// client's address as text for a tunnel (as RRAS reports it).
    pub calling_station_id: Option<&'a str>,
    /// The client's outer (public) address, for tunnels.
    pub client_address: Option<IpAddr>,
    /// Now, as the caller's clock says: this crate reads no clock.
    pub time: SystemTime,
}

impl<'a> Request<'a> {
    /// A request with no groups, Class, Calling-Station-Id or address.
    pub fn new(
        user_name: &'a str,
        tunnel_type: TunnelType,
        nas_port_type: NasPortType,
        time: SystemTime,
    ) -> Request<'a> {
        Request {
            user_name,
            groups: &[],
            radius_class: None,
            tunnel_type,
            nas_port_type,
            calling_station_id: None,
            client_address: None,
            time,
        }
    }
}

/// What the server knows once the user is authenticated and the link's
/// encryption is settled (for PPTP and dial-up: after CCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// The method the user actually authenticated with.
    pub method: AuthMethod,
    /// What protects the link.
    pub encryption: EncryptionUsed,
    /// The user's other sessions right now, this one not counted. (With
    /// several servers behind one RADIUS/accounting back end this must be
    /// the count across all of them; the caller knows where it lives.)
    pub sessions_of_user: u32,
}

/// Which policy decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    /// Position in the `[[policy]]` array, from 0 (as in `policy[0]` of
    /// configuration errors).
    pub index: usize,
    /// The policy's name.
    pub name: String,
    /// True for the built-in policy in force when no `[[policy]]` is
    /// configured.
    pub builtin: bool,
}

impl fmt::Display for PolicyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.builtin {
            write!(f, "built-in policy {:?}", self.name)
        } else {
            write!(f, "policy[{}] {:?}", self.index, self.name)
        }
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The policy whose conditions matched; `None` when none did and
    /// `[policies] unmatched` decided.
    pub policy: Option<PolicyRef>,
    /// Grant or deny.
    pub outcome: Outcome,
    /// The enabled policies before the deciding one that did not match,
    /// each with the first condition that failed (for debug logs, and the
    /// reason when nothing matched).
    pub skipped: Vec<Skipped>,
}

impl Decision {
    /// Whether access is granted.
    pub fn is_granted(&self) -> bool {
        matches!(self.outcome, Outcome::Grant(_))
    }

    /// The grant, if access is granted.
    pub fn grant(&self) -> Option<&Grant> {
        match &self.outcome {
            Outcome::Grant(g) => Some(g),
            Outcome::Deny(_) => None,
        }
    }

    /// The refusal reason, if refused.
    pub fn deny_reason(&self) -> Option<&DenyReason> {
        match &self.outcome {
            Outcome::Grant(_) => None,
            Outcome::Deny(r) => Some(r),
        }
    }
}

/// The log line: which policy decided, and why a client was refused.
impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.policy, &self.outcome) {
            (Some(p), Outcome::Grant(g)) => write!(f, "{p} granted access{g}"),
            (None, Outcome::Grant(g)) => {
                write!(
                    f,
                    "no policy matched; access granted by default ([policies] unmatched = \"grant\"){g}"
                )?;
                write_skipped(f, &self.skipped)
            }
            (Some(p), Outcome::Deny(DenyReason::DenyPolicy { matched })) => {
                write!(
                    f,
                    "{p} refused access: it is a deny policy and its conditions matched"
                )?;
                if !matched.is_empty() {
                    write!(f, " ({})", matched.join(", "))?;
                }
                Ok(())
            }
            (Some(p), Outcome::Deny(DenyReason::Constraint(c))) => {
                write!(f, "{p} refused access: constraint {c}")
            }
            (_, Outcome::Deny(reason)) => {
                write!(f, "refused access: {reason}")?;
                write_skipped(f, &self.skipped)
            }
        }
    }
}

fn write_skipped(f: &mut fmt::Formatter<'_>, skipped: &[Skipped]) -> fmt::Result {
    for (i, s) in skipped.iter().enumerate() {
        let sep = if i == 0 { ": " } else { "; " };
        write!(f, "{sep}{s}")?;
    }
    Ok(())
}

/// Grant or deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Access granted, with what the server must apply.
    Grant(Grant),
    /// Access refused.
    Deny(DenyReason),
}

/// What a granting policy asks of the session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Grant {
    /// The authentication methods allowed (`None`: any the server offers).
    /// Before authentication, offer only these in LCP.
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// The weakest encryption accepted. Before CCP, allow only
    /// [`EncryptionLevel::mppe_bits_meeting`] key lengths (and require MPPE
    /// unless the level is `None`).
    pub min_encryption: EncryptionLevel,
    /// Disconnect after this much idle time.
    pub idle_timeout: Option<Duration>,
    /// Disconnect after this long: the policy's session timeout, or the
    /// time left in its day-and-time window if that is shorter.
    pub session_timeout: Option<Duration>,
    /// The address to give the client instead of one from the pool.
    pub static_address: Option<Ipv4Addr>,
    /// The most sessions of one user at once, this one included.
    pub max_sessions_per_user: Option<u32>,
}

impl fmt::Display for Grant {
    /// Writes the constraints that shape the session, as a parenthesised
    /// suffix (nothing when there are none).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = &self.auth_methods {
            let names: Vec<_> = m.iter().map(|m| m.name()).collect();
            parts.push(format!("methods {}", names.join("/")));
        }
        if self.min_encryption != EncryptionLevel::None {
            parts.push(format!("min encryption {}", self.min_encryption));
        }
        if let Some(t) = self.idle_timeout {
            parts.push(format!("idle timeout {} s", t.as_secs()));
        }
        if let Some(t) = self.session_timeout {
            parts.push(format!("session timeout {} s", t.as_secs()));
        }
        if let Some(a) = self.static_address {
            parts.push(format!("static address {a}"));
        }
        if let Some(n) = self.max_sessions_per_user {
            parts.push(format!("max {n} sessions per user"));
        }
        if parts.is_empty() {
            Ok(())
        } else {
            write!(f, " ({})", parts.join(", "))
        }
    }
}

/// Why access was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// The first matching policy is a deny policy. `matched` says which of
    /// its conditions held (empty for an unconditional policy).
    DenyPolicy {
        /// One short text per condition that held.
        matched: Vec<String>,
    },
    /// The matching granting policy's constraint failed.
    Constraint(ConstraintFailure),
    /// No policy matched and `[policies] unmatched` is `"deny"`; see
    /// [`Decision::skipped`] for why each did not.
    NoPolicyMatched,
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::DenyPolicy { matched } if matched.is_empty() => {
                f.write_str("a deny policy matched")
            }
            DenyReason::DenyPolicy { matched } => {
                write!(f, "a deny policy matched ({})", matched.join(", "))
            }
            DenyReason::Constraint(c) => write!(f, "constraint {c}"),
            DenyReason::NoPolicyMatched => f.write_str(
                "no policy matched, and [policies] unmatched = \"deny\" (the NPS default)",
            ),
        }
    }
}

/// A constraint the client did not meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConstraintFailure {
    /// `auth_methods`.
    AuthMethod {
        /// The method used.
        used: AuthMethod,
        /// The methods allowed.
        allowed: Vec<AuthMethod>,
    },
    /// `min_encryption`.
    Encryption {
        /// What protects the link.
        used: EncryptionUsed,
        /// The weakest level accepted.
        minimum: EncryptionLevel,
    },
    /// `max_sessions_per_user`.
    Sessions {
        /// The user's other sessions.
        existing: u32,
        /// The limit.
        max: u32,
    },
}

impl fmt::Display for ConstraintFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConstraintFailure::AuthMethod { used, allowed } => {
                let names: Vec<_> = allowed.iter().map(|m| m.name()).collect();
                write!(
                    f,
                    "auth_methods: the client authenticated with {used}, the policy allows {}",
                    names.join(", ")
                )
            }
            ConstraintFailure::Encryption { used, minimum } => write!(
                f,
                "min_encryption: the link has {used} (level {}), the policy requires at least {minimum}",
                used.level()
            ),
            ConstraintFailure::Sessions { existing, max } => write!(
                f,
                "max_sessions_per_user: the user already has {existing} session(s), the policy allows {max}"
            ),
        }
    }
}

/// A policy that did not match, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The policy.
    pub policy: PolicyRef,
    /// The first condition that failed.
    pub miss: ConditionMiss,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.policy, self.miss)
    }
}

/// The longest peer-supplied text kept in a reason: log lines stay short
/// whatever the peer sends.
const MAX_SHOWN: usize = 64;

/// Peer-supplied text for a log line: at most [`MAX_SHOWN`] characters,
/// quoted and escaped so that control characters cannot forge log lines.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(MAX_SHOWN).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Why a policy's conditions did not match. Peer-supplied values are kept
/// quoted and truncated (see the `Display` output).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionMiss {
    /// The policy is disabled.
    Disabled,
    /// `users`: the user is not listed.
    User {
        /// The user name, quoted.
        user: String,
    },
    /// `groups`: the user is in none of the groups.
    Group {
        /// The policy's groups.
        wanted: Vec<String>,
    },
    /// `radius_class`: no Class value matches.
    RadiusClass {
        /// The policy's Class values.
        wanted: Vec<String>,
    },
    /// `day_and_time`: now is outside every window.
    DayAndTime {
        /// Local time and zone, like `Sun 10:15 Europe/Berlin`.
        now: String,
        /// The windows as configured.
        windows: Vec<String>,
    },
    /// `day_and_time`: the caller's time is not a civil time (beyond year
    /// 9999); no window can hold.
    TimeOutOfRange,
    /// `tunnel_types`.
    TunnelType {
        /// The request's tunnel type.
        got: TunnelType,
    },
    /// `nas_port_types`.
    NasPortType {
        /// The request's NAS port type.
        got: NasPortType,
    },
    /// `calling_station_ids`.
    CallingStationId {
        /// The request's id, quoted; `None` when it had none.
        got: Option<String>,
    },
    /// `client_addresses`.
    ClientAddress {
        /// The request's client address.
        got: Option<IpAddr>,
    },
}

impl fmt::Display for ConditionMiss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionMiss::Disabled => f.write_str("disabled"),
            ConditionMiss::User { user } => write!(f, "users: {user} is not listed"),
            ConditionMiss::Group { wanted } => {
                write!(f, "groups: the user is in none of {}", wanted.join(", "))
            }
            ConditionMiss::RadiusClass { wanted } => write!(
                f,
                "radius_class: no RADIUS Class is one of {}",
                wanted.join(", ")
            ),
            ConditionMiss::DayAndTime { now, windows } => write!(
                f,
                "day_and_time: {now} is outside {}",
                windows
                    .iter()
                    .map(|w| format!("{w:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ConditionMiss::TimeOutOfRange => {
                f.write_str("day_and_time: the current time is beyond the calendar")
            }
            ConditionMiss::TunnelType { got } => {
                write!(f, "tunnel_types: {got} is not listed")
            }
            ConditionMiss::NasPortType { got } => {
                write!(f, "nas_port_types: {got} is not listed")
            }
            ConditionMiss::CallingStationId { got: Some(id) } => {
                write!(f, "calling_station_ids: {id} matches none")
            }
            ConditionMiss::CallingStationId { got: None } => {
                f.write_str("calling_station_ids: the request has no Calling-Station-Id")
            }
            ConditionMiss::ClientAddress { got: Some(a) } => {
                write!(f, "client_addresses: {a} is in none")
            }
            ConditionMiss::ClientAddress { got: None } => {
                f.write_str("client_addresses: the request has no client address")
            }
        }
    }
}

/// The answer before authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreAuth {
    /// Refuse now, without authenticating. (To avoid telling an attacker
    /// which user names a deny policy covers, a server may still run the
    /// authentication exchange and refuse after it, as RRAS does with
    /// MS-CHAP error 649, "no dial-in permission", RFC 2759 §6.)
    Refuse(Decision),
    /// A policy (or the `unmatched = "grant"` default) grants by its
    /// conditions: authenticate, offering only the decision's
    /// `auth_methods` if it has any, then call
    /// [`PolicySet::evaluate_after_auth`].
    Proceed(Decision),
    /// This policy's conditions can only be decided with the RADIUS Class:
    /// authenticate with whatever the server allows, then call
    /// [`PolicySet::evaluate_after_auth`].
    Undecided {
        /// The policy waiting for the Class.
        policy: PolicyRef,
    },
}

/// One compiled policy.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub(crate) reference: PolicyRef,
    pub(crate) access: Access,
    pub(crate) enabled: bool,
    pub(crate) conditions: Conditions,
    pub(crate) constraints: ConstraintsConfig,
}

/// Conditions compiled for matching: names folded to lower case, windows
/// merged into one week bitmap.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions {
    users: Option<Vec<String>>,
    groups: Option<(Vec<String>, Vec<String>)>,
    radius_class: Option<Vec<String>>,
    day_and_time: Option<(Vec<DayTimeWindow>, WeekMask)>,
    tunnel_types: Option<Vec<TunnelType>>,
    nas_port_types: Option<Vec<NasPortType>>,
    calling_station_ids: Option<Vec<CallingStationPattern>>,
    client_addresses: Option<Vec<AddressPattern>>,
}

impl Conditions {
    pub(crate) fn compile(c: &ConditionsConfig) -> Conditions {
        let fold = |v: &Vec<String>| v.iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        Conditions {
            users: c.users.as_ref().map(fold),
            groups: c.groups.as_ref().map(|g| (g.clone(), fold(g))),
            radius_class: c.radius_class.clone(),
            day_and_time: c
                .day_and_time
                .as_ref()
                .map(|w| (w.clone(), WeekMask::from_windows(w))),
            tunnel_types: c.tunnel_types.clone(),
            nas_port_types: c.nas_port_types.clone(),
            calling_station_ids: c.calling_station_ids.clone(),
            client_addresses: c.client_addresses.clone(),
        }
    }
}

/// The outcome of matching one policy's conditions.
enum Match {
    /// Every condition holds; one note per condition.
    Yes(Vec<String>),
    /// This condition failed.
    No(ConditionMiss),
    /// Only the RADIUS Class, not yet known, is left to decide.
    NeedsClass,
}

/// The ordered, compiled policies: what the server evaluates requests
/// against. Built by [`crate::validate()`] or [`PolicySet::new`].
///
/// With no `[[policy]]` configured the set holds one built-in policy that
/// grants every request without constraints, so that the server with no
/// configuration file admits its authenticated users as before; once any
/// `[[policy]]` is written, only the written ones count, and a request that
/// matches none is refused unless `[policies] unmatched = "grant"`.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub(crate) policies: Vec<Policy>,
    pub(crate) unmatched: Access,
    pub(crate) time_zone: TimeZoneSetting,
}

/// The name of the built-in policy.
pub const BUILTIN_POLICY_NAME: &str = "grant authenticated users (no [[policy]] configured)";

impl PolicySet {
    /// How many policies are in force (1 for the built-in one).
    pub fn len(&self) -> usize {
        self.policies.len()
    }

    /// Whether any policy limits a user's sessions
    /// (`max_sessions_per_user`): only then does a login need to count the
    /// user's other sessions.
    pub fn limits_sessions_per_user(&self) -> bool {
        self.policies
            .iter()
            .any(|p| p.constraints.max_sessions_per_user.is_some())
    }

    /// Always false: there is at least the built-in policy.
    pub fn is_empty(&self) -> bool {
        self.policies.is_empty()
    }

    /// The policies' names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.policies.iter().map(|p| p.reference.name.as_str())
    }

    /// Step 1: evaluate what is known before authentication. `request`'s
    /// `radius_class` is `None` while RADIUS has not answered.
    pub fn evaluate_before_auth(&self, request: &Request<'_>) -> PreAuth {
        let local = self.time_zone.local(request.time);
        let folded = Folded::of(request);
        let mut skipped = Vec::new();
        for policy in &self.policies {
            match self.match_policy(
                policy,
                request,
                &folded,
                local.as_ref(),
                request.radius_class,
            ) {
                Match::No(miss) => skipped.push(Skipped {
                    policy: policy.reference.clone(),
                    miss,
                }),
                Match::NeedsClass => {
                    return PreAuth::Undecided {
                        policy: policy.reference.clone(),
                    }
                }
                Match::Yes(notes) => {
                    let decision = self.conditions_decision(policy, notes, local.as_ref(), skipped);
                    return if decision.is_granted() {
                        PreAuth::Proceed(decision)
                    } else {
                        PreAuth::Refuse(decision)
                    };
                }
            }
        }
        let decision = self.unmatched_decision(skipped);
        if decision.is_granted() {
            PreAuth::Proceed(decision)
        } else {
            PreAuth::Refuse(decision)
        }
    }

    /// Step 2: evaluate everything, with the RADIUS Class now known (`None`
    /// is taken as "no Class"), then check the matched policy's constraints
    /// against what authentication and link negotiation produced.
    pub fn evaluate_after_auth(&self, request: &Request<'_>, auth: &Authenticated) -> Decision {
        let local = self.time_zone.local(request.time);
        let class = Some(request.radius_class.unwrap_or(&[]));
        let folded = Folded::of(request);
        let mut skipped = Vec::new();
        for policy in &self.policies {
            match self.match_policy(policy, request, &folded, local.as_ref(), class) {
                Match::No(miss) => skipped.push(Skipped {
                    policy: policy.reference.clone(),
                    miss,
                }),
                // Cannot happen with a known Class; treat as not matching
                // rather than trusting that.
                Match::NeedsClass => skipped.push(Skipped {
                    policy: policy.reference.clone(),
                    miss: ConditionMiss::RadiusClass { wanted: Vec::new() },
                }),
                Match::Yes(notes) => {
                    let mut decision =
                        self.conditions_decision(policy, notes, local.as_ref(), skipped);
                    if let Outcome::Grant(grant) = &decision.outcome {
                        if let Err(failure) = check_constraints(grant, auth) {
                            decision.outcome = Outcome::Deny(DenyReason::Constraint(failure));
                        }
                    }
                    return decision;
                }
            }
        }
        self.unmatched_decision(skipped)
    }

    fn unmatched_decision(&self, skipped: Vec<Skipped>) -> Decision {
        Decision {
            policy: None,
            outcome: match self.unmatched {
                Access::Grant => Outcome::Grant(Grant::default()),
                Access::Deny => Outcome::Deny(DenyReason::NoPolicyMatched),
            },
            skipped,
        }
    }

    /// The decision of a policy whose conditions matched, before its
    /// constraints are checked.
    fn conditions_decision(
        &self,
        policy: &Policy,
        matched: Vec<String>,
        local: Option<&LocalTime>,
        skipped: Vec<Skipped>,
    ) -> Decision {
        let outcome = match policy.access {
            Access::Deny => Outcome::Deny(DenyReason::DenyPolicy { matched }),
            Access::Grant => {
                let c = &policy.constraints;
                let configured = c.session_timeout_secs.map(|s| s.duration());
                // A session granted inside a day-and-time window ends when
                // the window closes: otherwise a connection made at 17:59
                // under "Mon-Fri 08:00-18:00" would run all night.
                let window_left = match (&policy.conditions.day_and_time, local) {
                    (Some((_, mask)), Some(local)) => local.time_left_in(mask),
                    _ => None,
                };
                let session_timeout = match (configured, window_left) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                Outcome::Grant(Grant {
                    auth_methods: c.auth_methods.clone(),
                    min_encryption: c.min_encryption.unwrap_or(EncryptionLevel::None),
                    idle_timeout: c.idle_timeout_secs.map(|s| s.duration()),
                    session_timeout,
                    static_address: c.static_address,
                    // A static address can serve one session only.
                    max_sessions_per_user: c
                        .max_sessions_per_user
                        .map(|m| m.get())
                        .or(c.static_address.map(|_| 1)),
                })
            }
        };
        Decision {
            policy: Some(policy.reference.clone()),
            outcome,
            skipped,
        }
    }

    /// Matches one policy's conditions, in a fixed order (the first
    /// failure is the one reported). `class` is `None` when the RADIUS
    /// Class is not known yet.
    fn match_policy(
        &self,
        policy: &Policy,
        r: &Request<'_>,
        folded: &Folded,
        local: Option<&LocalTime>,
        class: Option<&[Vec<u8>]>,
    ) -> Match {
        if !policy.enabled {
            return Match::No(ConditionMiss::Disabled);
        }
        let c = &policy.conditions;
        // Only a deny policy's log line lists what matched: a granting
        // one's notes would be formatted for nothing.
        let mut notes = Notes(Vec::new(), policy.access == Access::Deny);
        if let Some(users) = &c.users {
            if !users.contains(&folded.user) {
                return Match::No(ConditionMiss::User {
                    user: shown(r.user_name),
                });
            }
            notes.add(|| format!("user {}", shown(r.user_name)));
        }
        if let Some((wanted, wanted_folded)) = &c.groups {
            let hit = r
                .groups
                .iter()
                .zip(&folded.groups)
                .find(|(_, g)| wanted_folded.contains(g));
            match hit {
                Some((g, _)) => notes.add(|| format!("group {}", shown(g))),
                None => {
                    return Match::No(ConditionMiss::Group {
                        wanted: wanted.iter().map(|g| format!("{g:?}")).collect(),
                    })
                }
            }
        }
        if let Some((windows, mask)) = &c.day_and_time {
            let Some(local) = local else {
                return Match::No(ConditionMiss::TimeOutOfRange);
            };
            let now = || format!("{local} {}", self.time_zone.name());
            if !mask.contains(local.minute_of_week()) {
                return Match::No(ConditionMiss::DayAndTime {
                    now: now(),
                    windows: windows.iter().map(|w| w.to_string()).collect(),
                });
            }
            notes.add(|| format!("day_and_time {}", now()));
        }
        if let Some(types) = &c.tunnel_types {
            if !types.contains(&r.tunnel_type) {
                return Match::No(ConditionMiss::TunnelType { got: r.tunnel_type });
            }
            notes.add(|| format!("tunnel {}", r.tunnel_type));
        }
        if let Some(types) = &c.nas_port_types {
            if !types.contains(&r.nas_port_type) {
                return Match::No(ConditionMiss::NasPortType {
                    got: r.nas_port_type,
                });
            }
            notes.add(|| format!("port type {}", r.nas_port_type));
        }
        if let Some(patterns) = &c.calling_station_ids {
            match r.calling_station_id {
                Some(id) if patterns.iter().any(|p| p.matches(id)) => {
                    notes.add(|| format!("calling station {}", shown(id)));
                }
                id => return Match::No(ConditionMiss::CallingStationId { got: id.map(shown) }),
            }
        }
        if let Some(prefixes) = &c.client_addresses {
            match r.client_address {
                Some(a) if prefixes.iter().any(|p| p.contains(a)) => {
                    notes.add(|| format!("client address {a}"));
                }
                got => return Match::No(ConditionMiss::ClientAddress { got }),
            }
        }
        // Last, so that a request any other condition refuses is decided
        // before authentication even when RADIUS Class is involved.
        if let Some(wanted) = &c.radius_class {
            let Some(class) = class else {
                return Match::NeedsClass;
            };
            let hit = class
                .iter()
                .find(|v| wanted.iter().any(|w| w.as_bytes() == v.as_slice()));
            match hit {
                Some(v) => {
                    notes.add(|| format!("RADIUS Class {}", shown(&String::from_utf8_lossy(v))))
                }
                None => {
                    return Match::No(ConditionMiss::RadiusClass {
                        wanted: wanted.iter().map(|w| format!("{w:?}")).collect(),
                    })
                }
            }
        }
        Match::Yes(notes.0)
    }
}

/// The request's names folded to lower case once per evaluation, not once
/// per policy.
struct Folded {
    user: String,
    groups: Vec<String>,
}

impl Folded {
    fn of(r: &Request<'_>) -> Folded {
        Folded {
            user: r.user_name.to_lowercase(),
            groups: r.groups.iter().map(|g| g.to_lowercase()).collect(),
        }
    }
}

/// The notes of matched conditions, kept only when wanted (`.1`).
struct Notes(Vec<String>, bool);

impl Notes {
    fn add(&mut self, note: impl FnOnce() -> String) {
        if self.1 {
            self.0.push(note());
        }
    }
}

/// Checks a grant's constraints against what authentication and link
/// negotiation produced, in the order: method, encryption, sessions.
pub fn check_constraints(grant: &Grant, auth: &Authenticated) -> Result<(), ConstraintFailure> {
    if let Some(allowed) = &grant.auth_methods {
        if !allowed.contains(&auth.method) {
            return Err(ConstraintFailure::AuthMethod {
                used: auth.method,
                allowed: allowed.clone(),
            });
        }
    }
    if auth.encryption.level() < grant.min_encryption {
        return Err(ConstraintFailure::Encryption {
            used: auth.encryption,
            minimum: grant.min_encryption,
        });
    }
    if let Some(max) = grant.max_sessions_per_user {
        if auth.sessions_of_user >= max {
            return Err(ConstraintFailure::Sessions {
                existing: auth.sessions_of_user,
                max,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_text_is_quoted_and_bounded() {
        assert_eq!(shown("alice"), "\"alice\"");
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        let long = "x".repeat(1000);
        let s = shown(&long);
        assert!(s.chars().count() <= MAX_SHOWN + 3, "{s}");
        assert!(s.contains('…'));
    }
}
