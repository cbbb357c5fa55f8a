//! A real DHCPv4 server for tests: dnsmasq in its own network namespace,
//! on a veth whose other end is in the namespace under test (where the
//! VPN server runs). Flags as in the verified lab setup
//! (`dhcp-netns.sh`): no DNS (`--port=0`), no configuration file, bound
//! to its interface, authoritative, leases in a file the test reads; and
//! `--no-ping` (see [`DhcpLan::start_dnsmasq`]).
//!
//! ```text
//!  <name>  (dnsmasq)  <short>s 10.80.0.1/24 ──veth── <short>c  in the peer namespace
//! ```
//! Dropping [`DhcpLan`] stops dnsmasq and deletes the namespace.

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The DHCP server's address on its veth.
pub const DHCP_SERVER: Ipv4Addr = Ipv4Addr::new(10, 80, 0, 1);
/// The domain name dnsmasq hands out (to check DHCPINFORM answers).
pub const DOMAIN: &str = "ras-dhcp.test";

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

/// Whether dnsmasq is installed.
pub fn available() -> bool {
    Command::new("dnsmasq")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// One line of dnsmasq's lease file: `expiry MAC IP hostname client-id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub expiry: u64,
    pub mac: String,
    pub ip: Ipv4Addr,
    pub hostname: String,
    pub client_id: String,
}

/// Parses a dnsmasq lease file (lines that do not parse are skipped:
/// dnsmasq also writes a `duid` line for DHCPv6).
pub fn parse_leases(text: &str) -> Vec<Lease> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 5 {
                return None;
            }
            Some(Lease {
                expiry: f[0].parse().ok()?,
                mac: f[1].to_owned(),
                ip: f[2].parse().ok()?,
                hostname: f[3].to_owned(),
                client_id: f[4].to_owned(),
            })
        })
        .collect()
}

/// The namespace with dnsmasq, and the veth into the peer namespace.
#[derive(Debug)]
pub struct DhcpLan {
    /// dnsmasq's namespace.
    pub ns: String,
    /// The interface in the peer namespace (give it to the VPN server).
    pub client_if: String,
    server_if: String,
    dir: PathBuf,
    dnsmasq: Option<Child>,
}

impl DhcpLan {
    /// Creates namespace `name` (removing a leftover first) linked to
    /// `peer_ns`; the peer end gets `peer_addr` (e.g. "10.80.0.2/24") if
    /// given. `dir` holds the lease file and the log.
    pub fn create(
        name: &str,
        peer_ns: &str,
        peer_addr: Option<&str>,
        dir: &Path,
    ) -> Result<DhcpLan, String> {
        let short: String = name
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(12)
            .collect();
        let lan = DhcpLan {
            ns: name.to_owned(),
            client_if: format!("{short}c"),
            server_if: format!("{short}s"),
            dir: dir.to_owned(),
            dnsmasq: None,
        };
        let _ = Command::new("ip").args(["netns", "delete", name]).output();
        run(&["ip", "netns", "add", name])?;
        run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        run(&[
            "ip",
            "link",
            "add",
            &lan.server_if,
            "netns",
            name,
            "type",
            "veth",
            "peer",
            "name",
            &lan.client_if,
            "netns",
            peer_ns,
        ])?;
        run(&[
            "ip",
            "-n",
            name,
            "addr",
            "add",
            &format!("{DHCP_SERVER}/24"),
            "dev",
            &lan.server_if,
        ])?;
        run(&["ip", "-n", name, "link", "set", &lan.server_if, "up"])?;
        if let Some(a) = peer_addr {
            run(&["ip", "-n", peer_ns, "addr", "add", a, "dev", &lan.client_if])?;
        }
        run(&["ip", "-n", peer_ns, "link", "set", &lan.client_if, "up"])?;
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(lan)
    }

    /// The lease file dnsmasq writes.
    pub fn lease_file(&self) -> PathBuf {
        self.dir.join("dnsmasq.leases")
    }

