//! A small file system that only a test sees: the calling thread gets its
//! own mount namespace (mounts propagate neither to nor from the host),
//! and a tmpfs of a given size is mounted there. Processes the thread
//! starts afterwards (`ip netns exec ...` included) inherit the namespace
//! and see the tmpfs; the host never does, and the mount disappears with
//! the last process that uses the namespace. For faults such as a full
//! state directory.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

/// Moves the calling thread into a new private mount namespace and mounts
/// a tmpfs of `size` bytes (mode 0700) at `path` (created if missing).
pub fn private_tmpfs(path: &Path, size: u64) -> Result<(), String> {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
    // Private from the root down: without it the tmpfs below would
    // propagate to the host's namespace (systemd makes / shared).
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making / private: {e}"))?;
    mount(
        Some("tmpfs"),
        path,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some(format!("size={size},mode=0700").as_str()),
    )
    .map_err(|e| format!("tmpfs on {}: {e}", path.display()))
}

/// Writes a file at `path` until the file system is full; returns how
/// many bytes it took.
pub fn fill(path: &Path) -> Result<u64, String> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let block = [0x5au8; 4096];
    let mut written = 0u64;
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    // Whatever a partial block left.
    while let Ok(n) = f.write(&block[..1]) {
        if n == 0 {
            break;
        }
        written += 1;
    }
    Ok(written)
}
