//! Shared helpers: a policy document parsed the way the server's
//! configuration will hold it (`[policies]` and `[[policy]]` at the top
//! level), and instants written as RFC 3339 text.

#![allow(dead_code)]

use std::time::SystemTime;

use policy::{validate, PoliciesSettings, PolicyConfig, PolicyConfigError, PolicySet};

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Document {
    #[serde(default)]
    pub policies: PoliciesSettings,
    #[serde(default)]
    pub policy: Vec<PolicyConfig>,
}

/// Parses and validates `text`, panicking on a parse error.
pub fn try_set(text: &str) -> Result<PolicySet, PolicyConfigError> {
    let doc: Document = toml::from_str(text).unwrap_or_else(|e| panic!("{text}\n{e}"));
    validate(&doc.policies, &doc.policy, text)
}

/// Parses and validates `text`, panicking on any error.
pub fn set(text: &str) -> PolicySet {
    try_set(text).unwrap_or_else(|e| panic!("{text}\n{e}"))
}

/// An RFC 3339 instant.
pub fn at(rfc3339: &str) -> SystemTime {
    let ts: jiff::Timestamp = rfc3339.parse().unwrap();
    SystemTime::from(ts)
}
