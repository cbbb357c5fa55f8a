//! The MS-CPSP formats and PBA's: round trips and every reader rule.

use phonebook::delta::{apply_delta, parse_delta, write_delta, Change, Delta};
use phonebook::history::{history_line, parse_history, Action, HistoryEntry};
use phonebook::import::{import_line, parse_import};
use phonebook::name::{check_name, NameError};
use phonebook::pbk::{read_pbk, write_pbk, ReadNote};
use phonebook::pbr::{read_pbr, write_pbr, PbrError};
use phonebook::pop::{Pop, PopFlags, PopProperties};
use phonebook::select::{select_pops, ServiceFilter};
use phonebook::version_file::{read_version, write_version};
use proptest::prelude::*;

fn redmond() -> Pop {
    Pop {
        index: 23,
        country: 1,
        region: 2,
        name: "Redmond".into(),
        area_code: "999".into(),
        access_number: "5550134".into(),
        min_speed: 9600,
        max_speed: 56000,
        reserved: 0,
        flags: PopFlags(96),
        dun_name: String::new(),
    }
}

/// MS-CPSP §3's two example entries.
#[test]
fn spec_examples_read() {
    let r = read_pbk("23,1,2,Redmond,999,5550134,9600,56000,0,96,\r\n,91,,,,55500123,,,,,,\r\n");
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert_eq!(r.pops[0], redmond());
    let second = &r.pops[1];
    assert_eq!((second.index, second.country, second.region), (0, 91, 0));
    assert_eq!(second.access_number, "55500123");
    assert_eq!(
        (second.min_speed, second.max_speed, second.flags.0),
        (0, 0, 0)
    );
}

/// §3: 96 = Sign On, Modem, ISDN, Surcharge (mixed polarity).
#[test]
fn flag_polarity_matches_the_spec_example() {
    let p = PopFlags(96).properties();
    assert_eq!(
        p,
        PopProperties {
            sign_on: true,
            sign_up: false,
            modem: true,
            isdn: true,
            multicast: false,
            surcharge: true
        }
    );
    assert_eq!(PopFlags::from_properties(p), PopFlags(96));
    let all = PopProperties {
        sign_on: true,
        sign_up: true,
        modem: true,
        isdn: true,
        multicast: true,
        surcharge: true,
    };
    assert_eq!(PopFlags::from_properties(all).0, 0x42);
    let none = PopProperties::default();
    assert_eq!(PopFlags::from_properties(none).0, 0x01 | 0x04 | 0x08 | 0x20);
}

#[test]
fn fewer_than_ten_commas_stops_reading() {
    let r = read_pbk("1,1,0,A,1,5551,0,0,0,0,\r\n2,1,0,B,1,5552\r\n3,1,0,C,1,5553,0,0,0,0,\r\n");
    assert_eq!(r.pops.len(), 1);
    assert!(matches!(
        r.notes[0],
        ReadNote::RestIgnored {
            line: 2,
            entry_kept: false,
            ..
        }
    ));
}

#[test]
fn more_than_eleven_commas_voids_the_file() {
    let r = read_pbk("1,1,0,A,1,5551,0,0,0,0,\r\n2,1,0,B,1,5552,0,0,0,0,x,y,\r\n");
    assert!(r.pops.is_empty());
    assert!(matches!(r.notes[0], ReadNote::FileIgnored { line: 2, .. }));
    // Exactly 11 commas is fine.
    assert_eq!(
        read_pbk("1,1,0,A,1,5551,0,0,0,0,dun,\r\n").pops[0].dun_name,
        "dun"
    );
}

