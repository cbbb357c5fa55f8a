//! RADIUS accounting (RFC 2866) with a durable spool.
//!
//! Every record (Start, Interim-Update, Stop) is first written to
//! `accounting.db` in the state directory, then sent, oldest first, one at a
//! time, and deleted only when the server acknowledged it. A RADIUS outage
//! or a restart of `ras server` therefore loses nothing: records wait in the
//! spool and go out in order when a server answers again, each with an
//! Acct-Delay-Time (RFC 2866 §5.2) saying how long it waited.

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
        let db = self.db.lock().unwrap_or_else(|e| e.into_inner());
        db.query_row(
            "SELECT seq, created, status, session_id, attributes FROM spool ORDER BY seq LIMIT 1",
            [],
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

/// The spool and the task that empties it.
pub struct Accounting {
    spool: Arc<Spool>,
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
        tokio::spawn(sender(spool.clone(), wake.clone(), handle.clone()));
        Arc::new(Accounting {
            spool,
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
    /// written is logged; the session itself goes on.
    pub fn record(&self, status: AcctStatusType, session_id: &str, attributes: &[Attribute]) {
        match self.spool.push(status, session_id, attributes) {
            Ok(_) => self.wake.notify_one(),
            Err(e) => tracing::error!(session_id, "accounting record lost: {e}"),
        }
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

    /// Records still waiting.
    pub fn pending(&self) -> u64 {
        self.spool.len().unwrap_or(0)
    }

    /// Waits until the spool is empty, at most `limit`.
    pub async fn flush(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            if self.spool.is_empty().unwrap_or(true) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn sender(
    spool: Arc<Spool>,
    wake: Arc<Notify>,
    handle: Arc<arc_swap::ArcSwap<RadiusHandle>>,
) {
    let mut retry = RETRY_FIRST;
    loop {
        let notified = wake.notified();
        let record = match spool.oldest() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("{e}");
                tokio::time::sleep(RETRY_MAX).await;
                continue;
            }
        };
        let Some(record) = record else {
            notified.await;
            continue;
        };
        let request = request_for(&record, now_secs());
        let current = handle.load_full();
        match current.request(request).await {
            Ok(answer) if matches!(answer.outcome, Outcome::AccountingAck) => {
                tracing::debug!(session_id = %record.session_id, status = ?record.status, server = %answer.server, "accounting record acknowledged");
                if let Err(e) = spool.remove(record.seq) {
                    tracing::error!("{e}");
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
                    waiting = spool.len().unwrap_or(0),
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
