//! `ras cert issue` and `ras cert check` as a user runs them: files,
//! permissions, exit codes, and the refusal to overwrite.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

fn ras() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ras"))
}

#[test]
fn issue_then_check_then_refuse_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = ras()
        .args([
            "cert",
            "issue",
            "--name",
            "vpn.example.com",
            "--address",
            "192.0.2.7",
            "--key",
            "ecdsa",
            "--dir",
        ])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("created a CA"), "{stdout}");
    // the keys are readable by their owner only, whatever the umask
    for file in ["ca-key.pem", "server-key.pem"] {
        let meta = std::fs::metadata(dir.path().join(file)).expect(file);
        assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{file}");
    }
    let cert = dir.path().join("server-cert.pem");
    let check = ras()
        .args(["cert", "check"])
        .arg(&cert)
        .args(["--name", "192.0.2.7"])
        .output()
        .expect("runs");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let lines = String::from_utf8_lossy(&check.stdout).to_string();
    assert!(lines.lines().all(|l| l.starts_with("ok: ")), "{lines}");
    assert!(lines.contains("ECDSA key on P-256"));

    let wrong = ras()
        .args(["cert", "check"])
        .arg(&cert)
        .args(["--name", "other.example", "--json"])
        .output()
        .expect("runs");
    assert_eq!(wrong.status.code(), Some(1));
    let json = String::from_utf8_lossy(&wrong.stdout).to_string();
    assert!(
        json.lines()
            .any(|l| l.starts_with("{\"severity\":\"refused\"")),
        "{json}"
    );

    let before = std::fs::read(&cert).expect("cert");
    let again = ras()
        .args(["cert", "issue", "--name", "x.example", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing was changed"));
    assert_eq!(
        std::fs::read(&cert).expect("cert"),
        before,
        "nothing stored is lost"
    );

    // --force makes a new one with the same CA
    let ca = std::fs::read(dir.path().join("ca-cert.pem")).expect("ca");
    let forced = ras()
        .args(["cert", "issue", "--name", "x.example", "--force", "--dir"])
        .arg(dir.path())
        .output()
        .expect("runs");
    assert!(forced.status.success());
    assert!(String::from_utf8_lossy(&forced.stdout).contains("signed with the CA"));
    assert_eq!(
        std::fs::read(dir.path().join("ca-cert.pem")).expect("ca"),
        ca
    );
    assert!(std::fs::read_to_string(&cert)
        .expect("cert")
        .ends_with(std::str::from_utf8(&ca).expect("pem")));
}

#[test]
fn checking_something_that_is_not_a_certificate_names_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "hello").expect("write");
    let out = ras()
        .args(["cert", "check"])
        .arg(&file)
        .output()
        .expect("runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("notes.txt"), "{err}");
}
