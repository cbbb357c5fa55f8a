//! strongSwan charon (Debian 12's 5.9.8) as a real IKEv2 remote-access
//! server for `ras connect ikev2://`, started by `interop/strongswan.sh` in
//! namespace `ras-sw` with the kernel-libipsec plugin (ESP in userspace:
//! the host kernel needs no ESP support), the client side in namespace
//! `ras-sw-cli` (10.74.0.2; the server is 10.74.0.1). Connections
//! `ikev2-eap` (RSA certificate + EAP-MSCHAPv2), `ikev2-psk` and
//! `ikev2-cert` (a client certificate from the same CA).
//!
//! One instance per machine (fixed namespaces and addresses): a
//! [`StrongSwan`] holds an exclusive lock on
//! `$RAS_INTEROP_STATE/strongswan.lock` while it lives, and stops charon
//! when dropped.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::{interop_dir, parse_env, required, state_dir, REQUIRED_VAR};

/// A running charon and the facts `strongswan.sh start` wrote.
pub struct StrongSwan {
    pub server_ip: Ipv4Addr,
    /// The client namespace's address on the link (a /24 on `client_link`).
    pub client_ip: Ipv4Addr,
    pub client_link: String,
    /// The namespace a client under test runs in.
    pub client_ns: String,
    /// EAP-MSCHAPv2 user and password.
    pub user: String,
    pub password: String,
    pub psk: String,
    /// The IKE identity `ikev2-psk` wants of the client.
    pub psk_id: String,
    /// The PSK identity of conn `ikev2-rekey`, whose IKE SA strongSwan
    /// rekeys 15 s after it came up.
    pub rekey_id: String,
    /// `ikev2-cert`: the client's certificate and key (PEM, SEC1 ECDSA)
    /// and the identity strongSwan wants (its subject DN).
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub client_cert_id: String,
    /// The address behind the tunnel (the narrowed TSr, and the DNS server
    /// the pool hands out).
    pub target: Ipv4Addr,
    /// The first three octets of the virtual IP pool (a /24).
    pub pool_prefix: [u8; 3],
    /// The CA of the server's certificate.
    pub ca: PathBuf,
    pub log: PathBuf,
    /// swanctl's `--uri`.
    pub vici: String,
    pub version: String,
    _lock: File,
}

fn script() -> Command {
    let mut c = Command::new("bash");
    c.arg(interop_dir().join("strongswan.sh"));
    c
}

impl StrongSwan {
    /// Installs (once) and starts charon; waits for the lock first if
    /// another test process has it.
    pub fn start() -> Result<StrongSwan, String> {
        let dir = state_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let lock_path = dir.join("strongswan.lock");
        let lock = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        lock.lock()
            .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
        let out = script()
            .arg("start")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running interop/strongswan.sh: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "interop/strongswan.sh start failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let facts: BTreeMap<String, String> = parse_env(&String::from_utf8_lossy(&out.stdout));
        let get = |key: &str| {
            facts
                .get(key)
                .cloned()
                .ok_or_else(|| format!("strongswan.sh start printed no {key}"))
        };
        let ip = |key: &str| -> Result<Ipv4Addr, String> {
            get(key)?
                .parse()
                .map_err(|_| format!("strongswan.sh start: {key} is not an IPv4 address"))
        };
        let pool = get("POOL")?;
        let pool: Ipv4Addr = pool
            .split('/')
            .next()
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| format!("strongswan.sh start: POOL {pool} is not a network"))?;
        let pool = pool.octets();
        Ok(StrongSwan {
            server_ip: ip("SERVER_IP")?,
            client_ip: ip("CLIENT_IP")?,
            client_link: get("CLIENT_LINK")?,
            client_ns: get("CLIENT_NS")?,
            user: get("USER")?,
            password: get("PASSWORD")?,
            psk: get("PSK")?,
            psk_id: get("PSK_ID")?,
            rekey_id: get("REKEY_ID")?,
            client_cert: get("CLIENT_CERT")?.into(),
            client_key: get("CLIENT_KEY")?.into(),
            client_cert_id: get("CLIENT_CERT_ID")?,
            target: ip("TARGET")?,
            pool_prefix: [pool[0], pool[1], pool[2]],
            ca: get("CA")?.into(),
            log: get("LOG")?.into(),
            vici: get("VICI")?,
            version: get("VERSION")?,
            _lock: lock,
        })
    }

    /// charon's log so far (IKE at level 2: every exchange and Delete).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `swanctl --list-sas`: the IKE and child SAs charon has now.
    pub fn list_sas(&self) -> String {
        Command::new("swanctl")
            .args(["--list-sas", "--uri", &self.vici])
            .stdin(Stdio::null())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// `ip netns exec <client namespace> <program>`.
    pub fn command_in_client_ns(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.client_ns, program]);
        c
    }
}

impl Drop for StrongSwan {
    fn drop(&mut self) {
        let _ = script().arg("stop").stdin(Stdio::null()).output();
    }
}

/// Starts strongSwan for a test, or says why it cannot run: `None` (the
/// test returns early) with a SKIPPED line, or a panic when
/// `RAS_INTEROP_REQUIRED=1`, so that CI never passes silently.
pub fn start_or_skip() -> Option<StrongSwan> {
    let why = if !nix::unistd::geteuid().is_root() {
        "not root (network namespaces and TUN devices need root)".to_string()
    } else {
        match StrongSwan::start() {
            Ok(sw) => return Some(sw),
            Err(e) => e,
        }
    };
    if required() {
        panic!("{REQUIRED_VAR}=1 but strongSwan cannot be used: {why}");
    }
    use std::io::Write;
    let msg = format!("SKIPPED (strongSwan): {why}; set {REQUIRED_VAR}=1 to make this a failure\n");
    let _ = std::io::stderr().write_all(msg.as_bytes());
    None
}
