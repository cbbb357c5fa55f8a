//! Checks across values of the `[[policy]]` array, and compiling it into a
//! [`PolicySet`].
//!
//! Errors name the policy (its index in the array and its name) and the
//! field, as a dotted key in the style of the server's configuration errors
//! (`policy[1].constraints.static_address`), and, when the TOML text is at
//! hand, the line and column of that key's value.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::ops::Range;

use crate::config::{Access, PoliciesSettings, PolicyConfig};
use crate::evaluate::{Conditions, Policy, PolicyRef, PolicySet, BUILTIN_POLICY_NAME};

/// The longest policy name: it goes into every log line.
pub const MAX_NAME_LEN: usize = 128;
/// The longest user or group name (the local store's own limit is lower).
const MAX_ENTRY_LEN: usize = 256;
/// RFC 2865 §5: an attribute value (a Class) is at most 253 octets.
const MAX_CLASS_LEN: usize = 253;

/// A `[[policy]]` entry that is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}key `{key}`: {}", position(*line, *column), self.message_naming_policy())]
pub struct PolicyConfigError {
    /// The policy's index in the `[[policy]]` array, from 0.
    pub index: usize,
    /// The policy's name (as written; may be the empty name at fault).
    pub name: String,
    /// The dotted key of the offending value, from the document root:
    /// `policy[1].conditions.users[0]`.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// 1-based line of the value, when the text was given.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the value.
    pub column: Option<usize>,
}

fn position(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{l}:{c}: "),
        _ => String::new(),
    }
}

impl PolicyConfigError {
    /// The message prefixed with the policy's name, for a caller that
    /// prints the key and position itself (the server's `ConfigError`).
    pub fn message_naming_policy(&self) -> String {
        format!("policy {:?}: {}", self.name, self.message)
    }
}

/// Checks `policies` against each other and compiles them; with `text`,
/// the TOML document they were read from, errors carry line and column.
/// This is what the server's configuration loader calls after
/// deserializing.
pub fn validate(
    settings: &PoliciesSettings,
    policies: &[PolicyConfig],
    text: &str,
) -> Result<PolicySet, PolicyConfigError> {
    PolicySet::new(settings, policies).map_err(|mut e| {
        if let Some(span) = find_span(text, &e.key) {
            let (line, column) = line_col(text, span.start);
            e.line = Some(line);
            e.column = Some(column);
        }
        e
    })
}

impl PolicySet {
    /// Checks and compiles `policies` (errors carry no line; see
    /// [`validate()`]). An empty list gives the built-in granting policy.
    pub fn new(
        settings: &PoliciesSettings,
        policies: &[PolicyConfig],
    ) -> Result<PolicySet, PolicyConfigError> {
        check(policies)?;
        let compiled = if policies.is_empty() {
            vec![Policy {
                reference: PolicyRef {
                    index: 0,
                    name: BUILTIN_POLICY_NAME.to_owned(),
                    builtin: true,
                },
                access: Access::Grant,
                enabled: true,
                conditions: Conditions::default(),
                constraints: Default::default(),
            }]
        } else {
            policies
                .iter()
                .enumerate()
                .map(|(index, p)| Policy {
                    reference: PolicyRef {
                        index,
                        name: p.name.clone(),
                        builtin: false,
                    },
                    access: p.access,
                    enabled: p.enabled,
                    conditions: Conditions::compile(&p.conditions),
                    constraints: p.constraints.clone(),
                })
                .collect()
        };
        Ok(PolicySet {
            policies: compiled,
            unmatched: settings.unmatched,
            time_zone: settings.time_zone.clone(),
        })
    }
}

