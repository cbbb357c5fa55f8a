//! The local user store: the durable list of dial-in users that the
//! server authenticates against when RADIUS is not used.
//!
//! It lives in the SQLite database `ras.db` in the state directory, the
//! one embedded database meant to hold all durable state
//! (ARCHITECTURE.md). SQLite rather than a single-process store because
//! `ras user add` must work while `ras server` runs: the database is opened
//! in WAL mode with a busy timeout, so the CLI and the daemon share it.
//!
//! What is stored per user: the name as typed (looked up without regard to
//! case, as Windows does), the NT hash of the password (MD4 of its UTF-16LE
//! form, RFC 2759 §8.3: all that MS-CHAPv2, EAP-MSCHAPv2 and PAP need),
//! enabled or not, and a list of groups for remote access policies.
//!
//! Reversible encryption: CHAP-MD5 needs the cleartext password on the
//! server. RRAS offers this as "store password using reversible
//! encryption", a per-user trade-off; so does this store: only users added
//! with `reversible` also have their password stored, encrypted with
//! AES-256-GCM under a 32-byte key in `reversible.key` (mode 0600, created
//! with the first such user), authenticated together with the user's name
//! so a ciphertext cannot be moved to another user. A copy of `ras.db`
//! alone (a backup, say) does not reveal those passwords; a copy of the
//! whole state directory does.
//!
//! Every change is one SQLite transaction: a failed write leaves the store
//! as it was.

use std::path::PathBuf;
use std::sync::Mutex;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ppp::auth::Secret;
use rand::{Rng, RngCore};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use zeroize::Zeroizing;

use crate::state::{StateDir, StateError};

/// The database file's name in the state directory.
pub const DB_FILE: &str = "ras.db";
/// The reversible-encryption key file's name in the state directory.
pub const KEY_FILE: &str = "reversible.key";
/// The user created on first start when the store is empty.
pub const DEMO_USER: &str = "demo";
/// Longest user name, in characters (RADIUS User-Name holds 253 bytes).
pub const MAX_NAME_CHARS: usize = 253;
/// Longest password, in characters (RFC 2759 §8.3: up to 256 Unicode
/// characters).
pub const MAX_PASSWORD_CHARS: usize = 256;

const SCHEMA_VERSION: i32 = 1;

/// Why a user-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UserStoreError {
    /// The state directory or the key file.
    #[error(transparent)]
    State(#[from] StateError),
    /// The database.
    #[error("user store {}: {source}", path.display())]
    Database {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// The database was written by a newer `ras`.
    #[error("user store {}: schema version {found} is newer than this program's {SCHEMA_VERSION}", path.display())]
    NewerSchema { path: PathBuf, found: i32 },
    /// No such user.
    #[error("no user named `{0}`")]
    NotFound(String),
    /// A user of that name (in any letter case) exists.
    #[error("a user named `{0}` already exists")]
    AlreadyExists(String),
    /// The name is empty, too long, or has control characters or
    /// surrounding spaces.
    #[error("invalid user name: {0}")]
    InvalidName(String),
    /// A group name is empty, too long, or has control characters.
    #[error("invalid group name: {0}")]
    InvalidGroup(String),
    /// The password is empty, too long, or contains NUL.
    #[error("invalid password: {0}")]
    InvalidPassword(&'static str),
    /// A stored record is damaged (or the key file was replaced).
    #[error(
        "user `{0}`: stored record is damaged or the reversible-encryption key does not match"
    )]
    Corrupt(String),
}

/// What to create a user with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Also store the password with reversible encryption (for CHAP-MD5).
    pub reversible: bool,
    /// Groups, for remote access policies.
    pub groups: Vec<String>,
    /// Whether the account may dial in.
    pub enabled: bool,
}

impl Default for NewUser {
    fn default() -> Self {
        NewUser {
            reversible: false,
            groups: Vec::new(),
            enabled: true,
        }
    }
}

/// A user, without secrets (for listing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The name as it was added.
    pub name: String,
    /// Whether the account may dial in.
    pub enabled: bool,
    /// Whether the password is stored with reversible encryption.
    pub reversible: bool,
    /// Groups, sorted.
    pub groups: Vec<String>,
}

