//! The Connection Manager command-line macros (seed: "Connection Manager
//! command-line macros"), expanded in custom-action programs and
//! parameters.
//!
//! Names are matched without regard to case (`%SERVICEDIR%` in the
//! Windows sample is `%ServiceDir%` of the table). A macro of the table
//! with no value expands to the string `NULL`, as the seed says CM passes
//! "for all undefined parameters". A `%NAME%` that is not a macro is an
//! environment variable when one is set (CMAK allows `%SystemRoot%` in
//! programs), and is left as written otherwise.

use std::collections::BTreeMap;

/// Every macro of the seed's table, in its order.
pub const MACROS: [&str; 22] = [
    "ServiceName",
    "UserPrefix",
    "UserSuffix",
    "UserName",
    "Profile",
    "ServiceDir",
    "Domain",
    "InetUserName",
    "ConnectionType",
    "DialRasPhoneBook",
    "TunnelRasPhoneBook",
    "DialRasEntry",
    "TunnelRasEntry",
    "AutoRedial",
    "PopName",
    "ErrorCode",
    "LastErrorSource",
    "CurrentFavorite",
    "TunnelServerAddress",
    "ClientIPAddress",
    "ServerIPAddress",
    "Interactive",
];

/// Spellings seen elsewhere (CM-FORMATS §5) for macros of the table.
const ALIASES: [(&str, &str); 2] = [
    ("LastErrorSrc", "LastErrorSource"),
    ("ServerAddress", "ServerIPAddress"),
];

/// What the macros stand for at one moment of a connection.
#[derive(Debug, Clone, Default)]
pub struct MacroValues {
    values: BTreeMap<&'static str, String>,
}

impl MacroValues {
    /// Set a macro of the table. Panics on a name that is not one: a
    /// programming error, caught by the tests.
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        let key = canonical(name).unwrap_or_else(|| panic!("{name} is not a CM macro"));
        self.values.insert(key, value.into());
    }

    /// Make a macro undefined again (it expands to `NULL`).
    pub fn clear(&mut self, name: &str) {
        if let Some(key) = canonical(name) {
            self.values.remove(key);
        }
    }

    /// The value of a macro of the table, if defined.
    pub fn get(&self, name: &str) -> Option<&str> {
        canonical(name).and_then(|k| self.values.get(k).map(String::as_str))
    }

    /// `text` with every `%Name%` replaced.
    pub fn expand(&self, text: &str) -> String {
        self.expand_with(text, &|name| std::env::var(name).ok())
    }

    /// [`expand`](Self::expand) with `env` standing for the environment.
    pub fn expand_with(&self, text: &str, env: &dyn Fn(&str) -> Option<String>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find('%') {
            out.push_str(&rest[..start]);
            let after = &rest[start + 1..];
            let Some(len) = after.find('%') else {
                out.push_str(&rest[start..]);
                return out;
            };
            let name = &after[..len];
            let valid = !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '(' || c == ')');
            if !valid {
                // Not a macro: keep the first '%' and look again from the
                // second (it may open one).
                out.push('%');
                rest = after;
                continue;
            }
            match canonical(name) {
                Some(key) => out.push_str(self.values.get(key).map_or("NULL", String::as_str)),
                None => match env(name) {
                    Some(v) => out.push_str(&v),
                    None => {
                        out.push('%');
                        out.push_str(name);
                        out.push('%');
                    }
                },
            }
            rest = &after[len + 1..];
        }
        out.push_str(rest);
        out
    }
}

/// The table's spelling of `name`, if it is a macro.
fn canonical(name: &str) -> Option<&'static str> {
    MACROS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(name))
        .copied()
        .or_else(|| {
            ALIASES
                .iter()
                .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
                .map(|(_, m)| *m)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn every_macro_of_the_table_expands() {
        let mut v = MacroValues::default();
        for (i, m) in MACROS.iter().enumerate() {
            v.set(m, format!("v{i}"));
        }
        for (i, m) in MACROS.iter().enumerate() {
            assert_eq!(
                v.expand_with(&format!("<%{m}%>"), &no_env),
                format!("<v{i}>")
            );
            let upper = m.to_ascii_uppercase();
            assert_eq!(
                v.expand_with(&format!("%{upper}%"), &no_env),
                format!("v{i}")
            );
        }
    }

    #[test]
    fn undefined_macros_are_null_and_others_stay() {
        let mut v = MacroValues::default();
        v.set("ServiceName", "Contoso VPN");
        let text = "%ServiceName% %ErrorCode% %NotAMacro% 100% done %";
        assert_eq!(
            v.expand_with(text, &no_env),
            "Contoso VPN NULL %NotAMacro% 100% done %"
        );
        let env = |n: &str| (n == "SystemRoot").then(|| "/win".to_string());
        assert_eq!(v.expand_with("%SystemRoot%\\x", &env), "/win\\x");
        assert_eq!(v.expand_with("%LASTERRORSRC%", &no_env), "NULL");
        v.set("LastErrorSource", "tunnel");
        assert_eq!(v.expand_with("%LastErrorSrc%", &no_env), "tunnel");
        v.clear("LastErrorSource");
        assert_eq!(v.get("LastErrorSource"), None);
    }

    #[test]
    fn a_value_is_not_expanded_again() {
        let mut v = MacroValues::default();
        v.set("UserName", "%ServiceName%");
        v.set("ServiceName", "x");
        assert_eq!(v.expand_with("%UserName%", &no_env), "%ServiceName%");
    }
}
