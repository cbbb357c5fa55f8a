//! RADIUS accounting (RFC 2866) with a durable spool.
//!
//! Every record (Start, Interim-Update, Stop) is first written to
//! `accounting.db` in the state directory, then sent, oldest first, one at a
//! time, and deleted only when the server acknowledged it. A RADIUS outage
//! or a restart of `ras server` therefore loses nothing: records wait in the
//! spool and go out in order when a server answers again, each with an
//! Acct-Delay-Time (RFC 2866 §5.2) saying how long it waited.
//!
//! When the spool cannot be written (the state directory's disk is full),
//! the session goes on: its records wait in memory, in order behind those
//! of the spool (at most [`MAX_HELD`]), are sent from there if the spool
//! stays unwritable, and move into the spool as soon as it takes writes
//! again. Each kind of failed write is logged at most once every
//! [`REPORT_EVERY`], naming the file and the error. SQLite rolls a failed
//! write back, so the records already spooled stay intact. A delivered
//! record whose delete fails is not sent again by this process (it is
//! deleted later); after a restart it is sent once more (delivery is at
//! least once, as for a record whose acknowledgement was lost).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use radius::dict::{attr, AcctStatusType};
use radius::{Attribute, Outcome, Request};
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::Notify;

use crate::radius_io::RadiusHandle;

/// The spool could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: accounting spool: {source}", path.display())]
pub struct SpoolError {
    pub path: std::path::PathBuf,
    #[source]
    pub source: rusqlite::Error,
}

/// One record waiting to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpooledRecord {
    pub seq: i64,
    /// Seconds since the epoch when the event happened.
    pub created: u64,
    pub status: AcctStatusType,
    pub session_id: String,
    pub attributes: Vec<Attribute>,
}

/// The on-disk queue of accounting records.
pub struct Spool {
    db: Mutex<Connection>,
    path: std::path::PathBuf,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Attributes as stored: type, length, value, like on the wire.
fn encode_attributes(attrs: &[Attribute]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in attrs {
        out.push(a.typ);
        out.push(a.value.len().min(253) as u8);
        out.extend_from_slice(&a.value[..a.value.len().min(253)]);
    }
    out
}

fn decode_attributes(mut bytes: &[u8]) -> Vec<Attribute> {
    let mut out = Vec::new();
    while bytes.len() >= 2 {
        let len = usize::from(bytes[1]);
        if bytes.len() < 2 + len {
            break;
        }
        out.push(Attribute::new(bytes[0], bytes[2..2 + len].to_vec()));
        bytes = &bytes[2 + len..];
    }
    out
}

impl Spool {
    /// Opens (creating) the spool at `path`.
    pub fn open(path: &Path) -> Result<Spool, SpoolError> {
        let err = |source| SpoolError {
            path: path.to_owned(),
            source,
        };
        let db = Connection::open(path).map_err(err)?;
        // WAL with synchronous=NORMAL: a committed record survives a crash
        // of the process (the "server restart"); only a power
        // loss may take the last few.
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;
             CREATE TABLE IF NOT EXISTS spool (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 created INTEGER NOT NULL,
                 status INTEGER NOT NULL,
                 session_id TEXT NOT NULL,
                 attributes BLOB NOT NULL);",
        )
        .map_err(err)?;
        Ok(Spool {
            db: Mutex::new(db),
            path: path.to_owned(),
        })
    }

    fn err(&self, source: rusqlite::Error) -> SpoolError {
        SpoolError {
            path: self.path.clone(),
            source,
        }
    }

