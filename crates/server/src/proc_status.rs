//! A thread's credentials as `/proc/PID/task/TID/status` shows them
//! (proc(5)): the ids, the supplementary groups, the five capability sets
//! and `no_new_privs`. The privilege drop reads them back to know which
//! threads still have to drop, and tests read them to prove the drop.

use std::path::Path;

/// Capability number of CAP_NET_ADMIN (linux/capability.h).
pub const CAP_NET_ADMIN: u32 = 12;
/// Capability number of CAP_NET_RAW (linux/capability.h).
pub const CAP_NET_RAW: u32 = 13;

/// One thread's credentials.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ThreadCredentials {
    /// Real, effective, saved and filesystem user ids.
    pub uid: [u32; 4],
    /// Real, effective, saved and filesystem group ids.
    pub gid: [u32; 4],
    /// Supplementary groups, sorted.
    pub groups: Vec<u32>,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub cap_bounding: u64,
    pub cap_ambient: u64,
    pub no_new_privs: bool,
}

impl ThreadCredentials {
    /// Parses the text of a status file; `None` when a field is missing
    /// or malformed (a kernel too old for ambient capabilities, 4.3).
    pub fn parse(text: &str) -> Option<ThreadCredentials> {
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        let ids = |name: &str| -> Option<[u32; 4]> {
            let v: Vec<u32> = field(name)?
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            v.try_into().ok()
        };
        let caps = |name: &str| u64::from_str_radix(field(name)?, 16).ok();
        let mut groups: Vec<u32> = field("Groups")?
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .ok()?;
        groups.sort_unstable();
        Some(ThreadCredentials {
            uid: ids("Uid")?,
            gid: ids("Gid")?,
            groups,
            cap_inheritable: caps("CapInh")?,
            cap_permitted: caps("CapPrm")?,
            cap_effective: caps("CapEff")?,
            cap_bounding: caps("CapBnd")?,
            cap_ambient: caps("CapAmb")?,
            no_new_privs: field("NoNewPrivs")? == "1",
        })
    }

    /// Reads one status file.
    pub fn read(path: &Path) -> std::io::Result<ThreadCredentials> {
        let text = std::fs::read_to_string(path)?;
        ThreadCredentials::parse(&text).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: unexpected format", path.display()),
            )
        })
    }
}

/// The ids of the threads of process `pid` now (`/proc/PID/task`).
pub fn thread_ids(pid: u32) -> std::io::Result<Vec<u32>> {
    let mut tids = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// The credentials of every thread of process `pid`, by thread id; a
/// thread that ended between the listing and the read is left out.
pub fn all_threads(pid: u32) -> std::io::Result<Vec<(u32, ThreadCredentials)>> {
    let mut out = Vec::new();
    for tid in thread_ids(pid)? {
        match ThreadCredentials::read(Path::new(&format!("/proc/{pid}/task/{tid}/status"))) {
            Ok(c) => out.push((tid, c)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// The names of the capabilities in `set` (capabilities(7) spelling), for
/// the log line: "CAP_NET_ADMIN, CAP_NET_RAW".
pub fn capability_names(set: u64) -> String {
    let names: Vec<String> = (0..64)
        .filter(|c| set & (1u64 << c) != 0)
        .map(|c| match c {
            CAP_NET_ADMIN => "CAP_NET_ADMIN".to_owned(),
            CAP_NET_RAW => "CAP_NET_RAW".to_owned(),
            10 => "CAP_NET_BIND_SERVICE".to_owned(),
            other => format!("capability {other}"),
        })
        .collect();
    if names.is_empty() {
        "no capabilities".to_owned()
    } else {
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Name:\tras\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\n\
Uid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nFDSize:\t64\n\
Groups:\t65534 100 \nNoNewPrivs:\t1\nCapInh:\t0000000000003000\nCapPrm:\t0000000000003000\n\
CapEff:\t0000000000003000\nCapBnd:\t0000000000003000\nCapAmb:\t0000000000003000\n";

    #[test]
    fn parses_ids_groups_and_capability_sets() {
        let c = ThreadCredentials::parse(SAMPLE).unwrap();
        assert_eq!(c.uid, [65534; 4]);
        assert_eq!(c.gid, [65534; 4]);
        assert_eq!(c.groups, vec![100, 65534]);
        let net = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);
        assert_eq!(c.cap_permitted, net);
        assert_eq!(c.cap_effective, net);
        assert_eq!(c.cap_bounding, net);
        assert_eq!(c.cap_ambient, net);
        assert!(c.no_new_privs);
    }

    #[test]
    fn a_status_without_ambient_capabilities_is_not_understood() {
        let old: String = SAMPLE
            .lines()
            .filter(|l| !l.starts_with("CapAmb"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(ThreadCredentials::parse(&old), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let threads = all_threads(std::process::id()).unwrap();
        assert!(!threads.is_empty());
        // Every thread of one process shares the real uid it started with.
        let uid = threads[0].1.uid[0];
        assert!(threads.iter().all(|(_, c)| c.uid[0] == uid));
    }

    #[test]
    fn names_the_kept_capabilities() {
        assert_eq!(
            capability_names((1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW)),
            "CAP_NET_ADMIN, CAP_NET_RAW"
        );
        assert_eq!(capability_names(0), "no capabilities");
    }
}
