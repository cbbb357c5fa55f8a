//! The error every format and rule check returns: which file, which line,
//! which field, and what is wrong with it.

/// A rule broken by one field of one line: `FILE:LINE: FIELD: what`, or
/// `ORIGIN: FIELD: what` when there is no line (a POP given on the
/// command line, a rule about the whole input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {field}: {message}", if *line == 0 { String::new() } else { format!(":{line}") })]
pub struct FieldError {
    /// The file (or other input) the line came from.
    pub origin: String,
    /// 1-based line number (0 when the rule concerns the whole input).
    pub line: usize,
    /// The field's name as the format describes it.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    pub fn new(
        origin: &str,
        line: usize,
        field: &'static str,
        message: impl Into<String>,
    ) -> FieldError {
        FieldError {
            origin: origin.to_owned(),
            line,
            field,
            message: message.into(),
        }
    }
}

/// Splits text into lines, accepting LF, CRLF and the "LF/CR" order
/// MS-CPSP §2.1 writes, and yields (1-based number, line without the
/// line ending).
pub(crate) fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split('\n')
        .map(|l| l.trim_matches('\r'))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Parses a decimal unsigned number made of ASCII digits only (no sign, no
/// spaces); `None` for anything else or an overflow.
pub(crate) fn parse_digits(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
