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
    let filter =
        || EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_level));
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

fn text(filter: EnvFilter) {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // A closed stderr must not take a server down (quiet_output).
        .with_writer(QuietStderr)
        .log_internal_errors(false)
        .with_env_filter(filter)
        .init();
}
