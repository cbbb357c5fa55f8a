//! The DNS servers IPCP gave, put where the system looks for them, and
//! taken away again on disconnect.
//!
//! With systemd-resolved running, they are set per link (`resolvectl dns`),
//! and with a default route through the tunnel `resolvectl domain IF ~.`
//! sends every query to them; resolved forgets them when the TUN goes away.
//! Without it, `/etc/resolv.conf` is backed up to
//! `/run/ras/resolv.conf.<ifname>` and rewritten; the backup is put back on
//! disconnect, and if the process died before that, by the next
//! `ras connect` (see [`restore_leftovers`]). `/run` is a tmpfs, so a
//! backup never outlives a reboot, which also rewrites resolv.conf.

use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The system resolver configuration.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";
/// Where backups of it are kept while connected.
pub const BACKUP_DIR: &str = "/run/ras";
/// glibc reads at most this many `nameserver` lines (MAXNS).
const MAX_NAMESERVERS: usize = 3;

/// Why DNS could not be configured or restored.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("`resolvectl {args}` failed: {message}")]
    Resolvectl { args: String, message: String },
}

/// How DNS servers are given to the system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DnsBackend {
    /// systemd-resolved, per link.
    Resolved,
    /// A resolv.conf file rewritten, with its backup in `backup_dir`.
    ResolvConf { path: PathBuf, backup_dir: PathBuf },
}

impl DnsBackend {
    /// systemd-resolved if it runs and `resolvectl` is installed, else
    /// `/etc/resolv.conf`.
    pub fn detect() -> DnsBackend {
        if resolved_running() && in_path("resolvectl") {
            DnsBackend::Resolved
        } else {
            DnsBackend::system_resolv_conf()
        }
    }

    /// `/etc/resolv.conf` with backups in `/run/ras`.
    pub fn system_resolv_conf() -> DnsBackend {
        DnsBackend::ResolvConf {
            path: PathBuf::from(RESOLV_CONF),
            backup_dir: PathBuf::from(BACKUP_DIR),
        }
    }
}

fn resolved_running() -> bool {
    // The varlink socket exists only while resolved runs (/run is a
    // tmpfs); older versions are recognised by resolv.conf pointing to
    // their stub file.
    Path::new("/run/systemd/resolve/io.systemd.Resolve").exists()
        || std::fs::read_link(RESOLV_CONF)
            .map(|t| t.to_string_lossy().contains("/run/systemd/resolve/"))
            .unwrap_or(false)
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// DNS as configured for one connection; dropping it undoes the change.
#[derive(Debug)]
pub struct DnsGuard {
    applied: Option<Applied>,
}

#[derive(Debug)]
enum Applied {
    Resolved {
        ifname: String,
    },
    ResolvConf {
        path: PathBuf,
        backup_dir: PathBuf,
        ifname: String,
    },
}

impl DnsGuard {
    /// How the servers were applied, for the status line.
    pub fn describe(&self) -> &'static str {
        match self.applied {
            Some(Applied::Resolved { .. }) => "systemd-resolved",
            Some(Applied::ResolvConf { .. }) => "resolv.conf",
            None => "not configured",
        }
    }

    /// Undoes the change now (also done on drop).
    pub fn restore(&mut self) -> Result<(), DnsError> {
        match self.applied.take() {
            None => Ok(()),
            Some(Applied::Resolved { ifname }) => {
                // The link disappears with the TUN anyway; revert so that a
                // TUN that outlives us (persistent) keeps no stale servers.
                resolvectl(&["revert", &ifname]).map(|_| ())
            }
            Some(Applied::ResolvConf {
                path,
                backup_dir,
                ifname,
            }) => restore_one(&path, &backup_dir, &ifname),
        }
    }
}

impl Drop for DnsGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore() {
            tracing::warn!("DNS configuration not restored: {e}");
        }
    }
}

/// Gives `servers` to the system for `ifname`. With `default_route`, all
/// queries go to them; without, they are preferred but the system's own
/// servers stay as a fallback (split tunnelling).
pub fn apply(
    backend: &DnsBackend,
    ifname: &str,
    servers: &[Ipv4Addr],
    default_route: bool,
) -> Result<DnsGuard, DnsError> {
    apply_with_suffixes(backend, ifname, servers, &[], default_route)
}

