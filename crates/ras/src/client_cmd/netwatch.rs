//! Following the network: the kernel's routing notifications (rtnetlink,
//! RFC 3549 §2.3: links, addresses and routes) and time jumps after a
//! suspend. A burst of notifications (a Wi-Fi roam changes a link, two
//! addresses and three routes) settles for [`DEBOUNCE`]; then the default
//! route is looked at again, and a [`NetworkChange`] goes out only when the
//! way out (interface or source address) is not what it was, or when the
//! machine slept.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::socket::{
    bind, recv, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};
use nix::time::{clock_gettime, ClockId};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, mpsc, watch};

/// How long notifications must be quiet before the network is looked at.
pub const DEBOUNCE: Duration = Duration::from_millis(500);
/// How often the clocks are compared.
const CLOCK_CHECK: Duration = Duration::from_secs(2);
/// Boot time running ahead of monotonic time by more than this is a
/// suspend (CLOCK_MONOTONIC stops while suspended, CLOCK_BOOTTIME does
/// not: clock_gettime(2)).
const SUSPEND_MIN: Duration = Duration::from_secs(3);

/// rtnetlink multicast groups (linux/rtnetlink.h, RTMGRP_*).
const RTMGRP_LINK: u32 = 0x1;
const RTMGRP_IPV4_IFADDR: u32 = 0x10;
const RTMGRP_IPV4_ROUTE: u32 = 0x40;
const RTMGRP_IPV6_IFADDR: u32 = 0x100;
const RTMGRP_IPV6_ROUTE: u32 = 0x400;

/// The way out: the default route's interface and our source address on it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Uplink {
    pub interface: Option<String>,
    pub source: Option<String>,
}

impl Uplink {
    /// `eth0 (192.0.2.10)`, or `none` without a default route.
    pub fn describe(&self) -> String {
        match (&self.interface, &self.source) {
            (Some(i), Some(s)) => format!("{i} ({s})"),
            (Some(i), None) => i.clone(),
            (None, _) => "none".to_owned(),
        }
    }
}

/// What the connections are told.
#[derive(Debug, Clone)]
pub struct NetworkChange {
    pub old: Uplink,
    pub new: Uplink,
    /// Seconds the machine slept, when that is what happened.
    pub slept_s: Option<u64>,
}

impl NetworkChange {
    /// The cause a reconnect gives.
    pub fn cause(&self) -> String {
        match self.slept_s {
            Some(s) if self.old == self.new => {
                format!("network changed: resumed after {s} s asleep")
            }
            _ => format!(
                "network changed: default route moved from {} to {}",
                self.old.describe(),
                self.new.describe()
            ),
        }
    }
}

/// Called with each change before the connections hear of it (the
/// `network changed` event comes before what they do about it).
pub type Announce = Box<dyn Fn(&NetworkChange) + Send + Sync>;

/// Our own tunnels, which are no way out (the daemon adds those of
/// connections provisioned while it runs).
pub type Ignore = Arc<Mutex<Vec<String>>>;

/// Starts following the network; every change is announced, then sent on
/// the returned channel, and the way out now is kept in the returned watch
/// (looked at before this returns, so the first value is real). Interfaces
/// named in `ignore` (our own tunnels) do not count as a way out. Without a
/// netlink socket (a sandbox) only time jumps are seen, and the log says so.
pub async fn start(
    ignore: Ignore,
    announce: Announce,
) -> (broadcast::Sender<NetworkChange>, watch::Receiver<Uplink>) {
    let changes = broadcast::Sender::new(16);
    let (kick_tx, kick_rx) = mpsc::channel::<Option<u64>>(64);
    match open() {
        Ok(fd) => {
            let kick = kick_tx.clone();
            std::thread::Builder::new()
                .name("netwatch".into())
                .spawn(move || read_notifications(fd, kick))
                .ok();
        }
        Err(e) => tracing::warn!("not following the network (netlink: {e})"),
    }
    tokio::spawn(watch_clocks(kick_tx));
    let first = look(ignore.clone()).await;
    tracing::info!("network: default route via {}", first.describe());
    let (uplink_tx, uplink) = watch::channel(first);
    tokio::spawn(settle(
        kick_rx,
        changes.clone(),
        uplink_tx,
        ignore,
        announce,
    ));
    (changes, uplink)
}

