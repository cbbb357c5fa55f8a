//! A real systemd as PID 1 of its own PID and mount namespace, over an
//! overlay of `/`: what the tests of `ras client provision` and of the
//! systemd-resolved path of DNS run under, on a machine whose own PID 1 is
//! not systemd (or is, and must not be touched).
//!
//! Everything the container writes lands in a tmpfs upper layer that
//! vanishes with the mount namespace: units, `/etc/ras/client`, an
//! installed package, resolv.conf. `/proc`, `/sys` (read-only, so udevd
//! stays out), `/run` and `/tmp` are its own; `/dev` and the cgroup
//! hierarchies are the host's, and the container lives in a cgroup of its
//! own below ours (created here, removed on drop), so the cgroups systemd
//! makes never land in the host's root. It joins a network namespace
//! (`nsenter --net`, not `ip netns exec`, which would remount `/sys` and
//! lose the cgroup mounts). Directories of other mounts, and the test's
//! own temporary directories (under `/tmp`), are bind-mounted at the same
//! path.
//!
//! Dropped, systemd gets SIGKILL: as PID 1 of its namespace its death
//! kills everything in it, and the mounts go with the namespace.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const SYSTEMD: &str = "/lib/systemd/systemd";
/// systemd 252 on 2 busy cores reaches `running` in about 10 s.
const BOOT_WITHIN: Duration = Duration::from_secs(60);

/// Root, systemd installed, and nsenter/unshare/chroot: else a message
/// (a failure under RAS_INTEROP_REQUIRED=1).
pub fn can_boot() -> bool {
    let missing = if !interop::netns::is_root() {
        Some("needs root (namespaces, mounts, TUN)".to_owned())
    } else if !Path::new(SYSTEMD).is_file() {
        Some(format!("{SYSTEMD} is missing (apt-get install systemd)"))
    } else {
        ["nsenter", "unshare", "chroot", "systemctl"]
            .into_iter()
            .find(|p| !in_path(p))
            .map(|p| format!("{p} is not installed"))
    };
    match missing {
        None => true,
        Some(why) => {
            if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
                panic!("RAS_INTEROP_REQUIRED=1 but a systemd container cannot boot: {why}");
            }
            eprintln!("SKIPPED (systemd container): {why}");
            false
        }
    }
}

pub struct SystemdContainer {
    /// `unshare`, whose only child is systemd.
    child: Child,
    /// systemd's PID as seen from here.
    pub pid: u32,
    /// The boot script, the console log and the mount point of the tmpfs.
    dir: tempfile::TempDir,
    /// The cgroups made for it, one per hierarchy.
    cgroups: Vec<PathBuf>,
}

impl SystemdContainer {
    /// Boots systemd in network namespace `netns` (or this one), with
    /// `binds` (directories) visible at the same path, and waits until
    /// `systemctl is-system-running` says running or degraded.
    pub fn boot(netns: Option<&str>, binds: &[&Path]) -> SystemdContainer {
        let dir = tempfile::tempdir().unwrap();
        let tag = format!("ras-sd-{}-{}", std::process::id(), unique());
        let cgroups = make_cgroups(&tag);
        let mnt = dir.path().join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let script = dir.path().join("boot.sh");
        std::fs::write(&script, boot_script(&mnt, binds)).unwrap();
        let console = std::fs::File::create(dir.path().join("console.log")).unwrap();

        // The shell joins the cgroups, then becomes nsenter (network
        // namespace), then unshare, whose child (PID 1 inside) runs the
        // boot script, which ends as systemd.
        let mut join = String::new();
        for cg in &cgroups {
            join.push_str(&format!(
                "echo $$ > {} || echo 'cannot join cgroup {}' >&2; ",
                quote(&cg.join("cgroup.procs")),
                cg.display()
            ));
        }
        let netns_arg = netns
            .map(|ns| format!("nsenter --net=/run/netns/{ns} "))
            .unwrap_or_default();
        let command = format!(
            "{join}exec {netns_arg}unshare --pid --fork --mount --uts --ipc --propagation private sh {}",
            quote(&script)
        );
        let child = Command::new("sh")
            .arg("-c")
            .arg(&command)
            .stdin(Stdio::null())
            .stdout(console.try_clone().unwrap())
            .stderr(console)
            .spawn()
            .expect("start the systemd container");
        let mut container = SystemdContainer {
            pid: 0,
            child,
            dir,
            cgroups,
        };
        let started = Instant::now();
        let deadline = started + BOOT_WITHIN;
        container.pid = loop {
            if let Some(pid) = child_of(container.child.id()) {
                break pid;
            }
            container.fail_if(Instant::now() > deadline, "no systemd process");
            std::thread::sleep(Duration::from_millis(20));
        };
        // systemd execs from the boot script: wait for it to be systemd.
        let mut last;
        loop {
            if let Ok(Some(status)) = container.child.try_wait() {
                container.fail_if(true, &format!("the container ended ({status})"));
            }
            let out = container.exec(&["systemctl", "is-system-running"]);
            last = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if last == "running" || last == "degraded" {
                break;
            }
            container.fail_if(
                Instant::now() > deadline,
                &format!("systemctl is-system-running still says {last:?}"),
            );
            std::thread::sleep(Duration::from_millis(250));
        }
        eprintln!(
            "[systemd] booted in {:.1} s ({last}), PID {} here",
            started.elapsed().as_secs_f64(),
            container.pid
        );
        if last == "degraded" {
            let failed = container.exec(&["systemctl", "--failed", "--no-legend", "--plain"]);
            eprintln!(
                "[systemd] failed units: {}",
                String::from_utf8_lossy(&failed.stdout).trim()
            );
        }
        container
    }