/// [`apply`], and `suffixes` (DNS suffixes, the VPN policy's
/// `dns_suffixes`) as search domains while the tunnel is up: with
/// systemd-resolved they are the link's domains (search and routing
/// domains: names under them are asked of the tunnel's servers), in
/// resolv.conf they go first on the `search` line. Undone with the rest.
pub fn apply_with_suffixes(
    backend: &DnsBackend,
    ifname: &str,
    servers: &[Ipv4Addr],
    suffixes: &[String],
    default_route: bool,
) -> Result<DnsGuard, DnsError> {
    if servers.is_empty() && suffixes.is_empty() {
        return Ok(DnsGuard { applied: None });
    }
    match backend {
        DnsBackend::Resolved => {
            match apply_resolved(ifname, servers, suffixes, default_route) {
                Ok(()) => Ok(DnsGuard {
                    applied: Some(Applied::Resolved {
                        ifname: ifname.to_owned(),
                    }),
                }),
                Err(e) => {
                    // Revert whatever part was set before falling back.
                    let _ = resolvectl(&["revert", ifname]);
                    tracing::warn!("systemd-resolved refused the DNS servers ({e}); writing {RESOLV_CONF} instead");
                    apply_with_suffixes(
                        &DnsBackend::system_resolv_conf(),
                        ifname,
                        servers,
                        suffixes,
                        default_route,
                    )
                }
            }
        }
        DnsBackend::ResolvConf { path, backup_dir } => {
            apply_resolv_conf(path, backup_dir, ifname, servers, suffixes, default_route)?;
            Ok(DnsGuard {
                applied: Some(Applied::ResolvConf {
                    path: path.clone(),
                    backup_dir: backup_dir.clone(),
                    ifname: ifname.to_owned(),
                }),
            })
        }
    }
}

fn apply_resolved(
    ifname: &str,
    servers: &[Ipv4Addr],
    suffixes: &[String],
    default_route: bool,
) -> Result<(), DnsError> {
    if !servers.is_empty() {
        let mut args = vec!["dns".to_owned(), ifname.to_owned()];
        args.extend(servers.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        resolvectl(&args)?;
    }
    // The suffixes are search domains of the link (resolved.conf(5),
    // Domains=): also routing domains, so their names go to the tunnel's
    // servers even in a split tunnel. "~." makes this link the route for
    // every domain: no query leaks to the LAN's servers while all traffic
    // goes through the tunnel.
    let mut domains: Vec<&str> = suffixes.iter().map(String::as_str).collect();
    let everything = default_route && !servers.is_empty();
    if everything {
        domains.push("~.");
    }
    if !domains.is_empty() {
        let mut args = vec!["domain", ifname];
        args.extend(domains);
        resolvectl(&args)?;
    }
    if everything {
        resolvectl(&["default-route", ifname, "yes"])?;
    }
    Ok(())
}

fn resolvectl(args: &[&str]) -> Result<String, DnsError> {
    let err = |message: String| DnsError::Resolvectl {
        args: args.join(" "),
        message,
    };
    let out = Command::new("resolvectl")
        .args(args)
        .output()
        .map_err(|e| err(e.to_string()))?;
    if !out.status.success() {
        // resolvectl says why on stderr; killed, or silent, it says
        // nothing, and the exit status is all there is.
        let said = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        return Err(err(if said.is_empty() {
            out.status.to_string()
        } else {
            said
        }));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn backup_path(backup_dir: &Path, ifname: &str) -> PathBuf {
    backup_dir.join(format!("resolv.conf.{ifname}"))
}

/// Sidecar of a backup: resolv.conf was a symbolic link to this target.
fn link_path(backup_dir: &Path, ifname: &str) -> PathBuf {
    backup_dir.join(format!("resolv.conf.{ifname}.link"))
}

fn file_err(path: &Path) -> impl FnOnce(io::Error) -> DnsError + '_ {
    move |source| DnsError::File {
        path: path.to_owned(),
        source,
    }
}

fn apply_resolv_conf(
    path: &Path,
    backup_dir: &Path,
    ifname: &str,
    servers: &[Ipv4Addr],
    suffixes: &[String],
    default_route: bool,
) -> Result<(), DnsError> {
    let backup = backup_path(backup_dir, ifname);
    if backup.exists() {
        // A backup from a run that did not end cleanly: what is in
        // resolv.conf now is ours, so restore first, then back up.
        tracing::info!("restoring {} left by an earlier run", backup.display());
        restore_one(path, backup_dir, ifname)?;
    }
    let original = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(file_err(path)(e)),
    };
    std::fs::create_dir_all(backup_dir).map_err(file_err(backup_dir))?;
    let link = link_path(backup_dir, ifname);
    match std::fs::read_link(path) {
        Ok(target) => {
            write_atomic(&link, target.to_string_lossy().as_bytes())?;
        }
        Err(_) => {
            let _ = std::fs::remove_file(&link);
        }
    }
    // The backup is written last: its presence means "resolv.conf is ours".
    write_atomic(&backup, original.as_bytes())?;
    let text = resolv_conf_text(&original, servers, suffixes, default_route, ifname, &backup);
    write_atomic(path, text.as_bytes())
}

/// Restores one backup and deletes it.
fn restore_one(path: &Path, backup_dir: &Path, ifname: &str) -> Result<(), DnsError> {
    let backup = backup_path(backup_dir, ifname);
    let link = link_path(backup_dir, ifname);
    match std::fs::read_to_string(&link) {
        Ok(target) => {
            // It was a symbolic link (to resolved's or resolvconf's file):
            // recreate the link rather than freezing its content.
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(file_err(path)(e)),
            }
            std::os::unix::fs::symlink(target.trim_end_matches('\n'), path)
                .map_err(file_err(path))?;
            let _ = std::fs::remove_file(&link);
        }
        Err(_) => {
            let original = std::fs::read(&backup).map_err(file_err(&backup))?;
            write_atomic(path, &original)?;
        }
    }
    std::fs::remove_file(&backup).map_err(file_err(&backup))?;
    tracing::debug!("{} restored", path.display());
    Ok(())
}

