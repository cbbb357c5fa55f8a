//! The server's Prometheus text, read from its admin socket (HTTP/1.0 over
//! the Unix socket), for the benchmarks that watch a running server.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;

/// Every series (`name{labels}`) and its value.
pub fn fetch(socket: &Path) -> anyhow::Result<BTreeMap<String, f64>> {
    let mut stream = std::os::unix::net::UnixStream::connect(socket)
        .with_context(|| format!("admin socket {}", socket.display()))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: ras\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok(parse(body))
}

/// Prometheus text lines to series → value (comments skipped).
pub fn parse(body: &str) -> BTreeMap<String, f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of the series of one metric (`name{`) whose labels contain `filter`.
pub fn sum(m: &BTreeMap<String, f64>, name: &str, filter: &str) -> f64 {
    m.iter()
        .filter(|(k, _)| k.starts_with(name) && k.contains(filter))
        .map(|(_, v)| v)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_filter_by_name_and_labels() {
        let m = parse(
            "# HELP ras_sessions x\nras_sessions{protocol=\"sstp\",state=\"up\"} 3\nras_sessions{protocol=\"pptp\",state=\"up\"} 2\nras_sessions{protocol=\"pptp\",state=\"authenticating\"} 1\nras_sessions_total{protocol=\"pptp\"} 9\n",
        );
        assert_eq!(sum(&m, "ras_sessions{", "state=\"up\""), 5.0);
        assert_eq!(sum(&m, "ras_sessions{", ""), 6.0);
    }
}
