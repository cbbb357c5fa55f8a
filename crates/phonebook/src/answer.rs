//! The Phone Book Service's answer to an update query. The Windows service's
//! body is not publicly documented (CM-FORMATS §4), so this one is ours
//! (docs/PHONEBOOK.md): an INI section, `text/plain`, HTTP 200 for every
//! decision:
//!
//! ```text
//! [Phone Book Update]
//! PhoneBook=NAME
//! Update=None|Delta|Full
//! Version=10
//! Url=/pbserver/data/NAME/10/delta.cab
//! Size=1234
//! SHA256=<64 hex digits>
//! ```
//!
//! `Url`, `Size` and `SHA256` are present only when `Update` is not `None`.

use crate::field_error::{numbered_lines, parse_digits, FieldError};

/// Which update the service decided on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    None,
    Delta,
    Full,
}

impl UpdateKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateKind::None => "None",
            UpdateKind::Delta => "Delta",
            UpdateKind::Full => "Full",
        }
    }
}

/// Where to get a cabinet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabinetRef {
    /// Absolute path on the service.
    pub url: String,
    pub size: u64,
    pub sha256: [u8; 32],
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub phonebook: String,
    pub update: UpdateKind,
    pub version: u32,
    pub cabinet: Option<CabinetRef>,
}

const SECTION: &str = "[Phone Book Update]";

/// The answer's text.
pub fn write_answer(a: &Answer) -> String {
    let mut out = format!(
        "{SECTION}\r\nPhoneBook={}\r\nUpdate={}\r\nVersion={}\r\n",
        a.phonebook,
        a.update.as_str(),
        a.version
    );
    if let Some(c) = &a.cabinet {
        out.push_str(&format!(
            "Url={}\r\nSize={}\r\nSHA256={}\r\n",
            c.url,
            c.size,
            hex::encode(c.sha256)
        ));
    }
    out
}

/// Parses an answer (untrusted: it comes from the network).
pub fn parse_answer(text: &str) -> Result<Answer, FieldError> {
    let err = |line, field, msg: &str| FieldError::new("PBS answer", line, field, msg);
    let mut lines = numbered_lines(text).filter(|(_, l)| !l.trim().is_empty());
    match lines.next() {
        Some((_, l)) if l.trim() == SECTION => {}
        _ => return Err(err(1, "section", "expected [Phone Book Update]")),
    }
    let (mut pb, mut update, mut version, mut url, mut size, mut sha) =
        (None, None, None, None, None, None);
    for (n, l) in lines {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| err(n, "line", "expected KEY=VALUE"))?;
        match k.trim() {
            "PhoneBook" => pb = Some(v.trim().to_owned()),
            "Update" => {
                update = Some(match v.trim() {
                    "None" => UpdateKind::None,
                    "Delta" => UpdateKind::Delta,
                    "Full" => UpdateKind::Full,
                    _ => return Err(err(n, "Update", "not None, Delta or Full")),
                })
            }
            "Version" => {
                version =
                    Some(parse_digits(v.trim()).ok_or_else(|| err(n, "Version", "not a number"))?)
            }
            "Url" => {
                let v = v.trim();
                if !v.starts_with('/') || v.len() > 256 || !v.bytes().all(|b| b.is_ascii_graphic())
                {
                    return Err(err(n, "Url", "not an absolute path"));
                }
                url = Some(v.to_owned());
            }
            "Size" => {
                size = Some(
                    v.trim()
                        .parse::<u64>()
                        .map_err(|_| err(n, "Size", "not a number"))?,
                )
            }
            "SHA256" => {
                let mut h = [0u8; 32];
                hex::decode_to_slice(v.trim(), &mut h)
                    .map_err(|_| err(n, "SHA256", "not 64 hex digits"))?;
                sha = Some(h);
            }
            _ => {} // unknown keys: ignored, for later additions
        }
    }
    let phonebook = pb.ok_or_else(|| err(0, "PhoneBook", "missing"))?;
    let update = update.ok_or_else(|| err(0, "Update", "missing"))?;
    let version = version.ok_or_else(|| err(0, "Version", "missing"))?;
    let cabinet = match (update, url, size, sha) {
        (UpdateKind::None, _, _, _) => None,
        (_, Some(url), Some(size), Some(sha256)) => Some(CabinetRef { url, size, sha256 }),
        _ => return Err(err(0, "Url", "an update needs Url, Size and SHA256")),
    };
    Ok(Answer {
        phonebook,
        update,
        version,
        cabinet,
    })
}