/// Restores the backups of earlier runs that died without restoring them
/// (killed, crashed, power to the process lost). Backups of interfaces
/// that exist (another `ras connect` still running) are left alone.
/// Returns the interfaces whose backup was restored.
pub fn restore_leftovers(backend: &DnsBackend) -> Result<Vec<String>, DnsError> {
    restore_leftovers_with(backend, interface_exists)
}

/// [`restore_leftovers`] with the "is this interface still in use" test
/// given (tests).
pub fn restore_leftovers_with(
    backend: &DnsBackend,
    in_use: impl Fn(&str) -> bool,
) -> Result<Vec<String>, DnsError> {
    let DnsBackend::ResolvConf { path, backup_dir } = backend else {
        return Ok(Vec::new());
    };
    let entries = match std::fs::read_dir(backup_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(file_err(backup_dir)(e)),
    };
    let mut restored = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(ifname) = name.strip_prefix("resolv.conf.") else {
            continue;
        };
        if ifname.ends_with(".link") || ifname.contains(".tmp") || in_use(ifname) {
            continue;
        }
        restore_one(path, backup_dir, ifname)?;
        restored.push(ifname.to_owned());
    }
    Ok(restored)
}

fn interface_exists(ifname: &str) -> bool {
    // `ip link`, not /sys/class/net: sysfs shows the namespace it was
    // mounted in, not necessarily ours.
    Command::new("ip")
        .args(["-o", "link", "show", "dev", ifname])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Writes through a temporary file and a rename, so a reader never sees
/// half a file and a symbolic link is replaced, not written through.
fn write_atomic(path: &Path, data: &[u8]) -> Result<(), DnsError> {
    use std::os::unix::fs::PermissionsExt;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp-ras");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, data).map_err(file_err(&tmp))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))
        .map_err(file_err(&tmp))?;
    match std::fs::rename(&tmp, path) {
        Ok(()) => Ok(()),
        // A bind-mounted resolv.conf (containers) cannot be replaced, only
        // rewritten in place (EBUSY; EXDEV = 18).
        Err(e) if e.kind() == io::ErrorKind::ResourceBusy || e.raw_os_error() == Some(18) => {
            let _ = std::fs::remove_file(&tmp);
            std::fs::write(path, data).map_err(file_err(path))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(file_err(path)(e))
        }
    }
}

/// The resolv.conf written while connected: the tunnel's servers first;
/// `domain`, `options` and `sortlist` lines kept; the original servers kept
/// after ours only when the tunnel is not the default route (they stay
/// reachable outside it, and answer for names the VPN's servers do not
/// know). `suffixes` go first on the `search` line, before the original
/// search domains (only the last `search` or `domain` line counts:
/// resolv.conf(5), so there is one).
pub fn resolv_conf_text(
    original: &str,
    servers: &[Ipv4Addr],
    suffixes: &[String],
    default_route: bool,
    ifname: &str,
    backup: &Path,
) -> String {
    let mut out = format!(
        "# Written by `ras connect` for {ifname}; the original is in {} and\n\
         # is put back on disconnect.\n",
        backup.display()
    );
    let mut count = 0;
    for s in servers.iter().take(MAX_NAMESERVERS) {
        out.push_str(&format!("nameserver {s}\n"));
        count += 1;
    }
    // Without servers of its own the tunnel cannot take the LAN's away.
    let drop_theirs = default_route && !servers.is_empty();
    let mut search: Vec<&str> = Vec::new();
    for line in original.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            // With a default route the LAN's servers are dropped: queries
            // must not leak outside the tunnel.
            Some("nameserver") if !drop_theirs && count < MAX_NAMESERVERS => {
                let theirs = words.next().unwrap_or("");
                if !servers.iter().any(|s| s.to_string() == theirs) {
                    out.push_str(line.trim());
                    out.push('\n');
                    count += 1;
                }
            }
            Some("search") if !suffixes.is_empty() => search = words.collect(),
            Some("domain") if !suffixes.is_empty() => search = words.take(1).collect(),
            Some("search" | "domain" | "options" | "sortlist") => {
                out.push_str(line.trim());
                out.push('\n');
            }
            _ => {}
        }
    }
    if !suffixes.is_empty() {
        let mut line = String::from("search");
        let mut seen: Vec<&str> = Vec::new();
        for d in suffixes.iter().map(String::as_str).chain(search) {
            let d = d.trim_end_matches('.');
            if !seen.iter().any(|s| s.eq_ignore_ascii_case(d)) {
                seen.push(d);
                line.push(' ');
                line.push_str(d);
            }
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ras-dns-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const ORIGINAL: &str =
        "# from DHCP\nnameserver 192.168.1.1\nnameserver 192.168.1.2\nsearch lan\noptions edns0\n";

    #[test]
    fn text_for_default_route_and_split_tunnel() {
        let servers = [ip("10.0.0.53"), ip("10.0.0.54")];
        let b = Path::new("/run/ras/resolv.conf.tun0");
        let full = resolv_conf_text(ORIGINAL, &servers, &[], true, "tun0", b);
        let ns: Vec<&str> = full
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect();
        assert_eq!(ns, ["nameserver 10.0.0.53", "nameserver 10.0.0.54"]);
        assert!(full.contains("search lan\n") && full.contains("options edns0\n"));
        assert!(full.contains("/run/ras/resolv.conf.tun0"));
        let split = resolv_conf_text(ORIGINAL, &servers, &[], false, "tun0", b);
        let ns: Vec<&str> = split
            .lines()
            .filter(|l| l.starts_with("nameserver"))
            .collect();
        assert_eq!(
            ns,
            [
                "nameserver 10.0.0.53",
                "nameserver 10.0.0.54",
                "nameserver 192.168.1.1"
            ]
        );
    }

    #[test]
    fn resolv_conf_is_restored_on_drop_and_after_a_crash() {
        let dir = temp_dir("file");
        let path = dir.join("resolv.conf");
        let backup_dir = dir.join("run");
        std::fs::write(&path, ORIGINAL).unwrap();
        let backend = DnsBackend::ResolvConf {
            path: path.clone(),
            backup_dir: backup_dir.clone(),
        };
        let guard = apply(&backend, "tun9", &[ip("10.0.0.53")], true).unwrap();
        assert_eq!(guard.describe(), "resolv.conf");
        let now = std::fs::read_to_string(&path).unwrap();
        assert!(now.contains("nameserver 10.0.0.53") && !now.contains("192.168.1.1"));
        assert_eq!(
            std::fs::read_to_string(backup_dir.join("resolv.conf.tun9")).unwrap(),
            ORIGINAL
        );
        drop(guard);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
        assert!(!backup_dir.join("resolv.conf.tun9").exists());

        // A crash: the guard is never dropped.
        std::mem::forget(apply(&backend, "tun9", &[ip("10.0.0.53")], true).unwrap());
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("10.0.0.53"));
        // Interface still there: another instance runs, leave it.
        assert!(restore_leftovers_with(&backend, |_| true)
            .unwrap()
            .is_empty());
        assert_eq!(
            restore_leftovers_with(&backend, |_| false).unwrap(),
            vec!["tun9".to_string()]
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);

        // A crash, then the same interface again: the leftover is restored
        // first, so the new backup is the real original.
        std::mem::forget(apply(&backend, "tun9", &[ip("10.0.0.53")], true).unwrap());
        let guard = apply(&backend, "tun9", &[ip("10.0.0.99")], true).unwrap();
        assert_eq!(
            std::fs::read_to_string(backup_dir.join("resolv.conf.tun9")).unwrap(),
            ORIGINAL
        );
        drop(guard);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_symlinked_resolv_conf_comes_back_as_the_same_link() {
        let dir = temp_dir("link");
        let target = dir.join("stub-resolv.conf");
        std::fs::write(&target, ORIGINAL).unwrap();
        let path = dir.join("resolv.conf");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let backend = DnsBackend::ResolvConf {
            path: path.clone(),
            backup_dir: dir.join("run"),
        };
        let guard = apply(&backend, "tun8", &[ip("10.0.0.53")], false).unwrap();
        assert!(std::fs::read_link(&path).is_err(), "replaced by a file");
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            ORIGINAL,
            "target untouched"
        );
        drop(guard);
        assert_eq!(std::fs::read_link(&path).unwrap(), target);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn suffixes_go_first_on_the_one_search_line() {
        let b = Path::new("/run/ras/resolv.conf.tun0");
        let suffixes = ["corp.example.com".to_owned(), "LAN.".to_owned()];
        let text = resolv_conf_text(ORIGINAL, &[ip("10.0.0.53")], &suffixes, true, "tun0", b);
        let search: Vec<&str> = text.lines().filter(|l| l.starts_with("search")).collect();
        assert_eq!(search, ["search corp.example.com LAN"]);
        assert!(text.contains("options edns0\n"));
        // No servers from the tunnel: the LAN's stay, even for a default route.
        let text = resolv_conf_text(ORIGINAL, &[], &suffixes[..1], true, "tun0", b);
        assert!(text.contains("nameserver 192.168.1.1\n"));
        assert!(text.contains("search corp.example.com lan\n"));
        // A `domain` line is the search list too.
        let text = resolv_conf_text("domain home\n", &[], &suffixes[..1], false, "tun0", b);
        assert_eq!(text.lines().last(), Some("search corp.example.com home"));
    }

    #[test]
    fn suffixes_alone_are_applied_and_put_back() {
        let dir = temp_dir("suffix");
        let path = dir.join("resolv.conf");
        std::fs::write(&path, ORIGINAL).unwrap();
        let backend = DnsBackend::ResolvConf {
            path: path.clone(),
            backup_dir: dir.join("run"),
        };
        let guard =
            apply_with_suffixes(&backend, "tun6", &[], &["corp.example".into()], false).unwrap();
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("search corp.example lan\n"));
        drop(guard);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), ORIGINAL);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_servers_changes_nothing() {
        let dir = temp_dir("none");
        let backend = DnsBackend::ResolvConf {
            path: dir.join("resolv.conf"),
            backup_dir: dir.join("run"),
        };
        let guard = apply(&backend, "tun7", &[], true).unwrap();
        assert_eq!(guard.describe(), "not configured");
        assert!(!dir.join("resolv.conf").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
