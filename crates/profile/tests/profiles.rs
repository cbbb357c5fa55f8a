//! Round trips and the typed model on the sample profiles in tests/data, and every
//! validation error with its file, line and key.

use std::fs;
use std::path::{Path, PathBuf};

use profile::ini::IniDocument;
use profile::model::*;
use profile::text::TextEncoding;
use profile::ProfileError;

fn data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(rel)
}

fn all_sample_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in fs::read_dir(data("")).unwrap() {
        for f in fs::read_dir(dir.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    assert!(out.len() >= 15, "samples missing: {out:?}");
    out
}

/// Copies a sample profile directory into a temporary directory.
fn copy_sample(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    fs::create_dir(&dir).unwrap();
    for f in fs::read_dir(data(name)).unwrap() {
        let f = f.unwrap();
        fs::copy(f.path(), dir.join(f.file_name())).unwrap();
    }
    (tmp, dir)
}

#[test]
fn every_sample_file_round_trips_byte_for_byte() {
    for path in all_sample_files() {
        let bytes = fs::read(&path).unwrap();
        let doc = IniDocument::parse(&bytes).unwrap();
        assert_eq!(doc.to_bytes().unwrap(), bytes, "{}", path.display());
    }
}

#[test]
fn encodings_are_detected_and_kept() {
    let enc = |p: &str| {
        IniDocument::parse(&fs::read(data(p)).unwrap())
            .unwrap()
            .encoding()
    };
    assert_eq!(enc("contoso/contoso.cms"), TextEncoding::Utf8);
    assert_eq!(enc("fabrikam/fabrikam.cms"), TextEncoding::Windows1252);
    assert_eq!(enc("northwnd/northwnd.cms"), TextEncoding::Utf16LeBom);
}

#[test]
fn editing_one_key_changes_only_that_line_in_every_encoding() {
    for path in [
        "contoso/contoso.cms",
        "fabrikam/fabrikam.cms",
        "northwnd/northwnd.cms",
    ] {
        let bytes = fs::read(data(path)).unwrap();
        let mut doc = IniDocument::parse(&bytes).unwrap();
        let before = doc.to_text();
        doc.set("Connection Manager", "RedialCount", "9").unwrap();
        let after = IniDocument::parse(&doc.to_bytes().unwrap()).unwrap();
        assert_eq!(after.encoding(), doc.encoding(), "{path}");
        let after_text = after.to_text();
        let changed: Vec<(&str, &str)> = before
            .lines()
            .zip(after_text.lines())
            .filter(|(a, b)| a != b)
            .collect();
        // Either one line changed in place, or one line was added.
        let added = after.to_text().lines().count() - before.lines().count();
        assert!(
            (changed.len() == 1 && added == 0) || added == 1,
            "{path}: {changed:?}"
        );
        assert_eq!(
            after
                .get("Connection Manager", "RedialCount")
                .unwrap()
                .value,
            "9"
        );
    }
}

#[test]
fn contoso_model() {
    let p = profile::load(&data("contoso")).unwrap();
    assert_eq!(p.short_name, "contoso");
    let cm = &p.connection_manager;
    assert_eq!(cm.service_name, "Contoso VPN");
    assert!(cm.direct && !cm.dialup && cm.tunnel);
    assert_eq!(cm.default_connection, ConnectionKind::Direct);
    // Backslash kept, not an escape.
    assert_eq!(cm.realm.prefix, "CONTOSO\\");
    assert_eq!(
        p.full_user_name("alice"),
        "CONTOSO\\alice@corp.contoso.example"
    );
    assert!(cm.use_same_user_name);
    assert_eq!(
        (
            cm.redial_count,
            cm.redial_delay_secs,
            cm.idle_timeout_minutes
        ),
        (5, 10, 30)
    );
    assert!(cm.hide.domain && cm.hide.advanced_tab && !cm.hide.remember_password);
    assert_eq!(p.vpn.protocols, vec![VpnProtocol::Sstp, VpnProtocol::Pptp]);
    let servers: Vec<(&str, &str)> = p
        .vpn
        .servers
        .iter()
        .map(|s| (s.name.as_str(), s.address.as_str()))
        .collect();
    assert_eq!(
        servers,
        vec![
            ("West", "vpn-west.contoso.example:8443"),
            ("East", "vpn-east.contoso.example")
        ]
    );
    assert_eq!(
        p.vpn.update_url.as_deref(),
        Some("https://vpn.contoso.example/servers.txt")
    );
    // One action per point, in the seed's order.
    let points: Vec<ActionPoint> = p.actions.iter().map(|a| a.point).collect();
    let mut expected = ActionPoint::ALL.to_vec();
    expected.insert(5, ActionPoint::PostConnect);
    assert_eq!(points, expected);
    let routes = p.actions_at(ActionPoint::PostConnect).next().unwrap();
    assert_eq!(routes.program, "cmroute.dll");
    assert_eq!(routes.entry_point.as_deref(), Some("SetRoutes"));
    assert!(routes
        .parameters
        .starts_with("/STATIC_FILE_NAME routes.txt"));
    assert_eq!(routes.description, "Add routes");
    assert_eq!(routes.connection_types, ConnectionTypes::ALL);
    let register = p.actions_at(ActionPoint::PostConnect).nth(1).unwrap();
    assert_eq!(register.program, "post connect.sh");
    assert_eq!(register.parameters, "%ClientIPAddress% %ServerIPAddress%");
    assert!(register.connection_types.direct && !register.connection_types.dial_up);
    let precon = p.actions_at(ActionPoint::PreConnect).next().unwrap();
    assert!(precon.interactive);
    assert!(precon.connection_types.dial_up && precon.connection_types.direct);
    assert!(!precon.connection_types.double_dial);
    assert_eq!(precon.line, 49);
    assert_eq!(
        p.actions_for(ActionPoint::PreConnect, ConnectionKind::DoubleDial)
            .count(),
        0
    );
    let on_error = p.actions_at(ActionPoint::OnError).next().unwrap();
    assert!(on_error.interactive && on_error.connection_types == ConnectionTypes::ALL);
    assert_eq!(p.user.user_name.as_deref(), Some("alice"));
    let inf = p.install.as_ref().unwrap();
    assert_eq!(inf.service_name.as_deref(), Some("Contoso VPN"));
    assert_eq!(inf.extra_files, vec!["contoso.txt"]);
    assert_eq!(p.connection_kinds(), vec![ConnectionKind::Direct]);
}

#[test]
fn fabrikam_ansi_dialup_with_phone_book() {
    let p = profile::load(&data("fabrikam/fabrikam.cms")).unwrap();
    let cm = &p.connection_manager;
    assert_eq!(
        cm.service_message.as_deref(),
        Some("Bienvenue au réseau Fabrikam €")
    );
    assert_eq!(p.connection_kinds(), vec![ConnectionKind::DialUp]);
    assert_eq!(cm.phonebook_version, 7);
    assert_eq!(p.isp.phone_books.len(), 1);
    assert_eq!(p.isp.phone_books[0].pbk, "fabrikam.pbk");
    assert_eq!(p.isp.phone_books[0].pbr.as_deref(), Some("fabrikam.pbr"));
    assert_eq!(p.isp.filters.len(), 2);
    let multicast = &p.isp.filters[1];
    assert_eq!((multicast.mask, multicast.value), (0x24, 0));
    // MS-CPSP §2.1: flag 0 = modem and multicast; 32 (bit 5 set) = not multicast.
    assert!(multicast.matches(0));
    assert!(!multicast.matches(32));
    assert_eq!(p.service_types[1].display_name, "Multicast Modem");
    assert_eq!(p.user.device.as_deref(), Some("/dev/ttyS0"));
    assert_eq!(p.user.phone_number.as_deref(), Some("5550134"));
}

#[test]
fn northwind_utf16_double_dial() {
    let p = profile::load(&data("northwnd")).unwrap();
    assert_eq!(p.connection_manager.service_name, "Northwind Tráders VPN");
    assert_eq!(p.connection_kinds(), vec![ConnectionKind::DoubleDial]);
    assert_eq!(p.vpn.protocols, vec![VpnProtocol::Pptp, VpnProtocol::Sstp]);
    assert_eq!(p.vpn.servers[0].address, "vpn.northwind.example");
    assert_eq!(p.user.internet_user_name.as_deref(), Some("isp-user"));
    assert_eq!(p.user.connection_kind, Some(ConnectionKind::DoubleDial));
    let a = p
        .actions_for(ActionPoint::PreTunnel, ConnectionKind::DoubleDial)
        .next()
        .unwrap();
    assert_eq!(a.program, "pretunnel.sh");
    assert_eq!(
        p.actions_for(ActionPoint::PreTunnel, ConnectionKind::Direct)
            .count(),
        0
    );
}

#[test]
fn merged_profile_carries_the_other_phone_book() {
    let p = profile::load(&data("merged")).unwrap();
    assert_eq!(p.isp.phone_books.len(), 1);
    assert_eq!(
        p.isp.phone_books[0].merged_from.as_deref(),
        Some("fabrikam")
    );
    assert_eq!(
        p.install.as_ref().unwrap().merged_profiles,
        vec!["fabrikam"]
    );
    assert_eq!(p.vpn.protocols, vec![VpnProtocol::Sstp]);
    assert_eq!(
        p.connection_kinds(),
        vec![ConnectionKind::Direct, ConnectionKind::DoubleDial]
    );
}

#[test]
fn load_through_the_cmp_with_a_windows_cmsfile_path() {
    let p = profile::load(&data("contoso/contoso.cmp")).unwrap();
    assert_eq!(p.files.cms, data("contoso/contoso.cms"));
}

#[test]
fn saving_user_values_keeps_everything_else() {
    let (_tmp, dir) = copy_sample("northwnd");
    let p = profile::load(&dir).unwrap();
    let mut user = p.user.clone();
    user.user_name = Some("bob".into());
    user.remember_password = true;
    user.password = Some(Secret("s3cret".into()));
    profile::save_user_settings(&p, &user).unwrap();
    let text = fs::read_to_string(dir.join("northwnd.cmp")).unwrap();
    assert_eq!(
        text,
        "[Connection Manager]\nCMSFile=northwnd.cms\nInternetUserName=isp-user\nConnectionType=2\nUserName=bob\nPassword=s3cret\nRememberPassword=1\nDialAutomatically=0\n"
    );
    let again = profile::load(&dir).unwrap();
    assert_eq!(again.user, user);
    assert!(!format!("{:?}", again.user).contains("s3cret"));
    // Forgetting the password removes it from the file.
    user.remember_password = false;
    profile::save_user_settings(&again, &user).unwrap();
    assert!(!fs::read_to_string(dir.join("northwnd.cmp"))
        .unwrap()
        .contains("s3cret"));
}

/// Replaces `from` by `to` in contoso.cms (which must contain it once) and loads.
fn load_contoso_with(from: &str, to: &str) -> ProfileError {
    let (_tmp, dir) = copy_sample("contoso");
    let cms = dir.join("contoso.cms");
    let text = fs::read_to_string(&cms).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from}");
    fs::write(&cms, text.replacen(from, to, 1)).unwrap();
    let err = profile::load(&dir).unwrap_err();
    if let ProfileError::Invalid { file, .. } | ProfileError::Missing { file, .. } = &err {
        assert_eq!(file.file_name().unwrap(), "contoso.cms", "{err}");
    }
    err
}