#[test]
fn numeric_field_rules() {
    // Non-numeric index: this and later entries ignored.
    let r = read_pbk(
        "1,1,0,A,1,5551,0,0,0,0,\r\nx,1,0,B,1,5552,0,0,0,0,\r\n3,1,0,C,1,5553,0,0,0,0,\r\n",
    );
    assert_eq!(r.pops.len(), 1);
    // Missing country: this entry skipped.
    let r = read_pbk("1,,0,A,1,5551,0,0,0,0,\r\n2,1,0,B,1,5552,0,0,0,0,\r\n");
    assert_eq!(r.pops.len(), 1);
    assert_eq!(r.pops[0].index, 2);
    // Non-numeric country, region, speeds, reserved, flag (or negative): void.
    for bad in [
        "1,x,0,A,1,5551,0,0,0,0,",
        "1,1,r,A,1,5551,0,0,0,0,",
        "1,1,0,A,1,5551,9k,0,0,0,",
        "1,1,0,A,1,5551,0,5 6,0,0,",
        "1,1,0,A,1,5551,0,0,-1,0,",
        "1,1,0,A,1,5551,0,0,0,-2,",
    ] {
        let r = read_pbk(&format!("2,1,0,B,1,5552,0,0,0,0,\r\n{bad}\r\n"));
        assert!(r.pops.is_empty(), "{bad}");
        assert!(matches!(r.notes[0], ReadNote::FileIgnored { .. }), "{bad}");
    }
    // Non-numeric area code: ignored (emptied), entry kept.
    assert_eq!(
        read_pbk("1,1,0,A,42a,5551,0,0,0,0,\r\n").pops[0].area_code,
        ""
    );
    // Sign On bit set: this entry skipped.
    let r = read_pbk("1,1,0,A,1,5551,0,0,0,1,\r\n2,1,0,B,1,5552,0,0,0,0,\r\n");
    assert_eq!(r.pops.iter().map(|p| p.index).collect::<Vec<_>>(), vec![2]);
}

#[test]
fn overlong_fields_shift_and_stop() {
    let name = "N".repeat(35);
    let r = read_pbk(&format!(
        "1,1,0,{name},425,5551,0,0,0,0,\r\n2,1,0,B,1,5552,0,0,0,0,\r\n"
    ));
    // The name is cut at 31; "NNNN" becomes the Area Code (non-numeric:
    // ignored), everything shifts by one; later entries are ignored.
    assert_eq!(r.pops.len(), 1);
    assert_eq!(r.pops[0].name.len(), 31);
    assert_eq!(r.pops[0].area_code, "");
    assert_eq!(r.pops[0].access_number, "425");
    assert_eq!(r.pops[0].min_speed, 5551);
    assert!(matches!(
        r.notes[0],
        ReadNote::RestIgnored {
            entry_kept: true,
            ..
        }
    ));
    // Dialup Networking Name: cut at 50, nothing else happens.
    let dun = "D".repeat(60);
    let r = read_pbk(&format!(
        "1,1,0,A,1,5551,0,0,0,0,{dun}\r\n2,1,0,B,1,5552,0,0,0,0,\r\n"
    ));
    assert_eq!(r.pops.len(), 2);
    assert_eq!(r.pops[0].dun_name.len(), 50);
    // It also ends at a carriage return (found by fuzzing: a name ending in
    // CR would not survive a write and a read).
    let r = read_pbk("1,1,0,A,1,5551,0,0,0,0,Dial\r\rX,tail\r\n");
    assert_eq!(r.pops[0].dun_name, "Dial");
}

#[test]
fn region_file_rules() {
    assert_eq!(
        read_pbr("2\r\nSeattle\r\nHyderabad\r\n").unwrap(),
        vec!["Seattle", "Hyderabad"]
    );
    // Names past the count are ignored; a larger count reads them all.
    assert_eq!(
        read_pbr("1\r\nSeattle\r\nHyderabad\r\n").unwrap(),
        vec!["Seattle"]
    );
    assert_eq!(read_pbr("5\r\nSeattle\r\nHyderabad\r\n").unwrap().len(), 2);
    // Commas separate names too; names are cut at 31.
    assert_eq!(read_pbr("3\r\nA,B\r\nC\r\n").unwrap(), vec!["A", "B", "C"]);
    assert_eq!(
        read_pbr(&format!("1\n{}\n", "R".repeat(40))).unwrap()[0].len(),
        31
    );
    assert!(matches!(
        read_pbr("two\r\nA\r\n"),
        Err(PbrError::BadCount(_))
    ));
    assert!(read_pbr("").unwrap().is_empty());
    let names = vec!["Seattle".to_string(), "Hyderabad".to_string()];
    assert_eq!(read_pbr(&write_pbr(&names)).unwrap(), names);
}

