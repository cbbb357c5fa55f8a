//! The builder, packages (signing, tamper detection) and the install store.

use std::fs;
use std::path::{Path, PathBuf};

use profile::build::{build, BuildError, BuildSpec};
use profile::model::*;
use profile::package::{self, PackageError, SignatureStatus, TrustPolicy};
use profile::signing::SigningKey;
use profile::text::TextEncoding;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

const ANSWERS: &str = r#"
service_name = "Woodgrove Bank VPN"
short_name = "woodgrv"
service_message = "Authorised users only"
dialup = true
direct = true
default_connection = "direct"
redial_count = 4
idle_timeout = 15
hide = ["domain", "advanced-tab"]
help_file = "help.txt"
extra_files = ["readme.txt"]
merge = ["FABRIKAM"]

[vpn]
servers = [
  { name = "Primary", address = "vpn1.woodgrove.example" },
  { name = "Backup", address = "vpn2.woodgrove.example:4443" },
]
protocols = ["pptp", "sstp"]

[realm]
prefix = 'WOODGROVE\'
suffix = "@woodgrove.example"

[user]
user_name = "first.user"

[[actions]]
point = "pre-connect"
program = "check.sh"
parameters = "%ServiceName% %Interactive%"
description = "Check posture"
connection_types = ["direct", "double-dial"]
interactive = true

[[actions]]
point = "monitored"
program = "/usr/bin/monitor-vpn"
description = "Monitor"

[[actions]]
point = "pre-connect"
program = "second.sh"

[advanced.cms."Connection Manager"]
DisableICS = "1"
"#;

/// An answer file in a temporary directory with the files it names.
fn answer_dir() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().to_path_buf();
    let answers = ANSWERS.replace("FABRIKAM", &data("fabrikam").display().to_string());
    fs::write(base.join("answers.toml"), answers).unwrap();
    fs::write(base.join("help.txt"), "help\n").unwrap();
    fs::write(base.join("readme.txt"), "readme\n").unwrap();
    fs::write(base.join("check.sh"), "#!/bin/sh\nexit 0\n").unwrap();
    fs::write(base.join("second.sh"), "#!/bin/sh\n").unwrap();
    (tmp, base)
}

#[test]
fn build_from_answer_file_gives_the_profile_it_describes() {
    let (_tmp, base) = answer_dir();
    let spec = BuildSpec::read(&base.join("answers.toml")).unwrap();
    let out = build(&spec, &base, &base.join("out")).unwrap();
    assert_eq!(out.dir, base.join("out/woodgrv"));
    let p = out.profile;
    assert_eq!(p.short_name, "woodgrv");
    let cm = &p.connection_manager;
    assert_eq!(cm.service_name, "Woodgrove Bank VPN");
    assert_eq!(cm.service_message.as_deref(), Some("Authorised users only"));
    assert_eq!(
        p.connection_kinds(),
        vec![ConnectionKind::Direct, ConnectionKind::DoubleDial]
    );
    assert_eq!(p.full_user_name("bob"), "WOODGROVE\\bob@woodgrove.example");
    assert_eq!((cm.redial_count, cm.idle_timeout_minutes), (4, 15));
    assert!(cm.hide.domain && cm.hide.advanced_tab && !cm.hide.password);
    assert_eq!(p.vpn.protocols, vec![VpnProtocol::Pptp, VpnProtocol::Sstp]);
    let addrs: Vec<&str> = p.vpn.servers.iter().map(|s| s.address.as_str()).collect();
    assert_eq!(
        addrs,
        ["vpn1.woodgrove.example", "vpn2.woodgrove.example:4443"]
    );
    // Actions: numbered per point in answer order, programs copied in when they exist.
    let pre: Vec<&CustomAction> = p.actions_at(ActionPoint::PreConnect).collect();
    assert_eq!(pre.len(), 2);
    assert_eq!((pre[0].index, pre[0].program.as_str()), (0, "check.sh"));
    assert_eq!(pre[0].parameters, "%ServiceName% %Interactive%");
    assert!(pre[0].interactive);
    assert_eq!(
        pre[0].connection_types,
        ConnectionTypes {
            dial_up: false,
            direct: true,
            double_dial: true
        }
    );
    assert_eq!((pre[1].index, pre[1].program.as_str()), (1, "second.sh"));
    assert_eq!(pre[1].connection_types, ConnectionTypes::ALL);
    assert!(out.dir.join("check.sh").is_file() && out.dir.join("second.sh").is_file());
    let mon = p.actions_at(ActionPoint::Monitored).next().unwrap();
    assert_eq!(mon.program, "/usr/bin/monitor-vpn");
    // Merge: Fabrikam's phone book and filters came along.
    assert_eq!(p.isp.phone_books.len(), 1);
    assert_eq!(
        p.isp.phone_books[0].merged_from.as_deref(),
        Some("fabrikam")
    );
    assert!(out.dir.join("fabrikam.pbk").is_file() && out.dir.join("fabrikam.pbr").is_file());
    assert_eq!(p.isp.filters.len(), 2);
    assert_eq!(p.service_types.len(), 2);
    let inf = p.install.as_ref().unwrap();
    assert_eq!(inf.merged_profiles, vec!["fabrikam"]);
    assert_eq!(inf.extra_files, vec!["help.txt", "readme.txt"]);
    assert_eq!(inf.short_name.as_deref(), Some("woodgrv"));
    assert_eq!(p.user.user_name.as_deref(), Some("first.user"));
    // Advanced customization reached the file.
    let cms = fs::read_to_string(out.dir.join("woodgrv.cms")).unwrap();
    assert!(cms.contains("\r\nDisableICS=1\r\n"), "{cms}");
    // Building again replaces the earlier output.
    let again = build(&spec, &base, &base.join("out")).unwrap();
    assert_eq!(
        fs::read_to_string(again.dir.join("woodgrv.cms")).unwrap(),
        cms
    );
}