    /// Runs `args` inside every namespace of the container, its root and
    /// working directory.
    pub fn exec(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-a", "-r", "-w"])
            .args(args)
            .env("SYSTEMD_PAGER", "")
            .env("SYSTEMD_COLORS", "0")
            .stdin(Stdio::null())
            .output()
            .expect("run nsenter")
    }

    /// [`exec`](Self::exec), which must succeed: its standard output.
    pub fn run(&self, args: &[&str]) -> String {
        let out = self.exec(args);
        assert!(
            out.status.success(),
            "{args:?} in the container: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.journal()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The trimmed standard output of `args`, whatever the exit status
    /// (`systemctl is-active` says "inactive" with status 3).
    pub fn say(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.exec(args).stdout)
            .trim()
            .to_owned()
    }

    /// The last lines of the journal, for assertion messages.
    pub fn journal(&self) -> String {
        // Not the kernel's messages: those are the host's.
        let out = self.exec(&[
            "journalctl",
            "--no-pager",
            "-n",
            "60",
            "-o",
            "short-monotonic",
            "_TRANSPORT=stdout",
            "_TRANSPORT=journal",
            "_TRANSPORT=syslog",
        ]);
        format!(
            "--- journal of the container ---\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    }

    /// What systemd printed on its console.
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    fn fail_if(&mut self, failed: bool, what: &str) {
        if failed {
            let console = self.console();
            self.stop();
            panic!("systemd container: {what}\n--- console ---\n{console}");
        }
    }

    fn stop(&mut self) {
        if self.pid != 0 {
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid.to_string()])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Children first; a cgroup empties a moment after its last
        // process is gone. rmdir only ever removes an empty cgroup.
        let deadline = Instant::now() + Duration::from_secs(5);
        for cg in &self.cgroups {
            while remove_cgroup_tree(cg).is_err() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if cg.exists() {
                eprintln!("[systemd] cgroup {} left behind", cg.display());
            }
        }
        self.cgroups.clear();
    }
}

impl Drop for SystemdContainer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn in_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn unique() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Single quotes for sh.
fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', r"'\''"))
}

fn boot_script(mnt: &Path, binds: &[&Path]) -> String {
    let r = quote(mnt);
    let mut s = format!(
        "set -e\n\
         R={r}\n\
         mount -t tmpfs tmpfs \"$R\"\n\
         mkdir -p \"$R/upper\" \"$R/work\" \"$R/root\"\n\
         mount -t overlay overlay -o lowerdir=/,upperdir=\"$R/upper\",workdir=\"$R/work\" \"$R/root\"\n\
         mount -t proc proc \"$R/root/proc\"\n\
         mount -t sysfs -o ro sysfs \"$R/root/sys\"\n\
         mount --rbind /sys/fs/cgroup \"$R/root/sys/fs/cgroup\"\n\
         mount --rbind /dev \"$R/root/dev\"\n\
         mount -t tmpfs tmpfs \"$R/root/run\"\n\
         mount -t tmpfs tmpfs \"$R/root/tmp\"\n"
    );
    for b in binds {
        let b = quote(b);
        s.push_str(&format!(
            "mkdir -p \"$R/root\"{b}\nmount --bind {b} \"$R/root\"{b}\n"
        ));
    }
    s.push_str(
        "cd \"$R/root\"\n\
         export container=ras-test\n\
         exec chroot . /lib/systemd/systemd --log-target=console --log-level=info\n",
    );
    s
}

/// The one child of `pid`, from /proc/*/stat.
fn child_of(pid: u32) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …: comm may hold spaces and parentheses.
        let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a) else {
            continue;
        };
        if after.split(' ').nth(1).and_then(|s| s.parse::<u32>().ok()) == Some(pid) {
            return Some(p);
        }
    }
    None
}

/// A cgroup `tag` below our own in every hierarchy mounted (cgroup v2, and
/// each v1 hierarchy on a hybrid machine), created; the ones that cannot be
/// made are left out (systemd then uses our own cgroup there).
fn make_cgroups(tag: &str) -> Vec<PathBuf> {
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    // (mount point, fstype, super options) of cgroup mounts of a root "/".
    let mounts: Vec<(String, String, String)> = mountinfo
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.get(3) != Some(&"/") || !r.first()?.starts_with("cgroup") {
                return None;
            }
            Some((
                f.get(4)?.to_string(),
                r[0].to_owned(),
                r.get(2)?.to_string(),
            ))
        })
        .collect();
    let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mut made = Vec::new();
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(a), Some(b), Some(c)) => (a, b, c),
            _ => continue,
        };
        let mount = mounts.iter().find(|(_, fstype, opts)| {
            if controllers.is_empty() {
                fstype == "cgroup2"
            } else {
                fstype == "cgroup"
                    && controllers
                        .split(',')
                        .all(|c| opts.split(',').any(|o| o == c))
            }
        });
        let Some((point, _, _)) = mount else {
            continue;
        };
        let dir = Path::new(point)
            .join(path.trim_start_matches('/'))
            .join(tag);
        if made.contains(&dir) {
            continue;
        }
        match std::fs::create_dir(&dir) {
            Ok(()) => made.push(dir),
            Err(e) => eprintln!("[systemd] no cgroup {}: {e}", dir.display()),
        }
    }
    made
}

/// rmdir of `dir` and the cgroups below it, deepest first.
fn remove_cgroup_tree(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)?.flatten() {
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_cgroup_tree(&entry.path())?;
        }
    }
    std::fs::remove_dir(dir)
}
