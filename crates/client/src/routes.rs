//! Routes the client adds while connected, with iproute2 (`ip route`), the
//! way `netdev` adds the server's: no netlink dependency, and
//! `ip route replace` is idempotent. Every route added through a
//! [`RouteSet`] is removed again when the set is dropped, so an error path
//! or a dropped future cleans up as well as a normal disconnect.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

/// Why a route could not be parsed, found or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("bad route {0:?}: expected ADDRESS/PREFIX such as 10.1.0.0/16")]
    Parse(String),
    #[error("`ip {args}` failed: {message}")]
    Command { args: String, message: String },
    #[error("no route to {0} in the current table")]
    NoRoute(IpAddr),
}

/// One route: `dest/prefix [via gateway] dev dev`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub dev: String,
}

impl Route {
    /// A route through a (point-to-point) device: no gateway needed.
    pub fn via_dev(dest: IpAddr, prefix: u8, dev: &str) -> Route {
        Route {
            dest,
            prefix,
            gateway: None,
            dev: dev.to_owned(),
        }
    }

    /// The arguments of `ip` for `verb` (replace, del).
    pub fn args(&self, verb: &str) -> Vec<String> {
        let family = if self.dest.is_ipv4() { "-4" } else { "-6" };
        let mut args = vec![
            family.to_owned(),
            "route".to_owned(),
            verb.to_owned(),
            format!("{}/{}", self.dest, self.prefix),
        ];
        if let Some(gw) = self.gateway {
            args.extend(["via".to_owned(), gw.to_string()]);
        }
        args.extend(["dev".to_owned(), self.dev.clone()]);
        args
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.dest, self.prefix)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        write!(f, " dev {}", self.dev)
    }
}

/// Parses `ADDR/PREFIX` (or a bare address, a host route). Host bits are
/// cleared, as `ip route` would otherwise refuse the route.
pub fn parse_cidr(text: &str) -> Result<(IpAddr, u8), RouteError> {
    let bad = || RouteError::Parse(text.to_owned());
    let (addr, prefix) = match text.trim().split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        Some(p) => p.parse::<u8>().map_err(|_| bad())?,
        None => max,
    };
    if prefix > max {
        return Err(bad());
    }
    Ok((mask(addr, prefix), prefix))
}

fn mask(addr: IpAddr, prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let m = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & m))
        }
        IpAddr::V6(a) => {
            let m = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(a) & m))
        }
    }
}

/// How the kernel reaches `addr` now: the route `ip route get` reports,
/// as a host route. `Ok(None)` for a local address (nothing to pin).
pub fn route_get(addr: IpAddr) -> Result<Option<Route>, RouteError> {
    let args = vec!["route".to_owned(), "get".to_owned(), addr.to_string()];
    let out = run(&args)?;
    parse_route_get(&out, addr)
}

/// Parses the first line of `ip route get ADDR`, e.g.
/// `203.0.113.5 via 192.168.1.1 dev eth0 src 192.168.1.10 uid 0`.
pub fn parse_route_get(output: &str, addr: IpAddr) -> Result<Option<Route>, RouteError> {
    let line = output.lines().next().unwrap_or("");
    let words: Vec<&str> = line.split_whitespace().collect();
    if matches!(words.first(), Some(&"local") | Some(&"broadcast")) {
        return Ok(None);
    }
    if matches!(
        words.first(),
        Some(&"unreachable") | Some(&"prohibit") | Some(&"blackhole")
    ) {
        return Err(RouteError::NoRoute(addr));
    }
    let after = |key: &str| {
        words
            .iter()
            .position(|w| *w == key)
            .and_then(|i| words.get(i + 1))
            .copied()
    };
    let dev = after("dev").ok_or(RouteError::NoRoute(addr))?;
    if dev == "lo" {
        return Ok(None);
    }
    let gateway = match after("via") {
        // IPv6 gateways may be printed as "via inet6 fe80::1".
        Some("inet" | "inet6") => after("inet").or_else(|| after("inet6")),
        other => other,
    }
    .map(|g| g.parse::<IpAddr>())
    .transpose()
    .map_err(|_| RouteError::Command {
        args: format!("route get {addr}"),
        message: format!("unexpected answer {line:?}"),
    })?;
    Ok(Some(Route {
        dest: addr,
        prefix: if addr.is_ipv4() { 32 } else { 128 },
        gateway,
        dev: dev.to_owned(),
    }))
}

