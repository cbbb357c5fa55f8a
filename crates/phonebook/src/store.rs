//! The administrator's database of one phone book: one SQLite file
//! (`NAME.db`), every change in one transaction, so a refused import or a
//! crash leaves it as it was.
//!
//! Tables: `pops` (every POP with its in-service status), `regions`,
//! `history` (PBA's change history), `pending` (POP indexes changed since
//! the last publish: the 6,000-per-post rule counts them), `published`
//! (the `.pbk` lines of the last published version, to diff against),
//! `version_changes` (the changes each recent version made: deltas are
//! built from them), `versions` (what each publish made), `meta`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension, Transaction};

use crate::field_error::FieldError;
use crate::history::{history_line, Action, HistoryEntry};
use crate::limits::{MAX_CHANGES_PER_POST, MAX_FIRST_IMPORT, MAX_POPS};
use crate::name::{check_name, NameError};
use crate::pbk::check_pop;
use crate::pop::{Pop, PopFlags};

/// Why a store operation failed. Nothing was changed when it fails.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Field(#[from] FieldError),
    #[error("phone book database {}: {source}", path.display())]
    Db {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("phone book {0:?} already exists")]
    Exists(String),
    #[error("phone book {0:?} does not exist (create it first)")]
    Missing(String),
    #[error("POP {0} does not exist")]
    NoSuchPop(u32),
    #[error("POP {0} already exists (use edit)")]
    PopExists(u32),
    #[error("{0}")]
    Limit(String),
}

/// A row of the `versions` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRecord {
    pub version: u32,
    pub full: bool,
    pub at: i64,
    pub pops: usize,
    pub changes: usize,
}

