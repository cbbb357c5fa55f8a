//! The change history in PBA's format (cc783298): `Date, Action, Key
//! Field, Record`, the record being the eleven POP fields, the status, the
//! date and two reserved fields, separated by `;`, e.g.
//! `1/27/01 3:40:35 PM, POP Add, Albany, 3;1;0;Albany;912;555-0100;0;56000;0;48;ISP;1;1/27/01;;0`.

use crate::field_error::{numbered_lines, parse_digits, FieldError};
use crate::pop::{Pop, PopFlags};

/// What happened to a POP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Add,
    Edit,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Add => "POP Add",
            Action::Edit => "POP Edit",
            Action::Delete => "POP Delete",
        }
    }
    fn parse(s: &str) -> Option<Action> {
        match s {
            "POP Add" => Some(Action::Add),
            "POP Edit" => Some(Action::Edit),
            "POP Delete" => Some(Action::Delete),
            _ => None,
        }
    }
}

/// One history line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Seconds since the Unix epoch, UTC.
    pub at: i64,
    pub action: Action,
    pub pop: Pop,
    pub in_service: bool,
}

/// (year, month, day) of a day count since 1970-01-01 (proleptic
/// Gregorian; H. Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `M/D/YY` (PBA's short date, two-digit year).
fn short_date(at: i64) -> String {
    let (y, m, d) = civil_from_days(at.div_euclid(86_400));
    format!("{m}/{d}/{:02}", y.rem_euclid(100))
}

/// `M/D/YY h:mm:ss AM|PM`.
fn date_time(at: i64) -> String {
    let secs = at.rem_euclid(86_400);
    let (h, min, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let (h12, ampm) = match h {
        0 => (12, "AM"),
        1..=11 => (h, "AM"),
        12 => (12, "PM"),
        _ => (h - 12, "PM"),
    };
    format!("{} {h12}:{min:02}:{s:02} {ampm}", short_date(at))
}

fn parse_date_time(s: &str) -> Option<i64> {
    let mut parts = s.split(' ');
    let (date, time, ampm) = (parts.next()?, parts.next()?, parts.next()?);
    let mut d = date.split('/').map(parse_digits);
    let (m, day, yy) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(parse_digits);
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m)
        || !(1..=31).contains(&day)
        || !(1..=12).contains(&h)
        || min > 59
        || sec > 59
        || yy > 99
    {
        return None;
    }
    let h24 = match (ampm, h) {
        ("AM", 12) => 0,
        ("AM", h) => h,
        ("PM", 12) => 12,
        ("PM", h) => h + 12,
        _ => return None,
    };
    // Two-digit years: 70–99 → 19xx, 00–69 → 20xx.
    let year = if yy >= 70 {
        1900 + i64::from(yy)
    } else {
        2000 + i64::from(yy)
    };
    Some(days_from_civil(year, m, day) * 86_400 + i64::from(h24 * 3600 + min * 60 + sec))
}

/// One entry as a history line.
pub fn history_line(e: &HistoryEntry) -> String {
    let p = &e.pop;
    format!(
        "{}, {}, {}, {};{};{};{};{};{};{};{};{};{};{};{};{};;0",
        date_time(e.at),
        e.action.as_str(),
        p.name,
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
        p.dun_name,
        u8::from(e.in_service),
        short_date(e.at),
    )
}

/// Parses a history file written by [`history_line`].
pub fn parse_history(text: &str, origin: &str) -> Result<Vec<HistoryEntry>, FieldError> {
    let mut out = Vec::new();
    for (line, raw) in numbered_lines(text) {
        if raw.is_empty() {
            continue;
        }
        let err = |field: &'static str, msg: &str| FieldError::new(origin, line, field, msg);
        let parts: Vec<&str> = raw.splitn(4, ", ").collect();
        if parts.len() != 4 {
            return Err(err("line", "expected Date, Action, Key Field, Record"));
        }
        let at =
            parse_date_time(parts[0]).ok_or_else(|| err("Date", "not M/D/YY h:mm:ss AM|PM"))?;
        let action =
            Action::parse(parts[1]).ok_or_else(|| err("Action", "not POP Add/Edit/Delete"))?;
        let r: Vec<&str> = parts[3].split(';').collect();
        if r.len() != 15 {
            return Err(err("Record", "expected 15 ';'-separated fields"));
        }
        let n = |i: usize| {
            parse_digits(r[i]).ok_or_else(|| err("Record", "a numeric field is not a number"))
        };
        let pop = Pop {
            index: n(0)?,
            country: n(1)?,
            region: n(2)?,
            name: r[3].to_owned(),
            area_code: r[4].to_owned(),
            access_number: r[5].to_owned(),
            min_speed: n(6)?,
            max_speed: n(7)?,
            reserved: n(8)?,
            flags: PopFlags(n(9)?),
            dun_name: r[10].to_owned(),
        };
        let in_service = match r[11] {
            "1" => true,
            "0" => false,
            _ => return Err(err("Record", "status is not 0 or 1")),
        };
        out.push(HistoryEntry {
            at,
            action,
            pop,
            in_service,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_known_values() {
        // 2001-01-27 15:40:35 UTC = 980610035 (the PBA sample's date).
        assert_eq!(date_time(980_610_035), "1/27/01 3:40:35 PM");
        assert_eq!(parse_date_time("1/27/01 3:40:35 PM"), Some(980_610_035));
        assert_eq!(date_time(0), "1/1/70 12:00:00 AM");
    }
}
