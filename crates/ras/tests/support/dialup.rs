//! Dial-up test plumbing: a null-modem pty pair from socat, and the
//! `ras server` configuration with a `[dialin]` line on one end.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `socat PTY,raw,echo=0,link=A PTY,raw,echo=0,link=B`: two ttys joined
/// like a null-modem cable. Killed on drop.
pub struct PtyPair {
    child: Child,
    pub server_end: PathBuf,
    pub client_end: PathBuf,
}

impl PtyPair {
    pub fn start(dir: &Path) -> Option<PtyPair> {
        let server_end = dir.join("line-server");
        let client_end = dir.join("line-client");
        let child = Command::new("socat")
            .arg("-d")
            .arg(format!("PTY,raw,echo=0,link={}", server_end.display()))
            .arg(format!("PTY,raw,echo=0,link={}", client_end.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
                    panic!("RAS_INTEROP_REQUIRED=1 but socat cannot run: {e}");
                }
                eprintln!("SKIPPED (dial-up e2e): socat not available: {e}");
                return None;
            }
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(server_end.exists() && client_end.exists()) {
            if Instant::now() > deadline || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!("socat did not create the pty pair");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(PtyPair {
            child,
            server_end,
            client_end,
        })
    }
}

impl Drop for PtyPair {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server configuration: SSTP on `sstp_listen` (may be empty), no PPTP,
/// dial-in on `line` answering `number`, users allowed MS-CHAPv2.
pub fn write_dialin_config(
    path: &Path,
    state: &Path,
    tun: &str,
    sstp_listen: &[&str],
    line: &Path,
    number: &str,
) {
    let listen: Vec<String> = sstp_listen.iter().map(|a| format!("{a:?}")).collect();
    std::fs::write(
        path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-dial-e2e\"\n\n[sstp]\nlisten = [{}]\n\n[pptp]\nlisten = []\n\n[ipsec]\nenabled = false\n\n[tun]\nname = {tun:?}\n\n[dialin]\ndevices = [{line:?}]\nmodem = true\nnumbers = [{number:?}]\n",
            listen.join(", ")
        ),
    )
    .unwrap();
}