#[test]
fn every_validation_error_names_file_line_and_key() {
    let cases: &[(&str, &str, Option<usize>, &str)] = &[
        (
            "ServiceName=Contoso VPN",
            "ServiceName=Contoso/VPN",
            Some(6),
            "ServiceName",
        ),
        (
            "ServiceName=Contoso VPN",
            "ServiceName=",
            None,
            "ServiceName",
        ),
        ("Dialup=0", "Dialup=yes", Some(8), "Dialup"),
        ("Direct=1", "Direct=0", Some(9), "Direct"),
        (
            "ConnectionType=1",
            "ConnectionType=3",
            Some(10),
            "ConnectionType",
        ),
        (
            "ConnectionType=1",
            "ConnectionType=0",
            Some(10),
            "ConnectionType",
        ),
        ("RedialCount=5", "RedialCount=100", Some(18), "RedialCount"),
        ("RedialDelay=10", "RedialDelay=-1", Some(19), "RedialDelay"),
        ("IdleTimeout=30", "IdleTimeout=1.5", Some(20), "IdleTimeout"),
        ("HideDomain=1", "HideDomain=true", Some(21), "HideDomain"),
        (
            "UseSameUserName=1",
            "UseSameUserName=2",
            Some(17),
            "UseSameUserName",
        ),
        (
            "TunnelFile=contosovpn.txt",
            "TunnelFile=missing.txt",
            Some(12),
            "TunnelFile",
        ),
        (
            "TunnelFile=contosovpn.txt",
            "TunnelFile=..\\x.txt",
            Some(12),
            "TunnelFile",
        ),
        (
            "TunnelFile=contosovpn.txt",
            "TunnelAddress=bad host",
            Some(12),
            "TunnelAddress",
        ),
        ("TunnelFile=contosovpn.txt", "X=1", Some(11), "Tunnel"),
        ("VpnStrategy=6", "VpnStrategy=9", Some(31), "VpnStrategy"),
        ("0=preinit.sh %ServiceName%", "x=preinit.sh", Some(45), "x"),
        ("0=preinit.sh %ServiceName%", "0=", Some(45), "0"),
        (
            "0&Description=Check prerequisites",
            "1&Description=Orphan",
            Some(46),
            "1&Description",
        ),
        ("0&Flags=0x0103", "0&Flags=0x8000", Some(51), "0&Flags"),
        ("0&Flags=0x0103", "0&Flags=lots", Some(51), "0&Flags"),
        (
            "1=\"post connect.sh\"",
            "0=\"post connect.sh\"",
            Some(62),
            "0",
        ),
    ];
    for (from, to, line, key) in cases {
        let err = load_contoso_with(from, to);
        assert_eq!(err.line(), *line, "{from} -> {to}: {err}");
        assert_eq!(err.key(), Some(*key), "{from} -> {to}: {err}");
        let shown = err.to_string();
        assert!(shown.contains("contoso.cms"), "{shown}");
        if let Some(l) = line {
            assert!(shown.contains(&format!("contoso.cms:{l}: ")), "{shown}");
        }
    }
}

