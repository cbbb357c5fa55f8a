//! `ras completions` and `ras man`, which the Debian package runs to
//! generate its completions and man pages (dist/build-deb.sh): they cover
//! the subcommands and options of the CLI, and a closed pipe is an error
//! line, not a panic.

use std::process::{Command, Stdio};

const RAS: &str = env!("CARGO_BIN_EXE_ras");

fn completions(shell: &str) -> String {
    let out = Command::new(RAS)
        .args(["completions", shell])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{shell}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn completions_know_the_subcommands_and_their_options() {
    let bash = completions("bash");
    assert!(bash.contains("complete -F _ras"), "{bash}");
    let zsh = completions("zsh");
    assert!(zsh.starts_with("#compdef ras"), "{zsh}");
    let fish = completions("fish");
    assert!(fish.contains("complete -c ras"), "{fish}");
    for (shell, script) in [("bash", &bash), ("zsh", &zsh), ("fish", &fish)] {
        for word in [
            "server",
            "connect",
            "session",
            "disconnect",
            "config",
            "log-format",
        ] {
            assert!(script.contains(word), "{shell}: no {word}");
        }
    }
}

#[test]
fn an_unknown_shell_is_refused() {
    let out = Command::new(RAS)
        .args(["completions", "cmd.exe"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bash"));
}

#[test]
fn man_writes_one_page_per_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    let out = Command::new(RAS).arg("man").arg(&pages).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(&pages)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for page in [
        "ras.1",
        "ras-server.1",
        "ras-connect.1",
        "ras-user.1",
        "ras-user-add.1",
        "ras-session-disconnect.1",
        "ras-completions.1",
        "ras-man.1",
    ] {
        assert!(names.iter().any(|n| n == page), "no {page} in {names:?}");
    }
    assert!(!names.iter().any(|n| n.contains("help")), "{names:?}");
    let server = std::fs::read_to_string(pages.join("ras-server.1")).unwrap();
    let title = server.lines().find(|l| l.starts_with(".TH ")).unwrap();
    assert!(title.starts_with(".TH ras-server 1 "), "{title}");
    assert!(
        title.contains(&format!("\"ras {}\"", env!("CARGO_PKG_VERSION"))),
        "no suite and version in the footer: {title}"
    );
    assert!(
        server.contains("\\-\\-config"),
        "no --config in ras-server.1"
    );
    let top = std::fs::read_to_string(pages.join("ras.1")).unwrap();
    assert!(
        top.contains("ras\\-server(1)"),
        "ras.1 does not name ras-server(1)"
    );
}

#[test]
fn a_closed_pipe_is_an_error_not_a_panic() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(RAS)
        .args(["completions", "bash"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("error: cannot write the completion script"),
        "{stderr}"
    );
}
