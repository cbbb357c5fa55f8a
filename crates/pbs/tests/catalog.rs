//! Posts: what the service accepts, and that an installed version survives
//! a restart while a half-written one is ignored and cleaned up.

use pbs::catalog::{install, load_catalog, validate_post, InstallError};
use phonebook::bundle::encode_bundle;
use phonebook::cab::{write_cab, CabFile, Compression};

fn cab(name: &str, version: u32, delta: bool) -> Vec<u8> {
    let first = if delta {
        CabFile {
            name: format!("{name}.dlt"),
            data: format!("RASPBDELTA 1\r\nFrom=1\r\nTo={version}\r\n[{version}]\r\n").into_bytes(),
        }
    } else {
        CabFile {
            name: format!("{name}.pbk"),
            data: b"1,1,0,A,425,5550100,0,0,0,32,\r\n".to_vec(),
        }
    };
    write_cab(
        &[
            first,
            CabFile {
                name: format!("{name}.pbr"),
                data: b"0\r\n".to_vec(),
            },
            CabFile {
                name: format!("{name}.vers"),
                data: format!("{version}\r\n").into_bytes(),
            },
        ],
        Compression::MsZip,
        0,
    )
}

fn bundle(version: &str, full: &[u8], delta: Option<&[u8]>) -> Vec<u8> {
    let mut e: Vec<(&str, &[u8])> = vec![("version", version.as_bytes()), ("full.cab", full)];
    if let Some(d) = delta {
        e.push(("delta.cab", d));
    }
    encode_bundle(&e)
}

#[test]
fn posts_are_checked() {
    let full = cab("Corp", 2, false);
    let delta = cab("Corp", 2, true);
    let ok = validate_post("Corp", &bundle("2", &full, Some(&delta))).unwrap();
    assert_eq!((ok.version, ok.delta.is_some()), (2, true));
    let bad = |b: Vec<u8>, name: &str| match validate_post(name, &b) {
        Err(InstallError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    assert!(bad(bundle("3", &full, None), "Corp").contains("version 3"));
    assert!(bad(bundle("2", &cab("Other", 2, false), None), "Corp").contains("lacks Corp.pbk"));
    assert!(bad(bundle("2", &full[..full.len() - 1], None), "Corp").contains("cabinet"));
    assert!(bad(bundle("2", &full, Some(&full)), "Corp").contains("lacks Corp.dlt"));
    assert!(bad(bundle("x", &full, None), "Corp").contains("version"));
    assert!(bad(bundle("2", &full, None), "bad name").contains("symbol"));
    assert!(bad(b"garbage".to_vec(), "Corp").contains("magic"));
}

#[test]
fn installed_versions_reload_and_leftovers_go() {
    let tmp = tempfile::tempdir().unwrap();
    install(tmp.path(), "Corp", 1, cab("Corp", 1, false), None).unwrap();
    install(
        tmp.path(),
        "Corp",
        2,
        cab("Corp", 2, false),
        Some(cab("Corp", 2, true)),
    )
    .unwrap();
    // A post that died before its rename: a temporary folder and no
    // `current` change.
    let leftover = tmp.path().join("Corp/.3.tmp-999");
    std::fs::create_dir_all(&leftover).unwrap();
    std::fs::write(leftover.join("full.cab"), b"half").unwrap();
    let catalog = load_catalog(tmp.path()).unwrap();
    let book = &catalog["corp"];
    assert_eq!(book.current.version, 2);
    assert!(book.current.delta.is_some());
    assert_eq!(book.previous.as_ref().map(|p| p.version), Some(1));
    assert!(!leftover.exists());
    let answer = std::str::from_utf8(&book.current.answer_delta.clone().unwrap())
        .unwrap()
        .to_owned();
    assert!(
        answer.contains("Url=/pbserver/data/Corp/2/delta.cab"),
        "{answer}"
    );
}
