//! The DHCP leases this server holds, kept in the state directory
//! (`dhcp-leases`) so that a process killed without its clean stop
//! (`kill -9`, a crash, a power cut) does not leave them taken at the
//! intranet's DHCP server until they expire.
//!
//! RRAS releases its DHCP addresses when the service stops (RFC 2131
//! §4.4.6, DHCPRELEASE). A process that dies cannot; the next one reads
//! this file, sends the DHCPRELEASE for every lease in it, and clears it
//! (dhcp_source.rs). Each lease was taken under its own identity (chaddr
//! and client identifier), which a new process does not reuse, so without
//! the file the leases could only expire.
//!
//! Format (text, one lease a line, what a DHCPRELEASE needs):
//!
//! ```text
//! ras-dhcp-leases 1
//! <leased address> <DHCP server identifier> <chaddr as aa:bb:cc:dd:ee:ff>
//! ```
//!
//! Written atomically with mode 0600 ([`StateDir::write_private`]), at most
//! [`MAX_LEASES`] lines. A file that does not parse is reported and
//! ignored, never fatal: it only costs leases that expire on their own.

use std::io::Read;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use dhcp::HeldLease;

use crate::state::{StateDir, StateError};

/// The file's name in the state directory.
pub const FILE: &str = "dhcp-leases";

/// The first line.
const HEADER: &str = "ras-dhcp-leases 1";

/// Leases kept at most (the engine's default `max_leases`); more in a file
/// makes it foreign.
pub const MAX_LEASES: usize = 4096;

/// Bytes read at most: a full file is about 45 bytes a line.
const MAX_BYTES: u64 = 64 * (MAX_LEASES as u64 + 1);

/// Why the file's content is not a lease list.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a lease list (first line is not \"{HEADER}\")")]
    Header,
    #[error("line {line}: {what}")]
    Line { line: usize, what: &'static str },
    #[error("more than {MAX_LEASES} leases")]
    TooMany,
    #[error("larger than {MAX_BYTES} bytes")]
    TooLarge,
}

/// The file could not be read or is not ours.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Format {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
}

/// The file's text for `leases`.
pub fn encode(leases: &[HeldLease]) -> String {
    let mut out = String::with_capacity(HEADER.len() + 1 + leases.len() * 45);
    out.push_str(HEADER);
    out.push('\n');
    for l in leases.iter().take(MAX_LEASES) {
        let c = l.chaddr;
        out.push_str(&format!(
            "{} {} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}\n",
            l.addr, l.server, c[0], c[1], c[2], c[3], c[4], c[5]
        ));
    }
    out
}

/// The leases in `bytes`, or why it is not a file of ours.
pub fn decode(bytes: &[u8]) -> Result<Vec<HeldLease>, FormatError> {
    if bytes.len() as u64 > MAX_BYTES {
        return Err(FormatError::TooLarge);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| FormatError::Header)?;
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return Err(FormatError::Header);
    }
    let mut leases = Vec::new();
    for (i, line) in lines.enumerate() {
        let line_no = i + 2;
        let bad = |what| FormatError::Line {
            line: line_no,
            what,
        };
        if line.is_empty() {
            continue;
        }
        if leases.len() == MAX_LEASES {
            return Err(FormatError::TooMany);
        }
        let mut fields = line.split(' ');
        let (Some(addr), Some(server), Some(chaddr), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("expected three fields"));
        };
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad("bad leased address"))?;
        let server: Ipv4Addr = server.parse().map_err(|_| bad("bad server address"))?;
        if !unicast(addr) || !unicast(server) {
            return Err(bad("not a unicast address"));
        }
        let chaddr = parse_chaddr(chaddr).ok_or_else(|| bad("bad hardware address"))?;
        leases.push(HeldLease {
            addr,
            server,
            chaddr,
        });
    }
    Ok(leases)
}

