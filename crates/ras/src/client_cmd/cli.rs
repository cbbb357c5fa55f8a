//! The commands that talk to a running `ras client run` over its control
//! socket: status, connect, disconnect, events.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};

use super::protocol::{ConnectionStatus, Event, Reply, Request};
use crate::admin_report::{human_bytes, human_duration, table};
use crate::quiet_output::say;

fn open(socket: &Path, request: &Request) -> anyhow::Result<BufReader<UnixStream>> {
    let mut stream = UnixStream::connect(socket).with_context(|| {
        format!(
            "cannot reach the ras client daemon on {} (is `ras client run` running, and are you root or in the ras group?)",
            socket.display()
        )
    })?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line).context("sending the request")?;
    Ok(BufReader::new(stream))
}

/// One request, one reply; a refusal becomes the error.
pub fn ask(socket: &Path, request: &Request) -> anyhow::Result<Reply> {
    let mut reader = open(socket, request)?;
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(15)))?;
    let mut line = String::new();
    reader.read_line(&mut line).context("reading the reply")?;
    if line.is_empty() {
        bail!("the daemon closed the connection without a reply");
    }
    let reply: Reply = serde_json::from_str(&line).context("reading the reply")?;
    if !reply.ok {
        bail!("{}", reply.error.unwrap_or_else(|| "refused".into()));
    }
    Ok(reply)
}

pub fn status(socket: &Path, json: bool, watch: bool) -> anyhow::Result<()> {
    loop {
        let reply = ask(socket, &Request::Status)?;
        if json {
            say!("{}", serde_json::to_string(&reply.connections)?);
        } else {
            if watch {
                // Home and clear, so the table stays in place.
                print!("\x1b[H\x1b[2J");
            }
            print!("{}", status_table(&reply.connections));
            let _ = std::io::stdout().flush();
        }
        if !watch {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// `ras client status`: one row per connection.
pub fn status_table(connections: &[ConnectionStatus]) -> String {
    if connections.is_empty() {
        return "no connections are provisioned\n".into();
    }
    let dash = |v: Option<String>| v.unwrap_or_else(|| "-".into());
    let rows: Vec<Vec<String>> = connections
        .iter()
        .map(|c| {
            let up = c.state == "connected";
            vec![
                c.name.clone(),
                c.state.clone(),
                dash(c.server.clone()),
                dash(c.protocol.clone()),
                dash(c.address.clone()),
                dash(c.uptime_s.map(|s| human_duration(Duration::from_secs(s)))),
                if up {
                    human_bytes(c.bytes_in)
                } else {
                    "-".into()
                },
                if up {
                    human_bytes(c.bytes_out)
                } else {
                    "-".into()
                },
                // A LAN answers in a fraction of a millisecond: one decimal there.
                dash(c.rtt_ms.map(|r| {
                    if r < 10.0 {
                        format!("{r:.1} ms")
                    } else {
                        format!("{r:.0} ms")
                    }
                })),
                // Held down on a trusted network: that is why it is down.
                match (&c.trusted_network, c.state.as_str()) {
                    (Some(n), "trusted") => format!("on trusted network {n}"),
                    _ => dash(c.last_error.as_deref().map(super::protocol::one_line)),
                },
            ]
        })
        .collect();
    table(
        &[
            "NAME",
            "STATE",
            "SERVER",
            "PROTOCOL",
            "ADDRESS",
            "UPTIME",
            "IN",
            "OUT",
            "RTT",
            "LAST ERROR",
        ],
        &rows,
        &[5, 6, 7, 8],
    )
}

pub fn command(socket: &Path, request: Request) -> anyhow::Result<()> {
    let reply = ask(socket, &request)?;
    if let Some(message) = reply.message {
        say!("{message}");
    }
    Ok(())
}

/// `ras client metrics`: the Prometheus text, as the daemon made it.
pub fn metrics(socket: &Path) -> anyhow::Result<()> {
    let reply = ask(socket, &Request::Metrics)?;
    let text = reply
        .metrics
        .context("the daemon sent no metrics (is it older than this ras?)")?;
    say!("{}", text.trim_end());
    Ok(())
}

/// `ras client events`: every event until interrupted.
pub fn events(socket: &Path, json: bool) -> anyhow::Result<()> {
    let mut reader = open(socket, &Request::Events)?;
    let mut first = String::new();
    reader.read_line(&mut first).context("reading the reply")?;
    let reply: Reply = serde_json::from_str(&first).context("reading the reply")?;
    if !reply.ok {
        bail!("{}", reply.error.unwrap_or_else(|| "refused".into()));
    }
    for line in reader.lines() {
        let line = line.context("reading events")?;
        let event: Event = serde_json::from_str(&line).context("reading an event")?;
        if json {
            say!("{}", serde_json::to_string(&event)?);
        } else {
            say!("{}", event.human());
        }
    }
    bail!("the daemon closed the events stream")
}
