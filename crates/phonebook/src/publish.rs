//! Publishing: turns the database's in-service POPs into a new version,
//! with its Full cabinet and, per the seed's rule, a Delta cabinet, in the
//! numbered folder `DIR/NAME/VERSION/`.
//!
//! The rule (seed, ".cab"): "PBA creates a Delta.cab file the first five
//! times that an administrator changes information in a phone book. If the
//! administrator makes a sixth set of changes, PBA creates a Full.cab
//! file." So version 1 is Full, 2–6 Delta, 7 Full, 8–12 Delta, 13 Full…
//! Every version also carries the full phone book (`full.cab`): a client
//! five or more versions behind needs it whatever the current kind. A
//! Delta version adds `delta.cab` holding the changes of its last four
//! versions, enough for any client one to four versions behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rusqlite::params;

use crate::cab::{write_cab, CabFile, Compression};
use crate::delta::{write_delta, Change, Delta};
use crate::limits::{DELTAS_BETWEEN_FULLS, MAX_DELTA_DISTANCE, MAX_VERSION};
use crate::pbk::read_pbk;
use crate::pbr::write_pbr;
use crate::store::{now, Store, StoreError};
use crate::version_file::write_version;

/// The two kinds of cabinet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Full,
    Delta,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Full => "full",
            Kind::Delta => "delta",
        }
    }
}

/// The kind of version `version` given the last Full version before it.
pub fn kind_for(version: u32, last_full: u32) -> Kind {
    if version <= 1 || last_full == 0 || version - last_full > DELTAS_BETWEEN_FULLS {
        Kind::Full
    } else {
        Kind::Delta
    }
}

/// Why publishing failed; the database and the served folders are
/// unchanged when it does.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("nothing to publish: no in-service POP or region changed since version {0}")]
    NothingChanged(u32),
    #[error("the phone book has reached its {MAX_VERSION} updates")]
    TooManyUpdates,
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What a publish made.
#[derive(Debug, Clone)]
pub struct Published {
    pub version: u32,
    pub kind: Kind,
    pub dir: PathBuf,
    pub full_cab: Vec<u8>,
    pub delta_cab: Option<Vec<u8>>,
    /// POPs in the published phone book.
    pub pops: usize,
    /// POPs added, changed or removed by this version.
    pub changes: usize,
}

/// File names inside a post folder and the post bundle.
pub const FULL_CAB: &str = "full.cab";
pub const DELTA_CAB: &str = "delta.cab";
pub const VERSION_ENTRY: &str = "version";

/// Names of the files inside the cabinets.
pub fn pbk_name(book: &str) -> String {
    format!("{book}.pbk")
}
pub fn pbr_name(book: &str) -> String {
    format!("{book}.pbr")
}
pub fn vers_name(book: &str) -> String {
    format!("{book}.vers")
}
pub fn delta_name(book: &str) -> String {
    format!("{book}.dlt")
}

