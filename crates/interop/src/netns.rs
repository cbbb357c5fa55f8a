//! Network namespaces for end-to-end tests of our own server and client:
//!
//! ```text
//!  <p>-cli1  10.201.1.2 ──veth── 10.201.1.1 ┐
//!  <p>-cli2  10.201.2.2 ──veth── 10.201.2.1 ├ <p>-srv (ras server, forwarding)
//!  <p>-lan   172.31.0.2 ──veth── 172.31.0.1 ┘        pool 10.0.10.0/24 via TUN
//! ```
//! The "intranet" host in `<p>-lan` routes the client pool back through the
//! server. Nothing has a route out of these namespaces. Dropping the
//! [`Topology`] deletes them.

use std::fs::File;
use std::path::Path;
use std::process::Command;

/// A set of namespaces named `<prefix>-srv`, `-cli1`, `-cli2`, `-lan`.
#[derive(Debug)]
pub struct Topology {
    pub prefix: String,
}

/// Addresses of the topology.
pub const SERVER_FOR_CLI1: &str = "10.201.1.1";
pub const SERVER_FOR_CLI2: &str = "10.201.2.1";
pub const LAN_HOST: &str = "172.31.0.2";

fn run(args: &[&str]) -> Result<(), String> {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Topology {
    /// Create the namespaces (removing leftovers of an earlier run first).
    pub fn create(prefix: &str) -> Result<Topology, String> {
        let t = Topology {
            prefix: prefix.to_owned(),
        };
        t.delete();
        let [srv, cli1, cli2, lan] = [t.ns("srv"), t.ns("cli1"), t.ns("cli2"), t.ns("lan")];
        for ns in [&srv, &cli1, &cli2, &lan] {
            run(&["ip", "netns", "add", ns])?;
            run(&["ip", "-n", ns, "link", "set", "lo", "up"])?;
        }
        let links = [
            (&cli1, "10.201.1.2/24", "10.201.1.1/24", "c1"),
            (&cli2, "10.201.2.2/24", "10.201.2.1/24", "c2"),
            (&lan, "172.31.0.2/24", "172.31.0.1/24", "ln"),
        ];
        for (ns, inner, outer, tag) in links {
            let a = format!("{}{tag}a", short(prefix));
            let b = format!("{}{tag}b", short(prefix));
            run(&[
                "ip", "link", "add", &a, "netns", ns, "type", "veth", "peer", "name", &b, "netns",
                &srv,
            ])?;
            run(&["ip", "-n", ns, "addr", "add", inner, "dev", &a])?;
            run(&["ip", "-n", ns, "link", "set", &a, "up"])?;
            run(&["ip", "-n", &srv, "addr", "add", outer, "dev", &b])?;
            run(&["ip", "-n", &srv, "link", "set", &b, "up"])?;
        }
        run(&[
            "ip",
            "netns",
            "exec",
            &srv,
            "sysctl",
            "-qw",
            "net.ipv4.ip_forward=1",
        ])?;
        run(&[
            "ip",
            "netns",
            "exec",
            &srv,
            "sysctl",
            "-qw",
            "net.ipv6.conf.all.forwarding=1",
        ])?;
        run(&[
            "ip",
            "-n",
            &lan,
            "route",
            "add",
            "10.0.10.0/24",
            "via",
            "172.31.0.1",
        ])?;
        Ok(t)
    }

    /// The full name of one of the namespaces ("srv", "cli1", "cli2", "lan").
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    /// A command that runs inside namespace `role`.
    pub fn command(&self, role: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(role), program]);
        c
    }

    /// Run `f` on a thread inside namespace `role`; sockets it makes stay
    /// there.
    pub fn in_ns<T: Send, F: FnOnce() -> T + Send>(&self, role: &str, f: F) -> Result<T, String> {
        in_named_ns(&self.ns(role), f)
    }

    fn delete(&self) {
        for role in ["srv", "cli1", "cli2", "lan"] {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.ns(role)])
                .output();
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        self.delete();
    }
}

/// Interface names are at most 15 bytes: keep 8 of the prefix.
fn short(prefix: &str) -> String {
    prefix
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect()
}

/// Run `f` on a thread that entered the named network namespace.
pub fn in_named_ns<T: Send, F: FnOnce() -> T + Send>(name: &str, f: F) -> Result<T, String> {
    let path = Path::new("/run/netns").join(name);
    let ns = File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    std::thread::scope(|s| {
        s.spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns {}: {e}", path.display()))?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
    })
}

/// Whether this process may create namespaces (root).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}
