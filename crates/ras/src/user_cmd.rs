//! `ras user …`: manage the local user store of `ras server`.
//!
//! Works while the server runs (the store is a shared SQLite database).
//! Passwords are read from a file or prompted for without echo, and are
//! never printed or logged.

use std::io::{BufRead, IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use server::state::StateDir;
use server::users::{NewUser, UserInfo, UserStore};
use zeroize::Zeroizing;

/// The `ras user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (asks for the password unless --password-file is given).
    Add {
        /// User name (compared without regard to case).
        name: String,
        /// Read the password from this file (first line; `-` for standard
        /// input) instead of prompting.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Also store the password with reversible encryption, which
        /// CHAP-MD5 needs. Off by default: only the NT hash is kept.
        #[arg(long)]
        reversible: bool,
        /// A group for remote access policies (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Create the account disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// Remove a user.
    Remove {
        /// User name.
        name: String,
    },
    /// List users: name, enabled, reversible, groups.
    List,
    /// Change a user's password.
    Passwd {
        /// User name.
        name: String,
        /// Read the password from this file (first line; `-` for standard
        /// input) instead of prompting.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
        /// Store the new password with reversible encryption too.
        #[arg(long, conflicts_with = "no_reversible")]
        reversible: bool,
        /// Stop storing the password reversibly.
        #[arg(long)]
        no_reversible: bool,
    },
    /// Allow a user to dial in.
    Enable {
        /// User name.
        name: String,
    },
    /// Refuse a user without removing them.
    Disable {
        /// User name.
        name: String,
    },
    /// Replace a user's groups (no --group: no groups).
    Groups {
        /// User name.
        name: String,
        /// A group (repeat for several).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
    },
}

/// Runs a `ras user` subcommand against the store in `state_dir`.
pub fn run(cmd: UserCommand, state_dir: &Path) -> anyhow::Result<()> {
    // Only `add` may create the store: any other command pointed at the
    // wrong place (a typo in --config, a server never started) must say so
    // instead of showing an empty store it just made.
    if !matches!(cmd, UserCommand::Add { .. }) {
        if !state_dir.is_dir() {
            bail!(
                "no user store: the state directory {} does not exist (check --config; `ras user add` or `ras server` creates it)",
                state_dir.display()
            );
        }
        let db = state_dir.join(server::users::DB_FILE);
        if !db.is_file() {
            bail!(
                "no user store in {}: {} does not exist (`ras user add` or `ras server` creates it)",
                state_dir.display(),
                db.display()
            );
        }
    }
    let state = StateDir::open(state_dir)?;
    let store = UserStore::open(&state)?;
    match cmd {
        UserCommand::Add {
            name,
            password_file,
            reversible,
            groups,
            disabled,
        } => {
            if store.get(&name)?.is_some() {
                bail!("a user named `{name}` already exists");
            }
            let password = read_password(password_file.as_deref())?;
            let new = NewUser {
                reversible,
                groups,
                enabled: !disabled,
            };
            store.add(&name, &password, &new)?;
            println!("added user {name}");
        }
        UserCommand::Remove { name } => {
            store.remove(&name)?;
            println!("removed user {name}");
        }
        UserCommand::List => print!("{}", format_table(&store.list()?)),
        UserCommand::Passwd {
            name,
            password_file,
            reversible,
            no_reversible,
        } => {
            if store.get(&name)?.is_none() {
                bail!("no user named `{name}`");
            }
            let password = read_password(password_file.as_deref())?;
            let reversible = match (reversible, no_reversible) {
                (true, _) => Some(true),
                (_, true) => Some(false),
                _ => None,
            };
            store.set_password(&name, &password, reversible)?;
            println!("changed the password of {name}");
        }
        UserCommand::Enable { name } => {
            store.set_enabled(&name, true)?;
            println!("enabled user {name}");
        }
        UserCommand::Disable { name } => {
            store.set_enabled(&name, false)?;
            println!("disabled user {name}");
        }
        UserCommand::Groups { name, groups } => {
            store.set_groups(&name, &groups)?;
            println!("set the groups of {name}");
        }
    }
    Ok(())
}

/// The password from `file` (first line, `-` = standard input), or typed
/// twice at the terminal without echo.
fn read_password(file: Option<&Path>) -> anyhow::Result<Zeroizing<String>> {
    if let Some(file) = file {
        let mut text = Zeroizing::new(String::new());
        if file == Path::new("-") {
            std::io::stdin()
                .lock()
                .read_to_string(&mut text)
                .context("reading the password from standard input")?;
        } else {
            std::fs::File::open(file)
                .and_then(|mut f| f.read_to_string(&mut text))
                .with_context(|| format!("reading the password from {}", file.display()))?;
        }
        return first_line(&text);
    }
    if !std::io::stdin().is_terminal() {
        // Piped input without --password-file: take the first line.
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return first_line(&line);
    }
    let first = Zeroizing::new(rpassword::prompt_password("Password: ")?);
    let second = Zeroizing::new(rpassword::prompt_password("Again: ")?);
    if *first != *second {
        bail!("the passwords differ");
    }
    if first.is_empty() {
        bail!("the password is empty");
    }
    Ok(first)
}

/// The first line of `text`, without its line ending; an error if empty.
fn first_line(text: &str) -> anyhow::Result<Zeroizing<String>> {
    let line = text.split('\n').next().unwrap_or("");
    let line = line.strip_suffix('\r').unwrap_or(line);
    if line.is_empty() {
        bail!("the password is empty");
    }
    Ok(Zeroizing::new(line.to_owned()))
}

/// The `list` table: a header, then one line per user.
fn format_table(users: &[UserInfo]) -> String {
    let rows: Vec<[String; 4]> = users
        .iter()
        .map(|u| {
            [
                u.name.clone(),
                if u.enabled { "yes" } else { "no" }.to_owned(),
                if u.reversible { "yes" } else { "no" }.to_owned(),
                u.groups.join(","),
            ]
        })
        .collect();
    let header = ["NAME", "ENABLED", "REVERSIBLE", "GROUPS"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in std::iter::once(&header).chain(&rows) {
        let line = format!(
            "{:w0$}  {:w1$}  {:w2$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_strips_the_line_ending() {
        assert_eq!(first_line("pw\r\nrest").unwrap().as_str(), "pw");
        assert_eq!(first_line("pw").unwrap().as_str(), "pw");
        assert_eq!(first_line("p w \n").unwrap().as_str(), "p w ");
        assert!(first_line("\n").is_err());
        assert!(first_line("").is_err());
    }

    #[test]
    fn add_list_passwd_remove_through_run() {
        let tmp = tempfile::tempdir().unwrap();
        let pw = tmp.path().join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let dir = tmp.path().join("state");
        run(
            UserCommand::Add {
                name: "alice".into(),
                password_file: Some(pw.clone()),
                reversible: true,
                groups: vec!["vpn".into()],
                disabled: false,
            },
            &dir,
        )
        .unwrap();
        assert!(run(
            UserCommand::Add {
                name: "Alice".into(),
                password_file: Some(pw.clone()),
                reversible: false,
                groups: vec![],
                disabled: false,
            },
            &dir,
        )
        .is_err());
        run(
            UserCommand::Passwd {
                name: "alice".into(),
                password_file: Some(pw.clone()),
                reversible: false,
                no_reversible: true,
            },
            &dir,
        )
        .unwrap();
        run(
            UserCommand::Disable {
                name: "alice".into(),
            },
            &dir,
        )
        .unwrap();
        let store = UserStore::open(&StateDir::open(&dir).unwrap()).unwrap();
        let u = store.get("alice").unwrap().unwrap();
        assert!(!u.enabled && !u.reversible);
        assert_eq!(u.groups, ["vpn"]);
        drop(store);
        run(
            UserCommand::Remove {
                name: "alice".into(),
            },
            &dir,
        )
        .unwrap();
        assert!(run(
            UserCommand::Remove {
                name: "alice".into()
            },
            &dir
        )
        .is_err());
    }

    #[test]
    fn commands_other_than_add_do_not_create_a_store() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("no-such-state");
        let err = run(UserCommand::List, &dir).unwrap_err().to_string();
        assert!(
            err.contains("does not exist") && err.contains("no-such-state"),
            "{err}"
        );
        assert!(!dir.exists(), "list created {}", dir.display());
        // An existing directory without a store: still nothing created.
        std::fs::create_dir(&dir).unwrap();
        let err = run(UserCommand::Remove { name: "bob".into() }, &dir)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no user store"), "{err}");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    }

    #[test]
    fn table_is_aligned() {
        let users = vec![
            UserInfo {
                name: "alice".into(),
                enabled: true,
                reversible: false,
                groups: vec!["a".into(), "b".into()],
            },
            UserInfo {
                name: "bob-the-builder".into(),
                enabled: false,
                reversible: true,
                groups: vec![],
            },
        ];
        assert_eq!(
            format_table(&users),
            "NAME             ENABLED  REVERSIBLE  GROUPS\n\
             alice            yes      no          a,b\n\
             bob-the-builder  no       yes\n"
        );
    }
}