fn unicast(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

fn parse_chaddr(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for o in &mut out {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *o = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// The leases recorded in `state` (none when there is no file).
pub fn read(state: &Path) -> Result<Vec<HeldLease>, ReadError> {
    let path = state.join(FILE);
    let io = |source| ReadError::Io {
        path: path.clone(),
        source,
    };
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io(e)),
    };
    let mut bytes = Vec::new();
    // One byte more than allowed: a larger file is refused, not truncated.
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    decode(&bytes).map_err(|source| ReadError::Format {
        path: path.clone(),
        source,
    })
}

/// Records `leases` (atomically, mode 0600).
pub fn write(state: &StateDir, leases: &[HeldLease]) -> Result<(), StateError> {
    state.write_private(FILE, encode(leases).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(last: u8) -> HeldLease {
        HeldLease {
            addr: Ipv4Addr::new(10, 80, 0, last),
            server: Ipv4Addr::new(10, 80, 0, 1),
            chaddr: [0x02, 0xab, 0xcd, 0, 0, last],
        }
    }

    #[test]
    fn leases_round_trip_through_the_text() {
        let leases = vec![lease(100), lease(101), lease(255)];
        let text = encode(&leases);
        assert_eq!(
            text,
            "ras-dhcp-leases 1\n10.80.0.100 10.80.0.1 02:ab:cd:00:00:64\n\
             10.80.0.101 10.80.0.1 02:ab:cd:00:00:65\n10.80.0.255 10.80.0.1 02:ab:cd:00:00:ff\n"
        );
        assert_eq!(decode(text.as_bytes()).unwrap(), leases);
        assert_eq!(decode(encode(&[]).as_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn a_foreign_or_damaged_file_is_refused_with_the_reason() {
        assert_eq!(decode(b""), Err(FormatError::Header));
        assert_eq!(decode(b"\xff\xfe"), Err(FormatError::Header));
        assert_eq!(decode(b"[server]\nx = 1\n"), Err(FormatError::Header));
        let bad = |line: &str| decode(format!("{HEADER}\n{line}\n").as_bytes());
        assert!(matches!(
            bad("10.80.0.100 10.80.0.1"),
            Err(FormatError::Line { line: 2, .. })
        ));
        assert!(bad("10.80.0.100 10.80.0.1 02:ab:cd:00:00:01 extra").is_err());
        assert!(bad("10.80.0.300 10.80.0.1 02:ab:cd:00:00:01").is_err());
        assert!(bad("10.80.0.100 255.255.255.255 02:ab:cd:00:00:01").is_err());
        assert!(bad("0.0.0.0 10.80.0.1 02:ab:cd:00:00:01").is_err());
        assert!(bad("10.80.0.100 10.80.0.1 02:ab:cd:00:00").is_err());
        assert!(bad("10.80.0.100 10.80.0.1 02:ab:cd:00:00:01:07").is_err());
        assert!(bad("10.80.0.100 10.80.0.1 02:ab:cd:00:00:g1").is_err());
        assert!(bad("10.80.0.100 10.80.0.1 2:ab:cd:00:00:001").is_err());
        // A half-written file cannot exist (temp + rename), but a cut one
        // parses as far as whole lines go or is refused.
        let text = encode(&[lease(100), lease(101)]);
        let cut = &text.as_bytes()[..text.len() - 5];
        assert!(decode(cut).is_err());
    }

    #[test]
    fn the_file_is_bounded() {
        let many: Vec<HeldLease> = (0..MAX_LEASES + 10)
            .map(|i| HeldLease {
                addr: Ipv4Addr::from(0x0a00_0000 + i as u32 + 1),
                ..lease(1)
            })
            .collect();
        let text = encode(&many);
        assert_eq!(
            text.lines().count(),
            MAX_LEASES + 1,
            "writes at most the bound"
        );
        assert_eq!(decode(text.as_bytes()).unwrap().len(), MAX_LEASES);
        let over = format!("{text}10.80.0.7 10.80.0.1 02:ab:cd:00:00:07\n");
        assert_eq!(decode(over.as_bytes()), Err(FormatError::TooMany));
        let huge = vec![b'\n'; MAX_BYTES as usize + 1];
        assert_eq!(decode(&huge), Err(FormatError::TooLarge));
    }

    #[test]
    fn read_write_in_the_state_directory() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![], "no file: no leases");
        write(&state, &[lease(100), lease(101)]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![lease(100), lease(101)]);
        let mode = std::fs::metadata(dir.path().join(FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(FILE), "garbage").unwrap();
        let e = read(dir.path()).unwrap_err().to_string();
        assert!(e.contains(FILE) && e.contains("not a lease list"), "{e}");
        write(&state, &[]).unwrap();
        assert_eq!(read(dir.path()).unwrap(), vec![]);
    }
}
