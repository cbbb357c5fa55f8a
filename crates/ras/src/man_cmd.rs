//! `ras man DIR`: section 1 man pages of this CLI, generated from the clap
//! definition: ras.1 and one page per subcommand (ras-server.1,
//! ras-user-add.1, …), as the Debian package installs them.

use anyhow::Context;
use clap::Args;
use clap_mangen::Man;
use std::path::{Path, PathBuf};

#[derive(Args)]
pub struct ManArgs {
    /// The directory to write the pages into (created if missing).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub fn run(args: ManArgs, cli: clap::Command) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    // Built, a subcommand knows its full name (ras-user-add), which names
    // its page; `help` is clap's, not a command of ours.
    let mut cli = cli.disable_help_subcommand(true);
    cli.build();
    // Every page's footer names the suite and its version, which clap
    // knows for the top-level command only.
    let source = format!("ras {}", env!("CARGO_PKG_VERSION"));
    write_pages(cli, &args.dir, &source)
        .with_context(|| format!("cannot write man pages into {}", args.dir.display()))
}

fn write_pages(cmd: clap::Command, dir: &Path, source: &str) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_pages(sub.clone(), dir, source)?;
    }
    Man::new(cmd)
        .source(source.to_owned())
        .manual("ras manual")
        .generate_to(dir)?;
    Ok(())
}
