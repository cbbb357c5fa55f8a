//! `ras server --check`: "configuration OK" and exit 0 for a good file;
//! for a bad one, exit non-zero with the file, line and key; never binds,
//! creates a device or writes state. Runs as any user.

use std::path::Path;
use std::process::Command;

const RAS: &str = env!("CARGO_BIN_EXE_ras");

fn check(config: &Path) -> (bool, String, String) {
    let out = Command::new(RAS)
        .args(["server", "--check", "--config"])
        .arg(config)
        .env_remove("RAS_ADMIN_SOCKET")
        .env_remove("RAS_STATE_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_good_configuration_is_ok_and_nothing_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let socket = dir.path().join("admin.sock");
    let config = dir.path().join("ras.toml");
    // Listeners on ports a non-root user could not bind: --check binds
    // nothing, so it does not matter.
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\n\n[sstp]\nlisten = [\"127.0.0.1:443\"]\n\n[admin]\nsocket = {socket:?}\n"
        ),
    )
    .unwrap();
    let (ok, out, err) = check(&config);
    assert!(ok, "{err}");
    assert_eq!(out, "configuration OK\n");
    assert!(!state.exists(), "no state directory created");
    assert!(!socket.exists(), "no admin socket bound");
}

#[test]
fn a_bad_configuration_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n\n[ppp]\nmru = 1500\n\n[tun]\nmtu = 100\n",
            dir.path()
        ),
    )
    .unwrap();
    let (ok, out, err) = check(&config);
    assert!(!ok);
    assert!(out.is_empty(), "{out}");
    let want = format!("{}:7:", config.display());
    assert!(err.contains(&want), "{err}");
    assert!(err.contains("key `tun.mtu`"), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");

    // A semantic check: the certificate file does not exist.
    std::fs::write(
        &config,
        format!(
            "state_dir = {:?}\n\n[certificate]\nchain = \"/nonexistent/chain.pem\"\nkey = \"/nonexistent/key.pem\"\n",
            dir.path()
        ),
    )
    .unwrap();
    let (ok, _, err) = check(&config);
    assert!(!ok);
    assert!(err.contains(&format!("{}:4:", config.display())), "{err}");
    assert!(err.contains("key `certificate.chain`"), "{err}");
    assert!(err.contains("/nonexistent/chain.pem"), "{err}");
}