/// The way out now (`ip` runs off the runtime's threads).
async fn look(ignore: Ignore) -> Uplink {
    tokio::task::spawn_blocking(move || {
        let ignore = ignore.lock().unwrap_or_else(|e| e.into_inner()).clone();
        current_uplink(&ignore)
    })
    .await
    .unwrap_or_default()
}

fn open() -> nix::Result<OwnedFd> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )?;
    let groups = RTMGRP_LINK
        | RTMGRP_IPV4_IFADDR
        | RTMGRP_IPV4_ROUTE
        | RTMGRP_IPV6_IFADDR
        | RTMGRP_IPV6_ROUTE;
    bind(fd.as_raw_fd(), &NetlinkAddr::new(0, groups))?;
    Ok(fd)
}

/// A blocking reader on its own thread: each datagram (one or more
/// notifications) is only a kick; what changed is read from the routing
/// table afterwards, so nothing of the message is parsed or kept.
fn read_notifications(fd: OwnedFd, kick: mpsc::Sender<Option<u64>>) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            // ENOBUFS: we fell behind and lost some; still a change.
            Ok(_) | Err(nix::errno::Errno::ENOBUFS) => {
                // A full queue already holds a kick: dropping is fine.
                if kick.is_closed() {
                    return;
                }
                let _ = kick.try_send(None);
            }
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                tracing::warn!("no longer following the network (netlink: {e})");
                return;
            }
        }
    }
}

/// (monotonic, boottime) now.
fn clocks() -> Option<(Duration, Duration)> {
    let m = clock_gettime(ClockId::CLOCK_MONOTONIC).ok()?;
    let b = clock_gettime(ClockId::CLOCK_BOOTTIME).ok()?;
    Some((Duration::from(m), Duration::from(b)))
}

/// Kicks with the time slept when boot time ran ahead of monotonic time.
async fn watch_clocks(kick: mpsc::Sender<Option<u64>>) {
    let Some(mut last) = clocks() else { return };
    let mut tick = tokio::time::interval(CLOCK_CHECK);
    loop {
        tick.tick().await;
        let Some(now) = clocks() else { return };
        if let Some(slept) = slept(last, now) {
            if kick.send(Some(slept.as_secs())).await.is_err() {
                return;
            }
        }
        last = now;
    }
}

/// The time slept between two (monotonic, boottime) readings.
fn slept(before: (Duration, Duration), after: (Duration, Duration)) -> Option<Duration> {
    let mono = after.0.saturating_sub(before.0);
    let boot = after.1.saturating_sub(before.1);
    let gap = boot.saturating_sub(mono);
    (gap > SUSPEND_MIN).then_some(gap)
}

/// Kicks settle for [`DEBOUNCE`]; then the way out is compared with the
/// last one.
async fn settle(
    mut kicks: mpsc::Receiver<Option<u64>>,
    changes: broadcast::Sender<NetworkChange>,
    uplink: watch::Sender<Uplink>,
    ignore: Ignore,
    announce: Announce,
) {
    let mut last = uplink.borrow().clone();
    while let Some(first) = kicks.recv().await {
        let mut slept_s = first;
        loop {
            match tokio::time::timeout(DEBOUNCE, kicks.recv()).await {
                Ok(Some(s)) => slept_s = slept_s.or(s),
                Ok(None) => return,
                Err(_) => break,
            }
        }
        let now = look(ignore.clone()).await;
        if now == last && slept_s.is_none() {
            continue;
        }
        let change = NetworkChange {
            old: std::mem::replace(&mut last, now.clone()),
            new: now,
            slept_s,
        };
        announce(&change);
        uplink.send_replace(change.new.clone());
        let _ = changes.send(change);
    }
}

/// The default route with the lowest metric that is not one of ours, and
/// the first address of its interface (its preferred source when it names
/// one). Read with `ip -json` (iproute2), as the routes themselves are set.
fn current_uplink(ignore: &[String]) -> Uplink {
    for family in ["-4", "-6"] {
        let Some(routes) = ip_json(&[family, "route", "show", "default"]) else {
            continue;
        };
        if let Some(uplink) = pick_default(&routes, ignore) {
            let source = uplink.source.clone().or_else(|| {
                let dev = uplink.interface.as_deref()?;
                let addrs = ip_json(&[family, "addr", "show", "dev", dev, "scope", "global"])?;
                first_address(&addrs)
            });
            return Uplink { source, ..uplink };
        }
    }
    Uplink::default()
}

