//! A long-running client whose terminal went away (standard output and
//! error are a pipe nobody reads) goes on as if it could print: it fails
//! or succeeds for its own reasons, never with a panic on EPIPE.

use std::process::{Command, Stdio};

#[test]
fn connect_with_its_output_gone_ends_for_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "x\n").unwrap();
    // A port nothing listens on: the connection is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = Command::new(env!("CARGO_BIN_EXE_ras"))
        .args([
            "connect",
            &format!("sstp://127.0.0.1:{port}"),
            "--user",
            "u",
        ])
        .arg("--password-file")
        .arg(&pw)
        .args(["--fingerprint", &"00".repeat(32)])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    // 1: the command's error (connection refused); 101 would be a panic
    // while printing "connecting to …".
    assert_eq!(status.code(), Some(1), "{status}");
}
