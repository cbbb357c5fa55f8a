//! dist/ras.service passes `systemd-analyze verify` without a warning,
//! with ExecStart pointing at the `ras` just built (verify needs the
//! binary to exist), and says what docs/ADMIN.md promises. Skips when
//! systemd-analyze is not installed (fails then under RAS_INTEROP_REQUIRED=1,
//! as in CI, which installs it).

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../../dist/ras.service");

/// `systemd-analyze verify` of `text` as a unit named ras.service: its
/// success and everything it printed.
fn verify(text: &str) -> Option<(bool, String)> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ras.service");
    std::fs::write(&path, text).unwrap();
    let out = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("RAS_INTEROP_REQUIRED=1 but systemd-analyze cannot run ({e}): apt-get install systemd");
            }
            eprintln!("SKIPPED: systemd-analyze: {e}");
            return None;
        }
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.success(), said))
}

fn with_built_binary(unit: &str) -> String {
    let ras = env!("CARGO_BIN_EXE_ras");
    assert!(Path::new(ras).exists());
    assert!(unit.contains("ExecStart=/usr/bin/ras server --config /etc/ras/ras.toml"));
    unit.replace("ExecStart=/usr/bin/ras ", &format!("ExecStart={ras} "))
}

#[test]
fn the_unit_file_verifies_without_warnings() {
    let Some((ok, said)) = verify(&with_built_binary(UNIT)) else {
        return;
    };
    assert!(ok, "systemd-analyze verify failed: {said}");
    assert_eq!(said.trim(), "", "systemd-analyze verify warned");
}

#[test]
fn the_check_catches_a_warning() {
    // The same unit with a misspelt directive: the test above would fail.
    let broken = with_built_binary(UNIT).replace("WatchdogSec=30", "WatchdogSecs=30");
    let Some((_, said)) = verify(&broken) else {
        return;
    };
    assert!(said.contains("WatchdogSecs"), "{said}");
}

#[test]
fn the_unit_is_a_hardened_notify_service() {
    let lines: Vec<&str> = UNIT.lines().map(str::trim).collect();
    for directive in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=30",
        "User=ras",
        "AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=ras",
        "DeviceAllow=/dev/net/tun rw",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
    ] {
        assert!(
            lines.contains(&directive),
            "dist/ras.service lacks {directive}"
        );
    }
}
