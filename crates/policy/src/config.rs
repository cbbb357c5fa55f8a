//! The configuration types: `[policies]` (settings for all) and the
//! ordered `[[policy]]` array of tables, deserialized with serde from the
//! server's TOML file.
//!
//! Checks on one value (a day name, a prefix, a time zone, a number out of
//! range) run inside the value's `Deserialize`, so the `toml` error carries
//! the value's span and the server names its line and key. Checks across
//! values (an empty list, a deny policy with constraints, a static address
//! for more than one user, duplicate names) run afterwards in
//! [`crate::validate()`].

use std::net::Ipv4Addr;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::address::{AddressPattern, CallingStationPattern};
use crate::day_time::{DayTimeWindow, TimeZoneSetting};
use crate::names::{AuthMethod, EncryptionLevel, NasPortType, TunnelType};
use crate::serde_util::u32_in;

/// Grant or deny: a policy's `access`, and `[policies] unmatched`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Let the client in (subject to the policy's constraints).
    Grant,
    /// Refuse the client.
    Deny,
}

impl Access {
    /// The name used in the configuration file.
    pub fn name(self) -> &'static str {
        match self {
            Access::Grant => "grant",
            Access::Deny => "deny",
        }
    }
}

/// `[policies]`: settings that apply to every policy.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoliciesSettings {
    /// What happens when `[[policy]]` entries exist but none matches.
    /// Default `"deny"`, as NPS rejects a request that matches no network
    /// policy. (With no `[[policy]]` at all a built-in policy grants every
    /// authenticated user, so a server without a configuration file lets
    /// its users in; see [`crate::PolicySet`].)
    pub unmatched: Access,
    /// The time zone of day-and-time windows: `"UTC"` (default), a fixed
    /// offset like `"+01:00"`, or an IANA name like `"Europe/Berlin"`.
    pub time_zone: TimeZoneSetting,
}

impl Default for PoliciesSettings {
    fn default() -> Self {
        PoliciesSettings {
            unmatched: Access::Deny,
            time_zone: TimeZoneSetting::default(),
        }
    }
}

/// One `[[policy]]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// A unique name, used in log lines.
    pub name: String,
    /// `"grant"` or `"deny"` when the conditions match.
    pub access: Access,
    /// A disabled policy is skipped, as in the NPS console. Default true.
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    /// All present conditions must hold (AND); within one condition's list,
    /// any entry may match (OR). No conditions: the policy matches every
    /// request.
    #[serde(default)]
    pub conditions: ConditionsConfig,
    /// Checked when the policy grants; a failed constraint refuses the
    /// client (NPS does not fall through to the next policy).
    #[serde(default)]
    pub constraints: ConstraintsConfig,
}

fn enabled_by_default() -> bool {
    true
}

/// `[policy.conditions]`. Every key is optional; an absent key does not
/// restrict, an empty list is an error (it would match nobody).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConditionsConfig {
    /// User names, compared without regard to case (as the local store
    /// and Windows do).
    pub users: Option<Vec<String>>,
    /// Groups of the local user store, without regard to case.
    pub groups: Option<Vec<String>>,
    /// RADIUS Class attribute values (RFC 2865 §5.25) from the
    /// Access-Accept, compared byte for byte.
    pub radius_class: Option<Vec<String>>,
    /// Day-and-time windows, like `"Mon-Fri 08:00-18:00"`.
    pub day_and_time: Option<Vec<DayTimeWindow>>,
    /// `"sstp"`, `"pptp"`, `"l2tp"`, `"ikev2"`, `"dialup"`.
    pub tunnel_types: Option<Vec<TunnelType>>,
    /// RFC 2865 §5.41 NAS-Port-Type names: `"virtual"`, `"async"`, ...
    pub nas_port_types: Option<Vec<NasPortType>>,
    /// Calling-Station-Id values, exact or a prefix ending in `*`.
    pub calling_station_ids: Option<Vec<CallingStationPattern>>,
    /// Client (outer) addresses or prefixes, `"192.0.2.0/24"`.
    pub client_addresses: Option<Vec<AddressPattern>>,
}

impl ConditionsConfig {
    /// Whether no condition is present (the policy matches everything).
    pub fn is_empty(&self) -> bool {
        *self == ConditionsConfig::default()
    }
}

/// `[policy.constraints]`. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConstraintsConfig {
    /// Authentication methods the client may have used.
    pub auth_methods: Option<Vec<AuthMethod>>,
    /// The weakest encryption accepted: `"none"`, `"basic"`, `"strong"`,
    /// `"strongest"` (see [`EncryptionLevel`] for what each means per
    /// tunnel type).
    pub min_encryption: Option<EncryptionLevel>,
    /// Disconnect after this many seconds without traffic (RADIUS
    /// Idle-Timeout, RFC 2865 §5.28).
    pub idle_timeout_secs: Option<Seconds>,
    /// Disconnect after this many seconds (RADIUS Session-Timeout, RFC
    /// 2865 §5.27). When the policy has day-and-time windows, the session
    /// also ends when the window closes.
    pub session_timeout_secs: Option<Seconds>,
    /// This IPv4 address for the client instead of one from the pool
    /// (RADIUS Framed-IP-Address). Only for a policy naming one user.
    pub static_address: Option<Ipv4Addr>,
    /// The most sessions one user may have at once, this one included.
    pub max_sessions_per_user: Option<MaxSessions>,
}

