//! `ras completions SHELL`: the shell completion script of this CLI on
//! standard output, generated from the clap definition so it never falls
//! behind it (the Debian package ships bash, zsh and fish ones).

use anyhow::Context;
use clap::Args;
use clap_complete::Shell;
use std::io::Write;

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: CompletionsArgs, mut cli: clap::Command) -> anyhow::Result<()> {
    // Into memory first: clap_complete panics when its writer fails, and
    // standard output may be a pipe already closed (`| head`).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "ras", &mut script);
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .context("cannot write the completion script")
}
