//! Connection Manager profiles remember the tunnel protocol that worked
//! (issue 15, "Automatic type"): when a profile lists several protocols
//! (`[Networking&<TunnelDUN>] VpnStrategy` 6, 7, 8, 14 …), the one whose
//! tunnel last came up is tried first next time, as Windows' Automatic
//! VPN type does. It is kept per profile in the profile's directory
//! beside the `.state` and `.log` files (per user for a per-user install),
//! in `<ShortName>.protocol`, mode 0600. A failure to write it is only a
//! warning: it changes the order of the next attempt, nothing else.

use std::io::Write;
use std::path::{Path, PathBuf};

use profile::model::VpnProtocol;

/// Longest file read (the file holds one word).
const MAX_LEN: u64 = 64;

/// The remembered protocol of one profile.
#[derive(Debug, Clone)]
pub struct ProtocolMemory {
    path: PathBuf,
}

/// The name used in the file and in the log.
pub fn scheme(protocol: VpnProtocol) -> &'static str {
    match protocol {
        VpnProtocol::Sstp => "sstp",
        VpnProtocol::Pptp => "pptp",
        VpnProtocol::L2tp => "l2tp",
        VpnProtocol::Ikev2 => "ikev2",
    }
}

fn named(word: &str) -> Option<VpnProtocol> {
    [
        VpnProtocol::Sstp,
        VpnProtocol::Pptp,
        VpnProtocol::L2tp,
        VpnProtocol::Ikev2,
    ]
    .into_iter()
    .find(|p| scheme(*p) == word)
}

impl ProtocolMemory {
    pub fn new(dir: &Path, short_name: &str) -> ProtocolMemory {
        ProtocolMemory {
            path: dir.join(format!("{short_name}.protocol")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The protocol that last worked; a missing, unreadable or unknown
    /// file is nothing remembered.
    pub fn read(&self) -> Option<VpnProtocol> {
        use std::io::Read;
        let mut text = String::new();
        std::fs::File::open(&self.path)
            .ok()?
            .take(MAX_LEN)
            .read_to_string(&mut text)
            .ok()?;
        named(text.trim())
    }

    /// Remembers `protocol`: a temporary file (0600), then renamed over
    /// the old one, so that a reader sees one whole word.
    pub fn write(&self, protocol: VpnProtocol) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = self.path.with_extension("protocol.tmp");
        let _ = std::fs::remove_file(&tmp);
        let result = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| f.write_all(format!("{}\n", scheme(protocol)).as_bytes()))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// The profile's protocols in the order to try them: `last` (when the
/// profile still lists it) first, the others in the profile's order.
pub fn order(protocols: &[VpnProtocol], last: Option<VpnProtocol>) -> Vec<VpnProtocol> {
    let mut order = protocols.to_vec();
    if let Some(i) = last.and_then(|l| order.iter().position(|p| *p == l)) {
        let p = order.remove(i);
        order.insert(0, p);
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_one_that_worked_goes_first() {
        use VpnProtocol::*;
        let listed = [Ikev2, Sstp, L2tp, Pptp];
        assert_eq!(order(&listed, None), listed.to_vec());
        assert_eq!(order(&listed, Some(L2tp)), vec![L2tp, Ikev2, Sstp, Pptp]);
        assert_eq!(order(&listed, Some(Ikev2)), listed.to_vec());
        // No longer in the profile: the profile's order.
        assert_eq!(order(&[Sstp, Pptp], Some(Ikev2)), vec![Sstp, Pptp]);
    }

    #[test]
    fn kept_privately_per_profile() {
        let dir = tempfile::tempdir().unwrap();
        let memory = ProtocolMemory::new(dir.path(), "corp");
        assert_eq!(memory.read(), None);
        memory.write(VpnProtocol::Pptp).unwrap();
        assert_eq!(memory.read(), Some(VpnProtocol::Pptp));
        let mode = std::fs::metadata(memory.path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        memory.write(VpnProtocol::Ikev2).unwrap();
        assert_eq!(memory.read(), Some(VpnProtocol::Ikev2));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("corp.protocol")).unwrap(),
            "ikev2\n"
        );
        // Another profile in the same directory remembers its own.
        assert_eq!(ProtocolMemory::new(dir.path(), "other").read(), None);
        // Garbage is nothing remembered.
        std::fs::write(memory.path(), "openvpn\n").unwrap();
        assert_eq!(memory.read(), None);
        std::fs::write(memory.path(), "x".repeat(10_000)).unwrap();
        assert_eq!(memory.read(), None);
        // A directory that cannot be written: an error to warn about, and
        // no temporary file left.
        let gone = ProtocolMemory::new(&dir.path().join("missing"), "corp");
        assert!(gone.write(VpnProtocol::Sstp).is_err());
        assert_eq!(gone.read(), None);
    }
}
