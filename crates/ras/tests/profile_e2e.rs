//! `ras profile keygen | build | install | list | remove | check` through the binary, with
//! RAS_PROFILE_ROOT in a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Env {
    tmp: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            tmp: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.tmp.path().join(rel)
    }

    fn ras(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ras"))
            .args(args)
            .current_dir(self.tmp.path())
            .env("RAS_PROFILE_ROOT", self.path("root"))
            .env_remove("RAS_TRUSTED_KEYS")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.ras(args);
        assert!(
            out.status.success(),
            "ras {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn fails(&self, args: &[&str]) -> String {
        let out = self.ras(args);
        assert!(!out.status.success(), "ras {args:?} should have failed");
        String::from_utf8(out.stderr).unwrap()
    }
}

const ANSWERS: &str = r#"
service_name = "Tailspin Toys VPN"
short_name = "tailspin"
[vpn]
servers = [{ name = "Main", address = "vpn.tailspin.example" }]
protocols = ["sstp"]
[realm]
suffix = "@tailspin.example"
[[actions]]
point = "post-connect"
program = "hello.sh"
parameters = "%ServiceName%"
description = "Say hello"
"#;

fn write_answers(env: &Env) -> PathBuf {
    let answers = env.path("answers.toml");
    fs::write(&answers, ANSWERS).unwrap();
    fs::write(env.path("hello.sh"), "#!/bin/sh\necho hello\n").unwrap();
    answers
}

fn installed_dir(env: &Env, scope: &str) -> PathBuf {
    env.path("root").join(scope).join("tailspin")
}

#[test]
fn build_install_list_remove() {
    let env = Env::new();
    let keygen = env.ok(&["profile", "keygen", "--out", "admin"]);
    assert!(
        keygen.contains("admin.key") && keygen.contains("admin.pub"),
        "{keygen}"
    );
    let answers = write_answers(&env);
    let built = env.ok(&[
        "profile",
        "build",
        "--answers",
        answers.to_str().unwrap(),
        "--out",
        "out",
        "--sign-key",
        "admin.key",
    ]);
    assert!(
        built.contains("tailspin.rasprofile") && built.contains("signed by"),
        "{built}"
    );
    let plain = env.path("out/tailspin");
    for f in ["tailspin.cms", "tailspin.cmp", "tailspin.inf", "hello.sh"] {
        assert!(plain.join(f).is_file(), "{f}");
    }
    let check = env.ok(&["profile", "check", plain.to_str().unwrap()]);
    assert!(
        check.contains("vpn server:    Main = vpn.tailspin.example"),
        "{check}"
    );
    assert!(check.contains("<user>@tailspin.example"), "{check}");
    assert!(
        check.contains("post-connect #0 hello.sh %ServiceName% [Say hello]"),
        "{check}"
    );

    // Not trusted yet: refused, nothing installed.
    let err = env.fails(&["profile", "install", "out/tailspin.rasprofile"]);
    assert!(err.contains("untrusted key"), "{err}");
    assert!(!installed_dir(&env, "user").exists());

    // Trusted by --trust.
    let out = env.ok(&[
        "profile",
        "install",
        "out/tailspin.rasprofile",
        "--trust",
        "admin.pub",
    ]);
    assert!(
        out.contains("installed tailspin (Tailspin Toys VPN) for user"),
        "{out}"
    );
    assert!(installed_dir(&env, "user").join("tailspin.cms").is_file());

    // Trusted through the trusted-keys directory, for all users.
    fs::create_dir_all(env.path("root/trusted-keys")).unwrap();
    fs::copy(
        env.path("admin.pub"),
        env.path("root/trusted-keys/admin.pub"),
    )
    .unwrap();
    env.ok(&[
        "profile",
        "install",
        "out/tailspin.rasprofile",
        "--all-users",
    ]);
    assert!(installed_dir(&env, "all-users")
        .join("tailspin.cms")
        .is_file());

    let list = env.ok(&["profile", "list"]);
    let lines: Vec<&str> = list.lines().collect();
    assert_eq!(lines.len(), 2, "{list}");
    assert!(
        lines[0].starts_with("tailspin\tTailspin Toys VPN\tuser\t"),
        "{list}"
    );
    assert!(
        lines[1].starts_with("tailspin\tTailspin Toys VPN\tall-users\t"),
        "{list}"
    );
    assert_eq!(
        env.ok(&["profile", "list", "--all-users"]).lines().count(),
        1
    );

    env.ok(&["profile", "remove", "Tailspin Toys VPN"]);
    assert!(!installed_dir(&env, "user").exists());
    assert_eq!(env.ok(&["profile", "list"]).lines().count(), 1);
    env.ok(&["profile", "remove", "tailspin", "--all-users"]);
    assert_eq!(env.ok(&["profile", "list"]), "");
    let err = env.fails(&["profile", "remove", "tailspin"]);
    assert!(
        err.contains("no profile \"tailspin\" is installed"),
        "{err}"
    );
}

