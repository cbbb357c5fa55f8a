//! Remote access policies, as RRAS and NPS have them: an ordered list of
//! policies, each with conditions (user, local group or RADIUS Class, day
//! and time, tunnel type, NAS port type, Calling-Station-Id, client
//! address), an access permission (grant or deny) and constraints (allowed
//! authentication methods, minimum encryption, idle and session timeouts,
//! static address, sessions per user). The first policy whose conditions
//! all hold decides; if it grants, its constraints must hold too, or the
//! client is refused (NPS does not fall through to the next policy). No
//! policy matching refuses the client, as NPS does, unless configured
//! otherwise.
//!
//! Pure logic: no IO and no clock. The caller passes the time, the facts
//! of the connection, and after authentication what the link negotiated;
//! see [`PolicySet::evaluate_before_auth`] and
//! [`PolicySet::evaluate_after_auth`]. The configuration format is in
//! `docs/POLICIES.md`.
//!
//! ```
//! use std::time::SystemTime;
//! use policy::{parse_document, NasPortType, PreAuth, Request, TunnelType};
//!
//! let set = parse_document(
//!     r#"
//! [[policy]]
//! name = "No PPTP"
//! access = "deny"
//! [policy.conditions]
//! tunnel_types = ["pptp"]
//! "#,
//! )
//! .unwrap();
//! let request = Request::new("alice", TunnelType::Pptp, NasPortType::Virtual, SystemTime::now());
//! match set.evaluate_before_auth(&request) {
//!     PreAuth::Refuse(decision) => assert_eq!(
//!         decision.to_string(),
//!         "policy[0] \"No PPTP\" refused access: it is a deny policy and its conditions matched (tunnel pptp)"
//!     ),
//!     other => panic!("{other:?}"),
//! }
//! ```

mod address;
mod config;
mod day_time;
mod document;
mod evaluate;
mod names;
mod serde_util;
mod validate;

pub use address::{AddressPattern, CallingStationPattern};
pub use config::{
    Access, ConditionsConfig, ConstraintsConfig, MaxSessions, PoliciesSettings, PolicyConfig,
    Seconds,
};
pub use day_time::{DayTimeWindow, TimeZoneSetting};
pub use document::{parse_document, DocumentError};
pub use evaluate::{
    check_constraints, Authenticated, ConditionMiss, ConstraintFailure, Decision, DenyReason,
    Grant, Outcome, PolicyRef, PolicySet, PreAuth, Request, Skipped, BUILTIN_POLICY_NAME,
};
pub use names::{
    AuthMethod, EncryptionLevel, EncryptionUsed, IpsecCipher, NasPortType, TunnelType,
};
pub use validate::{validate, PolicyConfigError, MAX_NAME_LEN};
