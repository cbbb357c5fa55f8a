//! Test support for running our clients against real third-party VPN servers.
//!
//! The servers (sstpd, pptpd, xl2tpd + strongSwan IKEv1, strongSwan IKEv2, a TCP
//! echo/discard service) run in a small Debian 12 VM that `interop/vm.sh` builds and
//! boots; see `interop/README.md`.  The VM is attached to a network namespace (default
//! `rasi`) with no route out: a client under test runs in that namespace and dials the
//! guest (default 10.77.0.2).
//!
//! ```no_run
//! #[test]
//! fn sstp_against_sstpd() {
//!     if !interop::require_root_or_skip() {
//!         return;
//!     }
//!     let vm = interop::Vm::shared().expect("interop VM");
//!     let sock = vm.in_ns(|| std::net::TcpStream::connect(vm.addr(vm.sstp_port))).unwrap();
//!     // ... run the SSTP client over `sock`, trusting `vm.ca_pem` ...
//! }
//! ```
//!
//! [`Vm::shared`] reads the VM facts from the file named by `RAS_INTEROP_VM_ENV` when
//! CI has already started the VM (`interop/ci-start.sh`); otherwise it runs
//! `interop/vm.sh start` once per test process. Test processes share a VM that
//! runs: each registers as its owner, and the VM powers off a short while
//! (`RAS_INTEROP_LINGER`, 120 s) after the last owner exited, so the test
//! binaries of one `cargo test --workspace` never see it stop under them.

#![forbid(unsafe_code)]

pub mod dnsmasq;
pub mod freeradius;
pub mod mountns;
pub mod netns;
pub mod softether;
pub mod strongswan;

use std::collections::BTreeMap;
use std::fmt;
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// Environment variable naming a `servers.env` written by a VM that is already running.
pub const VM_ENV_VAR: &str = "RAS_INTEROP_VM_ENV";
/// Environment variable that turns "skip" into "fail" when the VM cannot be used.
pub const REQUIRED_VAR: &str = "RAS_INTEROP_REQUIRED";
/// Default state directory of `interop/vm.sh` (`RAS_INTEROP_STATE` overrides).
pub const DEFAULT_STATE: &str = "/var/tmp/ras-interop";

/// Why the interop VM is not available.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// `vm.sh start` failed (its stderr was printed).
    Start(String),
    /// `servers.env` is missing or malformed.
    Env(String),
    /// Entering the network namespace or running a command in it failed.
    Ns(String),
    /// A guest job could not be run or did not finish in time.
    Job(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Start(m) => write!(f, "interop VM did not start: {m}"),
            Error::Env(m) => write!(f, "interop servers.env: {m}"),
            Error::Ns(m) => write!(f, "interop namespace: {m}"),
            Error::Job(m) => write!(f, "interop guest job: {m}"),
        }
    }
}

impl std::error::Error for Error {}

/// A PPP / EAP user the guest's servers accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: String,
}

/// The running interop VM, as described by its `servers.env`.
#[derive(Debug, Clone)]
pub struct Vm {
    /// Network namespace the client under test must run in.
    pub ns: String,
    /// The namespace's end of the link (the guest reaches the host here).
    pub host_ip: Ipv4Addr,
    /// The guest, where every server listens.
    pub guest_ip: Ipv4Addr,
    /// sstpd (TLS, `SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/`).
    pub sstp_port: u16,
    /// pptpd control connection (GRE carries the data).
    pub pptp_port: u16,
    /// xl2tpd (UDP), normally under IPsec.
    pub l2tp_port: u16,
    /// strongSwan IKE (UDP) and NAT-T (UDP).
    pub ike_port: u16,
    pub ike_natt_port: u16,
    /// TCP echo and discard on every guest address, including the PPP server ends.
    pub echo_port: u16,
    pub discard_port: u16,
    /// Users of every PPP server and of IKEv2 EAP-MSCHAPv2; the first is `test`/`test123`.
    pub users: Vec<User>,
    /// PEM of the CA that signed the SSTP / IKEv2 server certificate.
    pub ca_pem: PathBuf,
    /// IPsec pre-shared key (L2TP/IPsec, IKEv2 `ikev2-psk`) and the PSK client identity.
    pub psk: String,
    pub ike_psk_id: String,
    /// Servers running: any of `sstp pptp l2tp ikev2 echo`.
    pub servers: Vec<String>,
    /// The file these facts came from.
    pub env_file: PathBuf,
    vars: BTreeMap<String, String>,
}

