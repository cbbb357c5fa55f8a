//! Day-and-time windows: the NPS "Day-And-Time-Restrictions" condition.
//!
//! NPS draws a weekly grid of hours; here a window is written as days and
//! optional time ranges, `"Mon-Fri 08:00-18:00"`, `"Sat,Sun"` (whole days),
//! `"Mon-Fri 08:00-12:00, 13:00-17:00"`, `"Fri 22:00-06:00"` (an end before
//! the start runs past midnight into the next day). Times have minute
//! resolution, end `24:00` is midnight at the end of the day. A policy's
//! windows are merged into one bitmap of the 10 080 minutes of a week, so
//! a check is one bit test whatever the number of windows.
//!
//! Times are wall-clock times in the time zone of `[policies] time_zone`:
//! `"UTC"` (default), a fixed offset `"+01:00"`, or an IANA name such as
//! `"Europe/Berlin"`, whose rules (daylight saving time included) are
//! compiled into the binary, so converting the caller's instant to local
//! time reads no file and no clock. NPS uses the server's local time; this
//! crate does no IO, so "local" must be written out as the zone's name.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{Span, Timestamp, Zoned};
use serde::{Deserialize, Deserializer};

use crate::serde_util::via_str;

/// Minutes in a day.
const DAY: u16 = 24 * 60;
/// Minutes in a week: the bitmap's length.
pub const WEEK_MINUTES: u32 = 7 * 24 * 60;
const WORDS: usize = (WEEK_MINUTES as usize).div_ceil(64);

/// Day names, Monday first (the bit order of [`DayTimeWindow`]'s days).
const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const DAY_FULL_NAMES: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// One configured window: a set of week days and time ranges on each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayTimeWindow {
    /// Bit 0 is Monday, bit 6 Sunday.
    days: u8,
    /// `(start, end)` in minutes after midnight; `end` in `1..=1440`;
    /// `end <= start` runs into the next day. Empty: the whole day.
    ranges: Vec<(u16, u16)>,
    /// The text as written, for messages.
    text: String,
}

impl DayTimeWindow {
    /// Adds this window's minutes to `mask`.
    fn add_to(&self, mask: &mut WeekMask) {
        for day in (0..7u32).filter(|d| self.days & (1 << d) != 0) {
            let base = day * u32::from(DAY);
            if self.ranges.is_empty() {
                mask.set_range(base, base + u32::from(DAY));
            }
            for &(start, end) in &self.ranges {
                let (start, end) = (u32::from(start), u32::from(end));
                if end > start {
                    mask.set_range(base + start, base + end);
                } else {
                    // Past midnight: the rest of this day, then the start
                    // of the next (Sunday night runs into Monday).
                    mask.set_range(base + start, base + u32::from(DAY));
                    let next = (day + 1) % 7 * u32::from(DAY);
                    mask.set_range(next, next + end);
                }
            }
        }
    }
}

impl fmt::Display for DayTimeWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn parse_day(s: &str) -> Result<u32, String> {
    let lower = s.to_ascii_lowercase();
    DAY_FULL_NAMES
        .iter()
        .position(|full| *full == lower || full[..3] == lower)
        .map(|i| i as u32)
        .ok_or_else(|| format!("`{s}` is not a day (Mon, Tue, Wed, Thu, Fri, Sat, Sun)"))
}

fn parse_clock(s: &str, allow_24: bool) -> Result<u16, String> {
    let bad = || format!("`{s}` is not a time HH:MM");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u16 = h.parse().map_err(|_| bad())?;
    let m: u16 = m.parse().map_err(|_| bad())?;
    if h == 24 && m == 0 && allow_24 {
        return Ok(DAY);
    }
    if h > 23 || m > 59 {
        return Err(format!(
            "`{s}` is not a time of day (00:00 to 23:59, or 24:00 as an end)"
        ));
    }
    Ok(h * 60 + m)
}

