//! The administrator's database and publishing: the Full/Delta rule over
//! versions 1…12, every limit, and "a refused change stores nothing".

use phonebook::cab::{read_cab, CabLimits};
use phonebook::delta::parse_delta;
use phonebook::import::parse_import;
use phonebook::limits::{MAX_CHANGES_PER_POST, MAX_FIRST_IMPORT, MAX_POPS};
use phonebook::pbk::read_pbk;
use phonebook::pop::{Pop, PopFlags};
use phonebook::publish::{kind_for, publish, Kind, PublishError};
use phonebook::store::{Store, StoreChange, StoreError};

fn pop(index: u32) -> Pop {
    Pop {
        index,
        country: 1,
        region: 0,
        name: format!("POP {index}"),
        area_code: "425".into(),
        access_number: format!("555-{:04}", index % 10_000),
        min_speed: 0,
        max_speed: 56_000,
        reserved: 0,
        flags: PopFlags(0x20),
        dun_name: String::new(),
    }
}

fn no_progress() -> impl FnMut(&str, u64, u64) {
    |_, _, _| {}
}

#[test]
fn the_rule_over_versions_1_to_13() {
    let mut last_full = 0;
    let mut kinds = Vec::new();
    for v in 1..=13 {
        let k = kind_for(v, last_full);
        if k == Kind::Full {
            last_full = v;
        }
        kinds.push(k);
    }
    use Kind::{Delta as D, Full as F};
    assert_eq!(kinds, vec![F, D, D, D, D, D, F, D, D, D, D, D, F]);
}

#[test]
fn publishing_versions_1_to_12() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::create(tmp.path(), "Corp").unwrap();
    s.set_regions(&["Seattle".into(), "Redmond".into()])
        .unwrap();
    s.apply(
        &(1..=20)
            .map(|i| StoreChange::Add(pop(i)))
            .collect::<Vec<_>>(),
        true,
    )
    .unwrap();
    // Nothing is published twice without changes.
    let first = publish(&mut s, &mut no_progress()).unwrap();
    assert!(matches!(
        publish(&mut s, &mut no_progress()),
        Err(PublishError::NothingChanged(1))
    ));
    let mut kinds = vec![first.kind];
    for v in 2..=12u32 {
        let mut p = pop(v);
        p.access_number = format!("555-9{v:03}");
        s.apply(
            &[StoreChange::Edit {
                pop: p,
                in_service: None,
            }],
            false,
        )
        .unwrap();
        let out = publish(&mut s, &mut no_progress()).unwrap();
        assert_eq!(out.version, v);
        assert!(out.dir.join("full.cab").is_file());
        assert_eq!(out.dir.join("delta.cab").is_file(), out.kind == Kind::Delta);
        kinds.push(out.kind);
        // The full cabinet is the whole phone book.
        let files = read_cab(&out.full_cab, CabLimits::default()).unwrap();
        let pbk = files.iter().find(|f| f.name == "Corp.pbk").unwrap();
        let pops = read_pbk(std::str::from_utf8(&pbk.data).unwrap()).pops;
        assert_eq!(pops.len(), 20);
        assert_eq!(pops[v as usize - 1].access_number, format!("555-9{v:03}"));
        if let Some(d) = &out.delta_cab {
            let files = read_cab(d, CabLimits::default()).unwrap();
            let dlt = files.iter().find(|f| f.name == "Corp.dlt").unwrap();
            let delta = parse_delta(std::str::from_utf8(&dlt.data).unwrap(), "dlt").unwrap();
            assert_eq!(delta.to, v);
            assert_eq!(delta.from, v.saturating_sub(4).max(1));
        }
    }
    use Kind::{Delta as D, Full as F};
    assert_eq!(kinds, vec![F, D, D, D, D, D, F, D, D, D, D, D]);
    let versions = s.versions().unwrap();
    assert_eq!(versions.len(), 12);
    assert!(versions.iter().skip(1).all(|v| v.changes == 1));
    // The history has the 20 adds and 11 edits.
    assert_eq!(s.history().unwrap().len(), 31);
}

#[test]
fn only_in_service_pops_are_published() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::create(tmp.path(), "Svc").unwrap();
    s.apply(&[StoreChange::Add(pop(1)), StoreChange::Add(pop(2))], true)
        .unwrap();
    s.apply(
        &[StoreChange::Edit {
            pop: pop(2),
            in_service: Some(false),
        }],
        false,
    )
    .unwrap();
    let out = publish(&mut s, &mut no_progress()).unwrap();
    assert_eq!(out.pops, 1);
    // Back in service: a change, published as an upsert in the delta.
    s.apply(
        &[StoreChange::Edit {
            pop: pop(2),
            in_service: Some(true),
        }],
        false,
    )
    .unwrap();
    let out = publish(&mut s, &mut no_progress()).unwrap();
    assert_eq!(
        (out.version, out.kind, out.pops, out.changes),
        (2, Kind::Delta, 2, 1)
    );
}

