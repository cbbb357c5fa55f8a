//! `ras server` as a systemd service, end to end in network namespaces:
//! the notify protocol (READY=1, STATUS= with the session counts,
//! WATCHDOG=1, RELOADING=1/READY=1 around a SIGHUP reload, STOPPING=1) on
//! a fake `$NOTIFY_SOCKET`, and
//! `--log-format json` (every standard error line one JSON object, the
//! session's lines with user and protocol fields). Needs root; skips
//! otherwise (fails under RAS_INTEROP_REQUIRED=1, as in CI).

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};

mod support;
use support::*;

/// The next notification datagram that contains `text`, within `within`.
fn expect_notification(socket: &UnixDatagram, text: &str, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let message = String::from_utf8_lossy(&buf[..n]).into_owned();
                if message
                    .lines()
                    .any(|l| l == text || (text.ends_with('=') && l.starts_with(text)))
                {
                    return message;
                }
                seen.push(message);
            }
            Err(_) => break,
        }
    }
    panic!("no notification with {text:?}; got {seen:?}");
}

#[test]
fn notifies_systemd_and_logs_json() {
    if !can_run() {
        return;
    }
    let topo = Topology::create("rassvc").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("ras.toml");
    std::fs::write(
        &config,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-svc\"\nuser = \"\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-svc0\"\n"
        ),
    )
    .unwrap();
    let pw = password_file(dir.path(), "alice", "correct horse battery");
    add_user(&config, "alice", &pw, &[]);
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();

    let mut child = topo
        .command("srv", RAS)
        .args(["server", "--log-format", "json", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("RAS_ADMIN_SOCKET", admin_socket_for(&config))
        .env("NOTIFY_SOCKET", &notify_path)
        // A one-second watchdog: WATCHDOG=1 every half second.
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ras server");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (out_tx, stdout_lines) = mpsc::channel::<String>();
    let (err_tx, stderr_lines) = mpsc::channel::<String>();
    for (stream, tx) in [
        (
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            out_tx,
        ),
        (Box::new(child.stderr.take().unwrap()), err_tx),
    ] {
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let _ = tx.send(line);
            }
        });
    }
    let child = Kill(child);
    let mut fingerprint = String::new();
    loop {
        let line = stdout_lines
            .recv_timeout(Duration::from_secs(30))
            .expect("ras server did not start");
        if let Some(fp) = line.split("fingerprint ").nth(1) {
            fingerprint = fp.trim().to_owned();
        }
        if line.starts_with("ras server:") {
            break;
        }
    }

    let ready = expect_notification(&notify, "READY=1", Duration::from_secs(5));
    assert!(ready.contains("STATUS=no sessions"), "{ready:?}");
    expect_notification(&notify, "WATCHDOG=1", Duration::from_secs(3));

    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        "alice",
        &pw,
        &fingerprint,
        "ras-sc1",
    );
    assert!(wait_address(&topo, &mut client, Duration::from_secs(20)).is_some());
    assert!(ping(&topo, "cli1", LAN_HOST), "ping through the tunnel");
    expect_notification(&notify, "STATUS=1 session (sstp 1)", Duration::from_secs(3));
    interrupt(&client);
    let (ended, output) = finish(client, Duration::from_secs(10));
    assert!(ended, "client output: {output}");

    // A reload (SIGHUP) is bracketed by RELOADING=1 with the monotonic
    // time (what Type=notify-reload requires) and READY=1.
    let _ = std::process::Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status();
    let reloading = expect_notification(&notify, "RELOADING=1", Duration::from_secs(5));
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading:?}");
    let ready = expect_notification(&notify, "READY=1", Duration::from_secs(10));
    assert!(ready.contains("STATUS=reloaded"), "{ready:?}");

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    expect_notification(&notify, "STOPPING=1", Duration::from_secs(5));

    // Every line on standard error is one JSON object; the session's
    // lines carry its id, user and protocol as fields.
    std::thread::sleep(Duration::from_millis(500));
    let lines: Vec<String> = stderr_lines.try_iter().collect();
    assert!(!lines.is_empty());
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for e in &events {
        assert!(
            e["level"].is_string() && e["target"].is_string() && e["message"].is_string(),
            "{e}"
        );
    }
    let assigned = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.contains("assigned"))
        })
        .expect("an address-assigned line");
    assert_eq!(assigned["user"], "alice", "{assigned}");
    assert_eq!(assigned["protocol"], "sstp", "{assigned}");
    assert!(assigned["session_id"].is_u64(), "{assigned}");
    assert_eq!(assigned["level"], "INFO");
}
