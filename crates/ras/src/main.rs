//! `ras`: the one binary of the suite.

use clap::{Parser, Subcommand};

mod selftest;

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
    /// Negotiate a server and a client PPP link in memory and show the result.
    PppSelftest {
        /// Authentication method to use.
        #[arg(long, value_enum, default_value = "eap-mschapv2")]
        auth: selftest::Method,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::PppSelftest { auth } => selftest::run(auth),
    }
}