impl FromStr for DayTimeWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        // Days come first and contain no digit; the time ranges start at
        // the first digit. Spaces are insignificant on either side.
        let split = text
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(text.len());
        let (days_text, times_text) = text.split_at(split);
        let days_text: String = days_text.chars().filter(|c| !c.is_whitespace()).collect();
        let times_text: String = times_text.chars().filter(|c| !c.is_whitespace()).collect();
        if days_text.is_empty() {
            return Err(format!(
                "`{text}` names no day: write days then times, like \"Mon-Fri 08:00-18:00\""
            ));
        }
        let mut days = 0u8;
        for item in days_text.split(',') {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (parse_day(a)?, parse_day(b)?);
                    // Fri-Mon wraps over the weekend.
                    let mut d = a;
                    loop {
                        days |= 1 << d;
                        if d == b {
                            break;
                        }
                        d = (d + 1) % 7;
                    }
                }
                None => days |= 1 << parse_day(item)?,
            }
        }
        let mut ranges = Vec::new();
        if !times_text.is_empty() {
            for item in times_text.split(',') {
                let (a, b) = item
                    .split_once('-')
                    .ok_or_else(|| format!("`{item}` is not a time range HH:MM-HH:MM"))?;
                let (start, end) = (parse_clock(a, false)?, parse_clock(b, true)?);
                if start == end {
                    return Err(format!(
                        "`{item}` is empty (start equals end); leave the times out for the whole day"
                    ));
                }
                ranges.push((start, end));
            }
        }
        Ok(DayTimeWindow {
            days,
            ranges,
            text: text.trim().to_owned(),
        })
    }
}

impl<'de> Deserialize<'de> for DayTimeWindow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "a day-and-time window like \"Mon-Fri 08:00-18:00\"")
    }
}

/// The minutes of a week (Monday 00:00 is minute 0) in which a policy's
/// day-and-time condition holds.
#[derive(Clone, PartialEq, Eq)]
pub struct WeekMask {
    bits: [u64; WORDS],
}

impl fmt::Debug for WeekMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        write!(f, "WeekMask({n} minutes)")
    }
}

impl WeekMask {
    /// The union of `windows`.
    pub fn from_windows(windows: &[DayTimeWindow]) -> WeekMask {
        let mut mask = WeekMask { bits: [0; WORDS] };
        for w in windows {
            w.add_to(&mut mask);
        }
        mask
    }

    fn set_range(&mut self, start: u32, end: u32) {
        for m in start..end.min(WEEK_MINUTES) {
            self.bits[(m / 64) as usize] |= 1 << (m % 64);
        }
    }

    /// Whether minute `m` of the week is in the mask.
    pub fn contains(&self, m: u32) -> bool {
        m < WEEK_MINUTES && self.bits[(m / 64) as usize] & (1 << (m % 64)) != 0
    }

    /// Whether no minute is in the mask.
    pub fn is_empty(&self) -> bool {
        self.bits.iter().all(|w| *w == 0)
    }

    /// How many consecutive minutes from `m` on (inclusive, wrapping from
    /// Sunday into Monday) are in the mask; `None` when every minute of the
    /// week is, so the window never closes.
    pub fn run_from(&self, m: u32) -> Option<u32> {
        // A word at a time: at most 158 + 1 steps around the week.
        let mut n = 0;
        let mut pos = m % WEEK_MINUTES;
        while n < WEEK_MINUTES {
            let bit = pos % 64;
            let in_word = (64 - bit).min(WEEK_MINUTES - pos);
            let ones = (self.bits[(pos / 64) as usize] >> bit)
                .trailing_ones()
                .min(in_word);
            n += ones;
            if ones < in_word {
                return Some(n.min(WEEK_MINUTES));
            }
            pos = (pos + ones) % WEEK_MINUTES;
        }
        None
    }

