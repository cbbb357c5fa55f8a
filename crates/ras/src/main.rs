//! `ras`: the one binary of the suite.

use clap::{CommandFactory, Parser, Subcommand};

mod admin_cmd;
mod admin_report;
mod cert_cmd;
mod client_cmd;
mod completions_cmd;
mod connect_cmd;
mod dial_cmd;
mod log_format;
mod man_cmd;
mod pbs_cmd;
mod phonebook_cmd;
mod profile_cmd;
mod quiet_output;
mod report;
mod selftest;
mod server_cmd;
mod server_runtime;
mod systemd_notify;
mod user_cmd;

#[derive(Parser)]
#[command(
    name = "ras",
    version,
    about = "Remote access server, VPN clients and Connection Manager tools"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the remote access server (SSTP, PPTP, L2TP/IPsec and dial-in
    /// lines), on embedded defaults or --config.
    Server(server_cmd::ServerArgs),
    /// A running server's summary: sessions, pools, RADIUS servers, the
    /// certificate (from its admin socket).
    Status(admin_cmd::StatusArgs),
    /// A running server's sessions: list, show, disconnect.
    Session(admin_cmd::SessionArgs),
    /// Manage the local user store.
    User {
        /// The server's configuration file (for its state directory); before
        /// or after the subcommand.
        #[arg(long, global = true, value_name = "FILE")]
        config: Option<std::path::PathBuf>,
        #[command(subcommand)]
        cmd: user_cmd::UserCommand,
    },
    /// Connect to a VPN server (sstp://HOST[:PORT], pptp://HOST[:PORT],
    /// l2tp://HOST[:PORT]) or
    /// dial a serial line (serial:///dev/ttyX) and bring up a TUN device.
    Connect(connect_cmd::ConnectArgs),
    /// The always-running VPN client: provision connections from a VPN
    /// policy document, run the daemon, and control it (status, connect,
    /// disconnect, events).
    Client(client_cmd::ClientArgs),
    /// Connect with a Connection Manager service profile (custom actions,
    /// direct, dial-up or double-dial); --status shows a running connection.
    Dial(dial_cmd::DialArgs),
    /// Build, sign, install, list and remove Connection Manager service profiles.
    #[command(subcommand)]
    Profile(profile_cmd::ProfileCommand),
    /// Phone books: create, import, add, edit, delete, list, publish, post, update.
    Phonebook(phonebook_cmd::PhonebookArgs),
    /// Run the Phone Book Service (update queries, cabinets, posts).
    Pbs(pbs_cmd::PbsArgs),
    /// Issue a server certificate the built-in VPN clients accept, or check
    /// one against their rules.
    #[command(subcommand)]
    Cert(cert_cmd::CertCommand),
    /// Negotiate a server and a client PPP link in memory and show the result.
    PppSelftest {
        /// Authentication method to use.
        #[arg(long, value_enum, default_value = "eap-mschapv2")]
        auth: selftest::Method,
    },
    /// Print the shell completion script for bash, zsh, fish, elvish or
    /// PowerShell.
    Completions(completions_cmd::CompletionsArgs),
    /// Write the man pages (ras.1, ras-server.1, …) into a directory.
    Man(man_cmd::ManArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let default_level = default_log_level(&cli.command);
    let format = match &cli.command {
        Command::Server(args) => args.log_format,
        _ => log_format::LogFormat::Text,
    };
    log_format::init(format, default_level);
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // One line, each cause once, never Debug (no backtrace dump
            // when RUST_BACKTRACE is set), and a closed stderr is no panic.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "error: {}", report::one_line(e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// Services log every event; the interactive commands print their own
/// progress lines, so the libraries' info lines would say each step twice:
/// there only warnings and errors are logged (RUST_LOG overrides).
fn default_log_level(command: &Command) -> &'static str {
    match command {
        Command::Server(_) | Command::Pbs(_) => "info",
        Command::Client(args) if args.is_daemon() => "info",
        _ => "warn",
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::PppSelftest { auth } => selftest::run(auth),
        Command::Profile(cmd) => profile_cmd::run(cmd),
        Command::Server(args) => server_cmd::run(args),
        Command::Status(args) => admin_cmd::status(args),
        Command::Session(args) => admin_cmd::session(args),
        Command::Phonebook(args) => phonebook_cmd::run(args),
        Command::Pbs(args) => pbs_cmd::run(args),
        Command::Cert(cmd) => cert_cmd::run(cmd),
        Command::Connect(args) => connect_cmd::run(args),
        Command::Client(args) => client_cmd::run(args),
        Command::Dial(args) => dial_cmd::run(args),
        Command::Completions(args) => completions_cmd::run(args, Cli::command()),
        Command::Man(args) => man_cmd::run(args, Cli::command()),
        Command::User { config, cmd } => {
            let cfg = server::config::Config::load(config.as_deref())?;
            user_cmd::run(cmd, &cfg.state_dir)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn interactive_commands_do_not_log_their_progress_twice() {
        let level = |argv: &[&str]| default_log_level(&Cli::try_parse_from(argv).unwrap().command);
        assert_eq!(level(&["ras", "server"]), "info");
        assert_eq!(
            level(&["ras", "connect", "sstp://h", "--user", "u"]),
            "warn"
        );
        assert_eq!(level(&["ras", "dial", "P"]), "warn");
    }

    /// `--config` works before and after the `user` subcommand's own
    /// subcommand, as a user types it.
    #[test]
    fn user_config_in_either_position() {
        for argv in [
            &["ras", "user", "--config", "F", "add", "bob"][..],
            &["ras", "user", "add", "bob", "--config", "F"][..],
            &["ras", "user", "list", "--config", "F"][..],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            match cli.command {
                Command::User { config, .. } => {
                    assert_eq!(
                        config.as_deref(),
                        Some(std::path::Path::new("F")),
                        "{argv:?}"
                    )
                }
                _ => panic!("{argv:?}: not the user command"),
            }
        }
    }

    /// The summaries name every tunnel the server serves and every scheme
    /// `ras connect` dials, not the first one alone.
    #[test]
    fn summaries_name_every_tunnel_and_scheme() {
        let cli = Cli::command();
        let about = |name: &str| {
            cli.find_subcommand(name)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default()
        };
        let server = about("server");
        for tunnel in ["SSTP", "PPTP", "L2TP/IPsec", "dial-in"] {
            assert!(server.contains(tunnel), "server: no {tunnel} in {server:?}");
        }
        let connect = about("connect");
        for scheme in ["sstp://", "pptp://", "l2tp://", "serial://"] {
            assert!(
                connect.contains(scheme),
                "connect: no {scheme} in {connect:?}"
            );
        }
    }

    /// `--config` and `--socket` go before or after the session
    /// subcommand; disconnect takes exactly one of ID, --user, --all.
    #[test]
    fn session_commands_parse_as_typed() {
        for argv in [
            &["ras", "session", "--socket", "S", "list", "--json"][..],
            &["ras", "session", "list", "--user", "u", "--socket", "S"][..],
            &["ras", "session", "show", "4", "--config", "F"][..],
            &["ras", "session", "disconnect", "4"][..],
            &["ras", "session", "disconnect", "--user", "bob"][..],
            &["ras", "session", "disconnect", "--all"][..],
            &["ras", "status", "--config", "F", "--json"][..],
        ] {
            Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
        }
        for argv in [
            &["ras", "session", "disconnect"][..],
            &["ras", "session", "disconnect", "4", "--all"][..],
            &["ras", "session", "disconnect", "--user", "bob", "--all"][..],
        ] {
            assert!(
                Cli::try_parse_from(argv).is_err(),
                "{argv:?} must be refused"
            );
        }
    }

    /// Every subcommand and every argument a person can type has a
    /// description in --help.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && path != " ras" {
                missing.push(format!("{path}: no description"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if id == "help" || id == "version" || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path}: {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_name() != "help" {
                    walk(sub, &path, missing);
                }
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(
            missing.is_empty(),
            "without help text:\n{}",
            missing.join("\n")
        );
    }
}