#[test]
fn names_follow_the_rules() {
    assert!(check_name("Corp1").is_ok());
    assert!(check_name("ABCDEFGH").is_ok());
    assert_eq!(
        check_name("ABCDEFGHI"),
        Err(NameError::TooLong("ABCDEFGHI".into()))
    );
    assert_eq!(check_name("1234"), Err(NameError::AllDigits("1234".into())));
    assert_eq!(check_name(""), Err(NameError::Empty));
    for bad in [
        "my pb", "a!", "a,b", "a;", "a*", "a=", "a/", "a\\", "a:", "a?", "a<", "a>", "a|", "a.",
        "a&", "a%", "a{", "a}", "a[", "a]", "a@", "a(", "a)", "a`", "a~", "é",
    ] {
        assert!(
            matches!(check_name(bad), Err(NameError::Symbol(_))),
            "{bad}"
        );
    }
}

#[test]
fn import_format_and_errors_name_line_and_field() {
    let ok = "; comment\r\n1, 1, 0, Redmond, 425, 555-0134, 9600, 56000, 0, 120, ISP\r\n\r\n2, 44, 1, London, 20, 7946 0000, 0, 0, 0, 0, \r\n";
    let pops = parse_import(ok, "a.txt", 1).unwrap();
    assert_eq!(pops.len(), 2);
    assert_eq!(pops[0].0, 2);
    assert_eq!(pops[0].1.access_number, "555-0134");
    assert_eq!(
        parse_import(&import_line(&pops[1].1), "x", 1).unwrap()[0].1,
        pops[1].1
    );
    let cases: &[(&str, usize, &str)] = &[
        ("1, 1, 0, A, 1, 5551, 0, 0, 0, 0", 1, "line"),
        ("1, x, 0, A, 1, 5551, 0, 0, 0, 0, ", 1, "Country Code"),
        ("1, 1, 2, A, 1, 5551, 0, 0, 0, 0, ", 1, "Region Id"),
        (
            "1, 1, 0, AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA, 1, 5551, 0, 0, 0, 0, ",
            1,
            "POP Name",
        ),
        (
            "1, 1, 0, A, 12345678901, 5551, 0, 0, 0, 0, ",
            1,
            "Area Code",
        ),
        ("1, 1, 0, A, 1, 555x, 0, 0, 0, 0, ", 1, "Access Number"),
        ("1, 1, 0, A, 1, , 0, 0, 0, 0, ", 1, "Access Number"),
        ("1, 1, 0, A, 1, 5551, 0, 0, 0, 1, ", 1, "POP Flag"),
        ("1, 1, 0, A, 1, 5551, 0, 0, 0, 128, ", 1, "POP Flag"),
        ("0, 1, 0, A, 1, 5551, 0, 0, 0, 0, ", 1, "POP Index"),
        (
            "1, 1, 0, A, 1, 5551, 0, 0, 0, 0, \n1, 1, 0, B, 1, 5552, 0, 0, 0, 0, ",
            2,
            "POP Index",
        ),
    ];
    for (text, line, field) in cases {
        let e = parse_import(text, "f.txt", 1).unwrap_err();
        assert_eq!((e.line, e.field), (*line, *field), "{text}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("f.txt:{line}: {field}:")),
            "{e}"
        );
    }
}

#[test]
fn history_round_trip() {
    let e = HistoryEntry {
        at: 980_610_035,
        action: Action::Add,
        pop: redmond(),
        in_service: true,
    };
    let line = history_line(&e);
    assert_eq!(
        line,
        "1/27/01 3:40:35 PM, POP Add, Redmond, 23;1;2;Redmond;999;5550134;9600;56000;0;96;;1;1/27/01;;0"
    );
    assert_eq!(parse_history(&line, "h").unwrap(), vec![e]);
    assert_eq!(
        parse_history("1/27/01 3:40:35 PM, POP Move, x, 1", "h")
            .unwrap_err()
            .field,
        "Action"
    );
}

#[test]
fn version_file() {
    assert_eq!(read_version(&write_version(10)).unwrap(), 10);
    assert!(read_version("0").is_err());
    assert!(read_version("32677").is_err());
    assert!(read_version("x").is_err());
}

