//! A NAT between the interop VM and `ras server`: the server runs in a
//! namespace of its own behind `vm.ns`, which masquerades everything that
//! leaves towards it, so guest clients reach it from the NAT's address
//! with NAT-chosen ports (what RFC 3947 / RFC 7296 §2.23 NAT detection
//! sees). Everything created is undone by the guard's `Drop`.

use std::net::Ipv4Addr;
use std::process::Command;

/// The namespace `ras server` runs in, behind the NAT.
pub const SERVER_NS: &str = "ras-natsrv";
/// The server's address, and the NAT's address towards it.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
pub const NAT_IP: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 2);
/// The veth between the server namespace and `vm.ns`.
pub const VETH_SERVER: &str = "rnat-srv0";
pub const VETH_NAT: &str = "rnat-nat0";
/// The nft table (in `vm.ns`) that holds the masquerade.
pub const NFT_TABLE: &str = "ras_nat_interop";
/// Client B's subnet inside the guest: `vm.ns` routes it back via the guest.
pub const GUEST_INNER_NET: &str = "10.89.0.0/24";

/// Runs a command; a failure is an error carrying its stderr.
pub fn sh(args: &[&str]) -> Result<String, String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// The host half of the lab: the server namespace, the veth to `vm.ns`,
/// forwarding and the masquerade in `vm.ns`, the route back to client B.
/// Dropping it undoes all of it (also after a failed assertion).
pub struct NatLab {
    vm_ns: String,
    /// `vm.ns`'s `net.ipv4.ip_forward` before we turned it on.
    forwarding_was: String,
}

impl NatLab {
    pub fn create(vm_ns: &str) -> NatLab {
        let forwarding_was = sh(&[
            "ip",
            "netns",
            "exec",
            vm_ns,
            "sysctl",
            "-n",
            "net.ipv4.ip_forward",
        ])
        .expect("read forwarding")
        .trim()
        .to_owned();
        let lab = NatLab {
            vm_ns: vm_ns.to_owned(),
            forwarding_was,
        };
        // Leftovers of a run that was killed before its guard ran.
        lab.remove();
        let ruleset = format!(
            "table ip {NFT_TABLE} {{\n\
             \tchain postrouting {{\n\
             \t\ttype nat hook postrouting priority srcnat; policy accept;\n\
             \t\toifname \"{VETH_NAT}\" masquerade\n\
             \t}}\n\
             }}\n"
        );
        let nft_file = std::env::temp_dir().join(format!("ras-nat-{}.nft", std::process::id()));
        std::fs::write(&nft_file, ruleset).unwrap();
        let nft_path = nft_file.to_str().unwrap();
        let server_addr = format!("{SERVER_IP}/24");
        let nat_addr = format!("{NAT_IP}/24");
        let guest = "10.77.0.2";
        let steps: Vec<Vec<&str>> = vec![
            vec!["ip", "netns", "add", SERVER_NS],
            vec!["ip", "-n", SERVER_NS, "link", "set", "lo", "up"],
            vec![
                "ip",
                "link",
                "add",
                VETH_SERVER,
                "netns",
                SERVER_NS,
                "type",
                "veth",
                "peer",
                "name",
                VETH_NAT,
                "netns",
                vm_ns,
            ],
            vec![
                "ip",
                "-n",
                SERVER_NS,
                "addr",
                "add",
                &server_addr,
                "dev",
                VETH_SERVER,
            ],
            vec!["ip", "-n", SERVER_NS, "link", "set", VETH_SERVER, "up"],
            vec!["ip", "-n", vm_ns, "addr", "add", &nat_addr, "dev", VETH_NAT],
            vec!["ip", "-n", vm_ns, "link", "set", VETH_NAT, "up"],
            vec![
                "ip",
                "-n",
                vm_ns,
                "route",
                "add",
                GUEST_INNER_NET,
                "via",
                guest,
            ],
            vec![
                "ip",
                "netns",
                "exec",
                vm_ns,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ],
            vec!["ip", "netns", "exec", vm_ns, "nft", "-f", nft_path],
        ];
        for step in steps {
            if let Err(e) = sh(&step) {
                let _ = std::fs::remove_file(&nft_file);
                panic!("NAT lab: {e}");
            }
        }
        let _ = std::fs::remove_file(&nft_file);
        lab
    }

    /// Undoes everything; each step may already be gone.
    fn remove(&self) {
        let ns = self.vm_ns.as_str();
        let _ = sh(&[
            "ip", "netns", "exec", ns, "nft", "delete", "table", "ip", NFT_TABLE,
        ]);
        let _ = sh(&["ip", "-n", ns, "route", "del", GUEST_INNER_NET]);
        let forwarding = format!("net.ipv4.ip_forward={}", self.forwarding_was);
        let _ = sh(&["ip", "netns", "exec", ns, "sysctl", "-qw", &forwarding]);
        // Deleting the namespace deletes both ends of the veth; the
        // explicit delete covers a veth left without its namespace.
        let _ = sh(&["ip", "-n", ns, "link", "del", VETH_NAT]);
        let _ = sh(&["ip", "netns", "del", SERVER_NS]);
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        self.remove();
    }
}
