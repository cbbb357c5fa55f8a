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
            // What a user sees: no backtrace under the error.
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
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
    assert!(err.contains("refusing an unsigned package"), "{err}");
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

/// Lines that show Rust's debug formatting rather than words.
fn has_debug_formatting(text: &str) -> bool {
    ["Some(", "None", "{ ", " }", "Ok(", "Err("]
        .iter()
        .any(|p| text.contains(p))
}

/// A package whose manifest was changed after signing is never installed, not even
/// with --allow-unsigned, and nothing recommends that switch for it.
#[test]
fn a_bad_signature_is_never_installed() {
    let env = Env::new();
    env.ok(&["profile", "keygen", "--out", "admin"]);
    let answers = write_answers(&env);
    env.ok(&[
        "profile",
        "build",
        "-a",
        answers.to_str().unwrap(),
        "-o",
        "out",
        "--sign-key",
        "admin.key",
    ]);
    let pkg = env.path("out/tailspin.rasprofile");
    // Change the manifest's service name (its own hashes still match the files) and fix
    // the tar header checksum: only the signature can tell.
    let mut bytes = fs::read(&pkg).unwrap();
    let at = bytes
        .windows(17)
        .position(|w| w == b"Tailspin Toys VPN")
        .unwrap();
    bytes[at] = b'X';
    bytes[148..156].fill(b' ');
    let sum: u32 = bytes[..512].iter().map(|&b| u32::from(b)).sum();
    bytes[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    fs::write(&pkg, bytes).unwrap();
    for extra in [&[][..], &["--allow-unsigned"][..]] {
        let mut args = vec![
            "profile",
            "install",
            pkg.to_str().unwrap(),
            "--trust",
            "admin.pub",
        ];
        args.extend_from_slice(extra);
        let err = env.fails(&args);
        assert!(err.contains("signature does not verify"), "{err}");
        assert!(!err.contains("--allow-unsigned"), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    assert!(!installed_dir(&env, "user").exists());
}

/// The issue's scenario: a profile built with `program = "marker.sh"` runs the script
/// after build, package and install (it used to be 0644: "Permission denied"). The
/// tunnel then fails for want of a server: that failure, not the action's, ends it.
#[test]
fn an_installed_script_action_runs() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    fs::write(
        env.path("answers.toml"),
        "service_name = \"Marker VPN\"\nshort_name = \"marker\"\nredial_count = 0\n\
         [vpn]\nservers = [{ address = \"127.0.0.1:9\" }]\nprotocols = [\"sstp\"]\n\
         [[actions]]\npoint = \"pre-connect\"\nprogram = \"marker.sh\"\ndescription = \"Marker\"\n",
    )
    .unwrap();
    let marker = env.path("marker.sh");
    fs::write(&marker, "#!/bin/sh\ntouch \"$(dirname \"$0\")/ran\"\n").unwrap();
    fs::set_permissions(&marker, fs::Permissions::from_mode(0o755)).unwrap();
    let built = env.ok(&[
        "profile",
        "build",
        "-a",
        "answers.toml",
        "-o",
        "out",
        "--unsigned",
    ]);
    assert_eq!(built.lines().count(), 1, "one line: {built}");
    env.ok(&[
        "profile",
        "install",
        "out/marker.rasprofile",
        "--allow-unsigned",
    ]);
    let dir = env.path("root/user/marker");
    let mode = fs::metadata(dir.join("marker.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    fs::write(env.path("pw"), "x\n").unwrap();
    let err = env.fails(&[
        "dial",
        "marker",
        "--user",
        "u",
        "--password-file",
        "pw",
        "--unattended",
        "--fingerprint",
        &"00".repeat(32),
        "--timeout",
        "5",
    ]);
    assert!(
        dir.join("ran").is_file(),
        "the pre-connect script did not run: {err}"
    );
    assert!(!err.contains("Permission denied"), "{err}");
}

/// Reinstalling keeps the profile's log and state; `ras profile check` takes an
/// installed profile's name as `ras dial` does.
#[test]
fn reinstall_keeps_log_and_state_and_check_takes_installed_names() {
    let env = Env::new();
    let answers = write_answers(&env);
    env.ok(&[
        "profile",
        "build",
        "-a",
        answers.to_str().unwrap(),
        "-o",
        "out",
        "--unsigned",
    ]);
    let installed = env.ok(&[
        "profile",
        "install",
        "out/tailspin.rasprofile",
        "--allow-unsigned",
    ]);
    assert_eq!(installed.lines().count(), 1, "{installed}");
    let dir = installed_dir(&env, "user");
    fs::write(dir.join("tailspin.log"), "2026-01-01T00:00:00Z Connected\n").unwrap();
    fs::write(dir.join("tailspin.state"), "state=disconnected\n").unwrap();
    env.ok(&[
        "profile",
        "install",
        "out/tailspin.rasprofile",
        "--allow-unsigned",
    ]);
    assert_eq!(
        fs::read_to_string(dir.join("tailspin.log")).unwrap(),
        "2026-01-01T00:00:00Z Connected\n"
    );
    assert!(dir.join("tailspin.state").is_file());
    for name in ["tailspin", "Tailspin Toys VPN"] {
        let check = env.ok(&["profile", "check", name]);
        assert!(
            check.contains("service name:  Tailspin Toys VPN"),
            "{check}"
        );
        assert!(!has_debug_formatting(&check), "{check}");
    }
    let err = env.fails(&["profile", "check", "nosuch"]);
    assert!(err.contains("not installed"), "{err}");
    let removed = env.ok(&["profile", "remove", "tailspin"]);
    assert_eq!(removed.lines().count(), 1, "{removed}");
    assert!(removed.starts_with("removed tailspin"), "{removed}");
}

/// Errors about the answer file name it, the line and the key; a missing key is not
/// blamed on missing flags; each error is one line without repeats.
#[test]
fn answer_file_errors_name_file_line_and_key() {
    let env = Env::new();
    fs::write(
        env.path("a.toml"),
        "service_name = \"X\"\nshort_name = \"x\"\nredial_count = 100\n[vpn]\nservers = [{ address = \"h\" }]\n",
    )
    .unwrap();
    let err = env.fails(&["profile", "build", "--answers", "a.toml", "--unsigned"]);
    assert!(
        err.contains("a.toml:3: redial_count: 100 is more than 99"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    fs::write(env.path("b.toml"), "short_name = \"x\"\n").unwrap();
    let err = env.fails(&["profile", "build", "--answers", "b.toml", "--unsigned"]);
    assert!(err.contains("b.toml: service_name: missing"), "{err}");
    assert!(!err.contains("--answers FILE"), "{err}");
    // No VPN server: refused, saying what to do.
    fs::write(
        env.path("c.toml"),
        "service_name = \"X\"\nshort_name = \"x\"\n",
    )
    .unwrap();
    let err = env.fails(&["profile", "build", "--answers", "c.toml", "--unsigned"]);
    assert!(err.contains("c.toml: vpn.servers: no VPN server"), "{err}");
    assert!(!env.path("x").exists() && !env.path("x.rasprofile").exists());
    // A file that is not there: said once.
    let err = env.fails(&["profile", "install", "nothere.rasprofile"]);
    assert_eq!(err.lines().count(), 1, "{err}");
    let first = err.find("No such file").unwrap();
    assert!(
        !err[first + 1..].contains("No such file"),
        "said twice: {err}"
    );
}

/// The issue's profile: `Main=host:PORT` with SSTP then PPTP and no way to check the
/// certificate. PPTP is not tried on the SSTP port, and the terminal gives the first
/// real cause in words.
#[test]
fn a_port_is_for_its_protocol_and_the_first_cause_is_shown() {
    let env = Env::new();
    let sstp_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = sstp_port.local_addr().unwrap().port();
    sstp_port.set_nonblocking(true).unwrap();
    fs::write(
        env.path("a.toml"),
        format!(
            "service_name = \"Ports VPN\"\nshort_name = \"ports\"\nredial_count = 0\n\
             [vpn]\nservers = [{{ name = \"Main\", address = \"127.0.0.1:{port}\" }}]\nprotocols = [\"sstp\", \"pptp\"]\n"
        ),
    )
    .unwrap();
    env.ok(&[
        "profile",
        "build",
        "-a",
        "a.toml",
        "-o",
        "out",
        "--unsigned",
    ]);
    fs::write(env.path("pw"), "x\n").unwrap();
    let out = env.ras(&[
        "dial",
        "out/ports",
        "--user",
        "u",
        "--password-file",
        "pw",
        "--unattended",
        "--timeout",
        "5",
    ]);
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("no way to check the server certificate (give --ca or --fingerprint)"),
        "{text}"
    );
    assert!(!text.contains("Connected"), "{text}");
    assert!(!has_debug_formatting(&text), "{text}");
    // Nothing connected to the SSTP port: SSTP had no trust, PPTP went to 1723.
    assert!(
        sstp_port.accept().is_err(),
        "PPTP was tried on the SSTP port"
    );
    let log = fs::read_to_string(env.path("out/ports/ports.log")).unwrap();
    assert!(log.contains("pptp://127.0.0.1:1723"), "{log}");
}
