//! Durable file writes: write, fsync, rename, fsync the directory. A crash
//! at any point leaves either the old or the new content, never a mix.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// fsyncs a directory so that renames inside it survive a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `data` to `path` atomically (temporary file in the same
/// directory, fsync, rename, fsync the directory).
pub fn write_atomic(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    sync_dir(dir)
}

/// Writes the files into a new directory `dir` atomically: they are
/// written and fsynced in `dir.tmp-PID`, which is then renamed to `dir`
/// (replacing a leftover `dir` from an earlier crash).
pub fn write_dir_atomic(dir: &Path, files: &[(&str, &[u8])]) -> std::io::Result<()> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let base = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{base}.tmp-{}", std::process::id()));
    if tmp.exists() {
        fs::remove_dir_all(&tmp)?;
    }
    fs::create_dir_all(&tmp)?;
    for (name, data) in files {
        let mut f = File::create(tmp.join(name))?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    sync_dir(&tmp)?;
    if dir.exists() {
        fs::remove_dir_all(dir)?;
    }
    fs::rename(&tmp, dir)?;
    sync_dir(parent)
}
