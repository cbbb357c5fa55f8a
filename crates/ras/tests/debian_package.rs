//! The Debian package (dist/build-deb.sh) end to end: built around the
//! `ras` of this build, it holds the binary, the unit, the conffile, man
//! pages and completions, and installs into a clean Debian bookworm
//! (a copy of the debootstrap chroot that dist/debian/chroot.sh caches),
//! where it creates the user ras, the unit passes `systemd-analyze verify`,
//! and the server starts on the shipped /etc/ras/ras.toml and runs as ras.
//! Needs root, dpkg-deb, debootstrap and unshare; skips otherwise (fails
//! under RAS_INTEROP_REQUIRED=1, as in CI).

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use server::proc_status::all_threads;

const RAS: &str = env!("CARGO_BIN_EXE_ras");

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn required() -> bool {
    std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1")
}

fn can_run() -> bool {
    let mut missing = Vec::new();
    if !interop::netns::is_root() {
        missing.push("root".to_owned());
    }
    for tool in ["dpkg-deb", "debootstrap", "unshare", "chroot", "ip"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
            .unwrap_or(false);
        if !found {
            missing.push(tool.to_owned());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    if required() {
        panic!("RAS_INTEROP_REQUIRED=1 but missing: {what} (apt-get install debootstrap)");
    }
    eprintln!("SKIPPED (debian package): missing {what}");
    false
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(out.status.success(), "{cmd:?} failed:\n{}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `args` run chrooted into `root`, in a private mount namespace with
/// /proc and /dev/net/tun mounted (gone with the process, never left on
/// the host), optionally in network namespace `netns`.
fn in_chroot(root: &Path, netns: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "unshare"]);
            c
        }
        None => Command::new("unshare"),
    };
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(
            r#"r=$1; shift
mount -t proc proc "$r/proc" && mount --bind /dev/net/tun "$r/dev/net/tun" && exec chroot "$r" "$@""#,
        )
        .arg("sh")
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .env("LANG", "C.UTF-8");
    cmd
}

/// A network namespace with its loopback up, deleted on drop.
struct Netns(String);

