//! A standalone policy document: `[policies]` and `[[policy]]` at the top
//! level and nothing else. The server reads the same two keys as part of
//! its own file; this is for tools, tests and the fuzz target.

use serde::Deserialize;

use crate::config::{PoliciesSettings, PolicyConfig};
use crate::evaluate::PolicySet;
use crate::validate::{line_col, validate, PolicyConfigError};

/// Why a policy document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    /// Not TOML, or a value of the wrong type or out of range.
    #[error("{line}:{column}: {message}")]
    Toml {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What `toml` said.
        message: String,
    },
    /// A check across values failed.
    #[error(transparent)]
    Invalid(#[from] PolicyConfigError),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    #[serde(default)]
    policies: PoliciesSettings,
    #[serde(default)]
    policy: Vec<PolicyConfig>,
}

/// Parses and validates a standalone policy document.
pub fn parse_document(text: &str) -> Result<PolicySet, DocumentError> {
    let doc: Document = toml::from_str(text).map_err(|e| {
        let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
        DocumentError::Toml {
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    Ok(validate(&doc.policies, &doc.policy, text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_parse_or_say_where_they_fail() {
        let set = parse_document("[[policy]]\nname = \"a\"\naccess = \"deny\"\n").unwrap();
        assert_eq!(set.names().collect::<Vec<_>>(), ["a"]);
        let e =
            parse_document("[[policy]]\nname = \"a\"\naccess = \"deny\"\nfoo = 1\n").unwrap_err();
        assert!(
            matches!(&e, DocumentError::Toml { line: 4, column: 1, message } if message.contains("unknown field")),
            "{e}"
        );
        let e = parse_document("[[policy]]\nname = \"\"\naccess = \"deny\"\n").unwrap_err();
        assert!(matches!(e, DocumentError::Invalid(_)), "{e}");
        assert!(
            e.to_string().starts_with("2:8: key `policy[0].name`"),
            "{e}"
        );
    }
}