impl Vm {
    /// The VM of this test process: started on first use (or taken from
    /// `RAS_INTEROP_VM_ENV`), then shared by every test of the process.
    pub fn shared() -> Result<&'static Vm, Error> {
        static VM: OnceLock<Result<Vm, Error>> = OnceLock::new();
        VM.get_or_init(Vm::acquire).as_ref().map_err(Clone::clone)
    }

    fn acquire() -> Result<Vm, Error> {
        if let Some(path) = std::env::var_os(VM_ENV_VAR) {
            return Vm::from_env_file(Path::new(&path));
        }
        let script = interop_dir().join("vm.sh");
        eprintln!("[interop] starting the VM: {} start", script.display());
        // stdout (the facts) goes to our stderr so that `cargo test` shows the progress.
        let status = Command::new(&script)
            .arg("start")
            .env("RAS_INTEROP_OWNER_PID", std::process::id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                std::io::stderr()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| Error::Start(format!("dup stderr: {e}")))?,
            ))
            .status()
            .map_err(|e| Error::Start(format!("{}: {e}", script.display())))?;
        if !status.success() {
            return Err(Error::Start(format!(
                "{} start: {status}",
                script.display()
            )));
        }
        Vm::from_env_file(&state_dir().join("servers.env"))
    }

    /// Reads the facts `vm.sh start` wrote (KEY="value" lines, `#` comments).
    pub fn from_env_file(path: &Path) -> Result<Vm, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Env(format!("{}: {e}", path.display())))?;
        let vars = parse_env(&text);
        let get = |k: &str| {
            vars.get(k)
                .cloned()
                .ok_or_else(|| Error::Env(format!("{}: no {k}", path.display())))
        };
        let num = |k: &str| -> Result<u16, Error> {
            get(k)?
                .parse()
                .map_err(|e| Error::Env(format!("{}: {k}: {e}", path.display())))
        };
        let ip = |k: &str| -> Result<Ipv4Addr, Error> {
            get(k)?
                .parse()
                .map_err(|e| Error::Env(format!("{}: {k}: {e}", path.display())))
        };
        let users = get("USERS")?
            .split_whitespace()
            .filter_map(|up| up.split_once(':'))
            .map(|(n, p)| User {
                name: n.to_owned(),
                password: p.to_owned(),
            })
            .collect();
        Ok(Vm {
            ns: get("NS")?,
            host_ip: ip("HOST_IP")?,
            guest_ip: ip("GUEST_IP")?,
            sstp_port: num("SSTP_PORT")?,
            pptp_port: num("PPTP_PORT")?,
            l2tp_port: num("L2TP_PORT")?,
            ike_port: num("IKE_PORT")?,
            ike_natt_port: num("IKE_NATT_PORT")?,
            echo_port: num("ECHO_PORT")?,
            discard_port: num("DISCARD_PORT")?,
            users,
            ca_pem: PathBuf::from(get("CA_PEM")?),
            psk: get("PSK")?,
            ike_psk_id: get("IKE_PSK_ID")?,
            servers: get("SERVERS")?
                .split_whitespace()
                .map(str::to_owned)
                .collect(),
            env_file: path.to_owned(),
            vars,
        })
    }

    /// Any other fact of `servers.env` (e.g. `PPTP_MPPE`, `AUTH`, `SSTP_LOCAL`, `IKE_POOL`).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    /// Whether `server` (`sstp`, `pptp`, `l2tp`, `ikev2`, `echo`) runs in the guest.
    pub fn has_server(&self, server: &str) -> bool {
        self.servers.iter().any(|s| s == server)
    }

    /// The default user, `test`/`test123`.
    pub fn user(&self) -> &User {
        &self.users[0]
    }

    /// The guest's address with `port`.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(self.guest_ip, port))
    }

    /// Whether the guest runs jobs (`guest_job`): images built before the
    /// job runner existed do not.
    pub fn has_guest_jobs(&self) -> bool {
        self.get("GUEST_JOBS") == Some("1")
    }

    /// The host's side of the guest's job directory (`/mnt/share/jobs` in
    /// the guest): a job's live output is `NAME.out` here, and a job may
    /// wait for a file the host creates here.
    pub fn jobs_dir(&self) -> PathBuf {
        self.env_file
            .parent()
            .unwrap_or(Path::new("."))
            .join("share")
            .join("jobs")
    }

    /// Runs `script` with bash inside the guest (as root, in the guest's
    /// network: it reaches the namespace at `host_ip`) and waits up to
    /// `within` for it to end. Returns its exit status and output (stdout
    /// and stderr). The guest polls for jobs every 0.3 s (servers.sh).
    pub fn guest_job(
        &self,
        name: &str,
        script: &str,
        within: std::time::Duration,
    ) -> Result<(i32, String), Error> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Error::Job(format!("bad job name {name:?}")));
        }
        let dir = self.jobs_dir();
        std::fs::create_dir_all(&dir).map_err(|e| Error::Job(format!("{}: {e}", dir.display())))?;
        for ext in ["started", "out", "rc", "rc.tmp"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
        }
        // Written under another name first: the guest must never see half a script.
        let tmp = dir.join(format!("{name}.tmp"));
        std::fs::write(&tmp, script).map_err(|e| Error::Job(format!("{}: {e}", tmp.display())))?;
        let path = dir.join(format!("{name}.sh"));
        std::fs::rename(&tmp, &path).map_err(|e| Error::Job(format!("{}: {e}", path.display())))?;
        let deadline = std::time::Instant::now() + within;
        let rc_path = dir.join(format!("{name}.rc"));
        let output =
            || std::fs::read_to_string(dir.join(format!("{name}.out"))).unwrap_or_default();
        loop {
            if let Ok(text) = std::fs::read_to_string(&rc_path) {
                let _ = std::fs::remove_file(&path);
                let rc = text.trim().parse().unwrap_or(-1);
                return Ok((rc, output()));
            }
            let started = dir.join(format!("{name}.started")).exists();
            // A VM that powered off (stopped by another process, or its lifetime
            // ran out) will never finish the job: say so at once.
            if !self.qemu_running() {
                return Err(Error::Job(format!(
                    "{name}: the interop VM is not running any more (qemu pid {}; job started: {started}); \
                     its console ends with:\n{}\noutput so far:\n{}",
                    self.get("QEMU_PID").unwrap_or("unknown"),
                    self.console_tail(15),
                    output()
                )));
            }
            if std::time::Instant::now() > deadline {
                let why = if started {
                    "the guest started it but it did not end".to_owned()
                } else {
                    self.runner_state(&dir)
                };
                return Err(Error::Job(format!(
                    "{name} did not finish within {within:?}: {why}; output so far:\n{}",
                    output()
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    /// Whether the VM's qemu (`QEMU_PID` in servers.env) still runs. Unknown
    /// (no pid recorded) counts as running.
    fn qemu_running(&self) -> bool {
        match self.get("QEMU_PID").and_then(|p| p.parse::<u32>().ok()) {
            Some(pid) => Path::new(&format!("/proc/{pid}")).exists(),
            None => true,
        }
    }

    /// Why a job was not picked up: the guest's job runner touches
    /// `jobs/runner.alive` about once a second (servers.sh).
    fn runner_state(&self, jobs: &Path) -> String {
        let alive = jobs.join("runner.alive");
        match std::fs::metadata(&alive).and_then(|m| m.modified()) {
            Ok(t) => match t.elapsed() {
                Ok(age) if age.as_secs() <= 5 => {
                    "the guest's job runner is alive but never started the job".to_owned()
                }
                Ok(age) => format!(
                    "the guest's job runner stopped {} s ago (the guest is hung or stopping)",
                    age.as_secs()
                ),
                Err(_) => "the guest's job runner is alive but never started the job".to_owned(),
            },
            Err(_) => format!(
                "the guest never started it and shows no job runner ({} missing: \
                 a VM booted with an older servers.sh, or the runner died)",
                alive.display()
            ),
        }
    }

    /// The last `lines` lines of the guest's console, for error messages.
    fn console_tail(&self, lines: usize) -> String {
        let console = self
            .env_file
            .parent()
            .unwrap_or(Path::new("."))
            .join("share")
            .join("console.log");
        let text = std::fs::read_to_string(&console).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// `ip netns exec <ns> <program>`: add arguments, then run it.
    pub fn command_in_ns(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns, program]);
        c
    }

    /// Runs `argv` in the namespace and returns its output; a non-zero exit is an error
    /// that carries the command's stderr.
    pub fn run_in_ns(&self, argv: &[&str]) -> Result<Output, Error> {
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| Error::Ns("run_in_ns: empty command".into()))?;
        let out = self
            .command_in_ns(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Ns(format!("ip netns exec {} {argv:?}: {e}", self.ns)))?;
        if !out.status.success() {
            return Err(Error::Ns(format!(
                "{argv:?} in {}: {}: {}",
                self.ns,
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(out)
    }

    /// Runs `f` on a thread that has entered the VM's network namespace.  Sockets made
    /// by `f` stay in that namespace wherever they are used later.
    pub fn in_ns<T, F>(&self, f: F) -> Result<T, Error>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = Path::new("/run/netns").join(&self.ns);
        let ns = File::open(&path).map_err(|e| Error::Ns(format!("{}: {e}", path.display())))?;
        std::thread::scope(|s| {
            s.spawn(move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(|e| Error::Ns(format!("setns {}: {e}", path.display())))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }
}

/// Whether an interop test can run here.  Returns `true` when it can; otherwise prints
/// why and returns `false` (the test should return early), or panics if
/// `RAS_INTEROP_REQUIRED=1` (as in CI), so that a missing VM is never a silent pass.
pub fn require_root_or_skip() -> bool {
    match prerequisites() {
        Ok(()) => true,
        Err(why) if required() => {
            panic!("{REQUIRED_VAR}=1 but the interop VM cannot be used: {why}")
        }
        Err(why) => {
            // Straight to the stderr handle, not eprintln!: the test harness would capture
            // that, and a skip should be visible in a plain `cargo test`.
            let msg =
                format!("SKIPPED (interop): {why}; set {REQUIRED_VAR}=1 to make this a failure\n");
            let _ = std::io::stderr().write_all(msg.as_bytes());
            false
        }
    }
}

fn required() -> bool {
    std::env::var(REQUIRED_VAR).is_ok_and(|v| v == "1")
}

fn prerequisites() -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err("not root (network namespaces and qemu taps need root)".into());
    }
    if !on_path("ip") {
        return Err("`ip` (iproute2) not found".into());
    }
    if let Some(p) = std::env::var_os(VM_ENV_VAR) {
        return match Path::new(&p).is_file() {
            true => Ok(()),
            false => Err(format!(
                "{VM_ENV_VAR}={} is not a file",
                p.to_string_lossy()
            )),
        };
    }
    if !on_path("qemu-system-x86_64") {
        return Err("qemu-system-x86_64 not found (interop/ci-start.sh installs it)".into());
    }
    if !state_dir().join("image/root.img").is_file() && !on_path("debootstrap") {
        return Err("no guest image built and no debootstrap to build one".into());
    }
    Ok(())
}

fn on_path(program: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .any(|d| d.join(program).is_file())
}

/// `interop/` of this repository (`RAS_INTEROP_DIR` overrides).
fn interop_dir() -> PathBuf {
    std::env::var_os("RAS_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../interop"))
}

fn state_dir() -> PathBuf {
    std::env::var_os("RAS_INTEROP_STATE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE))
}

/// KEY="value" / KEY=value lines; blank lines and `#` comments are skipped.
fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| {
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            (k.trim().to_owned(), v.to_owned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_servers_env() {
        let text = "# c\nNS=\"rasi\"\nHOST_IP=\"10.77.0.1\"\nGUEST_IP=\"10.77.0.2\"\nSSTP_PORT=\"443\"\n\
                    PPTP_PORT=1723\nL2TP_PORT=1701\nIKE_PORT=500\nIKE_NATT_PORT=4500\nECHO_PORT=7777\n\
                    DISCARD_PORT=7778\nUSERS=\"test:test123 a:b:c\"\nCA_PEM=/x/ca.pem\nPSK=k\n\
                    IKE_PSK_ID=psk@x\nSERVERS=\"sstp pptp\"\nPPTP_MPPE=require\n";
        let dir = std::env::temp_dir().join(format!("interop-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("servers.env");
        std::fs::write(&f, text).unwrap();
        let vm = Vm::from_env_file(&f).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(vm.ns, "rasi");
        assert_eq!(vm.addr(vm.sstp_port), "10.77.0.2:443".parse().unwrap());
        assert_eq!(vm.user().name, "test");
        assert_eq!(vm.users[1].password, "b:c");
        assert!(vm.has_server("pptp") && !vm.has_server("l2tp"));
        assert_eq!(vm.get("PPTP_MPPE"), Some("require"));
    }

    /// A guest job that never starts says why, in words: the VM is gone,
    /// the guest has no job runner, its runner stopped, or it runs but did
    /// not take the job (issue 11: "did not finish within 150s (started:
    /// false)" said none of that).
    #[test]
    fn a_job_that_never_starts_says_why() {
        let dir = std::env::temp_dir().join(format!("interop-job-{}", std::process::id()));
        let jobs = dir.join("share").join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let env = |qemu_pid: u32| {
            let f = dir.join("servers.env");
            std::fs::write(
                &f,
                format!(
                    "NS=n\nHOST_IP=10.77.0.1\nGUEST_IP=10.77.0.2\nSSTP_PORT=443\nPPTP_PORT=1723\n\
                     L2TP_PORT=1701\nIKE_PORT=500\nIKE_NATT_PORT=4500\nECHO_PORT=7\nDISCARD_PORT=9\n\
                     USERS=a:b\nCA_PEM=/x\nPSK=k\nIKE_PSK_ID=i\nSERVERS=sstp\nQEMU_PID={qemu_pid}\n"
                ),
            )
            .unwrap();
            Vm::from_env_file(&f).unwrap()
        };
        let short = std::time::Duration::from_millis(300);
        let why = |vm: &Vm| match vm.guest_job("probe", "true", short) {
            Err(Error::Job(text)) => text,
            other => panic!("expected a job error, got {other:?}"),
        };

        // qemu is gone: said at once, not after the whole wait.
        let mut gone = Command::new("true").spawn().unwrap();
        let dead = gone.id();
        gone.wait().unwrap();
        let started = std::time::Instant::now();
        let text = why(&env(dead));
        assert!(
            text.contains("the interop VM is not running any more")
                && text.contains("job started: false"),
            "{text}"
        );
        assert!(started.elapsed() < short, "waited for a VM that is gone");

        // qemu runs (this process stands in for it), the guest never ran a
        // job runner.
        let vm = env(std::process::id());
        let text = why(&vm);
        assert!(text.contains("did not finish within"), "{text}");
        assert!(text.contains("shows no job runner"), "{text}");

        // The runner stopped a while ago: the guest is hung or stopping.
        let alive = std::fs::File::create(jobs.join("runner.alive")).unwrap();
        alive
            .set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(60))
            .unwrap();
        let text = why(&vm);
        assert!(text.contains("job runner stopped"), "{text}");

        // The runner is alive but did not take the job.
        alive.set_modified(std::time::SystemTime::now()).unwrap();
        let text = why(&vm);
        assert!(
            text.contains("job runner is alive but never started the job"),
            "{text}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
