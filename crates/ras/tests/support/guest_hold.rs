//! A guest job that holds its tunnel up (it prints `HOLDING` and waits for
//! `/mnt/share/jobs/<name>.release`) while the host looks at the server's
//! side: the routes in the server's namespace and pings from there to
//! networks behind the guest client (RADIUS Framed-Route and
//! Framed-IPv6-Route, issue 14).

use std::time::{Duration, Instant};

/// The server's side while the tunnel was up.
pub struct Held {
    /// `ip -4 route` and `ip -6 route` in the server's namespace.
    pub routes: String,
    /// Each target pinged from the server's namespace, and whether it
    /// answered.
    pub pings: Vec<(String, bool)>,
    /// The guest said it was up (else the above are from no tunnel).
    pub up: bool,
}

impl Held {
    /// Whether the ping to `target` was answered.
    pub fn answered(&self, target: &str) -> bool {
        self.pings.iter().any(|(t, ok)| t == target && *ok)
    }

    /// Whether a route for `net` (`prefix/len`) through `dev` was there.
    pub fn has_route(&self, net: &str, dev: &str) -> bool {
        self.routes
            .lines()
            .any(|l| l.starts_with(net) && l.contains(&format!("dev {dev}")))
    }
}

/// The file whose creation lets guest job `name` go on (its `HOLD`).
pub fn release_path(name: &str) -> String {
    format!("/mnt/share/jobs/{name}.release")
}

/// Starts guest job `name` on a thread of its own, for [`hold`] to watch.
/// The last run's output and release file of the same name go first:
/// a `HOLDING` left in them would let `hold` look before the tunnel is up
/// and release the new job at once.
pub fn spawn_job(
    vm: &'static interop::Vm,
    name: &str,
    script: String,
    within: Duration,
) -> std::thread::JoinHandle<Result<(i32, String), interop::Error>> {
    let jobs = vm.jobs_dir();
    for ext in ["out", "release"] {
        let _ = std::fs::remove_file(jobs.join(format!("{name}.{ext}")));
    }
    let name = name.to_owned();
    std::thread::spawn(move || vm.guest_job(&name, &script, within))
}

/// Waits (up to 120 s) until guest job `name` printed `HOLDING`, then
/// takes the routes in the server's namespace and pings each of
/// `targets` (IPv4 or IPv6) from there; then lets the guest go on.
pub fn hold(
    vm: &interop::Vm,
    name: &str,
    targets: &[&str],
    guest: &std::thread::JoinHandle<Result<(i32, String), interop::Error>>,
) -> Held {
    let jobs = vm.jobs_dir();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut up = false;
    while Instant::now() < deadline && !guest.is_finished() {
        let out = std::fs::read_to_string(jobs.join(format!("{name}.out"))).unwrap_or_default();
        if out.lines().any(|l| l == "HOLDING") {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut routes = String::new();
    for family in ["-4", "-6"] {
        if let Ok(o) = vm.command_in_ns("ip").args([family, "route"]).output() {
            routes.push_str(&String::from_utf8_lossy(&o.stdout));
        }
    }
    let pings = targets
        .iter()
        .map(|target| {
            let ok = up
                && vm
                    .command_in_ns("ping")
                    .args(["-c", "3", "-i", "0.3", "-W", "3", target])
                    .status()
                    .is_ok_and(|s| s.success());
            (target.to_string(), ok)
        })
        .collect();
    std::fs::write(jobs.join(format!("{name}.release")), b"").expect("release the guest");
    Held { routes, pings, up }
}

/// Waits up to 5 s for the route to `net` (`prefix/len`, IPv4 or IPv6)
/// in the server's namespace to go; returns what is left (empty: gone).
pub fn route_left(vm: &interop::Vm, net: &str) -> String {
    let family = if net.contains(':') { "-6" } else { "-4" };
    let route = || {
        let out = vm
            .command_in_ns("ip")
            .args([family, "route", "show", net])
            .output()
            .expect("ip route");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !route().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    route()
}