    /// [`WeekMask::run_from`], a minute at a time: the reference the
    /// word-wise version is tested against.
    #[cfg(test)]
    fn run_from_slowly(&self, m: u32) -> Option<u32> {
        (0..WEEK_MINUTES).find(|n| !self.contains((m + n) % WEEK_MINUTES))
    }
}

/// `[policies] time_zone`: how the caller's instant becomes a wall-clock
/// time for day-and-time windows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZoneSetting {
    name: String,
    zone: TimeZone,
}

impl Default for TimeZoneSetting {
    fn default() -> Self {
        TimeZoneSetting {
            name: "UTC".into(),
            zone: TimeZone::UTC,
        }
    }
}

impl TimeZoneSetting {
    /// The name as configured.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The wall-clock time of `t` in this zone, or `None` when `t` is
    /// outside the years -9999..=9999 that civil time covers.
    pub fn local(&self, t: SystemTime) -> Option<LocalTime> {
        let ts = Timestamp::try_from(t).ok()?;
        let zoned = ts.to_zoned(self.zone.clone());
        let day = zoned.weekday().to_monday_zero_offset() as u32;
        let minute = day * u32::from(DAY) + zoned.hour() as u32 * 60 + zoned.minute() as u32;
        Some(LocalTime {
            zoned,
            minute_of_week: minute,
        })
    }
}

impl FromStr for TimeZoneSetting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let zone = if s.eq_ignore_ascii_case("utc") {
            TimeZone::UTC
        } else if s.starts_with(['+', '-']) {
            let bad = || format!("`{s}` is not a UTC offset like \"+01:00\" or \"-05:30\"");
            let negative = s.starts_with('-');
            let (h, m) = s[1..].split_once(':').ok_or_else(bad)?;
            if h.len() != 2 || m.len() != 2 {
                return Err(bad());
            }
            let h: i32 = h.parse().map_err(|_| bad())?;
            let m: i32 = m.parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            let secs = (h * 3600 + m * 60) * if negative { -1 } else { 1 };
            TimeZone::fixed(Offset::from_seconds(secs).map_err(|_| bad())?)
        } else {
            TimeZone::get(s).map_err(|_| {
                format!(
                    "`{s}` is not a time zone: write \"UTC\", an offset like \"+01:00\", or an IANA name like \"Europe/Berlin\""
                )
            })?
        };
        Ok(TimeZoneSetting {
            name: s.to_owned(),
            zone,
        })
    }
}

impl<'de> Deserialize<'de> for TimeZoneSetting {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        via_str(d, "a time zone")
    }
}

/// An instant as wall-clock time in the configured zone.
#[derive(Debug, Clone)]
pub struct LocalTime {
    zoned: Zoned,
    minute_of_week: u32,
}

impl LocalTime {
    /// Minutes since Monday 00:00 local time.
    pub fn minute_of_week(&self) -> u32 {
        self.minute_of_week
    }

    /// How long from this instant until `mask` stops holding, following
    /// the zone's rules (a window ending 18:00 ends at 18:00 local time
    /// even across a daylight saving change). `None` when the mask holds
    /// all week or the end cannot be represented; zero when the mask does
    /// not hold now.
    pub fn time_left_in(&self, mask: &WeekMask) -> Option<Duration> {
        let minutes = mask.run_from(self.minute_of_week)?;
        let dt = self.zoned.datetime();
        let minute_start = DateTime::new(
            dt.year(),
            dt.month(),
            dt.day(),
            dt.hour(),
            dt.minute(),
            0,
            0,
        )
        .ok()?;
        let end = minute_start
            .checked_add(Span::new().minutes(i64::from(minutes)))
            .ok()?;
        // A wall-clock end that falls in a DST gap or fold: take the
        // `compatible` reading (RFC 5545 §3.3.5's rule, jiff's default).
        let end = self
            .zoned
            .time_zone()
            .to_ambiguous_timestamp(end)
            .compatible()
            .ok()?;
        let left = end.duration_since(self.zoned.timestamp());
        Some(Duration::try_from(left).unwrap_or(Duration::ZERO))
    }
}