fn check(policies: &[PolicyConfig]) -> Result<(), PolicyConfigError> {
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut static_addresses: HashMap<Ipv4Addr, (usize, String)> = HashMap::new();
    let mut catch_all: Option<usize> = None;
    for (index, p) in policies.iter().enumerate() {
        let fail = |field: &str, message: String| PolicyConfigError {
            index,
            name: p.name.clone(),
            key: if field.is_empty() {
                format!("policy[{index}]")
            } else {
                format!("policy[{index}].{field}")
            },
            message,
            line: None,
            column: None,
        };

        if p.name.trim().is_empty() {
            return Err(fail(
                "name",
                "a policy needs a name (log lines use it)".into(),
            ));
        }
        if p.name.chars().count() > MAX_NAME_LEN {
            return Err(fail(
                "name",
                format!("a policy name is at most {MAX_NAME_LEN} characters"),
            ));
        }
        if p.name.chars().any(char::is_control) {
            return Err(fail(
                "name",
                "a policy name has no control characters".into(),
            ));
        }
        if let Some(first) = names.insert(p.name.to_lowercase(), index) {
            return Err(fail(
                "name",
                format!("policy[{first}] has the same name; names must be unique"),
            ));
        }
        if let Some(earlier) = catch_all {
            return Err(fail(
                "",
                format!(
                    "this policy can never match: policy[{earlier}] {:?} before it has no conditions and matches every request",
                    policies[earlier].name
                ),
            ));
        }

        let c = &p.conditions;
        let lists: [(&str, Option<usize>); 8] = [
            ("users", c.users.as_ref().map(Vec::len)),
            ("groups", c.groups.as_ref().map(Vec::len)),
            ("radius_class", c.radius_class.as_ref().map(Vec::len)),
            ("day_and_time", c.day_and_time.as_ref().map(Vec::len)),
            ("tunnel_types", c.tunnel_types.as_ref().map(Vec::len)),
            ("nas_port_types", c.nas_port_types.as_ref().map(Vec::len)),
            (
                "calling_station_ids",
                c.calling_station_ids.as_ref().map(Vec::len),
            ),
            (
                "client_addresses",
                c.client_addresses.as_ref().map(Vec::len),
            ),
        ];
        for (field, len) in lists {
            if len == Some(0) {
                return Err(fail(
                    &format!("conditions.{field}"),
                    "an empty list matches no request; leave the key out to match any".into(),
                ));
            }
        }
        for (field, entries, max) in [
            ("users", &c.users, MAX_ENTRY_LEN),
            ("groups", &c.groups, MAX_ENTRY_LEN),
            ("radius_class", &c.radius_class, MAX_CLASS_LEN),
        ] {
            for (i, e) in entries.iter().flatten().enumerate() {
                if e.is_empty() || e.len() > max || e.chars().any(char::is_control) {
                    return Err(fail(
                        &format!("conditions.{field}[{i}]"),
                        format!(
                            "{e:?} is not a valid entry (1 to {max} bytes, no control characters)"
                        ),
                    ));
                }
            }
        }
        if let Some(windows) = &c.day_and_time {
            if crate::day_time::WeekMask::from_windows(windows).is_empty() {
                return Err(fail(
                    "conditions.day_and_time",
                    "the windows cover no minute of the week".into(),
                ));
            }
        }

        let k = &p.constraints;
        if p.access == Access::Deny && !k.is_empty() {
            return Err(fail(
                "constraints",
                "a deny policy grants nothing, so its constraints would never apply; remove them or set access = \"grant\"".into(),
            ));
        }
        if let Some(methods) = &k.auth_methods {
            if methods.is_empty() {
                return Err(fail(
                    "constraints.auth_methods",
                    "an empty list refuses every client; leave the key out to allow any method"
                        .into(),
                ));
            }
        }
        if let Some(addr) = k.static_address {
            let users = c.users.as_deref().unwrap_or_default();
            if users.len() != 1 {
                return Err(fail(
                    "constraints.static_address",
                    "a static address belongs to one user: the policy needs conditions.users with exactly one name".into(),
                ));
            }
            if addr.is_unspecified()
                || addr.is_loopback()
                || addr.is_multicast()
                || addr.is_broadcast()
            {
                return Err(fail(
                    "constraints.static_address",
                    format!("{addr} cannot be a client's address"),
                ));
            }
            if let Some(max) = k.max_sessions_per_user {
                if max.get() > 1 {
                    return Err(fail(
                        "constraints.max_sessions_per_user",
                        "with a static address a user can have one session only".into(),
                    ));
                }
            }
            let user = users[0].to_lowercase();
            if let Some((other, other_user)) = static_addresses.get(&addr) {
                if *other_user != user {
                    return Err(fail(
                        "constraints.static_address",
                        format!("{addr} is already the static address of another user in policy[{other}]"),
                    ));
                }
            }
            static_addresses.insert(addr, (index, user));
        }

        if p.enabled && c.is_empty() {
            catch_all = Some(index);
        }
    }
    Ok(())
}

/// 1-based line and column (in characters) of byte offset `pos`.
pub(crate) fn line_col(text: &str, pos: usize) -> (usize, usize) {
    let pos = pos.min(text.len());
    let before = text.get(..pos).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The span of the value at dotted `key` (`policy[1].conditions.users[0]`),
/// or of the deepest part of it that the text has (a key left out, like
/// `constraints` of a policy without constraints, gives the policy's
/// table).
fn find_span(text: &str, key: &str) -> Option<Range<usize>> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut span = None;
    let mut value: Option<&toml::de::DeValue<'_>> = None;
    for part in key.split('.') {
        let (name, indices) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        let table = match value {
            None => doc.get_ref(),
            Some(v) => match v.as_table() {
                Some(t) => t,
                None => return span,
            },
        };
        let Some((_, v)) = table.iter().find(|(k, _)| k.get_ref() == name) else {
            return span;
        };
        span = Some(v.span());
        let mut current = v;
        for index in indices
            .split(['[', ']'])
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse::<usize>().ok())
        {
            let Some(item) = current.get_ref().as_array().and_then(|a| a.get(index)) else {
                return span;
            };
            span = Some(item.span());
            current = item;
        }
        value = Some(current.get_ref());
    }
    span
}