#[test]
fn isp_and_service_type_errors() {
    let (_tmp, dir) = copy_sample("fabrikam");
    let cms = dir.join("fabrikam.cms");
    let original = fs::read(&cms).unwrap();
    let cases: &[(&str, &str, usize, &str)] = &[
        (
            "Match&Modem=0x0000",
            "Match&Modem=0x0008",
            19,
            "Match&Modem",
        ),
        ("Mask&Modem=0x0004", "Mask&Modem=zz", 18, "Mask&Modem"),
        (
            "Match&MultiCastModem=0x0000",
            "Match&Other=0x0000",
            20,
            "Mask&MultiCastModem",
        ),
        ("Modem=Modem", "Modem=NoSuchFilter", 24, "Modem"),
        ("PBFile=fabrikam.pbk", "PBFile=gone.pbk", 15, "PBFile"),
    ];
    for (from, to, line, key) in cases {
        let text = String::from_utf8_lossy(&original).into_owned();
        assert_eq!(text.matches(from).count(), 1, "{from}");
        // Replace in the raw bytes so the file stays Windows-1252.
        let raw = String::from_utf8(
            original
                .iter()
                .map(|&b| if b < 128 { b } else { b'?' })
                .collect(),
        )
        .unwrap();
        let at = raw.find(from).unwrap();
        let mut bytes = original[..at].to_vec();
        bytes.extend_from_slice(to.as_bytes());
        bytes.extend_from_slice(&original[at + from.len()..]);
        fs::write(&cms, &bytes).unwrap();
        let err = profile::load(&dir).unwrap_err();
        assert_eq!((err.line(), err.key()), (Some(*line), Some(*key)), "{err}");
    }
}