/// Publishes a new version. `progress(step, done, total)` reports the
/// stages ("diff", "cabinets", "write", "commit").
pub fn publish(
    store: &mut Store,
    progress: &mut dyn FnMut(&str, u64, u64),
) -> Result<Published, PublishError> {
    let name = store.name().to_owned();
    let last = store.version()?;
    progress("diff", 0, 4);
    let current = store.in_service_lines()?;
    let published = store.published_lines()?;
    let regions = store.regions()?;
    let pbr = write_pbr(&regions);
    let regions_changed = store.meta("published_pbr")?.as_deref() != Some(pbr.as_str());
    // The changes of this version: upserts and deletes by index.
    let mut changes: BTreeMap<u32, Option<&String>> = BTreeMap::new();
    for (idx, line) in &current {
        if published.get(idx) != Some(line) {
            changes.insert(*idx, Some(line));
        }
    }
    for idx in published.keys() {
        if !current.contains_key(idx) {
            changes.insert(*idx, None);
        }
    }
    // A regions-only change is a version too (its delta carries the
    // new region file).
    if changes.is_empty() && !(regions_changed && last > 0) {
        return Err(PublishError::NothingChanged(last));
    }
    if last >= MAX_VERSION {
        return Err(PublishError::TooManyUpdates);
    }
    let version = last + 1;
    let kind = kind_for(version, store.last_full_version()?);
    progress("cabinets", 1, 4);
    let at = now();
    let mut pbk = String::with_capacity(current.values().map(|l| l.len() + 2).sum());
    for line in current.values() {
        pbk.push_str(line);
        pbk.push_str("\r\n");
    }
    let vers = write_version(version);
    let full_cab = write_cab(
        &[
            CabFile {
                name: pbk_name(&name),
                data: pbk.clone().into_bytes(),
            },
            CabFile {
                name: pbr_name(&name),
                data: pbr.clone().into_bytes(),
            },
            CabFile {
                name: vers_name(&name),
                data: vers.clone().into_bytes(),
            },
        ],
        Compression::MsZip,
        at,
    );
    let mut delta_text = None;
    let delta_cab = if kind == Kind::Delta {
        let from = version.saturating_sub(MAX_DELTA_DISTANCE).max(1);
        let mut sections: Vec<(u32, Vec<Change>)> = Vec::new();
        for (v, idx, line) in store.version_changes(from + 1, version - 1)? {
            if sections.last().map(|s| s.0) != Some(v) {
                sections.push((v, Vec::new()));
            }
            sections
                .last_mut()
                .expect("just pushed")
                .1
                .push(to_change(idx, line.as_deref()));
        }
        sections.push((
            version,
            changes
                .iter()
                .map(|(idx, line)| to_change(*idx, line.map(String::as_str)))
                .collect(),
        ));
        let text = write_delta(&Delta {
            from,
            to: version,
            sections,
        });
        let cab = write_cab(
            &[
                CabFile {
                    name: delta_name(&name),
                    data: text.clone().into_bytes(),
                },
                CabFile {
                    name: pbr_name(&name),
                    data: pbr.clone().into_bytes(),
                },
                CabFile {
                    name: vers_name(&name),
                    data: vers.clone().into_bytes(),
                },
            ],
            Compression::MsZip,
            at,
        );
        delta_text = Some(text);
        Some(cab)
    } else {
        None
    };
    progress("write", 2, 4);
    let dir = store.book_dir().join(version.to_string());
    let history = store.history()?.join("\r\n");
    let mut files: Vec<(String, &[u8])> = vec![
        (FULL_CAB.into(), &full_cab),
        (pbk_name(&name), pbk.as_bytes()),
        (pbr_name(&name), pbr.as_bytes()),
        (vers_name(&name), vers.as_bytes()),
        ("history.txt".into(), history.as_bytes()),
    ];
    if let (Some(cab), Some(text)) = (&delta_cab, &delta_text) {
        files.push((DELTA_CAB.into(), cab));
        files.push((delta_name(&name), text.as_bytes()));
    }
    let file_refs: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    crate::fsutil::write_dir_atomic(&dir, &file_refs).map_err(|source| PublishError::Io {
        path: dir.clone(),
        source,
    })?;
    progress("commit", 3, 4);
    let change_count = changes.len();
    let pops = current.len();
    store.write(|tx| {
        for (idx, line) in &changes {
            match line {
                Some(l) => tx.execute(
                    "INSERT OR REPLACE INTO published(idx, line) VALUES (?1, ?2)",
                    params![idx, l],
                )?,
                None => tx.execute("DELETE FROM published WHERE idx = ?1", [idx])?,
            };
            tx.execute(
                "INSERT INTO version_changes(version, idx, line) VALUES (?1, ?2, ?3)",
                params![version, idx, line],
            )?;
        }
        // Only the last four versions' changes are ever put in a delta.
        tx.execute(
            "DELETE FROM version_changes WHERE version <= ?1",
            [version.saturating_sub(MAX_DELTA_DISTANCE)],
        )?;
        tx.execute(
            "INSERT INTO versions(version, full, at, pops, changes) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                version,
                (kind == Kind::Full) as i64,
                at,
                pops as i64,
                change_count as i64
            ],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO meta(key, value) VALUES ('published_pbr', ?1)",
            [&pbr],
        )?;
        tx.execute("DELETE FROM pending", [])?;
        Ok(())
    })?;
    progress("done", 4, 4);
    Ok(Published {
        version,
        kind,
        dir,
        full_cab,
        delta_cab,
        pops,
        changes: change_count,
    })
}

fn to_change(idx: u32, line: Option<&str>) -> Change {
    match line.map(read_pbk) {
        Some(read) if read.pops.len() == 1 => Change::Upsert(read.pops[0].clone()),
        // A published line always reads back (validate_pop guarantees it);
        // treat the impossible as a delete rather than publish garbage.
        _ => Change::Delete(idx),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pop::{Pop, PopFlags};
    use crate::store::StoreChange;

    /// The 32,676-update limit: the version after it is refused and the
    /// database is left as it was.
    #[test]
    fn no_update_past_32676() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Store::create(tmp.path(), "Max").unwrap();
        let pop = |access: &str| Pop {
            index: 1,
            country: 1,
            region: 0,
            name: "A".into(),
            area_code: "425".into(),
            access_number: access.into(),
            min_speed: 0,
            max_speed: 0,
            reserved: 0,
            flags: PopFlags(0),
            dun_name: String::new(),
        };
        s.apply(&[StoreChange::Add(pop("5550001"))], true).unwrap();
        publish(&mut s, &mut |_, _, _| {}).unwrap();
        // Pretend the phone book has been updated 32,676 times.
        s.write(|tx| {
            tx.execute(
                "INSERT INTO versions(version, full, at, pops, changes) VALUES (?1, 1, 0, 1, 1)",
                [MAX_VERSION],
            )?;
            Ok(())
        })
        .unwrap();
        s.apply(&[StoreChange::Upsert(pop("5550002"))], false)
            .unwrap();
        assert!(matches!(
            publish(&mut s, &mut |_, _, _| {}),
            Err(PublishError::TooManyUpdates)
        ));
        assert_eq!(s.version().unwrap(), MAX_VERSION);
        assert!(!s.book_dir().join((MAX_VERSION + 1).to_string()).exists());
    }
}
