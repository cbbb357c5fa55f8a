//! The CPS phonebook file (`.pbk`), MS-CPSP §2.1.
//!
//! Two directions with two attitudes. [`read_pbk`] is the client's reader
//! and follows the spec's recovery rules exactly: some faults skip one
//! entry, some stop reading at that entry, some void the whole file.
//! [`write_pbk`] is the administrator's writer: it only ever writes POPs
//! that [`validate_pop`] accepted, so its output never triggers a recovery
//! rule.

use std::collections::VecDeque;

use crate::field_error::{numbered_lines, parse_digits, FieldError};
use crate::pop::{Pop, PopFlags, MAX_ACCESS_NUMBER, MAX_AREA_CODE, MAX_DUN_NAME, MAX_NAME};

/// Field names, in file order (MS-CPSP §2.1).
pub const FIELD_NAMES: [&str; 11] = [
    "POP Index",
    "Country Code",
    "Region Id",
    "POP Name",
    "Area Code",
    "Access Number",
    "Minimum Analog Speed",
    "Maximum Analog Speed",
    "Reserved Flag",
    "POP Flag",
    "Dialup Networking Name",
];

/// What the reader did with a line it could not take as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadNote {
    /// This entry was skipped, reading went on.
    EntrySkipped { line: usize, why: String },
    /// This entry (and, if `entry_kept` is false, this one too) and every
    /// later entry were ignored.
    RestIgnored {
        line: usize,
        entry_kept: bool,
        why: String,
    },
    /// Every entry of the file was ignored.
    FileIgnored { line: usize, why: String },
}

/// The result of reading a `.pbk` file the way a client must.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbkRead {
    pub pops: Vec<Pop>,
    pub notes: Vec<ReadNote>,
}

/// Reads a phonebook file applying MS-CPSP §2.1's rules for invalid
/// entries. Never fails: a void file reads as no POPs plus a note.
pub fn read_pbk(text: &str) -> PbkRead {
    let mut out = PbkRead::default();
    for (line_no, line) in numbered_lines(text) {
        // MS-CPSP §2.1: "If there are zero POP entries ... processing SHOULD
        // gracefully stop": an empty line (such as the one after the final
        // line ending) holds no entry.
        if line.is_empty() {
            continue;
        }
        let commas = line.bytes().filter(|&b| b == b',').count();
        if commas > 11 {
            // §2.1: more than 11 commas → all entries of the file ignored.
            return void(line_no, format!("{commas} commas (at most 11)"));
        }
        if commas < 10 {
            // §2.1: fewer than 10 → this and all subsequent entries ignored.
            out.notes.push(ReadNote::RestIgnored {
                line: line_no,
                entry_kept: false,
                why: format!("{commas} commas (at least 10)"),
            });
            return out;
        }
        let (fields, overlong) = split_fields(line);
        match read_entry(&fields) {
            Entry::Pop(pop) => out.pops.push(pop),
            Entry::Skip(why) => out
                .notes
                .push(ReadNote::EntrySkipped { line: line_no, why }),
            Entry::StopHere(why) => {
                out.notes.push(ReadNote::RestIgnored {
                    line: line_no,
                    entry_kept: false,
                    why,
                });
                return out;
            }
            Entry::Void(why) => return void(line_no, why),
        }
        if let Some(field) = overlong {
            // §2.1: an over-long POP Name, Area Code or Access Number is cut,
            // its remainder becomes the next field, and "all the subsequent
            // POP entries MUST be ignored".
            out.notes.push(ReadNote::RestIgnored {
                line: line_no,
                entry_kept: true,
                why: format!("{field} too long"),
            });
            return out;
        }
    }
    out
}

fn void(line: usize, why: String) -> PbkRead {
    PbkRead {
        pops: Vec::new(),
        notes: vec![ReadNote::FileIgnored { line, why }],
    }
}

/// Splits a line into its eleven fields, applying the over-length shifting
/// of MS-CPSP §2.1; also says which field, if any, was over-long.
fn split_fields(line: &str) -> (Vec<String>, Option<&'static str>) {
    let mut tokens: VecDeque<String> = line.split(',').map(str::to_owned).collect();
    let mut fields = Vec::with_capacity(11);
    let mut overlong = None;
    for (i, name) in FIELD_NAMES.iter().enumerate() {
        let token = tokens.pop_front().unwrap_or_default();
        let limit = match i {
            3 => Some(MAX_NAME),
            4 => Some(MAX_AREA_CODE),
            5 => Some(MAX_ACCESS_NUMBER),
            _ => None,
        };
        match limit {
            Some(limit) if token.chars().count() > limit => {
                let cut = token
                    .char_indices()
                    .nth(limit)
                    .map_or(token.len(), |(b, _)| b);
                tokens.push_front(token[cut..].to_owned());
                fields.push(token[..cut].to_owned());
                overlong.get_or_insert(*name);
            }
            _ if i == 10 => {
                // §2.1: the Dialup Networking Name "is terminated by a line
                // feed/carriage return ... or a comma", and only its first
                // 50 characters are read.
                let name = token.split('\r').next().unwrap_or("");
                fields.push(name.chars().take(MAX_DUN_NAME).collect());
            }
            _ => fields.push(token),
        }
    }
    (fields, overlong)
}

enum Entry {
    Pop(Pop),
    Skip(String),
    StopHere(String),
    Void(String),
}

/// An optional numeric field: empty → 0, digits → value, else `None`.
fn optional_number(s: &str) -> Option<u32> {
    if s.is_empty() {
        Some(0)
    } else {
        parse_digits(s)
    }
}