#[test]
fn refused_changes_store_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::create(tmp.path(), "Lim").unwrap();
    assert!(matches!(
        Store::create(tmp.path(), "Lim"),
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        Store::create(tmp.path(), "12345"),
        Err(StoreError::Name(_))
    ));
    s.apply(&[StoreChange::Add(pop(1))], true).unwrap();
    // A batch with one bad POP stores none of it.
    let mut bad = pop(3);
    bad.flags = PopFlags(1);
    let err = s
        .apply(&[StoreChange::Add(pop(2)), StoreChange::Add(bad)], true)
        .unwrap_err();
    assert!(err.to_string().contains("POP Flag"), "{err}");
    assert!(matches!(
        s.apply(&[StoreChange::Add(pop(1))], true),
        Err(StoreError::PopExists(1))
    ));
    assert!(matches!(
        s.apply(&[StoreChange::Delete(9)], true),
        Err(StoreError::NoSuchPop(9))
    ));
    assert_eq!(s.pops().unwrap().len(), 1);
    assert_eq!(s.history().unwrap().len(), 1);
}

#[test]
fn import_limits() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::create(tmp.path(), "Big").unwrap();
    // 32,001 POPs before the first post: refused whole.
    let too_many: Vec<_> = (1..=MAX_FIRST_IMPORT as u32 + 1)
        .map(|i| StoreChange::Upsert(pop(i)))
        .collect();
    assert!(matches!(
        s.apply(&too_many, true),
        Err(StoreError::Limit(_))
    ));
    assert_eq!(s.pops().unwrap().len(), 0);
    let ok: Vec<_> = (1..=MAX_FIRST_IMPORT as u32)
        .map(|i| StoreChange::Upsert(pop(i)))
        .collect();
    s.apply(&ok, true).unwrap();
    publish(&mut s, &mut no_progress()).unwrap();
    // After the first post: 6,000 changes per post.
    let base = MAX_FIRST_IMPORT as u32;
    let six: Vec<_> = (base + 1..=base + MAX_CHANGES_PER_POST as u32)
        .map(|i| StoreChange::Upsert(pop(i)))
        .collect();
    s.apply(&six, true).unwrap();
    assert!(matches!(
        s.apply(&[StoreChange::Delete(1)], false),
        Err(StoreError::Limit(_))
    ));
    let out = publish(&mut s, &mut no_progress()).unwrap();
    assert_eq!(out.changes, MAX_CHANGES_PER_POST);
    // Up to 65,000 POPs in all.
    let mut next = base + MAX_CHANGES_PER_POST as u32 + 1;
    while (next as usize) <= MAX_POPS {
        let end = (next + MAX_CHANGES_PER_POST as u32 - 1).min(MAX_POPS as u32);
        s.apply(
            &(next..=end)
                .map(|i| StoreChange::Upsert(pop(i)))
                .collect::<Vec<_>>(),
            true,
        )
        .unwrap();
        publish(&mut s, &mut no_progress()).unwrap();
        next = end + 1;
    }
    assert_eq!(s.pops().unwrap().len(), MAX_POPS);
    let err = s
        .apply(&[StoreChange::Add(pop(MAX_POPS as u32 + 1))], false)
        .unwrap_err();
    assert!(err.to_string().contains("65000"), "{err}");
}

#[test]
fn import_errors_name_the_line_and_leave_the_store_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s = Store::create(tmp.path(), "Imp").unwrap();
    let text = "1, 1, 0, A, 1, 5551, 0, 0, 0, 0, \n2, 1, 0, B, 1, 55x2, 0, 0, 0, 0, \n";
    let e = parse_import(text, "pops.txt", 0).unwrap_err();
    assert_eq!(e.to_string(), "pops.txt:2: Access Number: 1 to 35 characters: digits (at least one), '#', '*', '-' and spaces");
    assert_eq!(s.pops().unwrap().len(), 0);
    let good = parse_import("1, 1, 0, A, 1, 5551, 0, 0, 0, 0, \n", "pops.txt", 0).unwrap();
    s.apply(
        &good
            .into_iter()
            .map(|(_, p)| StoreChange::Upsert(p))
            .collect::<Vec<_>>(),
        true,
    )
    .unwrap();
    assert_eq!(s.pops().unwrap().len(), 1);
}
