//! Every argument and option of the Connection Manager commands (`profile`, `dial`,
//! `phonebook`, `pbs`) has a description in `--help`.

use clap::{ArgAction, Args, Command, Subcommand};

/// `path → argument` for every argument of `cmd` and its subcommands that has no help.
fn undocumented(cmd: &Command, path: &str, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        // clap's own --help/--version (a `--version` of ours is checked).
        if matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong | ArgAction::Version
        ) {
            continue;
        }
        let described = arg
            .get_help()
            .is_some_and(|h| !h.to_string().trim().is_empty());
        if !described {
            out.push(format!("{path} {id}"));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_about().is_none() {
            out.push(format!("{path} {} (no about)", sub.get_name()));
        }
        undocumented(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_argument_and_option_is_described() {
    let commands = [
        crate::profile_cmd::ProfileCommand::augment_subcommands(Command::new("profile")),
        crate::dial_cmd::DialArgs::augment_args(Command::new("dial")),
        crate::phonebook_cmd::PhonebookArgs::augment_args(Command::new("phonebook")),
        crate::pbs_cmd::PbsArgs::augment_args(Command::new("pbs")),
    ];
    let mut missing = Vec::new();
    for cmd in &commands {
        let mut cmd = cmd.clone();
        cmd.build();
        undocumented(&cmd, cmd.get_name(), &mut missing);
    }
    assert!(missing.is_empty(), "no description in --help: {missing:?}");
}