/// A user as the authenticator needs it.
#[derive(Debug)]
pub struct AuthRecord {
    /// Name, flags and groups.
    pub info: UserInfo,
    /// The cleartext password for reversible users (works with every
    /// method, CHAP-MD5 included), else the NT hash (MS-CHAPv2, EAP, PAP).
    /// The caller must still refuse a disabled account (`info.enabled`).
    pub secret: Secret,
}

/// The user store. Thread-safe; each call is short and synchronous (a few
/// SQLite statements), so async callers may call it directly or through
/// `spawn_blocking` if the disk is slow.
#[derive(Debug)]
pub struct UserStore {
    state: StateDir,
    db_path: PathBuf,
    conn: Mutex<Connection>,
}

impl UserStore {
    /// Opens (or creates) `ras.db` in the state directory.
    pub fn open(state: &StateDir) -> Result<UserStore, UserStoreError> {
        let db_path = state.file(DB_FILE);
        if !db_path.exists() {
            // Create the file with mode 0600 before SQLite does (SQLite
            // would use the umask); its -wal and -shm files copy this mode.
            state.write_private(DB_FILE, b"")?;
        }
        let db = |source| UserStoreError::Database {
            path: db_path.clone(),
            source,
        };
        let conn = Connection::open(&db_path).map_err(db)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", true).map_err(db)?;
        // The query planner stability guarantee: plans do not depend on the
        // values bound. Without it the bundled SQLite (built with
        // SQLITE_ENABLE_STAT4) marks a statement whose parameter meets a
        // non-unique index prefix (`user_groups` by `key`, which every
        // login's lookup joins) to be compiled again whenever that
        // parameter is bound anew (sqlite3_prepare_v2's documentation, its
        // third point): ≈ 2% of the server's CPU in a burst of SSTP
        // connects. The tables are small and their plans obvious.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(db)?;
        let store = UserStore {
            state: state.clone(),
            db_path: db_path.clone(),
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), UserStoreError> {
        self.write(|tx| {
            let version: i32 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
            if version > SCHEMA_VERSION {
                return Err(Failure::Store(UserStoreError::NewerSchema {
                    path: self.db_path.clone(),
                    found: version,
                }));
            }
            if version < 1 {
                tx.execute_batch(
                    "CREATE TABLE users (
                         key        TEXT PRIMARY KEY,   -- lower-cased name
                         name       TEXT NOT NULL,      -- as added
                         nt_hash    BLOB NOT NULL CHECK (length(nt_hash) = 16),
                         enabled    INTEGER NOT NULL,
                         reversible BLOB,               -- nonce || AES-256-GCM(password) || tag
                         created    INTEGER NOT NULL    -- Unix seconds
                     );
                     CREATE TABLE user_groups (
                         key   TEXT NOT NULL REFERENCES users(key) ON DELETE CASCADE,
                         grp   TEXT NOT NULL,
                         PRIMARY KEY (key, grp)
                     );
                     PRAGMA user_version = 1;",
                )?;
            }
            Ok(())
        })
    }

    /// Adds a user. Fails with [`UserStoreError::AlreadyExists`] if the name
    /// is taken in any letter case.
    pub fn add(&self, name: &str, password: &str, new: &NewUser) -> Result<(), UserStoreError> {
        check_name(name)?;
        check_password(password)?;
        for g in &new.groups {
            check_group(g)?;
        }
        let key = key_of(name);
        let sealed = if new.reversible {
            Some(self.seal(&key, password)?)
        } else {
            None
        };
        let hash = Zeroizing::new(ppp::crypto::mschap::nt_password_hash(password));
        self.write(|tx| {
            if exists(tx, &key)? {
                return Err(Failure::Store(UserStoreError::AlreadyExists(name.into())));
            }
            tx.execute(
                "INSERT INTO users (key, name, nt_hash, enabled, reversible, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![key, name, &hash[..], new.enabled, sealed, now_unix()],
            )?;
            insert_groups(tx, &key, &new.groups)?;
            Ok(())
        })
    }

    /// Removes a user.
    pub fn remove(&self, name: &str) -> Result<(), UserStoreError> {
        let key = key_of(name);
        self.write(|tx| {
            let n = tx.execute("DELETE FROM users WHERE key = ?1", [&key])?;
            if n == 0 {
                return Err(Failure::Store(UserStoreError::NotFound(name.into())));
            }
            Ok(())
        })
    }