    /// Stores a record; returns its sequence number.
    pub fn push(
        &self,
        status: AcctStatusType,
        session_id: &str,
        attributes: &[Attribute],
    ) -> Result<i64, SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.execute(
            "INSERT INTO spool (created, status, session_id, attributes) VALUES (?1, ?2, ?3, ?4)",
            params![
                now_secs() as i64,
                status.to_u32(),
                session_id,
                encode_attributes(attributes)
            ],
        )
        .map_err(|e| self.err(e))?;
        Ok(db.last_insert_rowid())
    }

    /// The oldest record, if any.
    pub fn oldest(&self) -> Result<Option<SpooledRecord>, SpoolError> {
        self.oldest_after(0)
    }

    /// The oldest record after sequence number `after`.
    pub fn oldest_after(&self, after: i64) -> Result<Option<SpooledRecord>, SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.query_row(
            "SELECT seq, created, status, session_id, attributes FROM spool WHERE seq > ?1 ORDER BY seq LIMIT 1",
            params![after],
            |row| {
                let blob: Vec<u8> = row.get(4)?;
                Ok(SpooledRecord {
                    seq: row.get(0)?,
                    created: row.get::<_, i64>(1)?.max(0) as u64,
                    status: AcctStatusType::from_u32(row.get(2)?),
                    session_id: row.get(3)?,
                    attributes: decode_attributes(&blob),
                })
            },
        )
        .optional()
        .map_err(|e| self.err(e))
    }

    /// Removes an acknowledged record.
    pub fn remove(&self, seq: i64) -> Result<(), SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.execute("DELETE FROM spool WHERE seq = ?1", params![seq])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes every record up to `seq` (delivered ones whose delete
    /// failed before).
    pub fn remove_up_to(&self, seq: i64) -> Result<(), SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.execute("DELETE FROM spool WHERE seq <= ?1", params![seq])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// SQLite's own check of the file (`PRAGMA integrity_check`): `Ok`
    /// with "ok", or what it found.
    pub fn integrity(&self) -> Result<String, SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))
    }

    /// The spool's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records waiting.
    pub fn len(&self) -> Result<u64, SpoolError> {
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.query_row("SELECT COUNT(*) FROM spool", [], |r| r.get::<_, i64>(0))
            .map(|n| n.max(0) as u64)
            .map_err(|e| self.err(e))
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> Result<bool, SpoolError> {
        self.len().map(|n| n == 0)
    }
}

/// The request for a spooled record, with the delay it has waited.
pub fn request_for(record: &SpooledRecord, now: u64) -> Request {
    let mut r = Request::accounting(record.status, record.session_id.as_bytes());
    for a in &record.attributes {
        if a.typ != attr::ACCT_DELAY_TIME {
            r = r.with(a.clone());
        }
    }
    let delay = now.saturating_sub(record.created).min(u64::from(u32::MAX)) as u32;
    r.with_delay_time(delay)
}

/// Records held in memory at most while the spool cannot be written
/// (a few hundred bytes each: a few MB).
pub const MAX_HELD: usize = 10_000;

/// A failed write of one kind is logged at most this often.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The error of a spool operation in words: the OS's for a full disk
/// (SQLite reports SQLITE_FULL, not the errno).
pub fn describe(e: &SpoolError) -> String {
    match &e.source {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DiskFull => {
            "No space left on device (SQLite: database or disk is full)".to_owned()
        }
        other => other.to_string(),
    }
}

/// One line per kind of failure per [`REPORT_EVERY`], with how many were
/// not logged in between: a full disk cannot fill the log too.
#[derive(Default)]
struct Reports {
    last: std::collections::HashMap<&'static str, (std::time::Instant, u64)>,
}

impl Reports {
    /// Whether to log now, and how many of this kind were not logged.
    fn due(&mut self, kind: &'static str) -> Option<u64> {
        let now = std::time::Instant::now();
        match self.last.get_mut(kind) {
            Some((at, quiet)) if now.duration_since(*at) < REPORT_EVERY => {
                *quiet += 1;
                None
            }
            Some((at, quiet)) => {
                let n = *quiet;
                *at = now;
                *quiet = 0;
                Some(n)
            }
            None => {
                self.last.insert(kind, (now, 0));
                Some(0)
            }
        }
    }

    fn forget(&mut self, kind: &'static str) -> bool {
        self.last.remove(kind).is_some()
    }
}