/// Flips one byte of the first occurrence of `needle` in the package.
fn tamper(path: &Path, needle: &[u8]) {
    let mut bytes = fs::read(path).unwrap();
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at] ^= 0x20;
    fs::write(path, bytes).unwrap();
}

#[test]
fn tampered_and_unsigned_packages_are_refused() {
    let env = Env::new();
    env.ok(&["profile", "keygen", "--out", "admin"]);
    let answers = write_answers(&env);
    let answers = answers.to_str().unwrap();
    env.ok(&[
        "profile",
        "build",
        "-a",
        answers,
        "-o",
        "signed",
        "--sign-key",
        "admin.key",
    ]);
    let pkg = env.path("signed/tailspin.rasprofile");
    tamper(&pkg, b"echo hello");
    let err = env.fails(&[
        "profile",
        "install",
        pkg.to_str().unwrap(),
        "--trust",
        "admin.pub",
    ]);
    assert!(err.contains("hello.sh differs from the manifest"), "{err}");
    assert!(err.contains("altered or damaged"), "{err}");
    // Even --allow-unsigned does not install content that does not match its manifest.
    let err = env.fails(&[
        "profile",
        "install",
        pkg.to_str().unwrap(),
        "--allow-unsigned",
    ]);
    assert!(err.contains("does not match its manifest"), "{err}");

    env.ok(&[
        "profile",
        "build",
        "-a",
        answers,
        "-o",
        "plain",
        "--unsigned",
    ]);
    let unsigned = env.path("plain/tailspin.rasprofile");
    let err = env.fails(&[
        "profile",
        "install",
        unsigned.to_str().unwrap(),
        "--trust",
        "admin.pub",
    ]);
    assert!(
        err.contains("refusing an untrusted package: unsigned"),
        "{err}"
    );
    assert!(err.contains("--allow-unsigned"), "{err}");
    assert!(!installed_dir(&env, "user").exists());
    let out = env.ok(&[
        "profile",
        "install",
        unsigned.to_str().unwrap(),
        "--allow-unsigned",
    ]);
    assert!(out.contains("[unsigned]"), "{out}");
    assert!(installed_dir(&env, "user").join("tailspin.cms").is_file());
}

#[test]
fn flags_build_and_rebuild_after_advanced_customization() {
    let env = Env::new();
    env.ok(&["profile", "keygen", "--out", "admin"]);
    env.ok(&[
        "profile",
        "build",
        "--service-name",
        "Litware VPN",
        "--short-name",
        "litware",
        "--vpn-server",
        "Main=vpn1.litware.example",
        "--vpn-server",
        "vpn2.litware.example",
        "--protocol",
        "pptp",
        "--protocol",
        "sstp",
        "--realm-prefix",
        "LITWARE\\",
        "-o",
        "out",
        "--sign-key",
        "admin.key",
    ]);
    let cms = env.path("out/litware/litware.cms");
    let check = env.ok(&["profile", "check", cms.to_str().unwrap()]);
    assert!(check.contains("vpn protocols: pptp, sstp"), "{check}");
    assert!(
        check.contains("vpn server:    vpn2.litware.example = vpn2.litware.example"),
        "{check}"
    );
    assert!(check.contains("realm:         LITWARE\\<user>"), "{check}");
    // Advanced customization: edit the plain file, rebuild the package from it.
    let text = fs::read_to_string(&cms).unwrap();
    fs::write(&cms, text.replace("RedialCount=3", "RedialCount=8")).unwrap();
    env.ok(&[
        "profile",
        "build",
        "--rebuild",
        "out/litware",
        "-o",
        "out",
        "--sign-key",
        "admin.key",
    ]);
    env.ok(&[
        "profile",
        "install",
        "out/litware.rasprofile",
        "--trust",
        "admin.pub",
    ]);
    let installed = env.path("root/user/litware/litware.cms");
    assert!(fs::read_to_string(installed)
        .unwrap()
        .contains("RedialCount=8"));
    // A bad hand edit is refused by the rebuild, with file, line and key.
    fs::write(&cms, text.replace("RedialCount=3", "RedialCount=lots")).unwrap();
    let err = env.fails(&[
        "profile",
        "build",
        "--rebuild",
        "out/litware",
        "-o",
        "out",
        "--unsigned",
    ]);
    assert!(
        err.contains("litware.cms:") && err.contains("RedialCount"),
        "{err}"
    );
    // A bad short name from a flag is refused.
    let err = env.fails(&[
        "profile",
        "build",
        "--service-name",
        "X",
        "--short-name",
        "much-too-long",
        "--unsigned",
    ]);
    assert!(
        err.contains("short_name") && err.contains("1 to 8"),
        "{err}"
    );
}
