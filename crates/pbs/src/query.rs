//! The update query Connection Manager sends (seed, step 7.6):
//! `GET /pbserver/pbserver.dll?osarch=0&ostype=0&osver=1&cmver=1&lcid=1033&pbver=V&pb=NAME`.
//!
//! Parameter names are matched case-insensitively (Windows clients and
//! probes write `PBVer`, `PB`, `OSArch`). `pb` and `pbver` are required;
//! the client-description parameters are optional (the Nessus probe sends
//! no `osver`/`cmver`) but must be numbers when present. Unknown
//! parameters are ignored; a repeated one is malformed. No allocation but
//! the returned name.

use phonebook::name::check_name;

/// A well-formed query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query<'a> {
    /// The phone book name (checked against the naming rules).
    pub pb: &'a str,
    /// The client's phone-book version (0 = it has none).
    pub pbver: u32,
    pub osarch: Option<u32>,
    pub ostype: Option<u32>,
    pub osver: Option<u32>,
    pub cmver: Option<u32>,
    pub lcid: Option<u32>,
}

/// Why a query is refused (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("no query string")]
    Empty,
    #[error("parameter {0} is missing")]
    Missing(&'static str),
    #[error("parameter {0} is malformed")]
    Malformed(&'static str),
    #[error("parameter {0} is repeated")]
    Repeated(&'static str),
}

const NAMES: [&str; 7] = ["pb", "pbver", "osarch", "ostype", "osver", "cmver", "lcid"];

fn number(v: &str, name: &'static str) -> Result<u32, QueryError> {
    if v.is_empty() || v.len() > 10 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::Malformed(name));
    }
    v.parse().map_err(|_| QueryError::Malformed(name))
}

/// Parses a raw query string (without the `?`).
pub fn parse_query(raw: Option<&str>) -> Result<Query<'_>, QueryError> {
    let raw = raw.filter(|r| !r.is_empty()).ok_or(QueryError::Empty)?;
    let mut values: [Option<&str>; 7] = [None; 7];
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(k)) {
            if values[i].replace(v).is_some() {
                return Err(QueryError::Repeated(NAMES[i]));
            }
        }
    }
    let pb = values[0].ok_or(QueryError::Missing("pb"))?;
    check_name(pb).map_err(|_| QueryError::Malformed("pb"))?;
    let pbver = number(values[1].ok_or(QueryError::Missing("pbver"))?, "pbver")?;
    let opt = |i: usize| values[i].map(|v| number(v, NAMES[i])).transpose();
    Ok(Query {
        pb,
        pbver,
        osarch: opt(2)?,
        ostype: opt(3)?,
        osver: opt(4)?,
        cmver: opt(5)?,
        lcid: opt(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_example_parses() {
        let q = parse_query(Some(
            "osarch=0&ostype=0&osver=1&cmver=1&lcid=1033&pbver=7&pb=Corp",
        ))
        .unwrap();
        assert_eq!(
            q,
            Query {
                pb: "Corp",
                pbver: 7,
                osarch: Some(0),
                ostype: Some(0),
                osver: Some(1),
                cmver: Some(1),
                lcid: Some(1033)
            }
        );
    }

    #[test]
    fn names_are_case_insensitive_and_optional_ones_optional() {
        // The Nessus probe's spelling, without osver/cmver.
        let q = parse_query(Some("OSArch=0&OSType=2&LCID=1033&PBVer=0&PB=Corp&extra=x")).unwrap();
        assert_eq!(
            (q.pb, q.pbver, q.ostype, q.osver),
            ("Corp", 0, Some(2), None)
        );
    }

    #[test]
    fn malformed_queries() {
        let cases: &[(Option<&str>, QueryError)] = &[
            (None, QueryError::Empty),
            (Some(""), QueryError::Empty),
            (Some("pbver=1"), QueryError::Missing("pb")),
            (Some("pb=Corp"), QueryError::Missing("pbver")),
            (Some("pb=Corp&pbver="), QueryError::Malformed("pbver")),
            (Some("pb=Corp&pbver=-1"), QueryError::Malformed("pbver")),
            (
                Some("pb=Corp&pbver=99999999999"),
                QueryError::Malformed("pbver"),
            ),
            (
                Some("pb=Corp&pbver=1&PBVER=2"),
                QueryError::Repeated("pbver"),
            ),
            (Some("pb=12345&pbver=1"), QueryError::Malformed("pb")),
            (Some("pb=Corp%20X&pbver=1"), QueryError::Malformed("pb")),
            (Some("pb=TooLongName&pbver=1"), QueryError::Malformed("pb")),
            (
                Some("pb=Corp&pbver=1&lcid=en-us"),
                QueryError::Malformed("lcid"),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_query(*raw).unwrap_err(), *want, "{raw:?}");
        }
    }
}
