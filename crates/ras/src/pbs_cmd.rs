//! `ras pbs`: the Phone Book Service.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::quiet_output::say;

#[derive(Args)]
pub struct PbsArgs {
    /// Where posted phone books are kept.
    #[arg(long, default_value = "/var/lib/ras/pbs")]
    data: PathBuf,
    /// Plain HTTP listener (queries and downloads; no posts).
    #[arg(long)]
    http: Option<SocketAddr>,
    /// HTTPS listener (queries, downloads and posts).
    #[arg(long)]
    https: Option<SocketAddr>,
    /// Certificate chain (PEM); default: a self-signed one kept in --data.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// Private key (PEM).
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// Name for the self-signed certificate.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// File holding the posting credential; without it posting is off.
    #[arg(long)]
    post_token_file: Option<PathBuf>,
    /// Pick up versions other instances posted to the same --data, every N seconds.
    #[arg(long)]
    rescan: Option<u64>,
    /// Worker threads (default: one per CPU).
    #[arg(long)]
    threads: Option<usize>,
}

pub fn run(args: PbsArgs) -> anyhow::Result<()> {
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    rt.enable_all();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    let rt = rt.build()?;
    rt.block_on(async move {
        let config = pbs::Config {
            data: args.data,
            http: args.http,
            https: args.https,
            cert: args.cert.zip(args.key),
            server_name: args.server_name,
            post_token_file: args.post_token_file,
            rescan: args.rescan.map(Duration::from_secs),
        };
        let mut running = pbs::start(config).await?;
        // One line for people and scripts (tests read the ports from it).
        // A service outlives its terminal: a closed stdout loses the line
        // (say!), it never stops the service (println! would panic).
        let show = |a: Option<SocketAddr>| a.map_or("-".to_owned(), |a| a.to_string());
        say!(
            "pbs listening http={} https={} fingerprint={}",
            show(running.http),
            show(running.https),
            running.fingerprint.as_deref().unwrap_or("-")
        );
        let _ = std::io::Write::flush(&mut std::io::stdout());
        tokio::select! {
            r = running.tasks.join_next() => match r {
                Some(Ok(Err(e))) => Err(anyhow::Error::from(e).context("listener failed")),
                _ => Ok(()),
            },
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
