//! The region file (`.pbr`), MS-CPSP §2.2: a count, then one region name
//! per line. POPs refer to regions by 1-based position.

use crate::field_error::{numbered_lines, parse_digits, FieldError};

/// MS-CPSP §2.2: the longest region name.
pub const MAX_REGION_NAME: usize = 31;

/// Why a region file voids the phone book.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PbrError {
    /// §2.2: "If the first line in the file contains non-numeric
    /// characters, all POP entries in the phonebook will be ignored."
    #[error("the region count {0:?} is not a number")]
    BadCount(String),
}

/// Reads a region file the way a client must (MS-CPSP §2.2): names are
/// separated by line ends or commas, cut at 31 characters, and names past
/// the count are ignored. An empty file has no regions.
pub fn read_pbr(text: &str) -> Result<Vec<String>, PbrError> {
    let mut lines = text.split('\n').map(|l| l.trim_matches('\r'));
    let first = lines.next().unwrap_or("");
    if first.is_empty() && text.trim().is_empty() {
        return Ok(Vec::new());
    }
    let count = parse_digits(first.trim()).ok_or_else(|| PbrError::BadCount(first.to_owned()))?;
    let names = lines
        .flat_map(|l| l.split(','))
        .filter(|n| !n.is_empty())
        .take(count as usize)
        .map(|n| n.chars().take(MAX_REGION_NAME).collect())
        .collect();
    Ok(names)
}

/// Writes a region file (CRLF line endings).
pub fn write_pbr(names: &[String]) -> String {
    let mut out = format!("{}\r\n", names.len());
    for n in names {
        out.push_str(n);
        out.push_str("\r\n");
    }
    out
}

/// The administrator's rule for a region name: 1 to 31 printable ASCII
/// characters without a comma (§2.2 separates names with commas too).
pub fn check_region_name(name: &str, origin: &str, line: usize) -> Result<(), FieldError> {
    let ok = !name.is_empty()
        && name.chars().count() <= MAX_REGION_NAME
        && name.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b',');
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            origin,
            line,
            "Region Name",
            "1 to 31 printable ASCII characters, no comma",
        ))
    }
}

/// Reads an administrator's region list strictly: every line one name
/// (no count line), every fault an error naming the line.
pub fn parse_region_list(text: &str, origin: &str) -> Result<Vec<String>, FieldError> {
    let mut names = Vec::new();
    for (line, name) in numbered_lines(text) {
        if name.is_empty() {
            continue;
        }
        check_region_name(name, origin, line)?;
        names.push(name.to_owned());
    }
    Ok(names)
}
