//! The Windows INI dialect of `.cms`, `.cmp` and `.inf` files, kept losslessly.
//!
//! Rules, as `GetPrivateProfileString` applies them (and as the Connection Manager keys
//! documentation describes the service files): `[Section]` headers; `key=value` entries with
//! the whitespace around key and value ignored; a line whose first non-blank character is
//! `;` is a comment; a `;` later in a line is part of the value; backslashes are ordinary
//! characters (`C:\Windows` stays `C:\Windows`); section and key names are case-insensitive;
//! when a key appears twice the first one counts.
//!
//! The document keeps every line as written (order, comments, blank lines, unknown
//! sections and keys, line endings, encoding), so `parse` then `to_bytes` gives back the
//! input byte for byte, and an edit changes only the line it touches.

use crate::text::{self, TextEncoding, TextError};

/// Profile files are a few kilobytes; refuse anything absurd before decoding it.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;

/// How one line ended in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineEnding {
    CrLf,
    Lf,
    Cr,
    /// The last line of a file that does not end with a newline.
    None,
}

impl LineEnding {
    fn as_str(self) -> &'static str {
        match self {
            LineEnding::CrLf => "\r\n",
            LineEnding::Lf => "\n",
            LineEnding::Cr => "\r",
            LineEnding::None => "",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Line {
    text: String,
    ending: LineEnding,
}

/// What a line is, as the Windows profile API sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind<'a> {
    Blank,
    Comment,
    Section(&'a str),
    Entry {
        key: &'a str,
        value: &'a str,
    },
    /// A line with text but no `=` inside a section: Windows ignores it, we keep it.
    Other,
}

fn classify(text: &str) -> Kind<'_> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Kind::Blank;
    }
    if trimmed.starts_with(';') {
        return Kind::Comment;
    }
    if let Some(rest) = trimmed.strip_prefix('[') {
        if let Some(end) = rest.find(']') {
            return Kind::Section(rest[..end].trim());
        }
    }
    match trimmed.split_once('=') {
        Some((key, value)) => Kind::Entry {
            key: key.trim(),
            value: value.trim(),
        },
        None => Kind::Other,
    }
}

/// Errors of the INI layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IniError {
    /// The bytes are not text in any encoding we accept.
    #[error(transparent)]
    Text(#[from] TextError),
    /// The file is larger than [`MAX_FILE_BYTES`].
    #[error("file is {0} bytes, more than the {MAX_FILE_BYTES} allowed for a profile file")]
    TooLarge(usize),
    /// A name or value that cannot be written in INI syntax (newline, `=` in a key, ...).
    #[error("{what} {text:?} cannot be written in an INI file")]
    Unwritable {
        /// "section", "key" or "value".
        what: &'static str,
        /// The offending text.
        text: String,
    },
}

/// One `key=value` entry with the 1-based line it is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    /// The key as written (case kept).
    pub key: &'a str,
    /// The value with surrounding whitespace removed; nothing unescaped.
    pub value: &'a str,
    /// 1-based line number in the file.
    pub line: usize,
}

/// A lossless INI document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniDocument {
    encoding: TextEncoding,
    lines: Vec<Line>,
}

impl Default for IniDocument {
    fn default() -> Self {
        IniDocument {
            encoding: TextEncoding::Utf8,
            lines: Vec::new(),
        }
    }
}

impl IniDocument {
    /// An empty document that will be written in `encoding`.
    pub fn new(encoding: TextEncoding) -> Self {
        IniDocument {
            encoding,
            lines: Vec::new(),
        }
    }