#[test]
fn non_ascii_profiles_are_written_as_utf16() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: BuildSpec = toml::from_str(
        "service_name = \"Café Réseau\"\nshort_name = \"cafe\"\n[vpn]\nservers = [{ address = \"vpn.cafe.example\" }]\n",
    )
    .unwrap();
    let out = build(&spec, tmp.path(), tmp.path()).unwrap();
    let bytes = fs::read(out.dir.join("cafe.cms")).unwrap();
    assert_eq!(&bytes[..2], &[0xFF, 0xFE]);
    let doc = profile::ini::IniDocument::parse(&bytes).unwrap();
    assert_eq!(doc.encoding(), TextEncoding::Utf16LeBom);
    assert_eq!(out.profile.connection_manager.service_name, "Café Réseau");
    assert_eq!(out.profile.vpn.servers[0].address, "vpn.cafe.example");
    assert!(out.profile.files.tunnel_file.is_none());
}

/// An L2TP entry: VpnStrategy 3 or 4 and the pre-shared key in the tunnel's
/// networking section, read back by the loader as the dialer sees them.
#[test]
fn l2tp_profiles_carry_their_strategy_and_preshared_key() {
    for (protocols, strategy, order) in [
        ("[\"l2tp\"]", "3", vec![VpnProtocol::L2tp]),
        (
            "[\"l2tp\", \"sstp\", \"pptp\"]",
            "4",
            vec![VpnProtocol::L2tp, VpnProtocol::Sstp, VpnProtocol::Pptp],
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let spec: BuildSpec = toml::from_str(&format!(
            "service_name = \"L2TP VPN\"\nshort_name = \"l2tpvpn\"\n[vpn]\nservers = [{{ address = \"vpn.example\" }}]\nprotocols = {protocols}\npreshared_key = \"a shared key\"\n"
        ))
        .unwrap();
        let out = build(&spec, tmp.path(), tmp.path()).unwrap();
        let cms = fs::read_to_string(out.dir.join("l2tpvpn.cms")).unwrap();
        assert!(
            cms.contains(&format!(
                "[Networking&L2TP VPN Tunnel]\r\nVpnStrategy={strategy}\r\nPresharedKey=a shared key\r\n"
            )) || cms.contains(&format!(
                "[Networking&L2TP VPN Tunnel]\nVpnStrategy={strategy}\nPresharedKey=a shared key\n"
            )),
            "{cms}"
        );
        let loaded = profile::load(&out.dir.join("l2tpvpn.cms")).unwrap();
        assert_eq!(loaded.vpn.protocols, order);
        assert_eq!(
            loaded.vpn.preshared_key,
            Some(Secret("a shared key".into()))
        );
        // Never printed.
        assert!(!format!("{:?}", loaded.vpn).contains("a shared key"));
    }
}

#[test]
fn bad_settings_are_refused_with_the_field_named() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        ("service_name = \"X\"\nshort_name = \"waytoolong\"", "short_name"),
        ("service_name = \"X\"\nshort_name = \"1234\"", "short_name"),
        ("service_name = \"X\"\nshort_name = \"a b\"", "short_name"),
        ("service_name = \"A|B\"\nshort_name = \"ab\"", "service_name"),
        ("short_name = \"ab\"", "service_name"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nprotocols = [\"l2tp\"]", "vpn.protocols"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nprotocols = [\"sstp\", \"sstp\"]", "vpn.protocols"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nprotocols = [\"l2tp\", \"pptp\"]\npreshared_key = \"long enough\"", "vpn.protocols"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nprotocols = [\"l2tp\"]\npreshared_key = \"short\"", "vpn.preshared_key"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nprotocols = [\"sstp\"]\npreshared_key = \"long enough\"", "vpn.preshared_key"),
        ("service_name = \"X\"\nshort_name = \"ab\"\n[vpn]\nservers = [{ address = \"a b\" }]", "vpn.servers[0]"),
        ("service_name = \"X\"\nshort_name = \"ab\"\ndirect = false", "dialup/direct"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\ndefault_connection = \"dial-up\"", "default_connection"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\nredial_count = 100", "redial_count"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\nhide = [\"everything\"]", "hide"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\n[[actions]]\npoint = \"post-dial\"\nprogram = \"x\"", "actions[0].point"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\n[[actions]]\npoint = \"pre-init\"\nprogram = \"x\"\nconnection_types = [\"isdn\"]", "actions[0].connection_types"),
        ("service_name = \"X\"\nshort_name = \"ab\"\nvpn = { servers = [{ address = \"h\" }] }\n[advanced.reg.\"S\"]\nk = \"v\"", "advanced.reg"),
    ];
    for (text, field) in cases {
        let spec: BuildSpec = toml::from_str(text).unwrap();
        match build(&spec, tmp.path(), &tmp.path().join("out")) {
            Err(BuildError::Setting { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // Nothing half-built was left behind.
    let left: Vec<_> = fs::read_dir(tmp.path().join("out"))
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn unknown_answer_file_keys_are_errors_with_a_line() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.toml");
    fs::write(
        &path,
        "service_name = \"X\"\nshort_name = \"ab\"\nsevrer = 1\n",
    )
    .unwrap();
    let err = BuildSpec::read(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3: sevrer: unknown field", path.display())),
        "{err}"
    );
}

fn built_contoso() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("contoso");
    fs::create_dir(&dir).unwrap();
    for f in fs::read_dir(data("contoso")).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    (tmp, dir)
}

fn key() -> SigningKey {
    SigningKey::generate().unwrap().0
}

#[test]
fn signed_package_opens_and_tar_lists_it() {
    let (_tmp, dir) = built_contoso();
    let k = key();
    let bytes = package::create(&dir, Some(&k)).unwrap();
    let trust = TrustPolicy {
        keys: vec![k.public_key()],
        allow_unsigned: false,
    };
    let opened = package::open(&bytes, &trust).unwrap();
    assert_eq!(opened.signature, SignatureStatus::Trusted(k.public_key()));
    assert_eq!(opened.manifest.short_name, "contoso");
    let names: Vec<&str> = opened.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "contoso.cmp",
            "contoso.cms",
            "contoso.inf",
            "contoso.txt",
            "contosovpn.txt"
        ]
    );
    for (name, bytes) in &opened.files {
        assert_eq!(*bytes, fs::read(dir.join(name)).unwrap(), "{name}");
    }
    // GNU tar reads our archive (a real peer for the container format).
    let pkg = dir.parent().unwrap().join("contoso.rasprofile");
    fs::write(&pkg, &bytes).unwrap();
    if let Ok(out) = std::process::Command::new("tar")
        .arg("tf")
        .arg(&pkg)
        .output()
    {
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{listing}");
        assert_eq!(listing.lines().next(), Some("manifest.toml"));
        assert!(listing.contains("manifest.sig\n") && listing.contains("files/contoso.cms\n"));
    }
    // Packages are reproducible.
    assert_eq!(package::create(&dir, Some(&k)).unwrap(), bytes);
}

/// Finds `needle` in `hay` (once) and returns its offset.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("present")
}

#[test]
fn tampered_unsigned_and_untrusted_packages_are_refused() {
    let (_tmp, dir) = built_contoso();
    let k = key();
    let bytes = package::create(&dir, Some(&k)).unwrap();
    let trusted = TrustPolicy {
        keys: vec![k.public_key()],
        allow_unsigned: false,
    };

    // A changed file: its hash no longer matches; never allowed, even with allow_unsigned.
    let mut tampered = bytes.clone();
    let at = find(&tampered, b"TunnelFile=contosovpn.txt");
    tampered[at + 11] = b'X';
    for allow in [false, true] {
        let policy = TrustPolicy {
            allow_unsigned: allow,
            ..trusted.clone()
        };
        let err = package::open(&tampered, &policy).unwrap_err();
        assert!(matches!(err, PackageError::Tampered(_)), "{err}");
        assert!(err.to_string().contains("contoso.cms differs"), "{err}");
    }

    // A changed manifest (hash updated to match a changed file): the signature fails.
    let mut re_hashed = bytes.clone();
    let at = find(&re_hashed, b"service_name = \"Contoso VPN\"");
    re_hashed[at + 16] = b'K';
    fix_tar_checksum(&mut re_hashed, 0);
    let err = package::open(&re_hashed, &trusted).unwrap_err();
    assert!(matches!(err, PackageError::BadSignature), "{err}");
    let allowed = TrustPolicy {
        allow_unsigned: true,
        ..trusted.clone()
    };
    // A signature that does not verify is never installed, and nothing suggests
    // --allow-unsigned for it: that switch admits only packages with no signature.
    let err = package::open(&re_hashed, &allowed).unwrap_err();
    assert!(matches!(err, PackageError::BadSignature), "{err}");
    assert!(!err.to_string().contains("allow-unsigned"), "{err}");
    // A damaged signature file is a bad signature too, not "unsigned".
    let mut damaged = bytes.clone();
    let at = find(&damaged, b"algorithm = \"ed25519\"");
    damaged[at + 13] = b'X';
    let header = find(&damaged, b"manifest.sig");
    fix_tar_checksum(&mut damaged, header);
    let err = package::open(&damaged, &allowed).unwrap_err();
    assert!(matches!(err, PackageError::BadSignature), "{err}");

    // Unsigned.
    let unsigned = package::create(&dir, None).unwrap();
    let err = package::open(&unsigned, &trusted).unwrap_err();
    assert!(
        err.to_string().contains("unsigned") && err.to_string().contains("--allow-unsigned"),
        "{err}"
    );
    assert_eq!(
        package::open(&unsigned, &allowed).unwrap().signature,
        SignatureStatus::Unsigned
    );

    // Signed by someone else.
    let other = key();
    let by_other = package::create(&dir, Some(&other)).unwrap();
    let err = package::open(&by_other, &trusted).unwrap_err();
    assert!(err.to_string().contains("untrusted key"), "{err}");
    assert!(!err.to_string().contains("allow-unsigned"), "{err}");
    // --allow-unsigned does not admit a signer nobody trusts.
    let err = package::open(&by_other, &allowed).unwrap_err();
    assert!(matches!(err, PackageError::UntrustedSigner(_)), "{err}");

    // Truncated.
    let err = package::open(&bytes[..bytes.len() / 2], &trusted).unwrap_err();
    assert!(matches!(err, PackageError::Archive(_)), "{err}");
}

/// Recomputes the ustar header checksum of the entry whose header starts at `at`.
fn fix_tar_checksum(bytes: &mut [u8], at: usize) {
    let h = &mut bytes[at..at + 512];
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A custom-action script keeps its execute bit through build, package (where the
/// manifest, and so the signature, covers it) and install; other files are 0644.
#[test]
fn programs_stay_executable_through_build_package_and_install() {
    use std::os::unix::fs::PermissionsExt;
    let _guard = store_tests::ENV.lock().unwrap();
    let (_tmp, base) = answer_dir();
    fs::set_permissions(base.join("check.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    let spec = BuildSpec::read(&base.join("answers.toml")).unwrap();
    let out = build(&spec, &base, &base.join("out")).unwrap();
    assert_eq!(mode(&out.dir.join("check.sh")), 0o755);
    assert_eq!(mode(&out.dir.join("second.sh")), 0o644, "not executable in");
    assert_eq!(mode(&out.dir.join("woodgrv.cms")), 0o644);

    let k = key();
    let bytes = package::create(&out.dir, Some(&k)).unwrap();
    let trust = TrustPolicy {
        keys: vec![k.public_key()],
        allow_unsigned: false,
    };
    let opened = package::open(&bytes, &trust).unwrap();
    let flag = |n: &str| {
        opened
            .manifest
            .files
            .iter()
            .find(|f| f.name == n)
            .unwrap()
            .executable
    };
    assert!(flag("check.sh") && !flag("second.sh") && !flag("woodgrv.cms"));

    let root = tempfile::tempdir().unwrap();
    std::env::set_var("RAS_PROFILE_ROOT", root.path());
    let installed = profile::store::install(&bytes, profile::store::Scope::User, &trust);
    std::env::remove_var("RAS_PROFILE_ROOT");
    let installed = installed.unwrap();
    assert_eq!(mode(&installed.dir.join("check.sh")), 0o755);
    assert_eq!(mode(&installed.dir.join("second.sh")), 0o644);
    assert_eq!(mode(&installed.dir.join("woodgrv.cms")), 0o644);
    // GNU tar gives the program back runnable too.
    let pkg = base.join("woodgrv.rasprofile");
    fs::write(&pkg, &bytes).unwrap();
    let x = base.join("x");
    fs::create_dir(&x).unwrap();
    if let Ok(st) = std::process::Command::new("tar")
        .arg("xf")
        .arg(&pkg)
        .arg("-C")
        .arg(&x)
        .status()
    {
        assert!(st.success());
        assert_eq!(mode(&x.join("files/check.sh")) & 0o111, 0o111);
    }
}

/// Errors about answer-file values name the file, the line and the key.
#[test]
fn answer_file_value_errors_name_file_line_and_key() {
    let (_tmp, base) = answer_dir();
    let path = base.join("answers.toml");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("redial_count = 4", "redial_count = 100");
    fs::write(&path, &text).unwrap();
    let (spec, source) = BuildSpec::read_source(&path).unwrap();
    let err = build(&spec, &base, &base.join("out"))
        .unwrap_err()
        .in_answer_file(&source)
        .to_string();
    let line = text
        .lines()
        .position(|l| l.starts_with("redial_count"))
        .unwrap()
        + 1;
    assert_eq!(
        err,
        format!(
            "{}:{line}: redial_count: 100 is more than 99",
            path.display()
        )
    );
    // Deeper keys: an array element's table.
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("redial_count = 100", "redial_count = 4")
        .replace("point = \"monitored\"", "point = \"later\"");
    fs::write(&path, &text).unwrap();
    let (spec, source) = BuildSpec::read_source(&path).unwrap();
    let err = build(&spec, &base, &base.join("out"))
        .unwrap_err()
        .in_answer_file(&source)
        .to_string();
    let line = text.lines().position(|l| l.contains("\"later\"")).unwrap() + 1;
    assert!(
        err.starts_with(&format!("{}:{line}: actions[1].point: ", path.display())),
        "{err}"
    );
    // A missing required key: the file and the key, no line.
    fs::write(&path, "short_name = \"ab\"\n").unwrap();
    let (spec, source) = BuildSpec::read_source(&path).unwrap();
    let err = build(&spec, &base, &base.join("out"))
        .unwrap_err()
        .in_answer_file(&source)
        .to_string();
    assert!(
        err.starts_with(&format!("{}: service_name: missing", path.display())),
        "{err}"
    );
    // A wrong type: the line and the key too.
    fs::write(
        &path,
        "service_name = \"X\"\nshort_name = \"ab\"\nredial_count = \"x\"\n",
    )
    .unwrap();
    let err = BuildSpec::read_source(&path).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}:3: redial_count: ", path.display())),
        "{err}"
    );
    assert!(!err.contains('\n'), "one line: {err}");
}

/// A profile that offers a direct connection with no VPN server to tunnel to connects
/// nothing: refused, saying what to do.
#[test]
fn a_direct_profile_without_vpn_servers_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: BuildSpec =
        toml::from_str("service_name = \"Empty\"\nshort_name = \"empty\"\n").unwrap();
    let err = build(&spec, tmp.path(), &tmp.path().join("out")).unwrap_err();
    assert_eq!(err.field(), Some("vpn.servers"));
    assert!(err.to_string().contains("no VPN server"), "{err}");
    assert!(!tmp.path().join("out/empty").exists());
    // A dial-up-only profile needs none.
    let spec: BuildSpec = toml::from_str(
        "service_name = \"Dial\"\nshort_name = \"dial\"\ndialup = true\ndirect = false\n",
    )
    .unwrap();
    build(&spec, tmp.path(), &tmp.path().join("out")).unwrap();
}

/// A server address with a scheme is for that protocol only; one for a protocol the
/// profile does not try is refused.
#[test]
fn server_addresses_say_which_protocol_a_port_is_for() {
    let tmp = tempfile::tempdir().unwrap();
    let spec: BuildSpec = toml::from_str(
        "service_name = \"P\"\nshort_name = \"p\"\n[vpn]\nservers = [{ address = \"pptp://h:1724\" }]\nprotocols = [\"sstp\"]\n",
    )
    .unwrap();
    let err = build(&spec, tmp.path(), &tmp.path().join("out")).unwrap_err();
    assert_eq!(err.field(), Some("vpn.servers[0]"));
    assert!(err.to_string().contains("is for pptp"), "{err}");
    let spec: BuildSpec = toml::from_str(
        "service_name = \"P\"\nshort_name = \"p\"\n[vpn]\nservers = [{ address = \"h:x\" }]\n",
    )
    .unwrap();
    let err = build(&spec, tmp.path(), &tmp.path().join("out")).unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
}

mod store_tests {
    use super::*;
    use profile::store::{self, Scope};
    use std::sync::Mutex;

    /// RAS_PROFILE_ROOT is process-wide: tests that set it run one at a time.
    pub(super) static ENV: Mutex<()> = Mutex::new(());

    #[test]
    fn install_reinstall_keeps_user_values_and_remove() {
        let _guard = ENV.lock().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::env::set_var("RAS_PROFILE_ROOT", root.path());
        let (_tmp, dir) = built_contoso();
        let k = key();
        let trust = TrustPolicy {
            keys: vec![k.public_key()],
            allow_unsigned: false,
        };
        let bytes = package::create(&dir, Some(&k)).unwrap();
        let installed = store::install(&bytes, Scope::User, &trust).unwrap();
        assert_eq!(installed.dir, root.path().join("user/contoso"));
        assert!(installed.record.signature.contains("trusted"));

        // The user saves values; an update of the profile keeps them.
        let p = profile::load(&installed.dir).unwrap();
        let mut user = p.user.clone();
        user.user_name = Some("carol".into());
        user.domain = Some("CORP".into());
        profile::save_user_settings(&p, &user).unwrap();
        let cms = dir.join("contoso.cms");
        let text = fs::read_to_string(&cms).unwrap();
        fs::write(&cms, text.replace("RedialCount=5", "RedialCount=7")).unwrap();
        let v2 = package::create(&dir, Some(&k)).unwrap();
        // What the dialer and the phone-book update wrote while the profile was in use.
        fs::write(
            installed.dir.join("contoso.log"),
            "2024-01-01T00:00:00Z Connected\n",
        )
        .unwrap();
        fs::write(installed.dir.join("contoso.state"), "state=disconnected\n").unwrap();
        let again = store::install(&v2, Scope::User, &trust).unwrap();
        let p2 = profile::load(&again.dir).unwrap();
        assert_eq!(p2.connection_manager.redial_count, 7);
        // Reinstalling replaced the profile's own files and kept the log and state.
        assert_eq!(
            fs::read_to_string(again.dir.join("contoso.log")).unwrap(),
            "2024-01-01T00:00:00Z Connected\n"
        );
        assert!(again.dir.join("contoso.state").is_file());
        // Kept again by the next reinstall (whose record now lists the package's files).
        let again = store::install(&v2, Scope::User, &trust).unwrap();
        assert!(again.dir.join("contoso.log").is_file());
        assert!(again.record.files.contains(&"contoso.cms".to_string()));
        assert_eq!(p2.user.user_name.as_deref(), Some("carol"));
        assert_eq!(p2.user.domain.as_deref(), Some("CORP"));

        // A refused package leaves the installed one untouched.
        let err = store::install(&package::create(&dir, None).unwrap(), Scope::User, &trust);
        assert!(err.is_err());
        let p3 = profile::load(&again.dir).unwrap();
        assert_eq!(p3.user.user_name.as_deref(), Some("carol"));
        let leftovers: Vec<_> = fs::read_dir(root.path().join("user"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, ["contoso"]);

        assert_eq!(
            store::find_installed("Contoso VPN").unwrap().unwrap().dir,
            again.dir
        );
        assert_eq!(store::list(Scope::AllUsers).unwrap().len(), 0);
        store::remove("contoso", Scope::User).unwrap();
        assert!(store::find_installed("contoso").unwrap().is_none());
        assert!(store::remove("contoso", Scope::User).is_err());
        std::env::remove_var("RAS_PROFILE_ROOT");
    }

    #[test]
    fn a_signed_package_whose_profile_does_not_load_is_not_installed() {
        let _guard = ENV.lock().unwrap();
        let root = tempfile::tempdir().unwrap();
        std::env::set_var("RAS_PROFILE_ROOT", root.path());
        let (_tmp, dir) = built_contoso();
        let k = key();
        let trust = TrustPolicy {
            keys: vec![k.public_key()],
            allow_unsigned: false,
        };
        store::install(
            &package::create(&dir, Some(&k)).unwrap(),
            Scope::AllUsers,
            &trust,
        )
        .unwrap();
        // Craft a correctly signed package around an invalid .cms (package::create would
        // refuse to make it).
        let mut manifest = package::Manifest {
            format: 1,
            service_name: "Contoso VPN".into(),
            short_name: "contoso".into(),
            files: Vec::new(),
        };
        let cms = fs::read_to_string(dir.join("contoso.cms"))
            .unwrap()
            .replace("RedialCount=5", "RedialCount=500");
        let mut entries = Vec::new();
        for name in ["contoso.cms", "contosovpn.txt"] {
            let bytes = if name == "contoso.cms" {
                cms.clone().into_bytes()
            } else {
                fs::read(dir.join(name)).unwrap()
            };
            manifest.files.push(package::ManifestFile {
                name: name.into(),
                size: bytes.len() as u64,
                sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes)),
                executable: false,
            });
            entries.push((format!("files/{name}"), bytes));
        }
        let manifest_text = toml::to_string(&manifest).unwrap();
        let sig = format!(
            "algorithm = \"ed25519\"\npublic_key = \"{}\"\nsignature = \"{}\"\n",
            k.public_key().to_hex(),
            hex::encode(k.sign(manifest_text.as_bytes()))
        );
        entries.insert(0, ("manifest.sig".into(), sig.into_bytes()));
        entries.insert(0, ("manifest.toml".into(), manifest_text.into_bytes()));
        let crafted = profile::tar::write(&entries);
        assert!(package::open(&crafted, &trust).is_ok());
        let err = store::install(&crafted, Scope::AllUsers, &trust)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("contoso.cms:") && err.contains("RedialCount"),
            "{err}"
        );
        // The earlier install is intact and no staging directory is left.
        let installed = root.path().join("all-users/contoso");
        assert_eq!(
            profile::load(&installed)
                .unwrap()
                .connection_manager
                .redial_count,
            5
        );
        assert_eq!(
            fs::read_dir(root.path().join("all-users")).unwrap().count(),
            1
        );
        std::env::remove_var("RAS_PROFILE_ROOT");
    }
}
