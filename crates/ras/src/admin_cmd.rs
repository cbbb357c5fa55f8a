//! `ras status`, `ras session list|show|disconnect` and `ras server
//! reload`: clients of the
//! running server's admin API (docs/ADMIN.md) on its Unix socket, found
//! from `--config` (`[admin] socket`, or `RAS_ADMIN_SOCKET`) unless
//! `--socket` names it.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use server::admin_client::request;
use server::admin_snapshot::{Disconnected, SessionView, Snapshot};
use server::reload::ReloadOutcome;

use crate::admin_report;

/// Where the server is.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct Target {
    /// The server's configuration file (to find its `[admin] socket`).
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
    /// The admin socket itself (overrides the configuration).
    #[arg(long, value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,
}

impl Target {
    fn socket(&self) -> anyhow::Result<PathBuf> {
        if let Some(s) = &self.socket {
            return Ok(s.clone());
        }
        let config = server::config::Config::load(self.config.as_deref())?;
        Ok(config.admin.socket)
    }
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print the API's JSON instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Subcommand)]
pub enum SessionCommand {
    /// List the sessions: one line each, or JSON.
    List {
        /// Only this user's sessions.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only sessions of this protocol (sstp, pptp, l2tp, ikev2, dialup).
        #[arg(long, value_name = "PROTOCOL")]
        protocol: Option<String>,
        /// Print JSON (an array of sessions) for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Show everything about one session.
    Show {
        /// The session's id (the first column of `ras session list`).
        id: u64,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// End sessions (accounting Stop says Admin-Reset): one by id, all of
    /// a user's, or all.
    Disconnect {
        /// The session's id.
        #[arg(required_unless_present_any = ["user", "all"], conflicts_with_all = ["user", "all"])]
        id: Option<u64>,
        /// Every session of this user.
        #[arg(long, value_name = "USER", conflicts_with = "all")]
        user: Option<String>,
        /// Every session.
        #[arg(long)]
        all: bool,
    },
}

#[derive(clap::Args)]
pub struct SessionArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(subcommand)]
    pub command: SessionCommand,
}

/// Percent-encodes a query value (RFC 3986 §2.3: unreserved characters
/// stay as they are).
fn query_value(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get<T: serde::de::DeserializeOwned>(socket: &Path, route: &str) -> anyhow::Result<T> {
    let answer = request(socket, "GET", route)?;
    serde_json::from_slice(&answer.body).with_context(|| format!("reading the answer to {route}"))
}

/// `ras server reload`: `POST /v1/reload`, the outcome printed as the
/// server logs it; a refusal is an error (exit status 1).
pub fn reload(config: Option<PathBuf>, socket: Option<PathBuf>) -> anyhow::Result<()> {
    let socket = match socket {
        Some(s) => s,
        None => server::reload::admin_socket_of(config.as_deref())?,
    };
    let answer = request(&socket, "POST", "/v1/reload")?;
    let outcome: ReloadOutcome =
        serde_json::from_slice(&answer.body).context("reading the answer to /v1/reload")?;
    if !outcome.ok {
        anyhow::bail!("{}", outcome.log_line());
    }
    print(&format!("{}\n", outcome.log_line()));
    Ok(())
}

/// Writes `text`; a closed standard output is not an error.
fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn json_line(value: &impl serde::Serialize) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(value).unwrap_or_default()
    )
}

pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let socket = args.target.socket()?;
    let snapshot: Snapshot = get(&socket, "/v1/status")?;
    if args.json {
        print(&json_line(&snapshot));
    } else {
        print(&admin_report::status_summary(&snapshot));
    }
    Ok(())
}

/// The sessions route with `user` and `protocol` as its query.
fn sessions_route(user: Option<&str>, protocol: Option<&str>) -> String {
    let mut query = Vec::new();
    if let Some(u) = user {
        query.push(format!("user={}", query_value(u)));
    }
    if let Some(p) = protocol {
        query.push(format!("protocol={}", query_value(p)));
    }
    if query.is_empty() {
        "/v1/sessions".into()
    } else {
        format!("/v1/sessions?{}", query.join("&"))
    }
}

fn now() -> u64 {
    server::admin_snapshot::unix_secs(std::time::SystemTime::now())
}

pub fn session(args: SessionArgs) -> anyhow::Result<()> {
    let socket = args.target.socket()?;
    match args.command {
        SessionCommand::List {
            user,
            protocol,
            json,
        } => {
            let list: Vec<SessionView> = get(
                &socket,
                &sessions_route(user.as_deref(), protocol.as_deref()),
            )?;
            if json {
                print(&json_line(&list));
            } else {
                print(&admin_report::sessions_table(&list, now()));
            }
        }
        SessionCommand::Show { id, json } => {
            let s: SessionView = get(&socket, &format!("/v1/sessions/{id}"))?;
            if json {
                print(&json_line(&s));
            } else {
                print(&admin_report::session_detail(&s, now()));
            }
        }
        SessionCommand::Disconnect { id, user, all } => {
            let route = match (id, user, all) {
                (Some(id), _, _) => format!("/v1/sessions/{id}/disconnect"),
                (None, Some(u), _) => format!("/v1/disconnect?user={}", query_value(&u)),
                (None, None, true) => "/v1/disconnect?all=true".into(),
                (None, None, false) => anyhow::bail!("name a session id, --user USER or --all"),
            };
            let answer = request(&socket, "POST", &route)?;
            let done: Disconnected =
                serde_json::from_slice(&answer.body).context("reading the server's answer")?;
            let ids: Vec<String> = done.sessions.iter().map(u64::to_string).collect();
            print(&match ids.len() {
                0 => "no session to disconnect\n".to_owned(),
                1 => format!("disconnecting session {}\n", ids[0]),
                n => format!("disconnecting {n} sessions: {}\n", ids.join(", ")),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(query_value("alice"), "alice");
        assert_eq!(
            query_value("DOMAIN\\bob smith&x=1"),
            "DOMAIN%5Cbob%20smith%26x%3D1"
        );
        assert_eq!(
            sessions_route(Some("a b"), Some("sstp")),
            "/v1/sessions?user=a%20b&protocol=sstp"
        );
        assert_eq!(sessions_route(None, None), "/v1/sessions");
    }

    #[test]
    fn the_socket_comes_from_socket_then_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ras.toml");
        std::fs::write(&cfg, "[admin]\nsocket = \"/tmp/from-config.sock\"\n").unwrap();
        let t = Target {
            config: Some(cfg.clone()),
            socket: None,
        };
        // RAS_ADMIN_SOCKET (set by some test harnesses) overrides the file.
        if std::env::var_os(server::config::ADMIN_SOCKET_ENV).is_none() {
            assert_eq!(t.socket().unwrap(), Path::new("/tmp/from-config.sock"));
        }
        let t = Target {
            config: Some(cfg),
            socket: Some("/tmp/given.sock".into()),
        };
        assert_eq!(t.socket().unwrap(), Path::new("/tmp/given.sock"));
    }
}