    /// dnsmasq's log.
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("dnsmasq.log")
    }

    /// Starts dnsmasq serving 10.80.0.100–10.80.0.200 (1 h leases) with a
    /// domain name and DNS option, and waits until it listens on UDP 67.
    /// The lease file starts empty.
    pub fn start_dnsmasq(&mut self) -> Result<(), String> {
        self.start_dnsmasq_with(&[])
    }

    /// [`DhcpLan::start_dnsmasq`] with more dnsmasq arguments (e.g.
    /// `--dhcp-option=option:T1,5` for a short renewal time).
    pub fn start_dnsmasq_with(&mut self, extra: &[&str]) -> Result<(), String> {
        self.start(false, extra)
    }

    /// [`DhcpLan::start_dnsmasq_with`] with dnsmasq's default conflict
    /// detection: it pings every address for up to 3 s before offering
    /// it, one DISCOVER at a time.
    pub fn start_dnsmasq_pinging(&mut self, extra: &[&str]) -> Result<(), String> {
        self.start(true, extra)
    }

    fn start(&mut self, ping: bool, extra: &[&str]) -> Result<(), String> {
        self.stop_dnsmasq();
        fs::write(self.lease_file(), "").map_err(|e| e.to_string())?;
        let log = fs::File::create(self.log_file()).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns, "dnsmasq"])
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--port=0",
                &format!("--interface={}", self.server_if),
                "--bind-interfaces",
                "--dhcp-authoritative",
                "--log-dhcp",
                "--dhcp-range=10.80.0.100,10.80.0.200,255.255.255.0,1h",
                "--dhcp-option=option:router,10.80.0.1",
                "--dhcp-option=option:dns-server,10.80.0.1",
                &format!("--dhcp-option=option:domain-name,{DOMAIN}"),
                &format!("--dhcp-leasefile={}", self.lease_file().display()),
                "--log-facility=-",
            ])
            // dnsmasq pings every new address before offering it and
            // waits up to 3 s, one DISCOVER at a time: a block of 10 takes
            // 30 s. Conflict detection is the server operator's choice
            // (Windows' DHCP server has it off by default); most tests want
            // the protocol, not the wait.
            .args((!ping).then_some("--no-ping"))
            .args(extra)
            .stdout(log)
            .stderr(log2)
            .spawn()
            .map_err(|e| format!("dnsmasq: {e}"))?;
        self.dnsmasq = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let out = Command::new("ip")
                .args(["netns", "exec", &self.ns, "ss", "-Huln", "sport", "= :67"])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.stdout.is_empty() {
                return Ok(());
            }
            if let Some(Ok(Some(status))) = self.dnsmasq.as_mut().map(Child::try_wait) {
                return Err(format!("dnsmasq exited ({status}): {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("dnsmasq did not listen on UDP 67: {}", self.log()))
    }

    /// Stops dnsmasq (if running). Its lease file stays as it was.
    pub fn stop_dnsmasq(&mut self) {
        if let Some(mut c) = self.dnsmasq.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// dnsmasq's log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.log_file()).unwrap_or_default()
    }

    /// The leases in the lease file now.
    pub fn leases(&self) -> Vec<Lease> {
        parse_leases(&fs::read_to_string(self.lease_file()).unwrap_or_default())
    }

    /// Waits until `pred` holds for the lease list; returns the last list.
    pub fn wait_leases(
        &self,
        within: Duration,
        pred: impl Fn(&[Lease]) -> bool,
    ) -> Result<Vec<Lease>, Vec<Lease>> {
        let deadline = Instant::now() + within;
        loop {
            let l = self.leases();
            if pred(&l) {
                return Ok(l);
            }
            if Instant::now() > deadline {
                return Err(l);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for DhcpLan {
    fn drop(&mut self) {
        self.stop_dnsmasq();
        // Deleting the namespace deletes the veth pair with it.
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.ns])
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_file_lines() {
        let text = "1767000000 02:ab:cd:00:00:01 10.80.0.100 * 01:02:ab:cd:00:00:01\n\
                    duid 00:01:00:01\n\
                    1767000001 02:ab:cd:00:00:02 10.80.0.101 host2 *\n";
        let l = parse_leases(text);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].ip, Ipv4Addr::new(10, 80, 0, 100));
        assert_eq!(l[0].client_id, "01:02:ab:cd:00:00:01");
        assert_eq!(l[1].hostname, "host2");
        assert_eq!(l[1].expiry, 1_767_000_001);
    }
}