#[test]
fn delta_applies_only_newer_sections() {
    let mut b = redmond();
    b.index = 5;
    let mut b2 = b.clone();
    b2.access_number = "5559999".into();
    let d = Delta {
        from: 6,
        to: 10,
        sections: vec![
            (7, vec![Change::Upsert(b.clone())]),
            (9, vec![Change::Delete(23)]),
            (10, vec![Change::Upsert(b2.clone())]),
        ],
    };
    let text = write_delta(&d);
    assert_eq!(parse_delta(&text, "d").unwrap(), d);
    let base = vec![redmond()];
    assert_eq!(apply_delta(&base, &d, 8).unwrap(), vec![b2.clone()]);
    // Idempotent: applying again gives the same.
    assert_eq!(
        apply_delta(&apply_delta(&base, &d, 8).unwrap(), &d, 8).unwrap(),
        vec![b2]
    );
    assert!(apply_delta(&base, &d, 5).is_err());
    assert!(apply_delta(&base, &d, 10).is_err());
    for bad in [
        "RASPBDELTA 1\nFrom=6\nTo=10\n[11]\n",
        "RASPBDELTA 1\nFrom=6\nTo=10\n+1,1\n",
        "X\n",
        "RASPBDELTA 1\nFrom=6\nTo=10\n[7]\n",
    ] {
        assert!(parse_delta(bad, "d").is_err(), "{bad}");
    }
}

#[test]
fn pop_selection() {
    let mk = |index, country, region, flags| Pop {
        index,
        country,
        region,
        flags: PopFlags(flags),
        ..redmond()
    };
    let pops = vec![
        mk(1, 1, 1, 0x20),
        mk(2, 1, 0, 0x08 | 0x20),
        mk(3, 44, 1, 0x20),
        mk(4, 1, 2, 0x04 | 0x20),
    ];
    // Modem POPs (bit 2 clear): Mask 0x04, Match 0.
    let modem = ServiceFilter {
        mask: 0x04,
        matches: 0,
    };
    let ids = |v: Vec<&Pop>| v.iter().map(|p| p.index).collect::<Vec<_>>();
    assert_eq!(ids(select_pops(&pops, Some(modem), 1, None)), vec![1, 2]);
    // Region 1 includes region-0 ("all regions") POPs.
    assert_eq!(ids(select_pops(&pops, None, 1, Some(1))), vec![1, 2]);
    assert_eq!(ids(select_pops(&pops, None, 1, Some(2))), vec![2, 4]);
    assert_eq!(ids(select_pops(&pops, None, 44, None)), vec![3]);
    assert_eq!(ServiceFilter::parse_value("0x0024"), Some(0x24));
    assert_eq!(ServiceFilter::parse_value("36"), Some(36));
}

fn arb_pop() -> impl Strategy<Value = Pop> {
    (
        1u32..100_000,
        1u32..1000,
        0u32..50,
        "[A-Za-z0-9 .()-]{0,31}",
        "[0-9]{0,11}",
        "[0-9][0-9#* -]{0,40}",
        (any::<u32>(), any::<u32>(), any::<u32>()),
        (0u32..256).prop_map(|f| f & !1),
        "[A-Za-z0-9 ]{0,50}",
    )
        .prop_map(
            |(
                index,
                country,
                region,
                name,
                area_code,
                access_number,
                (min_speed, max_speed, reserved),
                flags,
                dun_name,
            )| Pop {
                index,
                country,
                region,
                name,
                area_code,
                access_number,
                min_speed,
                max_speed,
                reserved,
                flags: PopFlags(flags),
                dun_name,
            },
        )
}

proptest! {
    /// Whatever MS-CPSP allows in each field, write → read gives it back.
    #[test]
    fn pbk_round_trip(pops in proptest::collection::vec(arb_pop(), 0..20)) {
        let r = read_pbk(&write_pbk(&pops));
        prop_assert!(r.notes.is_empty(), "{:?}", r.notes);
        prop_assert_eq!(r.pops, pops);
    }

    /// The reader never panics on arbitrary text.
    #[test]
    fn pbk_reader_total(text in "[0-9A-Za-z,\r\n -]{0,300}") {
        let _ = read_pbk(&text);
    }
}
