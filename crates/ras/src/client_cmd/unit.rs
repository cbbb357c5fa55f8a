//! The autostart of the client daemon: a systemd unit `ras-client.service`
//! that runs `ras client run` at every boot, written by `ras client
//! provision` and removed by `ras client unprovision --all` (or when the
//! last connection goes).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

pub const UNIT_NAME: &str = "ras-client.service";
/// Where units written by the administrator (not by a package) live.
pub const DEFAULT_UNIT_DIR: &str = "/etc/systemd/system";
/// Marks a unit file as ours, so that unprovisioning never removes a unit
/// someone else wrote under the same name.
const MARK: &str =
    "# Written by `ras client provision`; `ras client unprovision --all` removes it.";

/// The unit's text: `ras client run` with the same store (and socket, if
/// not the default), restarted if it dies. `Type=notify`: the daemon sends
/// READY=1 once its control socket listens ([`notify_ready`]), so
/// `systemctl start` (and provisioning's `enable --now`) returns when
/// `ras client status` can already talk to it, and a daemon that cannot
/// start makes the start fail instead of looking active. `KillMode=mixed`:
/// on stop only the daemon gets SIGTERM; it then runs `resolvectl revert`
/// and `ip` while it takes its connections down, and under the default
/// (control-group) systemd, still sweeping the cgroup, killed those too
/// (seen under a real systemd: "resolvectl revert failed" with no
/// message). What is left when the daemon has exited gets SIGKILL.
pub fn unit_text(ras: &Path, state: &Path, socket: Option<&Path>) -> String {
    let mut args = vec![
        ras.display().to_string(),
        "client".to_owned(),
        "--state".to_owned(),
        state.display().to_string(),
    ];
    if let Some(socket) = socket {
        args.push("--socket".to_owned());
        args.push(socket.display().to_string());
    }
    args.push("run".to_owned());
    let exec: Vec<String> = args.iter().map(|a| exec_word(a)).collect();
    let exec = exec.join(" ");
    format!(
        "{MARK}\n[Unit]\nDescription=ras VPN client (provisioned connections)\nDocumentation=man:ras(1)\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nType=notify\nNotifyAccess=main\nExecStart={exec}\nKillMode=mixed\nRestart=on-failure\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n"
    )
}

/// One word of an `ExecStart=` command line (systemd.service(5),
/// "Command lines"): `%` would start a specifier and `$` a variable, so
/// both are doubled; a word with white space, quotes or backslashes is
/// double-quoted with C escapes, else systemd would split or unescape it.
fn exec_word(word: &str) -> String {
    let word = word.replace('%', "%%").replace('$', "$$");
    let plain = !word.is_empty()
        && !word
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';'));
    if plain {
        return word;
    }
    let mut quoted = String::from('"');
    for c in word.chars() {
        match c {
            '"' | '\\' => {
                quoted.push('\\');
                quoted.push(c);
            }
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            _ => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

/// READY=1 to systemd (sd_notify(3)) under the unit's `Type=notify`, once
/// the daemon's control socket listens; nothing when not started by
/// systemd (no `$NOTIFY_SOCKET`).
pub fn notify_ready() {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("systemd notification failed: {e}");
    }
}

/// Systemd is the running init (sd_booted(3): /run/systemd/system exists).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// What installing did, for the user.
pub enum Installed {
    /// Written and enabled (systemctl enable --now).
    Enabled(PathBuf),
    /// Written only; the reason it was not enabled.
    Written(PathBuf, &'static str),
}

/// Writes the unit into `dir` (temporary file and rename) and, when this is
/// the system's unit directory and systemd runs, enables and starts it.
pub fn install(dir: &Path, text: &str) -> anyhow::Result<Installed> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(UNIT_NAME);
    if let Ok(existing) = std::fs::read_to_string(&path) {
        if !existing.starts_with(MARK) {
            anyhow::bail!(
                "{} exists and was not written by ras client provision: not replacing it",
                path.display()
            );
        }
    }
    let tmp = dir.join(format!(".{UNIT_NAME}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    if dir != Path::new(DEFAULT_UNIT_DIR) {
        return Ok(Installed::Written(
            path,
            "not the system's unit directory, so not enabled",
        ));
    }
    if !systemd_running() {
        return Ok(Installed::Written(
            path,
            "systemd is not running here, so not enabled",
        ));
    }
    systemctl(&["daemon-reload"])?;
    systemctl(&["enable", "--now", UNIT_NAME])?;
    Ok(Installed::Enabled(path))
}

/// What removing did.
pub struct Removed {
    pub path: PathBuf,
    /// systemd stopped the daemon it ran (`disable --now`).
    pub stopped: bool,
}

/// Stops, disables and removes the unit if it is ours.
pub fn remove(dir: &Path) -> anyhow::Result<Option<Removed>> {
    let path = dir.join(UNIT_NAME);
    match std::fs::read_to_string(&path) {
        Ok(text) if text.starts_with(MARK) => {}
        Ok(_) => {
            anyhow::bail!(
                "{} was not written by ras client provision: left alone",
                path.display()
            )
        }
        Err(_) => return Ok(None),
    }
    let managed = dir == Path::new(DEFAULT_UNIT_DIR) && systemd_running();
    if managed {
        systemctl(&["disable", "--now", UNIT_NAME])?;
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if managed {
        systemctl(&["daemon-reload"])?;
    }
    Ok(Some(Removed {
        path,
        stopped: managed,
    }))
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .context("running systemctl")?;
    if !status.success() {
        anyhow::bail!("systemctl {} failed ({status})", args.join(" "));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_are_left_as_they_are() {
        let text = unit_text(
            Path::new("/usr/bin/ras"),
            Path::new("/etc/ras/client"),
            None,
        );
        assert!(
            text.contains("\nExecStart=/usr/bin/ras client --state /etc/ras/client run\n"),
            "{text}"
        );
        assert!(text.contains("\nType=notify\n"), "{text}");
        assert!(text.contains("\nKillMode=mixed\n"), "{text}");
    }

    #[test]
    fn spaces_quotes_percent_and_dollar_survive_systemd() {
        let text = unit_text(
            Path::new("/opt/my ras/ras"),
            Path::new("/srv/100%/$HOME \"x\\y\""),
            Some(Path::new("/run/ras/c.sock")),
        );
        let exec = text
            .lines()
            .find_map(|l| l.strip_prefix("ExecStart="))
            .unwrap();
        assert_eq!(
            exec,
            r#""/opt/my ras/ras" client --state "/srv/100%%/$$HOME \"x\\y\"" --socket /run/ras/c.sock run"#
        );
    }

    #[test]
    fn a_word_with_a_semicolon_is_quoted() {
        // A lone ";" separates commands in ExecStart=.
        assert_eq!(exec_word(";"), "\";\"");
        assert_eq!(exec_word(""), "\"\"");
        assert_eq!(exec_word("run"), "run");
    }
}