impl ConstraintsConfig {
    /// Whether no constraint is present.
    pub fn is_empty(&self) -> bool {
        *self == ConstraintsConfig::default()
    }
}

/// A timeout in seconds, at least 1 (leave the key out for none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Seconds(u32);

impl Seconds {
    /// `n` seconds, if `n >= 1`.
    pub fn new(n: u32) -> Option<Seconds> {
        (n >= 1).then_some(Seconds(n))
    }

    /// The number of seconds.
    pub fn get(self) -> u32 {
        self.0
    }

    /// As a duration.
    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0.into())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // RFC 2865 §5.27/§5.28: the RADIUS timeouts are 32-bit seconds.
        u32_in(d, 1, u32::MAX).map(Seconds)
    }
}

/// A session limit, 1 to [`MaxSessions::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MaxSessions(u32);

impl MaxSessions {
    /// A bound that catches typos without limiting real deployments.
    pub const MAX: u32 = 1_000_000;

    /// A limit, if `n` is in `1..=MAX`.
    pub fn new(n: u32) -> Option<MaxSessions> {
        (1..=Self::MAX).contains(&n).then_some(MaxSessions(n))
    }

    /// The limit.
    pub fn get(self) -> u32 {
        self.0
    }
}

impl<'de> Deserialize<'de> for MaxSessions {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        u32_in(d, 1, Self::MAX).map(MaxSessions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Doc {
        #[serde(default)]
        policies: PoliciesSettings,
        #[serde(default)]
        policy: Vec<PolicyConfig>,
    }

    #[test]
    fn a_full_policy_parses() {
        let doc: Doc = toml::from_str(
            r#"
[policies]
unmatched = "grant"
time_zone = "Europe/Berlin"

[[policy]]
name = "Staff"
access = "grant"
[policy.conditions]
users = ["alice"]
groups = ["vpn"]
radius_class = ["staff"]
day_and_time = ["Mon-Fri 08:00-18:00"]
tunnel_types = ["sstp", "pptp"]
nas_port_types = ["virtual"]
calling_station_ids = ["192.0.2.*"]
client_addresses = ["192.0.2.0/24"]
[policy.constraints]
auth_methods = ["mschapv2", "eap-mschapv2"]
min_encryption = "strongest"
idle_timeout_secs = 900
session_timeout_secs = 28800
static_address = "10.0.10.50"
max_sessions_per_user = 1

[[policy]]
name = "Everyone else"
access = "deny"
enabled = false
"#,
        )
        .unwrap();
        assert_eq!(doc.policies.unmatched, Access::Grant);
        assert_eq!(doc.policies.time_zone.name(), "Europe/Berlin");
        assert_eq!(doc.policy.len(), 2);
        let p = &doc.policy[0];
        assert!(p.enabled);
        assert_eq!(p.conditions.tunnel_types.as_ref().unwrap().len(), 2);
        assert_eq!(p.constraints.idle_timeout_secs, Seconds::new(900));
        assert_eq!(
            p.constraints.static_address,
            Some(Ipv4Addr::new(10, 0, 10, 50))
        );
        assert!(!doc.policy[1].enabled);
        assert!(doc.policy[1].conditions.is_empty());
        assert!(doc.policy[1].constraints.is_empty());
    }

    #[test]
    fn value_errors_carry_the_value_span() {
        // The span lets the server name line and key; check it points at
        // the value, on the right line.
        for (text, line, needle) in [
            (
                "[[policy]]\nname = \"a\"\naccess = \"grant\"\n[policy.conditions]\nday_and_time = [\"Mon-Fry\"]\n",
                5,
                "not a day",
            ),
            (
                "[[policy]]\nname = \"a\"\naccess = \"maybe\"\n",
                3,
                "unknown variant",
            ),
            (
                "[[policy]]\nname = \"a\"\naccess = \"grant\"\n[policy.constraints]\nidle_timeout_secs = 0\n",
                5,
                "between 1 and",
            ),
            (
                "[[policy]]\nname = \"a\"\naccess = \"grant\"\n[policy.constraints]\nmax_sessions_per_user = 2000000\n",
                5,
                "between 1 and 1000000",
            ),
            (
                "[[policy]]\nname = \"a\"\naccess = \"grant\"\n[policy.conditions]\nclient_addresses = [\"10.0.0.1/8\"]\n",
                5,
                "host bits",
            ),
            ("[policies]\n\ntime_zone = \"Mars/Olympus\"\n", 3, "not a time zone"),
            (
                "[[policy]]\nname = \"a\"\naccess = \"grant\"\n[policy.conditions]\nuser = [\"x\"]\n",
                5,
                "unknown field",
            ),
        ] {
            let e = toml::from_str::<Doc>(text).unwrap_err();
            let span = e.span().expect("span");
            let at_line = text[..span.start].matches('\n').count() + 1;
            assert_eq!(at_line, line, "{text}: {e}");
            assert!(e.message().contains(needle), "{text}: {e}");
        }
    }
}