/// Records that the spool could not take, oldest first.
#[derive(Default)]
struct Held {
    records: std::collections::VecDeque<SpooledRecord>,
    reports: Reports,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The spool and the task that empties it.
pub struct Accounting {
    spool: Arc<Spool>,
    held: Arc<Mutex<Held>>,
    wake: Arc<Notify>,
    /// The servers' handle, swapped by a reload.
    handle: Arc<arc_swap::ArcSwap<RadiusHandle>>,
}

/// How long to wait before retrying after no server answered: doubling
/// from the first to the last.
const RETRY_FIRST: Duration = Duration::from_secs(2);
const RETRY_MAX: Duration = Duration::from_secs(60);

impl Accounting {
    /// Opens the spool and starts sending through `handle`.
    pub fn start(spool: Spool, handle: RadiusHandle) -> Arc<Accounting> {
        let spool = Arc::new(spool);
        let wake = Arc::new(Notify::new());
        match spool.len() {
            Ok(0) => {}
            Ok(n) => tracing::info!("accounting: {n} record(s) waiting in the spool from before"),
            Err(e) => tracing::error!("{e}"),
        }
        let handle = Arc::new(arc_swap::ArcSwap::from_pointee(handle));
        let held = Arc::new(Mutex::new(Held::default()));
        tokio::spawn(sender(
            spool.clone(),
            held.clone(),
            wake.clone(),
            handle.clone(),
        ));
        Arc::new(Accounting {
            spool,
            held,
            wake,
            handle,
        })
    }

    /// Records still waiting, and those to come, go to `handle`'s servers
    /// (reload.rs); one being sent finishes on the old handle.
    pub fn use_servers(&self, handle: RadiusHandle) {
        self.handle.store(Arc::new(handle));
        self.wake.notify_one();
    }

    /// Stores a record and wakes the sender. A spool that cannot be
    /// written (disk full) is logged at a bounded rate and the record
    /// waits in memory (see the module's comment); the session goes on.
    pub fn record(&self, status: AcctStatusType, session_id: &str, attributes: &[Attribute]) {
        let mut held = lock(&self.held);
        // Behind records already held, to keep the order.
        if held.records.is_empty() {
            match self.spool.push(status, session_id, attributes) {
                Ok(_) => {
                    self.wake.notify_one();
                    return;
                }
                Err(e) => {
                    if let Some(quiet) = held.reports.due("write") {
                        tracing::error!(
                            "cannot write the accounting spool {}: {}; records wait in memory (at most {MAX_HELD}) until it can be written{}",
                            self.spool.path().display(),
                            describe(&e),
                            not_logged(quiet)
                        );
                    }
                }
            }
        }
        if held.records.len() >= MAX_HELD {
            if let Some(quiet) = held.reports.due("lost") {
                tracing::error!(
                    session_id,
                    "accounting record lost: the spool {} cannot be written and {MAX_HELD} records already wait in memory{}",
                    self.spool.path().display(),
                    not_logged(quiet)
                );
            }
            return;
        }
        held.records.push_back(SpooledRecord {
            seq: 0,
            created: now_secs(),
            status,
            session_id: session_id.to_owned(),
            attributes: attributes.to_vec(),
        });
        self.wake.notify_one();
    }

    /// Records waiting in memory because the spool could not take them.
    pub fn held(&self) -> usize {
        lock(&self.held).records.len()
    }

