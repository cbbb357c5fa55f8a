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
/// not the default), restarted if it dies.
pub fn unit_text(ras: &Path, state: &Path, socket: Option<&Path>) -> String {
    let mut exec = format!("{} client --state {} run", ras.display(), state.display());
    if let Some(socket) = socket {
        exec = format!(
            "{} client --state {} --socket {} run",
            ras.display(),
            state.display(),
            socket.display()
        );
    }
    format!(
        "{MARK}\n[Unit]\nDescription=ras VPN client (provisioned connections)\nDocumentation=man:ras(1)\nWants=network-online.target\nAfter=network-online.target\n\n[Service]\nExecStart={exec}\nRestart=on-failure\nRestartSec=2\n\n[Install]\nWantedBy=multi-user.target\n"
    )
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

/// Stops, disables and removes the unit if it is ours; the path removed.
pub fn remove(dir: &Path) -> anyhow::Result<Option<PathBuf>> {
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
    if dir == Path::new(DEFAULT_UNIT_DIR) && systemd_running() {
        systemctl(&["disable", "--now", UNIT_NAME])?;
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if dir == Path::new(DEFAULT_UNIT_DIR) && systemd_running() {
        systemctl(&["daemon-reload"])?;
    }
    Ok(Some(path))
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