    /// Parses file bytes in any accepted encoding (see [`crate::text::decode`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, IniError> {
        if bytes.len() > MAX_FILE_BYTES {
            return Err(IniError::TooLarge(bytes.len()));
        }
        let (text, encoding) = text::decode(bytes)?;
        let mut doc = Self::parse_str(&text);
        doc.encoding = encoding;
        Ok(doc)
    }

    /// Parses already decoded text; the document will be written as UTF-8.
    pub fn parse_str(text: &str) -> Self {
        let mut lines = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            let (line, ending, consumed) = match rest.find(['\r', '\n']) {
                None => (rest, LineEnding::None, rest.len()),
                Some(at) => {
                    let tail = &rest.as_bytes()[at..];
                    if tail.starts_with(b"\r\n") {
                        (&rest[..at], LineEnding::CrLf, at + 2)
                    } else if tail[0] == b'\r' {
                        (&rest[..at], LineEnding::Cr, at + 1)
                    } else {
                        (&rest[..at], LineEnding::Lf, at + 1)
                    }
                }
            };
            lines.push(Line {
                text: line.to_owned(),
                ending,
            });
            rest = &rest[consumed..];
        }
        IniDocument {
            encoding: TextEncoding::Utf8,
            lines,
        }
    }

    /// The encoding the document will be written in.
    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Changes the encoding the document will be written in.
    pub fn set_encoding(&mut self, encoding: TextEncoding) {
        self.encoding = encoding;
    }

    /// The text of the document, exactly as parsed plus any edits.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            out.push_str(&line.text);
            out.push_str(line.ending.as_str());
        }
        out
    }

    /// The bytes of the document in its encoding.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IniError> {
        Ok(text::encode(&self.to_text(), self.encoding)?)
    }

    /// Section names in file order with their 1-based header line (duplicates included).
    pub fn sections(&self) -> Vec<(&str, usize)> {
        self.lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| match classify(&l.text) {
                Kind::Section(name) => Some((name, i + 1)),
                _ => None,
            })
            .collect()
    }

    /// Whether a section of that name (case-insensitive) exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.section_range(section).is_some()
    }

    /// Line index range (header excluded) of the first section called `section`.
    fn section_range(&self, section: &str) -> Option<(usize, usize)> {
        let mut start = None;
        for (i, line) in self.lines.iter().enumerate() {
            if let Kind::Section(name) = classify(&line.text) {
                if let Some(s) = start {
                    return Some((s, i));
                }
                if name.eq_ignore_ascii_case(section) {
                    start = Some(i + 1);
                }
            }
        }
        start.map(|s| (s, self.lines.len()))
    }

    /// The entries of the first section called `section`, in file order.
    pub fn entries(&self, section: &str) -> Vec<Entry<'_>> {
        let Some((start, end)) = self.section_range(section) else {
            return Vec::new();
        };
        (start..end)
            .filter_map(|i| match classify(&self.lines[i].text) {
                Kind::Entry { key, value } => Some(Entry {
                    key,
                    value,
                    line: i + 1,
                }),
                _ => None,
            })
            .collect()
    }

    /// The first entry `key` (case-insensitive) of section `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<Entry<'_>> {
        self.entries(section)
            .into_iter()
            .find(|e| e.key.eq_ignore_ascii_case(key))
    }

    /// The line ending new lines get: the one the file uses most, CRLF for an empty file.
    fn newline(&self) -> LineEnding {
        let (mut crlf, mut lf, mut cr) = (0, 0, 0);
        for line in &self.lines {
            match line.ending {
                LineEnding::CrLf => crlf += 1,
                LineEnding::Lf => lf += 1,
                LineEnding::Cr => cr += 1,
                LineEnding::None => {}
            }
        }
        if lf > crlf && lf >= cr {
            LineEnding::Lf
        } else if cr > crlf && cr > lf {
            LineEnding::Cr
        } else {
            LineEnding::CrLf
        }
    }

    fn check_writable(section: &str, key: &str, value: &str) -> Result<(), IniError> {
        let bad = |what: &'static str, text: &str| IniError::Unwritable {
            what,
            text: text.to_owned(),
        };
        let has_newline = |s: &str| s.contains(['\r', '\n']);
        if section.is_empty() || has_newline(section) || section.contains(']') {
            return Err(bad("section", section));
        }
        if key.is_empty()
            || has_newline(key)
            || key.contains('=')
            || key.trim() != key
            || key.starts_with([';', '['])
        {
            return Err(bad("key", key));
        }
        if has_newline(value) || value.trim() != value {
            return Err(bad("value", value));
        }
        Ok(())
    }

    /// Sets `key=value` in `section`: replaces the first such entry in place (keeping the
    /// key's spelling), or adds it after the section's last entry, or adds the section at
    /// the end of the file. Other lines are untouched.
    pub fn set(&mut self, section: &str, key: &str, value: &str) -> Result<(), IniError> {
        Self::check_writable(section, key, value)?;
        let newline = self.newline();
        if let Some((start, end)) = self.section_range(section) {
            let mut last_entry = None;
            for i in start..end {
                if let Kind::Entry { key: k, .. } = classify(&self.lines[i].text) {
                    if k.eq_ignore_ascii_case(key) {
                        let k = k.to_owned();
                        self.lines[i].text = format!("{k}={value}");
                        return Ok(());
                    }
                    last_entry = Some(i);
                }
            }
            let at = last_entry.map_or(start, |i| i + 1);
            self.ensure_ends_with_newline_before(at, newline);
            self.lines.insert(
                at,
                Line {
                    text: format!("{key}={value}"),
                    ending: newline,
                },
            );
            return Ok(());
        }
        self.ensure_ends_with_newline_before(self.lines.len(), newline);
        self.lines.push(Line {
            text: format!("[{section}]"),
            ending: newline,
        });
        self.lines.push(Line {
            text: format!("{key}={value}"),
            ending: newline,
        });
        Ok(())
    }

    /// When inserting at `at`, the line before it must end with a newline.
    fn ensure_ends_with_newline_before(&mut self, at: usize, newline: LineEnding) {
        if at > 0 && self.lines[at - 1].ending == LineEnding::None {
            self.lines[at - 1].ending = newline;
        }
    }

    /// Removes every `key` entry of the first section called `section`; true if one was.
    pub fn remove(&mut self, section: &str, key: &str) -> bool {
        let Some((start, end)) = self.section_range(section) else {
            return false;
        };
        let before = self.lines.len();
        let mut i = start;
        let mut end = end;
        while i < end {
            let matches = matches!(classify(&self.lines[i].text),
                Kind::Entry { key: k, .. } if k.eq_ignore_ascii_case(key));
            if matches {
                self.lines.remove(i);
                end -= 1;
            } else {
                i += 1;
            }
        }
        self.lines.len() != before
    }

    /// Removes the first section called `section` with all its lines; true if it existed.
    pub fn remove_section(&mut self, section: &str) -> bool {
        match self.section_range(section) {
            Some((start, end)) => {
                self.lines.drain(start - 1..end);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "; built by hand\r\n[Connection Manager]\r\nServiceName = Contoso VPN \r\n\r\nHelpFile=C:\\Help\\new\\x.hlp\r\nNote=a;b\r\nservicename=second\r\n[ISP]\r\nPBFile=c.pbk";

    #[test]
    fn round_trip_is_byte_exact() {
        let doc = IniDocument::parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(doc.to_bytes().unwrap(), SAMPLE.as_bytes());
    }

    #[test]
    fn values_are_trimmed_unescaped_and_first_key_wins() {
        let doc = IniDocument::parse_str(SAMPLE);
        let e = doc.get("connection manager", "SERVICENAME").unwrap();
        assert_eq!((e.value, e.line), ("Contoso VPN", 3));
        assert_eq!(
            doc.get("Connection Manager", "HelpFile").unwrap().value,
            "C:\\Help\\new\\x.hlp"
        );
        assert_eq!(doc.get("Connection Manager", "Note").unwrap().value, "a;b");
        assert_eq!(doc.get("ISP", "PBFile").unwrap().line, 9);
        assert_eq!(doc.get("ISP", "Missing"), None);
        assert_eq!(doc.sections(), vec![("Connection Manager", 2), ("ISP", 8)]);
    }

    #[test]
    fn set_replaces_in_place_and_keeps_everything_else() {
        let mut doc = IniDocument::parse_str(SAMPLE);
        doc.set("Connection Manager", "SERVICENAME", "Fabrikam")
            .unwrap();
        let expected = SAMPLE.replace("ServiceName = Contoso VPN ", "ServiceName=Fabrikam");
        assert_eq!(doc.to_text(), expected);
    }

    #[test]
    fn set_adds_after_last_entry_and_new_sections_at_end() {
        let mut doc = IniDocument::parse_str(SAMPLE);
        doc.set("ISP", "PBURL", "http://pbs/x").unwrap();
        doc.set("Pre-Init Actions", "0", "run.sh").unwrap();
        assert!(doc
            .to_text()
            .ends_with("PBFile=c.pbk\r\nPBURL=http://pbs/x\r\n[Pre-Init Actions]\r\n0=run.sh\r\n"));
        assert_eq!(doc.get("Pre-Init Actions", "0").unwrap().line, 12);
    }

    #[test]
    fn unwritable_text_is_refused() {
        let mut doc = IniDocument::default();
        assert!(doc.set("A", "k", "two\nlines").is_err());
        assert!(doc.set("A", "k=x", "v").is_err());
        assert!(doc.set("A]", "k", "v").is_err());
        assert_eq!(doc.to_text(), "");
    }

    #[test]
    fn remove_entry_and_section() {
        let mut doc = IniDocument::parse_str(SAMPLE);
        assert!(doc.remove("Connection Manager", "servicename"));
        assert!(doc.get("Connection Manager", "ServiceName").is_none());
        assert!(doc.remove_section("connection manager"));
        assert_eq!(doc.to_text(), "; built by hand\r\n[ISP]\r\nPBFile=c.pbk");
        assert!(!doc.remove_section("nope"));
    }

    #[test]
    fn lf_files_get_lf_for_new_lines() {
        let mut doc = IniDocument::parse_str("[A]\nx=1\n");
        doc.set("B", "y", "2").unwrap();
        assert_eq!(doc.to_text(), "[A]\nx=1\n[B]\ny=2\n");
    }

    proptest::proptest! {
        #[test]
        fn any_text_round_trips(text in "[\\[\\]=; a-z\\\\\r\n]{0,200}") {
            let doc = IniDocument::parse_str(&text);
            proptest::prop_assert_eq!(doc.to_text(), text);
        }
    }
}
