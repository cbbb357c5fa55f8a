//! Log lines about logins, for the server's operator (never the wire): who
//! tried (the peer's name, quoted so that it cannot forge log lines), with
//! which method (in words) and why it was refused.

use std::fmt;

use ppp::auth::{AuthMethod, AuthProtocol};

/// A peer-supplied text, quoted for a log line: control characters
/// (newlines included), quotes, backslashes and the Unicode characters
/// that reorder or hide text (bidirectional overrides, line separators)
/// are escaped, so one log line stays one line and reads as it is.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '\r' => f.write_str("\\r")?,
                '\t' => f.write_str("\\t")?,
                c if hidden(c) => write!(f, "\\u{{{:x}}}", u32::from(c))?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Characters a reader would not see as themselves.
fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c,
            // Zero-width and bidirectional marks, embeddings, overrides
            // and isolates (Unicode TR #9), line and paragraph separators.
            '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// The method of a credential check, in words.
pub fn method_name(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Pap => "PAP",
        AuthMethod::ChapMd5 => "CHAP-MD5",
        AuthMethod::MsChapV1 => "MS-CHAP",
        AuthMethod::MsChapV2 => "MS-CHAPv2",
        AuthMethod::EapMsChapV2 => "EAP-MSCHAPv2",
        AuthMethod::EapPassThrough => "EAP (relayed to RADIUS)",
    }
}

/// An authentication protocol (LCP), in words.
pub fn protocol_name(protocol: Option<AuthProtocol>) -> &'static str {
    match protocol {
        Some(AuthProtocol::Pap) => "PAP",
        Some(AuthProtocol::ChapMd5) => "CHAP-MD5",
        Some(AuthProtocol::MsChapV1) => "MS-CHAP",
        Some(AuthProtocol::MsChapV2) => "MS-CHAPv2",
        Some(AuthProtocol::Eap) => "EAP",
        None => "no authentication",
    }
}

/// The one log line of a refused login: `login refused: user "NAME",
/// METHOD: REASON` (METHOD from [`method_name`] or the like).
pub fn refused(session: u64, user: &str, method: &str, reason: &dyn fmt::Display) {
    tracing::info!(
        session,
        "login refused: user {}, {method}: {reason}",
        Quoted(user)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_keeps_one_line() {
        assert_eq!(Quoted("alice").to_string(), "\"alice\"");
        assert_eq!(
            Quoted("a\"b\\c\nINFO forged line\r\t\u{1b}[31m").to_string(),
            "\"a\\\"b\\\\c\\nINFO forged line\\r\\t\\u{1b}[31m\""
        );
        // Bidirectional override and a C1 control: escaped; ordinary
        // non-ASCII letters stay readable.
        assert_eq!(
            Quoted("j\u{202e}txt.exe\u{85}é").to_string(),
            "\"j\\u{202e}txt.exe\\u{85}é\""
        );
        for name in ["x\ny", "x\u{2028}y", "x\u{0}y"] {
            assert!(!Quoted(name).to_string().contains(['\n', '\u{2028}', '\0']));
        }
    }

    #[test]
    fn methods_in_words() {
        assert_eq!(method_name(AuthMethod::EapMsChapV2), "EAP-MSCHAPv2");
        assert_eq!(protocol_name(Some(AuthProtocol::MsChapV2)), "MS-CHAPv2");
    }
}