    /// Sends a record that does not belong in the spool (Accounting-On
    /// and -Off, RFC 2866 §5.1) through the current servers, with the
    /// RADIUS client's retransmissions: whether it was acknowledged. Kept
    /// out of the spool so that a server that never acknowledges it
    /// (FreeRADIUS sends no Accounting-Response when a module of its
    /// accounting section fails, as radutmp can for Accounting-On) cannot
    /// hold every session's Start and Stop behind it.
    pub async fn announce(
        &self,
        status: AcctStatusType,
        session_id: &str,
        attributes: &[Attribute],
    ) -> Result<(), String> {
        let record = SpooledRecord {
            seq: 0,
            created: now_secs(),
            status,
            session_id: session_id.to_owned(),
            attributes: attributes.to_vec(),
        };
        let request = request_for(&record, now_secs());
        match self.handle.load_full().request(request).await {
            Ok(answer) if matches!(answer.outcome, Outcome::AccountingAck) => Ok(()),
            Ok(_) => Err("an unexpected reply".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Records still waiting (spool and memory).
    pub fn pending(&self) -> u64 {
        self.spool.len().unwrap_or(0) + self.held() as u64
    }

    /// Waits until the spool is empty, at most `limit`.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.spool.is_empty().unwrap_or(true) && self.held() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn not_logged(quiet: u64) -> String {
    if quiet == 0 {
        String::new()
    } else {
        format!(" ({quiet} more not logged)")
    }
}

/// Moves held records into the spool, oldest first, while it takes them.
fn spool_held(spool: &Spool, held: &Mutex<Held>) {
    let mut held = lock(held);
    let mut moved = 0;
    while let Some(r) = held.records.front() {
        match spool.push(r.status, &r.session_id, &r.attributes) {
            Ok(_) => {
                held.records.pop_front();
                moved += 1;
            }
            Err(_) => break,
        }
    }
    if moved > 0 && held.records.is_empty() && held.reports.forget("write") {
        tracing::info!(
            "the accounting spool {} can be written again: {moved} record(s) moved into it from memory",
            spool.path().display()
        );
    }
}

/// Where the record being sent lives.
enum From {
    Spool(i64),
    Memory,
}

async fn sender(
    spool: Arc<Spool>,
    held: Arc<Mutex<Held>>,
    wake: Arc<Notify>,
    handle: Arc<arc_swap::ArcSwap<RadiusHandle>>,
) {
    let mut retry = RETRY_FIRST;
    // Records up to this one were acknowledged but their delete failed
    // (disk full: even a delete appends to the WAL); not sent again.
    let mut delivered: i64 = 0;
    let mut undeleted = false;
    loop {
        let notified = wake.notified();
        if undeleted && spool.remove_up_to(delivered).is_ok() {
            undeleted = false;
        }
        spool_held(&spool, &held);
        let record = match spool.oldest_after(delivered) {
            Ok(Some(r)) => Some((From::Spool(r.seq), r)),
            Ok(None) => lock(&held)
                .records
                .front()
                .cloned()
                .map(|r| (From::Memory, r)),
            Err(e) => {
                tracing::error!("{e}");
                tokio::time::sleep(RETRY_MAX).await;
                continue;
            }
        };
        let Some((from, record)) = record else {
            // Woken by a new record, or retry the deletes and the move
            // into the spool now and then.
            let _ = tokio::time::timeout(RETRY_MAX, notified).await;
            continue;
        };
        let request = request_for(&record, now_secs());
        let current = handle.load_full();
        match current.request(request).await {
            Ok(answer) if matches!(answer.outcome, Outcome::AccountingAck) => {
                tracing::debug!(session_id = %record.session_id, status = ?record.status, server = %answer.server, "accounting record acknowledged");
                match from {
                    From::Spool(seq) => {
                        if let Err(e) = spool.remove(seq) {
                            delivered = seq;
                            undeleted = true;
                            let mut h = lock(&held);
                            if let Some(quiet) = h.reports.due("delete") {
                                tracing::error!(
                                    "cannot delete a delivered record from the accounting spool {}: {}; deleted later{}",
                                    spool.path().display(),
                                    describe(&e),
                                    not_logged(quiet)
                                );
                            }
                        }
                    }
                    From::Memory => {
                        lock(&held).records.pop_front();
                    }
                }
                retry = RETRY_FIRST;
            }
            Ok(_) => {
                tracing::warn!("accounting: unexpected reply; retrying later");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
            Err(e) => {
                tracing::warn!(
                    waiting = spool.len().unwrap_or(0) + lock(&held).records.len() as u64,
                    "accounting: {e}; records stay in the spool, retrying in {retry:?}"
                );
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(RETRY_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_keeps_order_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounting.db");
        {
            let spool = Spool::open(&path).unwrap();
            spool
                .push(
                    AcctStatusType::Start,
                    "a-1",
                    &[Attribute::new(attr::USER_NAME, b"alice".to_vec())],
                )
                .unwrap();
            spool
                .push(
                    AcctStatusType::Stop,
                    "a-1",
                    &[Attribute::u32(attr::ACCT_INPUT_OCTETS, 7)],
                )
                .unwrap();
        }
        let spool = Spool::open(&path).unwrap();
        assert_eq!(spool.len().unwrap(), 2);
        let first = spool.oldest().unwrap().unwrap();
        assert_eq!(first.status, AcctStatusType::Start);
        assert_eq!(first.attributes[0].value, b"alice");
        spool.remove(first.seq).unwrap();
        let second = spool.oldest().unwrap().unwrap();
        assert_eq!(second.status, AcctStatusType::Stop);
        assert_eq!(second.attributes[0].as_u32(), Some(7));
        spool.remove(second.seq).unwrap();
        assert!(spool.is_empty().unwrap());
    }

    #[test]
    fn a_full_spool_refuses_the_write_in_words_and_keeps_what_it_holds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounting.db");
        let spool = Spool::open(&path).unwrap();
        let attrs = [Attribute::new(attr::USER_NAME, vec![b'a'; 200])];
        spool.push(AcctStatusType::Start, "a-1", &attrs).unwrap();
        // SQLite's page limit gives the SQLITE_FULL a full disk gives.
        {
            let db = spool.db.lock().unwrap();
            let pages: i64 = db.query_row("PRAGMA page_count", [], |r| r.get(0)).unwrap();
            db.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
                .unwrap();
        }
        let mut failed = None;
        for i in 0..1000 {
            if let Err(e) = spool.push(AcctStatusType::Stop, &format!("a-{i}"), &attrs) {
                failed = Some(e);
                break;
            }
        }
        let e = failed.expect("the spool fills up");
        let text = describe(&e);
        assert!(text.starts_with("No space left on device"), "{text}");
        assert!(e.to_string().contains("accounting.db"), "{e}");
        // What was spooled before is intact and in order.
        let first = spool.oldest().unwrap().unwrap();
        assert_eq!(first.session_id, "a-1");
        assert_eq!(first.status, AcctStatusType::Start);
        // A record whose delete failed is skipped, and deleted later.
        let n = spool.len().unwrap();
        let second = spool.oldest_after(first.seq).unwrap();
        assert!(n == 1 || second.is_some());
        spool.remove_up_to(first.seq).unwrap();
        assert_eq!(spool.len().unwrap(), n - 1);
        drop(spool);
        let again = Spool::open(&path).unwrap();
        assert_eq!(again.len().unwrap(), n - 1, "opens cleanly");
        assert_eq!(again.integrity().unwrap(), "ok");
    }

    #[test]
    fn resent_records_carry_their_delay() {
        let record = SpooledRecord {
            seq: 1,
            created: 1000,
            status: AcctStatusType::Stop,
            session_id: "x".into(),
            attributes: vec![Attribute::u32(attr::ACCT_DELAY_TIME, 3)],
        };
        let r = request_for(&record, 1042);
        let delays: Vec<u32> = r
            .attributes()
            .iter()
            .filter(|a| a.typ == attr::ACCT_DELAY_TIME)
            .filter_map(|a| a.as_u32())
            .collect();
        assert_eq!(delays, vec![42]);
    }

    #[test]
    fn truncated_attribute_blob_is_read_up_to_the_damage() {
        let mut blob = encode_attributes(&[Attribute::new(1, b"ab".to_vec())]);
        blob.extend_from_slice(&[2, 10, 1]);
        assert_eq!(decode_attributes(&blob).len(), 1);
    }
}