impl Netns {
    fn create(name: &str) -> Netns {
        let _ = run(Command::new("ip").args(["netns", "del", name]));
        ok(Command::new("ip").args(["netns", "add", name]));
        ok(Command::new("ip").args(["-n", name, "link", "set", "lo", "up"]));
        Netns(name.to_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(Command::new("ip").args(["netns", "del", &self.0]));
    }
}

struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn package_installs_into_clean_debian_and_the_server_starts() {
    if !can_run() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("ras-deb-")
        .tempdir_in("/var/tmp")
        .unwrap();

    // Build the package around this build's binary.
    let deb = ok(Command::new("bash")
        .arg(repo().join("dist/build-deb.sh"))
        .arg("--binary")
        .arg(RAS)
        .arg("--out")
        .arg(work.path()));
    let deb = PathBuf::from(deb.trim());
    assert!(deb.is_file(), "{}", deb.display());

    // Its contents.
    let listing = ok(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for path in [
        "./usr/bin/ras",
        "./lib/systemd/system/ras.service",
        "./etc/ras/ras.toml",
        "./usr/share/man/man1/ras.1.gz",
        "./usr/share/man/man1/ras-server.1.gz",
        "./usr/share/man/man1/ras-user-add.1.gz",
        "./usr/share/man/man1/ras-completions.1.gz",
        "./usr/share/bash-completion/completions/ras",
        "./usr/share/zsh/vendor-completions/_ras",
        "./usr/share/fish/vendor_completions.d/ras.fish",
    ] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!(" {path}"))),
            "{path} not in the package:\n{listing}"
        );
    }
    let conffiles = ok(Command::new("dpkg-deb")
        .arg("--info")
        .arg(&deb)
        .arg("conffiles"));
    assert_eq!(conffiles.trim(), "/etc/ras/ras.toml");
    let depends = ok(Command::new("dpkg-deb")
        .args(["--field"])
        .arg(&deb)
        .arg("Depends"));
    for dep in ["libc6", "adduser", "iproute2", "procps"] {
        assert!(depends.contains(dep), "Depends: {depends}");
    }

    // A fresh copy of the cached clean system.
    let image = ok(Command::new("bash").arg(repo().join("dist/debian/chroot.sh")));
    let root = work.path().join("root");
    ok(Command::new("cp").arg("-a").arg(image.trim()).arg(&root));
    assert!(
        !root.join("etc/ras").exists() && !root.join("usr/bin/ras").exists(),
        "the cached image is not clean"
    );
    std::fs::create_dir_all(root.join("dev/net")).unwrap();
    std::fs::write(root.join("dev/net/tun"), b"").unwrap();
    std::fs::copy(&deb, root.join("tmp/ras.deb")).unwrap();

    let chroot = |args: &[&str]| ok(&mut in_chroot(&root, None, args));
    chroot(&["dpkg", "-i", "/tmp/ras.deb"]);
    let status = chroot(&["dpkg-query", "-W", "-f", "${Status}", "ras"]);
    assert_eq!(status, "install ok installed");

    // The system user and group, and the configuration readable by them.
    let passwd = chroot(&["getent", "passwd", "ras"]);
    let fields: Vec<&str> = passwd.trim().split(':').collect();
    assert_eq!(fields[0], "ras", "{passwd}");
    let uid: u32 = fields[2].parse().unwrap();
    assert!((100..1000).contains(&uid), "not a system uid: {passwd}");
    assert_eq!(fields[5], "/var/lib/ras", "{passwd}");
    let group = chroot(&["getent", "group", "ras"]);
    let gid: u32 = group.trim().split(':').nth(2).unwrap().parse().unwrap();
    let conf = chroot(&["stat", "-c", "%U:%G %a", "/etc/ras/ras.toml"]);
    assert_eq!(conf.trim(), "root:ras 640");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/ras/ras.toml")).unwrap(),
        include_str!("../../server/ras.example.toml")
    );
    // Installing again (a reinstall runs the postinst again) is no error.
    chroot(&["dpkg", "-i", "/tmp/ras.deb"]);

    // The unit as installed.
    let verify = run(&mut in_chroot(
        &root,
        None,
        &[
            "systemd-analyze",
            "verify",
            "/lib/systemd/system/ras.service",
        ],
    ));
    assert!(
        verify.status.success(),
        "systemd-analyze verify:\n{}",
        text(&verify)
    );
    let said = text(&verify);
    assert!(
        !said.contains("ras.service"),
        "systemd-analyze verify warns about the unit:\n{said}"
    );

    // The shipped configuration passes the check, and the server starts
    // on it and runs as ras.
    chroot(&["ras", "server", "--check", "--config", "/etc/ras/ras.toml"]);
    let ns = Netns::create(&format!("rasdeb{}", std::process::id()));
    let mut child = in_chroot(
        &root,
        Some(&ns.0),
        &["/usr/bin/ras", "server", "--config", "/etc/ras/ras.toml"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (tx, lines) = mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                eprintln!("[server] {line}");
                let _ = tx.send(line);
            }
        });
    }
    let server = Running(child);
    // The ready line, then the change of user (after binding, as root).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = false;
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| {
                panic!("ras server did not print its ready line and change to ras (ready: {ready})")
            });
        ready |= line.starts_with("ras server: SSTP on");
        if ready && line.contains(&format!("running as user ras (uid {uid})")) {
            break;
        }
    }
    // ip, unshare, sh and chroot each exec the next: the child is ras, and
    // every one of its threads runs as ras.
    let threads = all_threads(server.0.id()).unwrap();
    assert!(!threads.is_empty());
    for (tid, creds) in &threads {
        assert_eq!(creds.uid, [uid; 4], "thread {tid} uid");
        assert_eq!(creds.gid, [gid; 4], "thread {tid} gid");
    }
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", server.0.id())).unwrap();
    assert_eq!(comm.trim(), "ras");
    // SIGTERM stops it cleanly, as systemd would.
    ok(Command::new("kill").args(["-TERM", &server.0.id().to_string()]));
    let mut server = server;
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = server.0.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "ras server ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(exit.success(), "ras server exit: {exit}");
    drop(server);
    drop(ns);

    // Purging removes the conffile and the state, and keeps the user.
    chroot(&["dpkg", "--purge", "ras"]);
    assert!(!root.join("etc/ras/ras.toml").exists());
    assert!(!root.join("var/lib/ras").exists());
    chroot(&["getent", "passwd", "ras"]);
}