/// An open phone book.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    name: String,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pops(idx INTEGER PRIMARY KEY, country INTEGER NOT NULL, region INTEGER NOT NULL,
  name TEXT NOT NULL, area TEXT NOT NULL, access TEXT NOT NULL, min_speed INTEGER NOT NULL,
  max_speed INTEGER NOT NULL, reserved INTEGER NOT NULL, flags INTEGER NOT NULL, dun TEXT NOT NULL,
  in_service INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS regions(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS history(seq INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pending(idx INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS published(idx INTEGER PRIMARY KEY, line TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS version_changes(version INTEGER NOT NULL, idx INTEGER NOT NULL, line TEXT,
  PRIMARY KEY(version, idx));
CREATE TABLE IF NOT EXISTS versions(version INTEGER PRIMARY KEY, full INTEGER NOT NULL, at INTEGER NOT NULL,
  pops INTEGER NOT NULL, changes INTEGER NOT NULL);
";

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn row_to_pop(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Pop, bool)> {
    Ok((
        Pop {
            index: r.get(0)?,
            country: r.get(1)?,
            region: r.get(2)?,
            name: r.get(3)?,
            area_code: r.get(4)?,
            access_number: r.get(5)?,
            min_speed: r.get(6)?,
            max_speed: r.get(7)?,
            reserved: r.get(8)?,
            flags: PopFlags(r.get(9)?),
            dun_name: r.get(10)?,
        },
        r.get::<_, i64>(11)? != 0,
    ))
}

const POP_COLUMNS: &str =
    "idx, country, region, name, area, access, min_speed, max_speed, reserved, flags, dun, in_service";

impl Store {
    /// The phone book's directory under `root`.
    pub fn dir(root: &Path, name: &str) -> PathBuf {
        root.join(name)
    }

    /// Creates a new, empty phone book in `root/NAME/NAME.db`.
    pub fn create(root: &Path, name: &str) -> Result<Store, StoreError> {
        check_name(name)?;
        let dir = Self::dir(root, name);
        let path = dir.join(format!("{name}.db"));
        if path.exists() {
            return Err(StoreError::Exists(name.to_owned()));
        }
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut store = Self::open_path(&path, name)?;
        store.write(|tx| {
            tx.execute("INSERT INTO meta(key, value) VALUES ('name', ?1)", [name])?;
            Ok(())
        })?;
        Ok(store)
    }

    /// Opens an existing phone book.
    pub fn open(root: &Path, name: &str) -> Result<Store, StoreError> {
        check_name(name)?;
        let path = Self::dir(root, name).join(format!("{name}.db"));
        if !path.exists() {
            return Err(StoreError::Missing(name.to_owned()));
        }
        Self::open_path(&path, name)
    }

    fn open_path(path: &Path, name: &str) -> Result<Store, StoreError> {
        let db = |source| StoreError::Db {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(db)?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(db)?;
        conn.execute_batch(SCHEMA).map_err(db)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The directory holding the database and the numbered post folders.
    pub fn book_dir(&self) -> &Path {
        self.path
            .parent()
            .expect("the database is inside the phone book directory")
    }

    fn db_err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in one transaction; commits only if it succeeds.
    pub(crate) fn write<T>(
        &mut self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let db = |source| StoreError::Db {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        let out = f(&tx)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// The last published version (0 before the first publish).
    pub fn version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row("SELECT COALESCE(MAX(version), 0) FROM versions", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.db_err(e))
    }

    /// The last Full version (0 before the first publish).
    pub fn last_full_version(&self) -> Result<u32, StoreError> {
        self.conn
            .query_row(
                "SELECT COALESCE(MAX(version), 0) FROM versions WHERE full = 1",
                [],
                |r| r.get(0),
            )
            .map_err(|e| self.db_err(e))
    }

    /// Every publish, oldest first.
    pub fn versions(&self) -> Result<Vec<VersionRecord>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT version, full, at, pops, changes FROM versions ORDER BY version")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok(VersionRecord {
                    version: r.get(0)?,
                    full: r.get::<_, i64>(1)? != 0,
                    at: r.get(2)?,
                    pops: r.get::<_, i64>(3)? as usize,
                    changes: r.get::<_, i64>(4)? as usize,
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }

    /// Every POP with its in-service status, by index.
    pub fn pops(&self) -> Result<Vec<(Pop, bool)>, StoreError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {POP_COLUMNS} FROM pops ORDER BY idx"))
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], row_to_pop)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }

    /// The region names, in Region Id order.
    pub fn regions(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT name FROM regions ORDER BY id")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }

    /// The history in PBA's format, oldest first.
    pub fn history(&self) -> Result<Vec<String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT line FROM history ORDER BY seq")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }

    /// Replaces the region list. Existing POPs must still point at
    /// existing regions.
    pub fn set_regions(&mut self, names: &[String]) -> Result<(), StoreError> {
        let pops = self.pops()?;
        if let Some((p, _)) = pops.iter().find(|(p, _)| p.region as usize > names.len()) {
            return Err(StoreError::Limit(format!(
                "POP {} uses region {}, but the new list has {} regions",
                p.index,
                p.region,
                names.len()
            )));
        }
        self.write(|tx| {
            tx.execute("DELETE FROM regions", [])?;
            for (i, n) in names.iter().enumerate() {
                tx.execute(
                    "INSERT INTO regions(id, name) VALUES (?1, ?2)",
                    params![i as i64 + 1, n],
                )?;
            }
            Ok(())
        })
    }

    /// Applies a batch of changes atomically, enforcing every limit: all
    /// or nothing. `first_import` says the batch is an import file (the
    /// 32,000-POP rule before the first publish applies to it).
    pub fn apply(&mut self, changes: &[StoreChange], is_import: bool) -> Result<(), StoreError> {
        let version = self.version()?;
        if is_import && version == 0 && changes.len() > MAX_FIRST_IMPORT {
            return Err(StoreError::Limit(format!(
                "an import before the first post holds at most {MAX_FIRST_IMPORT} POPs; this one has {}",
                changes.len()
            )));
        }
        let region_count = self.regions()?.len();
        let at = now();
        self.write(|tx| {
            for c in changes {
                let idx = c.index();
                let existing: Option<(Pop, bool)> = tx
                    .query_row(&format!("SELECT {POP_COLUMNS} FROM pops WHERE idx = ?1"), [idx], row_to_pop)
                    .optional()?;
                let (action, pop, in_service) = match (c, existing) {
                    (StoreChange::Add(p), None) | (StoreChange::Upsert(p), None) => {
                        (Action::Add, p.clone(), true)
                    }
                    (StoreChange::Add(_), Some(_)) => return Err(StoreError::PopExists(idx)),
                    (StoreChange::Upsert(p), Some((_, s))) => (Action::Edit, p.clone(), s),
                    (StoreChange::Edit { pop, in_service }, Some((_, s))) => {
                        (Action::Edit, pop.clone(), in_service.unwrap_or(s))
                    }
                    (StoreChange::Delete(_), Some((p, s))) => (Action::Delete, p, s),
                    (StoreChange::Edit { .. } | StoreChange::Delete(_), None) => {
                        return Err(StoreError::NoSuchPop(idx))
                    }
                };
                if action == Action::Delete {
                    tx.execute("DELETE FROM pops WHERE idx = ?1", [idx])?;
                } else {
                    check_pop(&pop, region_count, &format!("POP {idx}"), 0)?;
                    tx.execute(
                        &format!("INSERT OR REPLACE INTO pops({POP_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"),
                        params![pop.index, pop.country, pop.region, pop.name, pop.area_code, pop.access_number,
                            pop.min_speed, pop.max_speed, pop.reserved, pop.flags.0, pop.dun_name, in_service as i64],
                    )?;
                }
                tx.execute("INSERT OR IGNORE INTO pending(idx) VALUES (?1)", [idx])?;
                let line = history_line(&HistoryEntry { at, action, pop, in_service });
                tx.execute("INSERT INTO history(line) VALUES (?1)", [line])?;
            }
            let total: i64 = tx.query_row("SELECT COUNT(*) FROM pops", [], |r| r.get(0))?;
            if total as usize > MAX_POPS {
                return Err(StoreError::Limit(format!(
                    "a phone book holds at most {MAX_POPS} POPs; this would make {total}"
                )));
            }
            if version > 0 {
                let pending: i64 = tx.query_row("SELECT COUNT(*) FROM pending", [], |r| r.get(0))?;
                if pending as usize > MAX_CHANGES_PER_POST {
                    return Err(StoreError::Limit(format!(
                        "after the first post, at most {MAX_CHANGES_PER_POST} POPs may be added, edited or \
                         deleted per post; this would make {pending} (publish and post first)"
                    )));
                }
            }
            Ok(())
        })
    }

    /// The in-service POPs' `.pbk` lines by index (what a publish would
    /// publish).
    pub(crate) fn in_service_lines(&self) -> Result<BTreeMap<u32, String>, StoreError> {
        Ok(self
            .pops()?
            .into_iter()
            .filter(|(_, s)| *s)
            .map(|(p, _)| (p.index, crate::pbk::pbk_line(&p)))
            .collect())
    }

    pub(crate) fn published_lines(&self) -> Result<BTreeMap<u32, String>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT idx, line FROM published")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect::<Result<BTreeMap<u32, String>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }

    pub(crate) fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(|e| self.db_err(e))
    }

    /// Changes recorded for versions in `from..=to`: (version, index, line
    /// or None for a delete), ascending.
    pub(crate) fn version_changes(
        &self,
        from: u32,
        to: u32,
    ) -> Result<Vec<(u32, u32, Option<String>)>, StoreError> {
        let mut st = self
            .conn
            .prepare("SELECT version, idx, line FROM version_changes WHERE version BETWEEN ?1 AND ?2 ORDER BY version, idx")
            .map_err(|e| self.db_err(e))?;
        let rows = st
            .query_map([from, to], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.db_err(e));
        rows
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(source: rusqlite::Error) -> Self {
        StoreError::Db {
            path: PathBuf::new(),
            source,
        }
    }
}

/// One change to the POPs.
#[derive(Debug, Clone)]
pub enum StoreChange {
    /// Add a POP (refused if its index exists).
    Add(Pop),
    /// Add or replace (imports).
    Upsert(Pop),
    /// Replace an existing POP, optionally changing its in-service status.
    Edit { pop: Pop, in_service: Option<bool> },
    /// Remove a POP.
    Delete(u32),
}

impl StoreChange {
    fn index(&self) -> u32 {
        match self {
            StoreChange::Add(p) | StoreChange::Upsert(p) | StoreChange::Edit { pop: p, .. } => {
                p.index
            }
            StoreChange::Delete(i) => *i,
        }
    }
}