/// Routes added by this process, removed (in reverse order) on drop.
#[derive(Debug, Default)]
pub struct RouteSet {
    added: Vec<Route>,
}

impl RouteSet {
    pub fn new() -> Self {
        RouteSet::default()
    }

    /// Adds (or replaces) a route and remembers it for removal. Adding the
    /// same route twice is harmless.
    pub fn add(&mut self, route: Route) -> Result<(), RouteError> {
        run(&route.args("replace"))?;
        tracing::debug!("route added: {route}");
        if !self.added.contains(&route) {
            self.added.push(route);
        }
        Ok(())
    }

    /// What was added, in order.
    pub fn routes(&self) -> &[Route] {
        &self.added
    }

    /// Removes every route added. A route that is already gone (its
    /// device was deleted, or an administrator removed it) is not an
    /// error: removal is idempotent.
    pub fn remove_all(&mut self) {
        while let Some(route) = self.added.pop() {
            match run(&route.args("del")) {
                Ok(_) => tracing::debug!("route removed: {route}"),
                Err(e) => tracing::debug!("route {route} not removed (already gone?): {e}"),
            }
        }
    }
}

impl Drop for RouteSet {
    fn drop(&mut self) {
        self.remove_all();
    }
}

fn run(args: &[String]) -> Result<String, RouteError> {
    let err = |message: String| RouteError::Command {
        args: args.join(" "),
        message,
    };
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| err(format!("cannot run `ip` (iproute2): {e}")))?;
    if !out.status.success() {
        return Err(err(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidrs_parse_and_lose_host_bits() {
        assert_eq!(parse_cidr("10.1.0.0/16").unwrap(), (ip("10.1.0.0"), 16));
        assert_eq!(parse_cidr("10.1.2.3/16").unwrap(), (ip("10.1.0.0"), 16));
        assert_eq!(parse_cidr("10.1.2.3").unwrap(), (ip("10.1.2.3"), 32));
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap(), (ip("0.0.0.0"), 0));
        assert_eq!(parse_cidr("fd00:1::5/64").unwrap(), (ip("fd00:1::"), 64));
        assert_eq!(parse_cidr("fd00::1").unwrap(), (ip("fd00::1"), 128));
        for bad in [
            "10.1.0.0/33",
            "10.1.0/8",
            "x",
            "fd00::/129",
            "10.0.0.0/-1",
            "",
        ] {
            assert!(
                matches!(parse_cidr(bad), Err(RouteError::Parse(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn route_get_answers_become_host_routes() {
        let a = ip("203.0.113.5");
        let r = parse_route_get(
            "203.0.113.5 via 192.168.1.1 dev eth0 src 192.168.1.10 uid 0 \n    cache \n",
            a,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            r,
            Route {
                dest: a,
                prefix: 32,
                gateway: Some(ip("192.168.1.1")),
                dev: "eth0".into()
            }
        );
        assert_eq!(
            r.args("replace").join(" "),
            "-4 route replace 203.0.113.5/32 via 192.168.1.1 dev eth0"
        );
        assert_eq!(r.args("del")[2], "del");
        // On the local link: no gateway.
        let r = parse_route_get(
            "192.168.1.7 dev eth0 src 192.168.1.10 uid 0",
            ip("192.168.1.7"),
        )
        .unwrap()
        .unwrap();
        assert_eq!(r.gateway, None);
        // Local addresses need no pinning.
        assert_eq!(
            parse_route_get(
                "local 127.0.0.1 dev lo table local src 127.0.0.1 uid 0",
                ip("127.0.0.1")
            )
            .unwrap(),
            None
        );
        let v6 = ip("2001:db8::5");
        let r = parse_route_get(
            "2001:db8::5 from :: via fe80::1 dev wlan0 proto ra src 2001:db8::9 metric 600 pref medium",
            v6,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.prefix, r.gateway), (128, Some(ip("fe80::1"))));
        assert_eq!(r.args("replace")[0], "-6");
        assert!(matches!(
            parse_route_get("unreachable 10.9.9.9 uid 0", ip("10.9.9.9")),
            Err(RouteError::NoRoute(_))
        ));
    }
}
