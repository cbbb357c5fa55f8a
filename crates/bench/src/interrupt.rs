//! Ctrl-C or SIGTERM during a benchmark: stop the children, remove the
//! network namespaces and the temporary directory this run made, and exit,
//! instead of leaving them behind for the next run to trip over.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether an interrupt arrived (long loops check it to stop early).
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Installs the handler for a run whose namespaces are `prefix-*` and
/// whose files are under `dir`.
pub fn clean_up_on_signal(prefix: &str, dir: &Path) {
    let (prefix, dir): (String, PathBuf) = (prefix.to_owned(), dir.to_owned());
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        });
        REQUESTED.store(true, Ordering::Relaxed);
        eprintln!("ras-bench: interrupted; stopping the server and removing {prefix}-* namespaces");
        // Our children (the server, iperf3, FreeRADIUS) by parent id.
        let _ = Command::new("pkill")
            .args(["-TERM", "-P", &std::process::id().to_string()])
            .status();
        std::thread::sleep(std::time::Duration::from_secs(2));
        let _ = Command::new("pkill")
            .args(["-KILL", "-P", &std::process::id().to_string()])
            .status();
        for role in ["srv", "cli1", "cli2", "lan"] {
            let _ = Command::new("ip")
                .args(["netns", "delete", &format!("{prefix}-{role}")])
                .output();
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::process::exit(130);
    });
}