    /// Changes a user's password. `reversible`: `Some(true)` also stores
    /// it reversibly, `Some(false)` stops doing so, `None` keeps the
    /// user's current choice.
    pub fn set_password(
        &self,
        name: &str,
        password: &str,
        reversible: Option<bool>,
    ) -> Result<(), UserStoreError> {
        check_password(password)?;
        let key = key_of(name);
        let current = self
            .get(name)?
            .ok_or_else(|| UserStoreError::NotFound(name.into()))?;
        let sealed = if reversible.unwrap_or(current.reversible) {
            Some(self.seal(&key, password)?)
        } else {
            None
        };
        let hash = Zeroizing::new(ppp::crypto::mschap::nt_password_hash(password));
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET nt_hash = ?2, reversible = ?3 WHERE key = ?1",
                params![key, &hash[..], sealed],
            )?;
            if n == 0 {
                return Err(Failure::Store(UserStoreError::NotFound(name.into())));
            }
            Ok(())
        })
    }

    /// Enables or disables a user.
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), UserStoreError> {
        let key = key_of(name);
        self.write(|tx| {
            let n = tx.execute(
                "UPDATE users SET enabled = ?2 WHERE key = ?1",
                params![key, enabled],
            )?;
            if n == 0 {
                return Err(Failure::Store(UserStoreError::NotFound(name.into())));
            }
            Ok(())
        })
    }

    /// Replaces a user's groups.
    pub fn set_groups(&self, name: &str, groups: &[String]) -> Result<(), UserStoreError> {
        for g in groups {
            check_group(g)?;
        }
        let key = key_of(name);
        self.write(|tx| {
            if !exists(tx, &key)? {
                return Err(Failure::Store(UserStoreError::NotFound(name.into())));
            }
            tx.execute("DELETE FROM user_groups WHERE key = ?1", [&key])?;
            insert_groups(tx, &key, groups)?;
            Ok(())
        })
    }

    /// One user, without secrets.
    pub fn get(&self, name: &str) -> Result<Option<UserInfo>, UserStoreError> {
        Ok(self.lookup_row(name)?.map(|(info, _, _)| info))
    }

    /// All users, sorted by name (case-insensitively).
    pub fn list(&self) -> Result<Vec<UserInfo>, UserStoreError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT u.key, u.name, u.enabled, u.reversible IS NOT NULL,
                        (SELECT group_concat(grp, char(10)) FROM
                            (SELECT grp FROM user_groups g WHERE g.key = u.key ORDER BY grp))
                 FROM users u ORDER BY u.key",
            )?;
            let rows = stmt.query_map([], |r| {
                let groups: Option<String> = r.get(4)?;
                Ok(UserInfo {
                    name: r.get(1)?,
                    enabled: r.get(2)?,
                    reversible: r.get(3)?,
                    groups: groups
                        .map(|g| g.split('\n').map(str::to_owned).collect())
                        .unwrap_or_default(),
                })
            })?;
            rows.collect()
        })
    }

    /// How many users there are.
    pub fn count(&self) -> Result<u64, UserStoreError> {
        let n: i64 =
            self.read(|conn| conn.query_row("SELECT count(*) FROM users", [], |r| r.get(0)))?;
        Ok(n.max(0) as u64)
    }

    /// A user with their secret, for authentication. `None` if there is no
    /// such user. Disabled users are returned too (`info.enabled` false) so
    /// the caller can give the right reason.
    pub fn lookup(&self, name: &str) -> Result<Option<AuthRecord>, UserStoreError> {
        let Some((info, hash, sealed)) = self.lookup_row(name)? else {
            return Ok(None);
        };
        let secret = match sealed {
            Some(sealed) => {
                Secret::Password(self.open_sealed(&key_of(name), &sealed, &info.name)?)
            }
            None => {
                let hash: [u8; 16] = hash
                    .as_slice()
                    .try_into()
                    .map_err(|_| UserStoreError::Corrupt(info.name.clone()))?;
                Secret::NtHash(Zeroizing::new(hash))
            }
        };
        Ok(Some(AuthRecord { info, secret }))
    }

    /// On first start: if the store has no users at all, creates `demo`
    /// with a random password and returns that password, to be shown to
    /// the operator once. `None` when the store already had users.
    pub fn ensure_demo_user(&self) -> Result<Option<Zeroizing<String>>, UserStoreError> {
        let password = random_password(16);
        let hash = Zeroizing::new(ppp::crypto::mschap::nt_password_hash(&password));
        let created = self.write(|tx| {
            let n: i64 = tx.query_row("SELECT count(*) FROM users", [], |r| r.get(0))?;
            if n > 0 {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO users (key, name, nt_hash, enabled, reversible, created)
                 VALUES (?1, ?1, ?2, 1, NULL, ?3)",
                params![DEMO_USER, &hash[..], now_unix()],
            )?;
            Ok(true)
        })?;
        Ok(created.then_some(password))
    }

    fn lookup_row(&self, name: &str) -> Result<Option<StoredRow>, UserStoreError> {
        let key = key_of(name);
        // Every login of every tunnel comes here: the statement is parsed
        // once per connection (rusqlite's statement cache), not per lookup
        // (≈ 2% of the IKEv2 responder's CPU in a handshake burst), and it
        // is one statement, so one read transaction and one set of WAL
        // locks per login rather than two.
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(LOOKUP_SQL)?;
            let mut rows = stmt.query([&key])?;
            let Some(first) = rows.next()? else {
                return Ok(None);
            };
            let name: String = first.get(0)?;
            let enabled: bool = first.get(1)?;
            let hash = Zeroizing::new(first.get::<_, Vec<u8>>(2)?);
            let sealed: Option<Vec<u8>> = first.get(3)?;
            // One row per group, or one row with no group for a user in
            // none (the LEFT JOIN).
            let mut groups: Vec<String> = first.get::<_, Option<String>>(4)?.into_iter().collect();
            while let Some(row) = rows.next()? {
                groups.extend(row.get::<_, Option<String>>(4)?);
            }
            let info = UserInfo {
                name,
                enabled,
                reversible: sealed.is_some(),
                groups,
            };
            Ok(Some((info, hash, sealed)))
        })
    }

    fn cipher(&self) -> Result<LessSafeKey, UserStoreError> {
        let key = self.state.read_or_create_secret(KEY_FILE, 32)?;
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("32-byte key for AES-256");
        Ok(LessSafeKey::new(unbound))
    }

    /// nonce || ciphertext || tag, with the user key as associated data.
    fn seal(&self, key: &str, password: &str) -> Result<Vec<u8>, UserStoreError> {
        let cipher = self.cipher()?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut buf = Zeroizing::new(password.as_bytes().to_vec());
        cipher
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_bytes()),
                &mut *buf,
            )
            .expect("AES-GCM sealing of a short buffer");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(out)
    }

    fn open_sealed(
        &self,
        key: &str,
        sealed: &[u8],
        name: &str,
    ) -> Result<Zeroizing<String>, UserStoreError> {
        let corrupt = || UserStoreError::Corrupt(name.to_owned());
        if sealed.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut buf = Zeroizing::new(ct.to_vec());
        let plain = self
            .cipher()?
            .open_in_place(nonce, Aad::from(key.as_bytes()), &mut buf)
            .map_err(|_| corrupt())?;
        let s = std::str::from_utf8(plain).map_err(|_| corrupt())?;
        Ok(Zeroizing::new(s.to_owned()))
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic in another thread mid-call cannot leave SQLite in a bad
        // state (an open transaction is rolled back when dropped).
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn db_err(&self, source: rusqlite::Error) -> UserStoreError {
        UserStoreError::Database {
            path: self.db_path.clone(),
            source,
        }
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, UserStoreError> {
        f(&self.conn()).map_err(|e| self.db_err(e))
    }

    /// Runs `f` in one IMMEDIATE transaction (the write lock is taken at the
    /// start, so a concurrent writer waits rather than failing half-way);
    /// commits only if `f` succeeds. On any error, nothing is changed.
    fn write<T>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, UserStoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| self.db_err(e))?;
        match f(&tx) {
            Ok(v) => {
                tx.commit().map_err(|e| self.db_err(e))?;
                Ok(v)
            }
            // Dropping `tx` rolls back.
            Err(Failure::Db(e)) => Err(self.db_err(e)),
            Err(Failure::Store(e)) => Err(e),
        }
    }
}

