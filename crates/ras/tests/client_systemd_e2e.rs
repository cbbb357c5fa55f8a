//! `ras client provision` under a real systemd (issue 15: "autostart unit
//! present and started"), and the systemd-resolved path of the tunnel's
//! DNS servers and suffixes (crates/client/src/dns.rs).
//!
//! systemd boots as PID 1 of its own PID and mount namespace over an
//! overlay of `/` (support::systemd_container), in the client's network
//! namespace; `ras server` runs SSTP in the server's namespace. Inside the
//! container, with the defaults a user has (/etc/systemd/system,
//! /etc/ras/client, /run/ras/client.sock):
//!
//! - systemd-resolved is installed from its .deb (the host does not have
//!   it and must not get it: only the container's overlay sees it) and
//!   started;
//! - `ras client provision` of an always-on policy with `dns_suffixes`:
//!   the unit file is there, `systemctl is-enabled` says enabled and
//!   `is-active` active; `ras client status --json` says connected, a
//!   ping goes through the tunnel, and `resolvectl dns|domain <tunnel>`
//!   show the server's DNS server, the suffixes and `~.`-less routing
//!   (split tunnel);
//! - `systemctl restart ras-client`: a new daemon process, and the
//!   connection and the per-link DNS come back;
//! - `ras client unprovision --all`: the unit disabled and removed, the
//!   daemon stopped, the TUN and its resolved link gone.
//!
//! Without the systemd-resolved .deb (no download possible), the
//! resolv.conf path is checked instead and the test says so (it fails
//! under RAS_INTEROP_REQUIRED=1). Needs root; skips with a message
//! otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use serde_json::Value;

mod support;
use support::client_daemon::first_echo;
use support::systemd_container::{can_boot, SystemdContainer};
use support::*;

const TUN: &str = "ras-sd0";
const UNIT: &str = "ras-client.service";
/// Where the container sees the `ras` under test.
const RAS_IN: &str = "/opt/ras 100%";
const UNIT_FILE: &str = "/etc/systemd/system/ras-client.service";
/// What the server hands out in IPCP (nobody answers there; only the
/// configuration is checked).
const DNS_SERVER: &str = "172.31.0.53";
const SUFFIXES: [&str; 2] = ["corp.example.com", "lab.example.net"];

fn required() -> bool {
    std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

/// Where the systemd-resolved package is kept (interop/README.md).
fn deb_cache() -> PathBuf {
    std::env::var_os("RAS_DEB_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/ras-interop/debs"))
}

