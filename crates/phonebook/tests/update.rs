//! The client's cabinet application without a network: full and delta,
//! and a refused cabinet leaves the profile as it was.

use phonebook::answer::UpdateKind;
use phonebook::cab::{write_cab, CabFile, Compression};
use phonebook::update::{apply_cabinet, local_version, UpdateError, UpdateOutcome};

fn cab(files: &[(&str, &str)]) -> Vec<u8> {
    let files: Vec<CabFile> = files
        .iter()
        .map(|(n, d)| CabFile {
            name: n.to_string(),
            data: d.as_bytes().to_vec(),
        })
        .collect();
    write_cab(&files, Compression::MsZip, 0)
}

const V3: &str = "1,1,0,A,425,5550001,0,0,0,32,\r\n2,1,0,B,425,5550002,0,0,0,32,\r\n";

#[test]
fn full_then_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let full = cab(&[
        ("Corp.pbk", V3),
        ("Corp.pbr", "1\r\nSeattle\r\n"),
        ("Corp.vers", "3\r\n"),
    ]);
    assert_eq!(
        apply_cabinet(dir, "Corp", 0, UpdateKind::Full, &full, 3).unwrap(),
        UpdateOutcome::Full { from: 0, to: 3 }
    );
    assert_eq!(local_version(dir, "Corp"), 3);
    let delta_text = "RASPBDELTA 1\r\nFrom=2\r\nTo=5\r\n[3]\r\n-1\r\n[4]\r\n+3,1,1,C,425,5550003,0,0,0,32,\r\n[5]\r\n-2\r\n";
    let delta = cab(&[
        ("Corp.dlt", delta_text),
        ("Corp.pbr", "1\r\nSeattle\r\n"),
        ("Corp.vers", "5\r\n"),
    ]);
    // Refused: the cabinet is for another version than announced.
    assert!(matches!(
        apply_cabinet(dir, "Corp", 3, UpdateKind::Delta, &delta, 6),
        Err(UpdateError::Mismatch(_))
    ));
    // Refused: garbage.
    assert!(apply_cabinet(dir, "Corp", 3, UpdateKind::Delta, b"MSCF garbage", 5).is_err());
    assert_eq!(std::fs::read_to_string(dir.join("Corp.pbk")).unwrap(), V3);
    assert_eq!(local_version(dir, "Corp"), 3);
    // Applied: section 3 is skipped (the client has it), 4 and 5 applied.
    assert_eq!(
        apply_cabinet(dir, "Corp", 3, UpdateKind::Delta, &delta, 5).unwrap(),
        UpdateOutcome::Delta { from: 3, to: 5 }
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Corp.pbk")).unwrap(),
        "1,1,0,A,425,5550001,0,0,0,32,\r\n3,1,1,C,425,5550003,0,0,0,32,\r\n"
    );
    assert_eq!(local_version(dir, "Corp"), 5);
    // A delta that does not reach back to the client's version is refused.
    assert!(matches!(
        apply_cabinet(dir, "Corp", 1, UpdateKind::Delta, &delta, 5),
        Err(UpdateError::Delta(_))
    ));
}