/// A user and their groups, by the user's key.
const LOOKUP_SQL: &str = "SELECT u.name, u.enabled, u.nt_hash, u.reversible, g.grp
     FROM users u LEFT JOIN user_groups g ON g.key = u.key
     WHERE u.key = ?1 ORDER BY g.grp";

/// A user's row: info, NT hash, sealed reversible password.
type StoredRow = (UserInfo, Zeroizing<Vec<u8>>, Option<Vec<u8>>);

/// An error inside a write transaction: either SQLite's, or ours.
enum Failure {
    Db(rusqlite::Error),
    Store(UserStoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Db(e)
    }
}

fn exists(tx: &Transaction<'_>, key: &str) -> rusqlite::Result<bool> {
    tx.query_row("SELECT 1 FROM users WHERE key = ?1", [key], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
}

fn insert_groups(tx: &Transaction<'_>, key: &str, groups: &[String]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare("INSERT OR IGNORE INTO user_groups (key, grp) VALUES (?1, ?2)")?;
    for g in groups {
        stmt.execute([key, g])?;
    }
    Ok(())
}

/// The lookup key: names are compared without regard to case, as Windows
/// compares account names.
fn key_of(name: &str) -> String {
    name.to_lowercase()
}

fn check_name(name: &str) -> Result<(), UserStoreError> {
    let bad = |why: &str| Err(UserStoreError::InvalidName(format!("{name:?}: {why}")));
    if name.is_empty() {
        return bad("empty");
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return bad("too long");
    }
    if name.chars().any(char::is_control) {
        return bad("contains control characters");
    }
    if name.trim() != name {
        return bad("begins or ends with a space");
    }
    Ok(())
}

fn check_group(group: &str) -> Result<(), UserStoreError> {
    if group.is_empty()
        || group.chars().count() > 256
        || group.chars().any(char::is_control)
        || group.trim() != group
    {
        return Err(UserStoreError::InvalidGroup(format!("{group:?}")));
    }
    Ok(())
}

fn check_password(password: &str) -> Result<(), UserStoreError> {
    if password.is_empty() {
        return Err(UserStoreError::InvalidPassword("empty"));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(UserStoreError::InvalidPassword(
            "longer than 256 characters (the MS-CHAPv2 limit)",
        ));
    }
    if password.contains('\0') {
        return Err(UserStoreError::InvalidPassword("contains NUL"));
    }
    Ok(())
}

/// A random password of `len` characters from an alphabet without look-alikes
/// (no 0/O, 1/l/I), easy to read off a terminal and type.
pub fn random_password(len: usize) -> Zeroizing<String> {
    const ALPHABET: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    let mut s = Zeroizing::new(String::with_capacity(len));
    for _ in 0..len {
        s.push(ALPHABET[rng.gen_range(0..ALPHABET.len())] as char);
    }
    s
}

fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn store() -> (tempfile::TempDir, UserStore) {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let s = UserStore::open(&state).unwrap();
        (tmp, s)
    }

    fn nt(p: &str) -> [u8; 16] {
        ppp::crypto::mschap::nt_password_hash(p)
    }

    #[test]
    fn add_lookup_list_remove() {
        let (_tmp, s) = store();
        s.add(
            "Alice",
            "secret one",
            &NewUser {
                groups: vec!["vpn".into(), "admins".into()],
                ..NewUser::default()
            },
        )
        .unwrap();
        s.add("bob", "pw", &NewUser::default()).unwrap();
        let rec = s.lookup("alice").unwrap().unwrap();
        assert_eq!(rec.info.name, "Alice");
        assert!(rec.info.enabled && !rec.info.reversible);
        assert_eq!(rec.info.groups, ["admins", "vpn"]);
        match rec.secret {
            Secret::NtHash(h) => assert_eq!(*h, nt("secret one")),
            other => panic!("{other:?}"),
        }
        let names: Vec<_> = s.list().unwrap().into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["Alice", "bob"]);
        assert_eq!(s.count().unwrap(), 2);
        s.remove("ALICE").unwrap();
        assert!(s.lookup("alice").unwrap().is_none());
        assert!(matches!(
            s.remove("alice"),
            Err(UserStoreError::NotFound(_))
        ));
        assert_eq!(s.count().unwrap(), 1);
    }

    #[test]
    fn the_lookup_statement_is_compiled_once() {
        let (_tmp, s) = store();
        let member = NewUser {
            groups: vec!["vpn".into(), "admins".into()],
            ..NewUser::default()
        };
        s.add("alice", "pw one", &member).unwrap();
        s.add("bob", "pw two", &NewUser::default()).unwrap();
        for name in ["alice", "bob", "carol", "ALICE", "bob", "alice"] {
            s.lookup(name).unwrap();
        }
        assert_eq!(
            s.lookup("bob").unwrap().unwrap().info.groups,
            Vec::<String>::new()
        );
        assert_eq!(
            s.lookup("alice").unwrap().unwrap().info.groups,
            ["admins", "vpn"]
        );
        let conn = s.conn();
        let stmt = conn.prepare_cached(LOOKUP_SQL).unwrap();
        assert_eq!(stmt.get_status(rusqlite::StatementStatus::RePrepare), 0);
        // The statement ran: the counter reads the cached one.
        assert!(stmt.get_status(rusqlite::StatementStatus::VmStep) > 0);
    }

    #[test]
    fn nt_hash_matches_rfc_2759_vector() {
        // RFC 2759 §9.2: password "clientPass".
        let (_tmp, s) = store();
        s.add("User", "clientPass", &NewUser::default()).unwrap();
        let Secret::NtHash(h) = s.lookup("user").unwrap().unwrap().secret else {
            panic!()
        };
        assert_eq!(hex::encode(*h), "44ebba8d5312b8d611474411f56989ae");
    }

    #[test]
    fn duplicate_in_any_case_is_refused_and_changes_nothing() {
        let (_tmp, s) = store();
        s.add("carol", "one", &NewUser::default()).unwrap();
        let e = s.add("CAROL", "two", &NewUser::default()).unwrap_err();
        assert!(matches!(e, UserStoreError::AlreadyExists(_)));
        let Secret::NtHash(h) = s.lookup("carol").unwrap().unwrap().secret else {
            panic!()
        };
        assert_eq!(*h, nt("one"));
        assert_eq!(s.list().unwrap()[0].name, "carol");
    }

    #[test]
    fn failed_transaction_leaves_store_unchanged() {
        let (_tmp, s) = store();
        s.add("dave", "pw", &NewUser::default()).unwrap();
        let r: Result<(), _> = s.write(|tx| {
            tx.execute("DELETE FROM users", [])?;
            tx.execute(
                "INSERT INTO users (key, name, nt_hash, enabled, created) VALUES ('x','x',x'00',1,0)",
                [],
            )?; // fails the CHECK on the hash length
            Ok(())
        });
        assert!(matches!(r, Err(UserStoreError::Database { .. })));
        assert_eq!(s.count().unwrap(), 1);
        assert!(s.lookup("dave").unwrap().is_some());
        // A refusal of ours half-way rolls back too.
        let r: Result<(), _> = s.write(|tx| {
            tx.execute("DELETE FROM users", [])?;
            Err(Failure::Store(UserStoreError::NotFound("x".into())))
        });
        assert!(r.is_err());
        assert_eq!(s.count().unwrap(), 1);
    }

    #[test]
    fn invalid_input_is_refused_before_writing() {
        let (_tmp, s) = store();
        assert!(matches!(
            s.add("", "pw", &NewUser::default()),
            Err(UserStoreError::InvalidName(_))
        ));
        assert!(matches!(
            s.add(" eve", "pw", &NewUser::default()),
            Err(UserStoreError::InvalidName(_))
        ));
        assert!(matches!(
            s.add("eve", "", &NewUser::default()),
            Err(UserStoreError::InvalidPassword(_))
        ));
        assert!(matches!(
            s.add("eve", &"x".repeat(257), &NewUser::default()),
            Err(UserStoreError::InvalidPassword(_))
        ));
        let bad_group = NewUser {
            groups: vec!["ok".into(), "".into()],
            ..NewUser::default()
        };
        assert!(matches!(
            s.add("eve", "pw", &bad_group),
            Err(UserStoreError::InvalidGroup(_))
        ));
        assert_eq!(s.count().unwrap(), 0);
        s.add("eve", "pw", &NewUser::default()).unwrap();
        assert!(s.set_groups("eve", &["a\nb".into()]).is_err());
        assert!(s.get("eve").unwrap().unwrap().groups.is_empty());
    }

    #[test]
    fn reversible_password_round_trips_and_is_encrypted() {
        let (tmp, s) = store();
        s.add(
            "Frank",
            "chap secret ü",
            &NewUser {
                reversible: true,
                ..NewUser::default()
            },
        )
        .unwrap();
        let rec = s.lookup("frank").unwrap().unwrap();
        assert!(rec.info.reversible);
        match &rec.secret {
            Secret::Password(p) => assert_eq!(p.as_str(), "chap secret ü"),
            other => panic!("{other:?}"),
        }
        assert_eq!(*rec.secret.nt_hash(), nt("chap secret ü"));
        let key = tmp.path().join(KEY_FILE);
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // The cleartext is nowhere in the database files.
        drop(s);
        for entry in std::fs::read_dir(tmp.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            assert!(!bytes.windows(11).any(|w| w == b"chap secret"));
        }
        // A different key cannot open it.
        std::fs::write(&key, [7u8; 32]).unwrap();
        let s = UserStore::open(&StateDir::open(tmp.path()).unwrap()).unwrap();
        assert!(matches!(s.lookup("frank"), Err(UserStoreError::Corrupt(_))));
    }

    #[test]
    fn non_reversible_users_need_no_key_file() {
        let (tmp, s) = store();
        s.add("gina", "pw", &NewUser::default()).unwrap();
        s.lookup("gina").unwrap().unwrap();
        assert!(!tmp.path().join(KEY_FILE).exists());
    }

    #[test]
    fn set_password_enabled_and_groups() {
        let (_tmp, s) = store();
        s.add("hal", "old", &NewUser::default()).unwrap();
        s.set_password("HAL", "new", None).unwrap();
        assert_eq!(
            *s.lookup("hal").unwrap().unwrap().secret.nt_hash(),
            nt("new")
        );
        s.set_password("hal", "newer", Some(true)).unwrap();
        let rec = s.lookup("hal").unwrap().unwrap();
        assert!(rec.info.reversible);
        assert!(matches!(rec.secret, Secret::Password(_)));
        s.set_password("hal", "newest", None).unwrap();
        assert!(s.get("hal").unwrap().unwrap().reversible);
        s.set_password("hal", "newest", Some(false)).unwrap();
        assert!(!s.get("hal").unwrap().unwrap().reversible);
        s.set_enabled("hal", false).unwrap();
        assert!(!s.lookup("hal").unwrap().unwrap().info.enabled);
        s.set_groups("hal", &["b".into(), "a".into(), "a".into()])
            .unwrap();
        assert_eq!(s.get("hal").unwrap().unwrap().groups, ["a", "b"]);
        assert!(matches!(
            s.set_password("nobody", "x", None),
            Err(UserStoreError::NotFound(_))
        ));
        assert!(matches!(
            s.set_enabled("nobody", true),
            Err(UserStoreError::NotFound(_))
        ));
        assert!(matches!(
            s.set_groups("nobody", &[]),
            Err(UserStoreError::NotFound(_))
        ));
    }

    #[test]
    fn demo_user_only_when_empty() {
        let (_tmp, s) = store();
        let pw = s.ensure_demo_user().unwrap().expect("created");
        assert_eq!(pw.len(), 16);
        let rec = s.lookup("demo").unwrap().unwrap();
        assert_eq!(*rec.secret.nt_hash(), nt(&pw));
        assert!(s.ensure_demo_user().unwrap().is_none());
        s.remove("demo").unwrap();
        s.add("someone", "pw", &NewUser::default()).unwrap();
        assert!(s.ensure_demo_user().unwrap().is_none());
    }

    #[test]
    fn survives_reopen_and_shares_with_a_second_handle() {
        let tmp = tempfile::tempdir().unwrap();
        let state = StateDir::open(tmp.path()).unwrap();
        let a = UserStore::open(&state).unwrap();
        let b = UserStore::open(&state).unwrap();
        a.add("ivy", "pw", &NewUser::default()).unwrap();
        assert!(b.lookup("ivy").unwrap().is_some());
        drop((a, b));
        let c = UserStore::open(&state).unwrap();
        assert_eq!(c.count().unwrap(), 1);
        let mode = std::fs::metadata(state.file(DB_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn random_passwords_differ() {
        assert_ne!(*random_password(16), *random_password(16));
    }
}