impl fmt::Display for LocalTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = DAY_NAMES[(self.minute_of_week / u32::from(DAY)) as usize % 7];
        write!(
            f,
            "{day} {:02}:{:02}",
            self.zoned.hour(),
            self.zoned.minute()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> SystemTime {
        // RFC 3339 instant.
        let ts: Timestamp = s.parse().unwrap();
        SystemTime::from(ts)
    }

    fn window(s: &str) -> DayTimeWindow {
        s.parse().unwrap()
    }

    fn minute(day: u32, h: u32, m: u32) -> u32 {
        day * 1440 + h * 60 + m
    }

    #[test]
    fn weekdays_business_hours() {
        let mask = WeekMask::from_windows(&[window("Mon-Fri 08:00-18:00")]);
        assert!(mask.contains(minute(0, 8, 0)));
        assert!(mask.contains(minute(4, 17, 59)));
        assert!(!mask.contains(minute(4, 18, 0)));
        assert!(!mask.contains(minute(0, 7, 59)));
        assert!(!mask.contains(minute(5, 12, 0)));
        assert_eq!(mask.run_from(minute(2, 17, 0)), Some(60));
        assert_eq!(mask.run_from(minute(2, 19, 0)), Some(0));
    }

    #[test]
    fn past_midnight_and_wrapping_days() {
        // Sunday night runs into Monday morning.
        let mask = WeekMask::from_windows(&[window("Sun 22:00-06:00")]);
        assert!(mask.contains(minute(6, 23, 0)));
        assert!(mask.contains(minute(0, 5, 59)));
        assert!(!mask.contains(minute(0, 6, 0)));
        assert!(!mask.contains(minute(6, 21, 59)));
        assert_eq!(mask.run_from(minute(6, 22, 0)), Some(8 * 60));
        // Fri-Mon wraps over the weekend: Fri, Sat, Sun, Mon, not Tue.
        let w = window("fri-MONDAY");
        assert_eq!(w.days, 0b111_0001);
    }

    #[test]
    fn several_ranges_and_whole_days() {
        let mask = WeekMask::from_windows(&[
            window("Mon, Wed 08:00-12:00, 13:00-24:00"),
            window("Sat,Sun"),
        ]);
        assert!(mask.contains(minute(2, 11, 59)));
        assert!(!mask.contains(minute(2, 12, 30)));
        assert!(mask.contains(minute(2, 23, 59)));
        assert!(!mask.contains(minute(1, 9, 0)));
        assert!(mask.contains(minute(5, 0, 0)) && mask.contains(minute(6, 23, 59)));
        // Saturday 00:00 to Sunday 24:00, then Monday 00:00 is not in it.
        assert_eq!(mask.run_from(minute(5, 0, 0)), Some(2 * 1440));
        let all = WeekMask::from_windows(&[window("Mon-Sun")]);
        assert_eq!(all.run_from(0), None);
    }

    #[test]
    fn bad_windows_say_why() {
        for (text, needle) in [
            ("08:00-18:00", "names no day"),
            ("Mon-Fry 08:00-18:00", "`Fry` is not a day"),
            ("Mon 8-18", "not a time HH:MM"),
            ("Mon 08:00", "not a time range"),
            ("Mon 08:00-08:00", "empty"),
            ("Mon 25:00-26:00", "not a time of day"),
            ("Mon 24:00-01:00", "not a time of day"),
            ("Mon 08:60-09:00", "not a time of day"),
        ] {
            let e = text.parse::<DayTimeWindow>().unwrap_err();
            assert!(e.contains(needle), "{text}: {e}");
        }
        assert!("Mon 00:00-24:00".parse::<DayTimeWindow>().is_ok());
    }

    #[test]
    fn time_zones_move_the_wall_clock() {
        // 2026-11-22 is a Sunday.
        let t = at("2026-11-22T09:30:00Z");
        let utc = TimeZoneSetting::default().local(t).unwrap();
        assert_eq!(utc.minute_of_week(), minute(6, 9, 30));
        assert_eq!(utc.to_string(), "Sun 09:30");
        let plus: TimeZoneSetting = "+05:30".parse().unwrap();
        assert_eq!(plus.local(t).unwrap().minute_of_week(), minute(6, 15, 0));
        let minus: TimeZoneSetting = "-10:00".parse().unwrap();
        assert_eq!(minus.local(t).unwrap().to_string(), "Sat 23:30");
        let berlin: TimeZoneSetting = "Europe/Berlin".parse().unwrap();
        assert_eq!(berlin.local(t).unwrap().to_string(), "Sun 10:30");
        // Summer time: UTC+2.
        let summer = berlin.local(at("2026-07-01T09:30:00Z")).unwrap();
        assert_eq!(summer.to_string(), "Wed 11:30");
        for bad in ["Mars/Olympus", "+1:00", "+24:00", "01:00", ""] {
            assert!(bad.parse::<TimeZoneSetting>().is_err(), "{bad}");
        }
    }

    #[test]
    fn time_left_follows_daylight_saving() {
        let mask = WeekMask::from_windows(&[window("Sun 00:00-06:00")]);
        let berlin: TimeZoneSetting = "Europe/Berlin".parse().unwrap();
        // 2026-03-29 (Sunday): clocks go from 02:00 to 03:00 CET→CEST.
        // 00:30 local (23:30Z the day before) to 06:00 local (04:00Z) is
        // 4 h 30 min of real time, not 5 h 30 min.
        let local = berlin.local(at("2026-03-28T23:30:00Z")).unwrap();
        assert_eq!(local.to_string(), "Sun 00:30");
        assert_eq!(
            local.time_left_in(&mask),
            Some(Duration::from_secs(4 * 3600 + 30 * 60))
        );
        // Seconds into the minute count: 17:59:30 leaves 30 s to 18:00.
        let mask = WeekMask::from_windows(&[window("Mon-Fri 08:00-18:00")]);
        let utc = TimeZoneSetting::default();
        let local = utc.local(at("2026-11-20T17:59:30Z")).unwrap();
        assert_eq!(local.time_left_in(&mask), Some(Duration::from_secs(30)));
        let all = WeekMask::from_windows(&[window("Mon-Sun")]);
        assert_eq!(local.time_left_in(&all), None);
    }

    proptest::proptest! {
        #[test]
        fn word_wise_run_matches_the_minute_by_minute_one(
            ranges in proptest::collection::vec((0u32..WEEK_MINUTES, 0u32..3000), 0..6),
            full in proptest::bool::ANY,
            start in 0u32..WEEK_MINUTES,
        ) {
            let mut mask = WeekMask { bits: [0; WORDS] };
            if full {
                mask.set_range(0, WEEK_MINUTES);
            }
            for (a, len) in ranges {
                mask.set_range(a, a + len);
            }
            proptest::prop_assert_eq!(mask.run_from(start), mask.run_from_slowly(start));
        }
    }

    #[test]
    fn runs_at_the_edges_of_the_week() {
        let mut mask = WeekMask { bits: [0; WORDS] };
        mask.set_range(0, WEEK_MINUTES);
        assert_eq!(mask.run_from(5), None);
        mask.bits[0] &= !(1 << 4);
        // From minute 5 all the way round to minute 4.
        assert_eq!(mask.run_from(5), Some(WEEK_MINUTES - 1));
        assert_eq!(mask.run_from(4), Some(0));
        assert_eq!(mask.run_from(WEEK_MINUTES - 1), Some(5));
    }

    #[test]
    fn instants_beyond_civil_time_are_not_local() {
        let far = SystemTime::UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400 * 1000);
        assert!(TimeZoneSetting::default().local(far).is_none());
    }
}