#[test]
fn vpn_server_file_errors() {
    let (_tmp, dir) = copy_sample("contoso");
    let list = dir.join("contosovpn.txt");
    fs::write(
        &list,
        "[Settings]\r\nDefault=North\r\n[VPN Servers]\r\nEast=a.example\r\n",
    )
    .unwrap();
    let err = profile::load(&dir).unwrap_err();
    assert_eq!((err.line(), err.key()), (Some(2), Some("Default")), "{err}");
    assert!(err.to_string().contains("contosovpn.txt:2"), "{err}");
    fs::write(&list, "[VPN Servers]\r\n").unwrap();
    let err = profile::load(&dir).unwrap_err();
    assert!(matches!(err, ProfileError::Missing { .. }), "{err}");
}

#[test]
fn cmp_and_inf_errors() {
    let (_tmp, dir) = copy_sample("contoso");
    fs::write(
        dir.join("contoso.cmp"),
        "[Connection Manager]\r\nRememberPassword=maybe\r\n",
    )
    .unwrap();
    let err = profile::load(&dir).unwrap_err();
    assert_eq!(
        (err.line(), err.key()),
        (Some(2), Some("RememberPassword")),
        "{err}"
    );
    assert!(err.to_string().contains("contoso.cmp:2"), "{err}");
    fs::write(dir.join("contoso.cmp"), "[Connection Manager]\r\n").unwrap();
    let inf = fs::read_to_string(dir.join("contoso.inf")).unwrap();
    fs::write(
        dir.join("contoso.inf"),
        inf.replace("ShortSvcName=\"contoso\"", "ShortSvcName=\"other\""),
    )
    .unwrap();
    let err = profile::load(&dir).unwrap_err();
    assert!(
        matches!(err, ProfileError::Layout { .. }) && err.to_string().contains("ShortSvcName"),
        "{err}"
    );
}

