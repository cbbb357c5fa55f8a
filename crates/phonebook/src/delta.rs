//! Our delta format (`NAME.dlt` in a Delta cabinet). No public source
//! gives PBA's delta line syntax, so this one is ours (docs/PHONEBOOK.md):
//!
//! ```text
//! RASPBDELTA 1
//! From=6
//! To=10
//! [7]
//! +23,1,2,Redmond,999,5550134,9600,56000,0,96,
//! -41
//! [8]
//! ...
//! ```
//!
//! A client at version `c` with `From <= c < To` applies, in order, the
//! sections whose version is above `c`: `+line` adds or replaces the POP
//! with that line's POP Index, `-N` removes POP N. Applying a section
//! twice gives the same result, so an interrupted update can be redone.

use std::collections::BTreeMap;

use crate::field_error::{numbered_lines, parse_digits, FieldError};
use crate::pbk::{pbk_line, read_pbk};
use crate::pop::Pop;

const MAGIC: &str = "RASPBDELTA 1";

/// One POP change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Upsert(Pop),
    Delete(u32),
}

/// A delta: the changes of versions `from + 1 ..= to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delta {
    pub from: u32,
    pub to: u32,
    /// (version, its changes), versions ascending, each in `from+1..=to`.
    pub sections: Vec<(u32, Vec<Change>)>,
}

/// Why a delta cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeltaError {
    #[error(transparent)]
    Format(#[from] FieldError),
    #[error("the delta goes from version {from} to {to}; it cannot update version {have}")]
    NotApplicable { from: u32, to: u32, have: u32 },
}

/// Writes a delta.
pub fn write_delta(d: &Delta) -> String {
    let mut out = format!("{MAGIC}\r\nFrom={}\r\nTo={}\r\n", d.from, d.to);
    for (v, changes) in &d.sections {
        out.push_str(&format!("[{v}]\r\n"));
        for c in changes {
            match c {
                Change::Upsert(p) => {
                    out.push('+');
                    out.push_str(&pbk_line(p));
                }
                Change::Delete(i) => out.push_str(&format!("-{i}")),
            }
            out.push_str("\r\n");
        }
    }
    out
}

/// Parses a delta strictly (it is our own format; anything odd is an
/// error naming the line).
pub fn parse_delta(text: &str, origin: &str) -> Result<Delta, FieldError> {
    let mut lines = numbered_lines(text).filter(|(_, l)| !l.is_empty());
    let err =
        |line: usize, field: &'static str, msg: String| FieldError::new(origin, line, field, msg);
    let (l, first) = lines
        .next()
        .ok_or_else(|| err(1, "header", "empty delta".into()))?;
    if first != MAGIC {
        return Err(err(l, "header", format!("expected {MAGIC:?}")));
    }
    let mut header = |key: &'static str| -> Result<u32, FieldError> {
        let (l, line) = lines.next().ok_or_else(|| err(0, key, "missing".into()))?;
        line.strip_prefix(key)
            .and_then(|r| r.strip_prefix('='))
            .and_then(parse_digits)
            .ok_or_else(|| err(l, key, format!("expected {key}=NUMBER")))
    };
    let from = header("From")?;
    let to = header("To")?;
    if from >= to {
        return Err(err(3, "To", "must be above From".into()));
    }
    let mut sections: Vec<(u32, Vec<Change>)> = Vec::new();
    for (l, line) in lines {
        if let Some(v) = line.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let v = parse_digits(v).ok_or_else(|| err(l, "section", "not [VERSION]".into()))?;
            let last = sections.last().map_or(from, |s| s.0);
            if v <= last || v > to {
                return Err(err(
                    l,
                    "section",
                    format!("version {v} out of order or outside {from}..{to}"),
                ));
            }
            sections.push((v, Vec::new()));
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(
                l,
                "section",
                "a change before the first [VERSION]".into(),
            ));
        };
        if let Some(rest) = line.strip_prefix('+') {
            let read = read_pbk(rest);
            match (read.pops.as_slice(), read.notes.is_empty()) {
                ([pop], true) if pop.index != 0 => section.1.push(Change::Upsert(pop.clone())),
                _ => {
                    return Err(err(
                        l,
                        "POP",
                        "not one valid phonebook line with a POP Index".into(),
                    ))
                }
            }
        } else if let Some(rest) = line.strip_prefix('-') {
            let i = parse_digits(rest).ok_or_else(|| err(l, "POP Index", "not a number".into()))?;
            section.1.push(Change::Delete(i));
        } else {
            return Err(err(l, "line", "expected +POP, -INDEX or [VERSION]".into()));
        }
    }
    if sections.last().map(|s| s.0) != Some(to) {
        return Err(err(0, "To", format!("no section for version {to}")));
    }
    Ok(Delta { from, to, sections })
}

/// Applies a delta to the POPs of a client at version `have`.
pub fn apply_delta(pops: &[Pop], delta: &Delta, have: u32) -> Result<Vec<Pop>, DeltaError> {
    if have < delta.from || have >= delta.to {
        return Err(DeltaError::NotApplicable {
            from: delta.from,
            to: delta.to,
            have,
        });
    }
    let mut by_index: BTreeMap<u32, Pop> = pops.iter().map(|p| (p.index, p.clone())).collect();
    for (_, changes) in delta.sections.iter().filter(|(v, _)| *v > have) {
        for c in changes {
            match c {
                Change::Upsert(p) => {
                    by_index.insert(p.index, p.clone());
                }
                Change::Delete(i) => {
                    by_index.remove(i);
                }
            }
        }
    }
    Ok(by_index.into_values().collect())
}