/// `ip -json ARGS`, parsed; `None` when `ip` fails.
pub(super) fn ip_json(args: &[&str]) -> Option<serde_json::Value> {
    let out = std::process::Command::new("ip")
        .arg("-json")
        .args(args)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// From `ip -json route show default`: the lowest metric not ignored.
fn pick_default(routes: &serde_json::Value, ignore: &[String]) -> Option<Uplink> {
    routes
        .as_array()?
        .iter()
        .filter_map(|r| {
            let dev = r.get("dev")?.as_str()?;
            if ignore.iter().any(|i| i == dev) {
                return None;
            }
            let metric = r.get("metric").and_then(|m| m.as_u64()).unwrap_or(0);
            let source = r.get("prefsrc").and_then(|s| s.as_str()).map(str::to_owned);
            Some((metric, dev.to_owned(), source))
        })
        .min_by_key(|(metric, _, _)| *metric)
        .map(|(_, dev, source)| Uplink {
            interface: Some(dev),
            source,
        })
}

/// From `ip -json addr show dev X`: the first address.
fn first_address(addrs: &serde_json::Value) -> Option<String> {
    addrs
        .as_array()?
        .iter()
        .flat_map(|l| l.get("addr_info").and_then(|a| a.as_array()).cloned())
        .flatten()
        .find_map(|a| a.get("local")?.as_str().map(str::to_owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_metric_default_route_not_ours_is_the_way_out() {
        let routes: serde_json::Value = serde_json::from_str(
            r#"[{"dst":"default","gateway":"10.1.0.1","dev":"up-a","metric":200,"flags":[]},
                {"dst":"default","gateway":"10.2.0.1","dev":"up-b","prefsrc":"10.2.0.2","metric":100,"flags":[]},
                {"dst":"default","dev":"ras-c","metric":5,"flags":[]}]"#,
        )
        .unwrap();
        let up = pick_default(&routes, &["ras-c".to_owned()]).unwrap();
        assert_eq!(up.interface.as_deref(), Some("up-b"));
        assert_eq!(up.source.as_deref(), Some("10.2.0.2"));
        let up = pick_default(&routes, &[]).unwrap();
        assert_eq!(up.interface.as_deref(), Some("ras-c"));
        assert!(pick_default(&serde_json::json!([]), &[]).is_none());
    }

    #[test]
    fn first_address_of_an_interface() {
        let addrs: serde_json::Value = serde_json::from_str(
            r#"[{"ifindex":3,"ifname":"up-a","addr_info":[{"family":"inet","local":"10.1.0.2","prefixlen":24}]}]"#,
        )
        .unwrap();
        assert_eq!(first_address(&addrs).as_deref(), Some("10.1.0.2"));
        assert_eq!(first_address(&serde_json::json!([{}])), None);
    }

    #[test]
    fn a_suspend_is_boot_time_running_ahead() {
        let s = Duration::from_secs;
        assert_eq!(slept((s(10), s(10)), (s(12), s(12))), None);
        assert_eq!(slept((s(10), s(10)), (s(12), s(13))), None);
        assert_eq!(slept((s(10), s(10)), (s(12), s(612))), Some(s(600)));
    }

    #[test]
    fn the_cause_names_both_ways_out() {
        let up = |i: &str, s: &str| Uplink {
            interface: Some(i.into()),
            source: Some(s.into()),
        };
        let c = NetworkChange {
            old: up("up-a", "10.1.0.2"),
            new: up("up-b", "10.2.0.2"),
            slept_s: None,
        };
        assert_eq!(
            c.cause(),
            "network changed: default route moved from up-a (10.1.0.2) to up-b (10.2.0.2)"
        );
        let c = NetworkChange {
            old: up("up-a", "10.1.0.2"),
            new: up("up-a", "10.1.0.2"),
            slept_s: Some(600),
        };
        assert_eq!(c.cause(), "network changed: resumed after 600 s asleep");
        assert_eq!(Uplink::default().describe(), "none");
    }
}
