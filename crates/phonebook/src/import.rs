//! The administrator's import format (PBA, cc785911): the eleven MS-CPSP
//! fields separated by `", "`, one POP per line, e.g.
//! `1, 1, 0, Redmond, 425, 555-0134, 9600, 56000, 0, 120, ISP`.
//!
//! Strict: any fault is an error naming the line and the field, and the
//! caller stores nothing from a file with a fault.

use std::collections::HashSet;

use crate::field_error::{numbered_lines, parse_digits, FieldError};
use crate::pbk::{check_pop, FIELD_NAMES};
use crate::pop::{Pop, PopFlags};

/// Lines starting with this are comments.
const COMMENT: char = ';';

/// Parses an import file. `region_count` is the number of regions the
/// phone book has (Region Id must be 0 or at most that). Blank lines and
/// `;` comments are skipped. A POP Index may appear only once.
pub fn parse_import(
    text: &str,
    origin: &str,
    region_count: usize,
) -> Result<Vec<(usize, Pop)>, FieldError> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (line, raw) in numbered_lines(text) {
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with(COMMENT) {
            continue;
        }
        let pop = parse_import_line(raw, origin, line)?;
        check_pop(&pop, region_count, origin, line)?;
        if !seen.insert(pop.index) {
            return Err(FieldError::new(
                origin,
                line,
                FIELD_NAMES[0],
                format!("POP {} appears twice in this file", pop.index),
            ));
        }
        out.push((line, pop));
    }
    Ok(out)
}

/// One import line: eleven comma-separated fields, spaces around each
/// trimmed (the format's separator is `", "`; a bare `,` is accepted).
pub fn parse_import_line(raw: &str, origin: &str, line: usize) -> Result<Pop, FieldError> {
    let fields: Vec<&str> = raw.split(',').map(str::trim).collect();
    if fields.len() != 11 {
        return Err(FieldError::new(
            origin,
            line,
            "line",
            format!("{} fields, expected 11 separated by \", \"", fields.len()),
        ));
    }
    let number = |i: usize, required: bool| -> Result<u32, FieldError> {
        if fields[i].is_empty() && !required {
            return Ok(0);
        }
        parse_digits(fields[i]).ok_or_else(|| {
            FieldError::new(
                origin,
                line,
                FIELD_NAMES[i],
                format!("{:?} is not an unsigned number", fields[i]),
            )
        })
    };
    Ok(Pop {
        index: number(0, true)?,
        country: number(1, true)?,
        region: number(2, false)?,
        name: fields[3].to_owned(),
        area_code: fields[4].to_owned(),
        access_number: fields[5].to_owned(),
        min_speed: number(6, false)?,
        max_speed: number(7, false)?,
        reserved: number(8, false)?,
        flags: PopFlags(number(9, false)?),
        dun_name: fields[10].to_owned(),
    })
}

/// One POP in the import format.
pub fn import_line(p: &Pop) -> String {
    format!(
        "{}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}",
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
