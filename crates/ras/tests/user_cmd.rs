//! `ras user …` as an administrator types it: `--config` before or after
//! the subcommand, one line for every change, and a missing state
//! directory said in words instead of an empty store created in its place.

use std::path::Path;
use std::process::{Command, Output};

fn ras(args: &[&str], config: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ras"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .output()
        .expect("runs")
}

/// Runs a command that must succeed and print exactly one line.
fn one_line(args: &[&str], config: &Path) -> String {
    let out = ras(args, config);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ras {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "ras {args:?}: {stdout}");
    stdout.trim().to_owned()
}

#[test]
fn every_change_says_what_it_did_and_a_missing_store_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!("state_dir = {:?}\n", state.display().to_string()),
    )
    .unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "correct horse\n").unwrap();
    let pw = pw.to_str().unwrap();

    // Before any store exists: said, and nothing is created.
    let out = ras(&["user", "list"], &config);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not exist") && err.contains(&state.display().to_string()),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        !state.exists(),
        "`ras user list` created {}",
        state.display()
    );

    // --config after the subcommand's arguments (the helper puts it last).
    assert_eq!(
        one_line(&["user", "add", "bob", "--password-file", pw], &config),
        "added user bob"
    );
    assert_eq!(
        one_line(&["user", "passwd", "bob", "--password-file", pw], &config),
        "changed the password of bob"
    );
    assert_eq!(
        one_line(&["user", "disable", "bob"], &config),
        "disabled user bob"
    );
    assert_eq!(
        one_line(&["user", "enable", "bob"], &config),
        "enabled user bob"
    );
    assert_eq!(
        one_line(&["user", "groups", "bob", "--group", "vpn"], &config),
        "set the groups of bob"
    );
    let out = ras(&["user", "list"], &config);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(
        list.lines()
            .any(|l| l.starts_with("bob") && l.contains("vpn")),
        "{list}"
    );
    assert_eq!(
        one_line(&["user", "remove", "bob"], &config),
        "removed user bob"
    );
}