/// The systemd-resolved .deb of the host's systemd version, from the cache
/// or fetched into it with `apt-get download` (the machine's apt sources);
/// None, with a message, when there is none.
fn resolved_deb() -> Option<PathBuf> {
    let skip = |why: String| {
        if required() {
            panic!("RAS_INTEROP_REQUIRED=1 but {why}");
        }
        eprintln!("SKIPPED (systemd-resolved part; resolv.conf checked instead): {why}");
        None
    };
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version} ${Architecture}", "systemd"])
        .output();
    let (version, arch) = match out {
        Ok(o) if o.status.success() => {
            let s = String::from_utf8_lossy(&o.stdout).into_owned();
            match s.split_once(' ') {
                Some((v, a)) => (v.to_owned(), a.to_owned()),
                None => return skip(format!("dpkg-query said {s:?} for systemd")),
            }
        }
        _ => return skip("dpkg-query cannot tell the systemd version".into()),
    };
    let cache = deb_cache();
    // apt's file names spell an epoch's ':' as %3a.
    let name = format!(
        "systemd-resolved_{}_{arch}.deb",
        version.replace(':', "%3a")
    );
    let path = cache.join(&name);
    if path.is_file() {
        return Some(path);
    }
    if let Err(e) = std::fs::create_dir_all(&cache) {
        return skip(format!("cannot create {}: {e}", cache.display()));
    }
    let out = Command::new("apt-get")
        .args(["download", "-q"])
        .arg(format!("systemd-resolved={version}"))
        .current_dir(&cache)
        .output();
    match out {
        Ok(o) if o.status.success() && path.is_file() => Some(path),
        Ok(o) => skip(format!(
            "apt-get download systemd-resolved={version} failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => skip(format!("apt-get cannot run: {e}")),
    }
}

fn connection_of(c: &SystemdContainer) -> Option<Value> {
    let out = c.exec(&[RAS, "client", "status", "--json"]);
    if !out.status.success() {
        return None;
    }
    let all: Value = serde_json::from_slice(&out.stdout).ok()?;
    all.as_array()?
        .iter()
        .find(|x| x["name"] == "office")
        .cloned()
}

fn wait_connected(c: &SystemdContainer, within: Duration) -> Value {
    wait_state(c, "connected", within)
}

/// Polls `ras client status --json` in the container until the connection
/// is in `state`: its status.
fn wait_state(c: &SystemdContainer, state: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    let mut last = None;
    loop {
        if let Some(s) = connection_of(c) {
            if s["state"] == state {
                return s;
            }
            last = Some(s);
        }
        assert!(
            Instant::now() < deadline,
            "not {state} within {within:?}; last status {}\n{}",
            last.map(|s| s.to_string()).unwrap_or_default(),
            c.journal()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn main_pid(c: &SystemdContainer) -> String {
    c.say(&["systemctl", "show", "-P", "MainPID", UNIT])
}

/// `resolvectl dns` and `resolvectl domain` of the tunnel, as printed.
fn link_dns(c: &SystemdContainer) -> (String, String) {
    (
        c.say(&["resolvectl", "dns", TUN]),
        c.say(&["resolvectl", "domain", TUN]),
    )
}

fn assert_link_dns(c: &SystemdContainer) {
    let (dns, domains) = link_dns(c);
    eprintln!("[test] resolvectl: {dns} / {domains}");
    assert!(dns.contains(DNS_SERVER), "resolvectl dns {TUN}: {dns}");
    for s in SUFFIXES {
        assert!(
            domains.split_whitespace().any(|d| d == s),
            "resolvectl domain {TUN}: {domains}"
        );
    }
    // Routes only (split tunnel): no "~." taking every query.
    assert!(!domains.split_whitespace().any(|d| d == "~."), "{domains}");
}

#[test]
fn provisioned_client_runs_under_systemd_with_resolved() {
    if !can_run() || !can_boot() {
        return;
    }
    let deb = resolved_deb();
    let topo = Topology::create("rassd").expect("namespaces");
    let cli = topo.ns("cli1");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\nserver_name = \"ras-sd\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-sds0\"\n\n[addresses]\ndns = [\"{DNS_SERVER}\"]\n",
            dir.path().join("state")
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let server = Server::start(&topo, &config);
    let policy = dir.path().join("policy.toml");
    std::fs::write(
        &policy,
        format!(
            "[[connection]]\nname = \"office\"\nservers = [\"{SERVER_FOR_CLI1}\"]\nprotocols = [\"sstp\"]\nalways_on = true\nroutes = [\"172.31.0.0/24\"]\ndns_suffixes = [\"{}\", \"{}\"]\ninterface = \"{TUN}\"\n[connection.auth]\nuser = \"alice\"\npassword = \"correct horse battery\"\n[connection.trust]\nfingerprint = \"{}\"\n",
            SUFFIXES[0], SUFFIXES[1], server.fingerprint
        ),
    )
    .unwrap();

    let ras_dir = Path::new(RAS).parent().unwrap();
    let cache = deb_cache();
    let mut binds = vec![dir.path(), ras_dir];
    if deb.is_some() {
        binds.push(&cache);
    }
    let c = SystemdContainer::boot(Some(&cli), &binds);

    // systemd-resolved, in the container only.
    if let Some(deb) = &deb {
        let t = Instant::now();
        c.run(&["dpkg", "-i", deb.to_str().unwrap()]);
        c.run(&["systemctl", "start", "systemd-resolved.service"]);
        assert_eq!(
            c.say(&["systemctl", "is-active", "systemd-resolved"]),
            "active"
        );
        eprintln!(
            "[test] systemd-resolved installed and started in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }

    // The binary where a path needs quoting in ExecStart= (a space, a
    // specifier's "%"): the unit names the binary provisioning ran.
    c.run(&["mkdir", "-p", RAS_IN]);
    c.run(&["mount", "--bind", ras_dir.to_str().unwrap(), RAS_IN]);
    let ras = format!("{RAS_IN}/ras");
    let ras = ras.as_str();

    // Provisioned with the default store, socket and unit directory:
    // enabled and started.
    let t = Instant::now();
    let said = c.run(&[ras, "client", "provision", policy.to_str().unwrap()]);
    eprintln!("[test] provision said:\n{said}");
    assert!(said.contains("installed and enabled"), "{said}");
    let unit = c.run(&["cat", UNIT_FILE]);
    assert!(
        unit.contains("\nExecStart=\"/opt/ras 100%%/ras\" client --state /etc/ras/client run\n"),
        "{unit}"
    );
    let exec = c.say(&["systemctl", "show", "-P", "ExecStart", UNIT]);
    assert!(exec.contains("path=/opt/ras 100%/ras ;"), "{exec}");
    assert_eq!(c.say(&["systemctl", "is-enabled", UNIT]), "enabled");
    assert_eq!(c.say(&["systemctl", "is-active", UNIT]), "active");
    // Type=notify: started means READY=1 came, after the control socket
    // listened, so the daemon answers at once and was told of the change.
    assert_eq!(c.say(&["systemctl", "show", "-P", "Type", UNIT]), "notify");
    assert_eq!(
        c.say(&["systemctl", "show", "-P", "KillMode", UNIT]),
        "mixed"
    );
    assert!(!said.contains("no ras client daemon runs"), "{said}");
    assert!(connection_of(&c).is_some(), "status answers at once");
    let status = wait_connected(&c, Duration::from_secs(30));
    eprintln!(
        "[test] provision to connected in {:.1} s: {status}",
        t.elapsed().as_secs_f64()
    );
    first_echo(&cli, LAN_HOST, Instant::now(), Duration::from_secs(10));
    if deb.is_some() {
        assert_link_dns(&c);
    } else {
        let rc = c.run(&["cat", "/etc/resolv.conf"]);
        assert!(rc.contains(&format!("nameserver {DNS_SERVER}")), "{rc}");
        assert!(rc.contains(SUFFIXES[0]), "{rc}");
    }

    // Disconnected while the daemon runs: the link's DNS goes with it;
    // connected again: back.
    c.run(&[ras, "client", "disconnect", "office"]);
    wait_state(&c, "disconnected", Duration::from_secs(15));
    let (dns, domains) = link_dns(&c);
    let all = c.say(&["resolvectl", "domain"]);
    if deb.is_some() {
        assert!(!dns.contains(DNS_SERVER), "{dns}");
        assert!(!all.contains(SUFFIXES[0]), "{domains} / {all}");
    }
    c.run(&[ras, "client", "connect", "office"]);
    wait_connected(&c, Duration::from_secs(30));
    if deb.is_some() {
        assert_link_dns(&c);
    }

    // Restarted by systemd: a new process, and everything comes back.
    let before = main_pid(&c);
    c.run(&["systemctl", "restart", UNIT]);
    let after = main_pid(&c);
    assert_ne!(before, after, "systemctl restart made a new daemon");
    assert_ne!(after, "0");
    let t = Instant::now();
    wait_connected(&c, Duration::from_secs(30));
    eprintln!(
        "[test] restart to connected in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    first_echo(&cli, LAN_HOST, Instant::now(), Duration::from_secs(10));
    if deb.is_some() {
        assert_link_dns(&c);
    }

    // Unprovisioned: nothing left.
    let said = c.run(&[ras, "client", "unprovision", "--all"]);
    eprintln!("[test] unprovision said:\n{said}");
    let log = c.say(&["journalctl", "--no-pager", "-u", UNIT, "-o", "cat"]);
    eprintln!("{log}");
    // Three stops (disconnect, restart, unprovision), each restoring DNS
    // and routes with commands of its own: none of them failed (the
    // unit's KillMode=mixed leaves them alone).
    assert!(
        !log.lines()
            .any(|l| l.contains(" WARN ") || l.contains(" ERROR ")),
        "{log}"
    );
    assert!(said.contains(UNIT_FILE), "{said}");
    assert!(said.contains("stopped ras-client.service"), "{said}");
    assert!(!said.contains("no ras client daemon runs"), "{said}");
    assert!(!c.exec(&["test", "-e", UNIT_FILE]).status.success());
    assert_ne!(c.say(&["systemctl", "is-enabled", UNIT]), "enabled");
    assert_eq!(c.say(&["systemctl", "is-active", UNIT]), "inactive");
    let link = Command::new("ip")
        .args(["-n", &cli, "link", "show", TUN])
        .output()
        .unwrap();
    assert!(!link.status.success(), "{TUN} is gone");
    if deb.is_some() {
        let all = c.say(&["resolvectl", "domain"]);
        for s in SUFFIXES {
            assert!(!all.contains(s), "resolvectl domain: {all}");
        }
        let all = c.say(&["resolvectl", "dns"]);
        assert!(!all.contains(DNS_SERVER), "resolvectl dns: {all}");
    } else {
        let rc = c.run(&["cat", "/etc/resolv.conf"]);
        assert!(!rc.contains(DNS_SERVER), "{rc}");
    }
    first_echo_fails(&cli);

    drop(c);
    drop(server);
}

/// No echo from the LAN host any more (no tunnel, no route).
fn first_echo_fails(ns: &str) {
    let ok = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "1", LAN_HOST])
        .output()
        .unwrap()
        .status
        .success();
    assert!(!ok, "{LAN_HOST} still answers without the tunnel");
}
