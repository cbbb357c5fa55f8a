//! Choosing a dial-up POP: by service type (the profile's `Mask&NAME` /
//! `Match&NAME` pair in `[ISP]`), by country and by region.

use crate::pop::Pop;

/// A service-type filter. CM-FORMATS §1: a POP matches when
/// `(flags & mask) == match` (an inference from CMAK-built profiles, whose
/// mask/match values are the MS-CPSP flag bits, e.g. `Mask&MultiCastModem
/// =0x0024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceFilter {
    pub mask: u32,
    pub matches: u32,
}

impl ServiceFilter {
    pub fn accepts(&self, pop: &Pop) -> bool {
        pop.flags.0 & self.mask == self.matches
    }

    /// Parses a `.cms` value such as `0x0024` or `36`.
    pub fn parse_value(s: &str) -> Option<u32> {
        let s = s.trim();
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(h) => u32::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    }
}

/// The POPs a user may dial: passing `filter` (if any), in `country`, and
/// in `region` (if given; MS-CPSP §2.1: Region Id 0 serves all regions).
/// In phone book order.
pub fn select_pops(
    pops: &[Pop],
    filter: Option<ServiceFilter>,
    country: u32,
    region: Option<u32>,
) -> Vec<&Pop> {
    pops.iter()
        .filter(|p| filter.is_none_or(|f| f.accepts(p)))
        .filter(|p| p.country == country)
        .filter(|p| region.is_none_or(|r| p.region == 0 || p.region == r))
        .collect()
}
