//! The per-profile log file and state file.
//!
//! Both live in the profile directory (Connection Manager keeps its log
//! per profile too): `<short>.log`, appended, one line per event with a
//! UTC time stamp; `<short>.state`, rewritten atomically at every change,
//! `key=value` lines that `ras dial --status` reads.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends to `<short>.log`. Writing is best effort: a full disk must
/// not break a connection.
#[derive(Debug, Clone)]
pub struct Log {
    path: PathBuf,
}

impl Log {
    pub fn new(dir: &Path, short_name: &str) -> Log {
        Log {
            path: dir.join(format!("{short_name}.log")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One line: time stamp, then `text` (never a password: callers log
    /// only names, numbers and outcomes).
    pub fn line(&self, text: &str) {
        // The file is the log; the terminal gets what the dialer says once
        // (its progress lines), so this is only a debug trace.
        tracing::debug!("{text}");
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
        {
            let _ = writeln!(f, "{} {}", utc_now(), text.replace('\n', " "));
        }
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` now.
pub fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    utc(secs)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch (days to civil
/// date: H. Hinnant's algorithm).
pub fn utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The state of a connection as `ras dial --status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct State {
    /// `connecting`, `connected`, `disconnecting`, `disconnected`, `failed`.
    pub state: String,
    pub pid: u32,
    /// `dial-up`, `direct`, `double-dial`.
    pub kind: String,
    pub since: String,
    pub user: String,
    pub client_ip: String,
    pub server_ip: String,
    pub tunnel_server: String,
    /// How the last connection ended or failed.
    pub reason: String,
}

const KEYS: [&str; 9] = [
    "state",
    "pid",
    "kind",
    "since",
    "user",
    "client_ip",
    "server_ip",
    "tunnel_server",
    "reason",
];

impl State {
    fn field(&mut self, key: &str) -> Option<&mut String> {
        Some(match key {
            "state" => &mut self.state,
            "kind" => &mut self.kind,
            "since" => &mut self.since,
            "user" => &mut self.user,
            "client_ip" => &mut self.client_ip,
            "server_ip" => &mut self.server_ip,
            "tunnel_server" => &mut self.tunnel_server,
            "reason" => &mut self.reason,
            _ => return None,
        })
    }

    /// The file's text.
    pub fn render(&self) -> String {
        let mut s = self.clone();
        let mut out = String::new();
        for key in KEYS {
            let value = if key == "pid" {
                self.pid.to_string()
            } else {
                s.field(key)
                    .map(|v| v.replace('\n', " "))
                    .unwrap_or_default()
            };
            out.push_str(&format!("{key}={value}\n"));
        }
        out
    }

    /// Parse what [`render`](Self::render) wrote; unknown keys are skipped.
    pub fn parse(text: &str) -> State {
        let mut st = State::default();
        for line in text.lines() {
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k == "pid" {
                st.pid = v.parse().unwrap_or(0);
            } else if let Some(f) = st.field(k) {
                *f = v.to_owned();
            }
        }
        st
    }
}

/// `<short>.state` in the profile directory.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    pub fn new(dir: &Path, short_name: &str) -> StateFile {
        StateFile {
            path: dir.join(format!("{short_name}.state")),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replace the file (write a temporary file, then rename: a reader
    /// sees the old or the new state, never half of one).
    pub fn write(&self, state: &State) {
        let tmp = self.path.with_extension("state.tmp");
        if std::fs::write(&tmp, state.render()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }

    pub fn read(&self) -> Option<State> {
        std::fs::read_to_string(&self.path)
            .ok()
            .map(|t| State::parse(&t))
    }
}

/// Whether process `pid` is alive (it has an entry in /proc).
pub fn process_alive(pid: u32) -> bool {
    pid != 0 && Path::new(&format!("/proc/{pid}")).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips() {
        let st = State {
            state: "connected".into(),
            pid: 42,
            kind: "double-dial".into(),
            since: utc(0),
            user: "alice".into(),
            client_ip: "10.0.10.22".into(),
            server_ip: "10.0.10.20".into(),
            tunnel_server: "vpn=x".into(),
            reason: String::new(),
        };
        assert_eq!(State::parse(&st.render()), st);
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        // 2000-02-29 12:34:56 UTC.
        assert_eq!(utc(951_827_696), "2000-02-29T12:34:56Z");
        assert_eq!(utc(1_795_305_600), "2026-11-22T00:00:00Z");
    }
}
