//! SoftEther VPN Server (Debian 12's `softether-vpnserver` 5.01) as a real
//! L2TP/IPsec and plain-L2TP server for `ras connect l2tp://`, started by
//! `interop/softether.sh` in namespace `ras-se`, with the client side in
//! namespace `ras-se-cli` (10.76.0.2, the server is 10.76.0.1).
//!
//! SoftEther keeps its configuration in a path compiled into the binary
//! (`/var/lib/softether`), so only one instance can run per machine: a
//! [`SoftEther`] holds an exclusive lock on `$RAS_INTEROP_STATE/softether.lock`
//! for as long as it lives, and stops the server when dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use crate::{interop_dir, parse_env, required, state_dir, REQUIRED_VAR};

/// A running SoftEther server and the facts `softether.sh start` wrote.
pub struct SoftEther {
    /// The server's address on the link to the client namespace.
    pub server_ip: Ipv4Addr,
    /// The namespace a client under test runs in.
    pub client_ns: String,
    pub user: String,
    pub password: String,
    pub psk: String,
    /// SecureNAT's virtual host: the PPP peer's DHCP server, answers ping.
    pub securenat_ip: Ipv4Addr,
    /// The first three octets of the SecureNAT DHCP pool (a /24).
    pub pool_prefix: [u8; 3],
    /// The package version, for the test's log.
    pub version: String,
    _lock: File,
}

/// Where the Debian package's SoftEther writes its server log.
const SERVER_LOG_DIR: &str = "/var/log/softether/server_log";

fn script() -> Command {
    let mut c = Command::new("bash");
    c.arg(interop_dir().join("softether.sh"));
    c
}

impl SoftEther {
    /// Installs (once), configures (once) and starts SoftEther; waits for
    /// the lock first if another test process has it.
    pub fn start() -> Result<SoftEther, String> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join("softether.lock");
        let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let out = script()
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running interop/softether.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "interop/softether.sh start failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let facts: BTreeMap<String, String> = parse_env(&String::from_utf8_lossy(&out.stdout));
        let get = |key: &str| {
            facts
                .get(key)
                .cloned()
                .ok_or_else(|| format!("softether.sh start printed no {key}"))
        };
        let ip = |key: &str| -> Result<Ipv4Addr, String> {
            get(key)?
                .parse()
                .map_err(|_| format!("softether.sh start: {key} is not an IPv4 address"))
        };
        let pool = ip("POOL_START")?.octets();
        Ok(SoftEther {
            server_ip: ip("SE_IP")?,
            client_ns: get("CLIENT_NS")?,
            user: get("USER")?,
            password: get("PASSWORD")?,
            psk: get("PSK")?,
            securenat_ip: ip("SNAT_IP")?,
            pool_prefix: [pool[0], pool[1], pool[2]],
            version: get("VERSION")?,
            _lock: lock,
        })
    }

    /// SoftEther's server log so far (every `server_log/vpn_*.log`, oldest
    /// first): what it saw of a client, for tests to check from an offset
    /// taken before the client ran.
    pub fn server_log(&self) -> String {
        let dir = std::path::Path::new(SERVER_LOG_DIR);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .filter_map(|f| std::fs::read(f).ok())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .collect()
    }

    /// `ip netns exec <client namespace> <program>`.
    pub fn command_in_client_ns(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.client_ns, program]);
        c
    }
}

impl Drop for SoftEther {
    fn drop(&mut self) {
        let _ = script().arg("stop").stdin(Stdio::null()).output();
    }
}

/// Starts SoftEther for a test, or says why it cannot run: `None` (the
/// test returns early) with a SKIPPED line, or a panic when
/// `RAS_INTEROP_REQUIRED=1`, so that CI never passes silently.
pub fn start_or_skip() -> Option<SoftEther> {
    let why = if !nix::unistd::geteuid().is_root() {
        "not root (network namespaces and TUN devices need root)".to_string()
    } else {
        match SoftEther::start() {
            Ok(se) => return Some(se),
            Err(e) => e,
        }
    };
    if required() {
        panic!("{REQUIRED_VAR}=1 but SoftEther cannot be used: {why}");
    }
    // Straight to stderr, past the test harness's capture (as in
    // `require_root_or_skip`).
    use std::io::Write;
    let msg = format!("SKIPPED (SoftEther): {why}; set {REQUIRED_VAR}=1 to make this a failure\n");
    let _ = std::io::stderr().write_all(msg.as_bytes());
    None
}
