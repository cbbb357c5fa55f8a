//! `ras`: the one binary of the suite.

use clap::{Parser, Subcommand};

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
    /// Show the PPP engine's built-in self-check: a full in-memory negotiation.
    PppSelftest,
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
        Command::PppSelftest => {
            println!("ppp engine: not yet wired");
            Ok(())
        }
    }
}