fn read_entry(f: &[String]) -> Entry {
    // §2.1 POP Index: optional; non-digits → this and subsequent ignored.
    let Some(index) = optional_number(&f[0]) else {
        return Entry::StopHere(format!("POP Index {:?} is not a number", f[0]));
    };
    // §2.1 Country Code: must be present (else this entry is ignored);
    // non-numeric → the whole file is ignored.
    if f[1].is_empty() {
        return Entry::Skip("no Country Code".into());
    }
    let Some(country) = parse_digits(&f[1]) else {
        return Entry::Void(format!("Country Code {:?} is not a number", f[1]));
    };
    // Region Id, speeds, Reserved Flag, POP Flag: non-numeric (which
    // includes negative) → the whole file is ignored.
    let mut numbers = [0u32; 5];
    for (slot, i) in numbers.iter_mut().zip([2usize, 6, 7, 8, 9]) {
        match optional_number(&f[i]) {
            Some(v) => *slot = v,
            None => return Entry::Void(format!("{} {:?} is not a number", FIELD_NAMES[i], f[i])),
        }
    }
    let [region, min_speed, max_speed, reserved, flags] = numbers;
    let flags = PopFlags(flags);
    // §2.1 Sign on: "This POP Flag MUST be zero. Otherwise, this POP entry
    // MUST be ignored."
    if !flags.is_usable() {
        return Entry::Skip("POP Flag has the Sign On bit set".into());
    }
    // §2.1 Area Code: "If the Area Code contains non-numeric characters, it
    // MUST be ignored."
    let area_code = if f[4].bytes().all(|b| b.is_ascii_digit()) {
        f[4].clone()
    } else {
        String::new()
    };
    Entry::Pop(Pop {
        index,
        country,
        region,
        name: f[3].clone(),
        area_code,
        // §2.1: an Access Number with other characters "MUST still be read".
        access_number: f[5].clone(),
        min_speed,
        max_speed,
        reserved,
        flags,
        dun_name: f[10].clone(),
    })
}

/// One POP as a `.pbk` line, without the line ending: ten commas, the
/// eleventh (optional per §2.1) left out, as in the spec's example
/// `23,1,2,Redmond,999,5550134,9600,56000,0,96,`.
pub fn pbk_line(p: &Pop) -> String {
    format!(
        "{},{},{},{},{},{},{},{},{},{},{}",
        p.index,
        p.country,
        p.region,
        p.name,
        p.area_code,
        p.access_number,
        p.min_speed,
        p.max_speed,
        p.reserved,
        p.flags.0,
        p.dun_name
    )
}

/// Writes POPs as a phonebook file, CRLF line endings (an ASCII Windows
/// text file).
pub fn write_pbk<'a>(pops: impl IntoIterator<Item = &'a Pop>) -> String {
    let mut out = String::new();
    for p in pops {
        out.push_str(&pbk_line(p));
        out.push_str("\r\n");
    }
    out
}

/// The administrator's rules for a POP, stricter than the reader's
/// recovery rules so that what we publish is always read in full. The
/// length limits are PBA's (cc785911: name 30, area code 10, access number
/// 35), each inside MS-CPSP's (31, 11, 41, 50).
pub fn validate_pop(p: &Pop, region_count: usize) -> Result<(), (&'static str, String)> {
    fn printable(s: &str) -> bool {
        s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b',')
    }
    if p.index == 0 {
        return Err((
            FIELD_NAMES[0],
            "must be a number from 1 up (it keys the POP)".into(),
        ));
    }
    if p.country == 0 {
        return Err((FIELD_NAMES[1], "must be present and non-zero".into()));
    }
    if p.region as usize > region_count {
        return Err((
            FIELD_NAMES[2],
            format!(
                "region {} does not exist (the phone book has {region_count} regions; 0 = all)",
                p.region
            ),
        ));
    }
    // PBA: a POP is listed to the user by its name, so it must have one.
    if p.name.trim().is_empty() || p.name.chars().count() > 30 || !printable(&p.name) {
        return Err((
            FIELD_NAMES[3],
            "1 to 30 printable ASCII characters, no comma".into(),
        ));
    }
    if p.area_code.len() > 10 || !p.area_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err((FIELD_NAMES[4], "at most 10 digits".into()));
    }
    let a = &p.access_number;
    if a.len() > 35
        || !a.bytes().any(|b| b.is_ascii_digit())
        || !a
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'#' | b'*' | b'-' | b' '))
    {
        return Err((
            FIELD_NAMES[5],
            "1 to 35 characters: digits (at least one), '#', '*', '-' and spaces".into(),
        ));
    }
    if p.max_speed != 0 && p.min_speed > p.max_speed {
        return Err((FIELD_NAMES[6], "greater than the maximum speed".into()));
    }
    if p.flags.0 > 0xff {
        return Err((FIELD_NAMES[9], "only bits 0 to 7 exist".into()));
    }
    if !p.flags.is_usable() {
        return Err((
            FIELD_NAMES[9],
            "bit 0 (Sign On) must be 0: MS-CPSP §2.1 makes clients ignore such a POP".into(),
        ));
    }
    if p.flags.0 & PopFlags::CUSTOM2 != 0 {
        return Err((
            FIELD_NAMES[9],
            "bit 7 (Custom 2) must be 0 (MS-CPSP §2.1)".into(),
        ));
    }
    if p.dun_name.chars().count() > MAX_DUN_NAME || !printable(&p.dun_name) {
        return Err((
            FIELD_NAMES[10],
            "at most 50 printable ASCII characters, no comma".into(),
        ));
    }
    Ok(())
}

/// [`validate_pop`] as a [`FieldError`] for `origin`, `line`.
pub fn check_pop(
    p: &Pop,
    region_count: usize,
    origin: &str,
    line: usize,
) -> Result<(), FieldError> {
    validate_pop(p, region_count)
        .map_err(|(field, message)| FieldError::new(origin, line, field, message))
}