#[test]
fn layout_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let err = profile::load(tmp.path()).unwrap_err();
    assert!(err.to_string().contains("no .cms file"), "{err}");
    let bad = tmp.path().join("toolongname.cms");
    fs::write(&bad, "[Connection Manager]\r\nServiceName=X\r\n").unwrap();
    let err = profile::load(&bad).unwrap_err();
    assert!(err.to_string().contains("1 to 8 characters"), "{err}");
    let odd = tmp.path().join("odd.cms");
    fs::write(&odd, [0xFF, 0xFE, b'[']).unwrap();
    let err = profile::load(&odd).unwrap_err();
    assert!(matches!(err, ProfileError::Ini { .. }), "{err}");
}

#[test]
fn too_many_merged_phone_books_is_an_error_with_its_line() {
    let (_tmp, dir) = copy_sample("merged");
    let cms = dir.join("merged.cms");
    let mut text = fs::read_to_string(&cms).unwrap();
    let first_line = text.lines().count() + 1;
    for i in 0..65 {
        text.push_str(&format!("[ISP&m{i}]\r\nPBFile=fabrikam.pbk\r\n"));
    }
    fs::write(&cms, text).unwrap();
    let err = profile::load(&dir).unwrap_err();
    // The 65th [ISP&...] section after the one already in the file is the 66th in all.
    assert_eq!(err.line(), Some(first_line + 2 * 63), "{err}");
    assert!(
        err.to_string().contains("more than 64 merged phone books"),
        "{err}"
    );
}
