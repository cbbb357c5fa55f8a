//! Where and how `ras` logs: plain lines on standard error (the default,
//! unchanged), one JSON object per line (`ras server --log-format json`:
//! level, target, message and the event's fields such as session_id, user
//! and protocol), or the systemd journal with those fields as journal
//! fields (`--log-format journald`: SESSION_ID, USER, PROTOCOL).

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

use crate::quiet_output::QuietStderr;

/// The log output of `ras server`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One plain line per event on standard error.
    #[default]
    Text,
    /// One JSON object per line on standard error.
    Json,
    /// Straight to the systemd journal, with structured fields.
    Journald,
}

/// Installs the global subscriber. `default_level` applies unless
/// RUST_LOG says otherwise.
pub fn init(format: LogFormat, default_level: &str) {
    let env = std::env::var("RUST_LOG").ok();
    let filter = || {
        let chosen = with_quiet_rustls(env.as_deref(), default_level);
        EnvFilter::try_new(&chosen)
            .unwrap_or_else(|_| EnvFilter::new(with_quiet_rustls(None, default_level)))
    };
    match format {
        LogFormat::Text => text(filter()),
        LogFormat::Json => tracing_subscriber::fmt()
            .json()
            // Fields at the top level next to "message", not nested.
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(QuietStderr)
            .log_internal_errors(false)
            .with_env_filter(filter())
            .init(),
        LogFormat::Journald => match tracing_journald::layer() {
            Ok(journald) => tracing_subscriber::registry()
                .with(filter())
                // Field names as the journal spells them (SESSION_ID, not
                // F_SESSION_ID).
                .with(journald.with_field_prefix(None))
                .init(),
            Err(e) => {
                text(filter());
                tracing::warn!("no systemd journal ({e}): logging to standard error");
            }
        },
    }
}

/// The filter directives: `RUST_LOG` when set (else `default_level`),
/// with `rustls=error` added unless they name rustls themselves. rustls
/// logs a WARN line for every handshake it refuses ("Sending fatal alert",
/// "Received a ... handshake message while expecting ..."): a flood of
/// garbage ClientHellos would write one line each. Our own handshake
/// failure lines are rate-limited (failure_log.rs) and counted in
/// `ras_tls_handshake_failures_total`; an operator who wants rustls' own
/// words asks for them (`RUST_LOG=info,rustls=debug`).
fn with_quiet_rustls(env: Option<&str>, default_level: &str) -> String {
    let chosen = env
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .unwrap_or(default_level);
    let names_rustls = chosen
        .split(',')
        .any(|d| d.trim_start().starts_with("rustls"));
    if names_rustls {
        chosen.to_owned()
    } else {
        format!("{chosen},rustls=error")
    }
}

fn text(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A closed stderr must not take a server down (quiet_output).
        .with_writer(QuietStderr)
        .log_internal_errors(false)
        .with_env_filter(filter)
        .init();
}

#[cfg(test)]
mod tests {
    use super::with_quiet_rustls;

    #[test]
    fn rustls_is_quiet_unless_the_operator_names_it() {
        assert_eq!(with_quiet_rustls(None, "info"), "info,rustls=error");
        assert_eq!(with_quiet_rustls(Some(""), "warn"), "warn,rustls=error");
        assert_eq!(
            with_quiet_rustls(Some("debug,server=trace"), "info"),
            "debug,server=trace,rustls=error"
        );
        assert_eq!(
            with_quiet_rustls(Some("info,rustls=debug"), "info"),
            "info,rustls=debug"
        );
        assert_eq!(
            with_quiet_rustls(Some("rustls::server=warn"), "info"),
            "rustls::server=warn"
        );
    }
}
