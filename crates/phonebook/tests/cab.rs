//! Cabinets: our writer's output read back by our reader, by `cabextract`
//! and by `gcab`, including very repetitive data (where the `cab` crate's
//! MSZIP output was seen to fail `cabextract -t`) and incompressible data.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use phonebook::cab::{
    cab_checksum, read_cab, write_cab, CabError, CabFile, CabLimits, Compression,
};

/// Whether `tool` can run; skips (or fails under RAS_INTEROP_REQUIRED=1).
fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
            panic!("RAS_INTEROP_REQUIRED=1 but {tool} is not installed");
        }
        let _ = writeln!(std::io::stderr(), "SKIPPED: {tool} not installed");
    }
    ok
}

fn pseudo_random(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn samples() -> Vec<(&'static str, Vec<CabFile>)> {
    let pbk: String = (1..=3000)
        .map(|i| format!("{i},1,0,POP {i},425,555{i:04},0,56000,0,32,\r\n"))
        .collect();
    vec![
        (
            "empty file",
            vec![CabFile {
                name: "a.vers".into(),
                data: Vec::new(),
            }],
        ),
        (
            "phone book",
            vec![
                CabFile {
                    name: "CORP.pbk".into(),
                    data: pbk.into_bytes(),
                },
                CabFile {
                    name: "CORP.pbr".into(),
                    data: b"1\r\nSeattle\r\n".to_vec(),
                },
                CabFile {
                    name: "CORP.vers".into(),
                    data: b"3\r\n".to_vec(),
                },
            ],
        ),
        // 1 MiB of one byte: the repetitive case.
        (
            "repetitive",
            vec![CabFile {
                name: "zeros.bin".into(),
                data: vec![0u8; 1 << 20],
            }],
        ),
        (
            "repetitive pattern",
            vec![CabFile {
                name: "ab.txt".into(),
                data: b"ab".repeat(300_001),
            }],
        ),
        (
            "incompressible",
            vec![CabFile {
                name: "rand.bin".into(),
                data: pseudo_random(200_000, 7),
            }],
        ),
        (
            "exact block",
            vec![CabFile {
                name: "b.bin".into(),
                data: vec![7u8; 32_768],
            }],
        ),
    ]
}

#[test]
fn our_reader_reads_our_writer() {
    for (what, files) in samples() {
        for c in [Compression::None, Compression::MsZip] {
            let cab = write_cab(&files, c, 1_700_000_000);
            assert_eq!(
                read_cab(&cab, CabLimits::default()).unwrap(),
                files,
                "{what} {c:?}"
            );
        }
    }
}

#[test]
fn repetitive_data_compresses() {
    let files = vec![CabFile {
        name: "zeros.bin".into(),
        data: vec![0u8; 1 << 20],
    }];
    let cab = write_cab(&files, Compression::MsZip, 0);
    assert!(cab.len() < 20_000, "{}", cab.len());
}

#[test]
fn corruption_is_detected() {
    let files = &samples()[1].1;
    let mut cab = write_cab(files, Compression::MsZip, 0);
    let last = cab.len() - 10;
    cab[last] ^= 0x55;
    assert!(matches!(
        read_cab(&cab, CabLimits::default()),
        Err(CabError::Checksum(_))
    ));
    let cab = write_cab(files, Compression::MsZip, 0);
    assert!(read_cab(&cab[..cab.len() - 1], CabLimits::default()).is_err());
    let limits = CabLimits {
        max_uncompressed: 1000,
        max_files: 8,
    };
    assert!(matches!(
        read_cab(&cab, limits),
        Err(CabError::TooLarge(1000))
    ));
}

/// MS-CAB checksum of known inputs (computed by hand from the algorithm:
/// LE words XORed, tail bytes folded first-byte-highest).
#[test]
fn checksum_vectors() {
    assert_eq!(cab_checksum(&[], 0), 0);
    assert_eq!(cab_checksum(&[1, 2, 3, 4], 0), 0x0403_0201);
    assert_eq!(
        cab_checksum(&[1, 2, 3, 4, 5, 6, 7], 0),
        0x0403_0201 ^ 0x0005_0607
    );
    assert_eq!(cab_checksum(&[9], 0xff), 0xff ^ 9);
}

fn extract_and_compare(tool: &str, cab_path: &Path, out: &Path, files: &[CabFile]) {
    let status = match tool {
        "cabextract" => Command::new("cabextract")
            .arg("-q")
            .arg("-d")
            .arg(out)
            .arg(cab_path)
            .status(),
        _ => Command::new("gcab")
            .arg("-x")
            .arg("-C")
            .arg(out)
            .arg(cab_path)
            .status(),
    }
    .unwrap();
    assert!(status.success(), "{tool} failed on {}", cab_path.display());
    for f in files {
        let got = std::fs::read(out.join(&f.name)).unwrap();
        assert!(got == f.data, "{tool}: {} differs", f.name);
    }
}

#[test]
fn cabextract_and_gcab_accept_our_cabinets() {
    if !have("cabextract") || !have("gcab") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (i, (what, files)) in samples().into_iter().enumerate() {
        for c in [Compression::None, Compression::MsZip] {
            let path = tmp.path().join(format!("{i}-{c:?}.cab"));
            std::fs::write(&path, write_cab(&files, c, 1_700_000_000)).unwrap();
            let t = Command::new("cabextract")
                .arg("-t")
                .arg(&path)
                .output()
                .unwrap();
            assert!(
                t.status.success(),
                "cabextract -t {what} {c:?}: {}{}",
                String::from_utf8_lossy(&t.stdout),
                String::from_utf8_lossy(&t.stderr)
            );
            for tool in ["cabextract", "gcab"] {
                let out = tmp.path().join(format!("{i}-{c:?}-{tool}"));
                std::fs::create_dir_all(&out).unwrap();
                extract_and_compare(tool, &path, &out, &files);
            }
        }
    }
}

/// gcab's own MSZIP cabinets (whose blocks may refer back into earlier
/// blocks) read with our reader.
#[test]
fn we_read_gcab_cabinets() {
    if !have("gcab") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let files = &samples()[1].1;
    for f in files {
        std::fs::write(tmp.path().join(&f.name), &f.data).unwrap();
    }
    let cab_path = tmp.path().join("g.cab");
    let status = Command::new("gcab")
        .current_dir(tmp.path())
        .args([
            "-c",
            "-z",
            "-n",
            "g.cab",
            "CORP.pbk",
            "CORP.pbr",
            "CORP.vers",
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let got = read_cab(&std::fs::read(cab_path).unwrap(), CabLimits::default()).unwrap();
    assert_eq!(&got, files);
}
