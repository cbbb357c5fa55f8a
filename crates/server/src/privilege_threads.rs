//! Gives every thread of the process the same reduced credentials.
//!
//! Why this is needed: on Linux, credentials belong to threads, not to the
//! process. capset(2) and prctl(2) (`PR_CAPBSET_DROP`, `PR_SET_KEEPCAPS`,
//! `PR_CAP_AMBIENT`, `PR_SET_NO_NEW_PRIVS`) change only the calling thread
//! (capabilities(7) "Thread capability sets"; prctl(2)). glibc makes
//! setresuid/setresgid/setgroups act on every thread (its "setxid"
//! broadcast), but that alone would be wrong here: the other threads have
//! no `PR_SET_KEEPCAPS`, so the uid change would empty their permitted
//! sets (capabilities(7) "Effect of user ID changes on capabilities") and
//! the tokio workers that add routes would lose CAP_NET_ADMIN.
//!
//! When `ras server` drops, it runs inside a multi-thread tokio runtime
//! whose workers and blocking threads already exist and hold sockets,
//! timers and sessions, so the drop cannot wait for a moment with one
//! thread (option (b) would mean starting everything on one thread and
//! moving it into a new runtime, which tokio's I/O registrations do not
//! allow). Instead, like libcap's psx, each thread does the whole change
//! itself: the caller first, then every other thread in a handler for a
//! real-time signal sent with tgkill(2). Every step uses the raw system
//! call, never glibc's broadcasting wrappers, so each thread keeps its
//! capabilities across its own uid change. The caller then reads
//! `/proc/self/task/*/status` until every thread (including ones created
//! meanwhile) shows the target credentials, signalling any that does not.
//!
//! The handler only makes async-signal-safe system calls and atomic
//! stores (signal-safety(7)) and restores `errno`. It stays installed: a
//! late duplicate signal then finds the work done instead of the default
//! action for a real-time signal, which would end the process.

use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::proc_status::{all_threads, ThreadCredentials};

/// The ids a thread takes (started as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the user's, from getgrouplist(3)).
    pub groups: Vec<u32>,
}

/// The credentials every thread is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadPlan {
    /// Ids to take; `None` when the process is not root (systemd started
    /// it as the user): the capability sets are only trimmed.
    pub ids: Option<Ids>,
    /// The capabilities kept, as a bit set (1 << CAP_*): permitted,
    /// effective, inheritable and ambient become exactly this; with `ids`
    /// the bounding set too.
    pub keep: u64,
    /// The highest capability number the kernel knows
    /// (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: u32,
}

impl ThreadPlan {
    /// Whether a thread's credentials are what this plan gives.
    pub fn reached_by(&self, c: &ThreadCredentials) -> bool {
        let ids = match &self.ids {
            Some(ids) => {
                let mut groups = ids.groups.clone();
                groups.sort_unstable();
                groups.dedup();
                c.uid == [ids.uid; 4]
                    && c.gid == [ids.gid; 4]
                    && c.groups == groups
                    && c.cap_bounding == self.keep
            }
            None => true,
        };
        ids && c.cap_permitted == self.keep
            && c.cap_effective == self.keep
            && c.cap_inheritable == self.keep
            && c.cap_ambient == self.keep
            && c.no_new_privs
    }
}

/// Why the drop failed.
#[derive(Debug, thiserror::Error)]
pub enum ThreadDropError {
    #[error("dropping privileges: {step} failed: {source}")]
    Step {
        step: Step,
        #[source]
        source: io::Error,
    },
    #[error("dropping privileges: thread {tid} did not take the new credentials within {} s", DEADLINE.as_secs())]
    Stuck { tid: u32 },
    #[error("dropping privileges: reading /proc/self/task: {0}")]
    Proc(#[source] io::Error),
    #[error("dropping privileges: installing the handler for signal {signal}: {source}")]
    Handler {
        signal: i32,
        #[source]
        source: io::Error,
    },
    #[error("dropping privileges: already done once in this process")]
    AlreadyDone,
}

/// One step of the per-thread change, for the error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    BoundingSet = 1,
    KeepCaps,
    Groups,
    Gid,
    Uid,
    Capset,
    Ambient,
    NoNewPrivs,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::BoundingSet => "prctl(PR_CAPBSET_DROP)",
            Step::KeepCaps => "prctl(PR_SET_KEEPCAPS)",
            Step::Groups => "setgroups",
            Step::Gid => "setresgid",
            Step::Uid => "setresuid",
            Step::Capset => "capset",
            Step::Ambient => "prctl(PR_CAP_AMBIENT)",
            Step::NoNewPrivs => "prctl(PR_SET_NO_NEW_PRIVS)",
        })
    }
}

impl Step {
    fn from_code(code: u64) -> Step {
        match code {
            1 => Step::BoundingSet,
            2 => Step::KeepCaps,
            3 => Step::Groups,
            4 => Step::Gid,
            5 => Step::Uid,
            6 => Step::Capset,
            7 => Step::Ambient,
            _ => Step::NoNewPrivs,
        }
    }
}

/// How long the other threads get to take the credentials.
const DEADLINE: Duration = Duration::from_secs(5);
/// A thread not done after this is signalled again.
const RESIGNAL: Duration = Duration::from_millis(100);

/// The plan the signal handler applies (set once per process).
static PLAN: OnceLock<ThreadPlan> = OnceLock::new();
/// The first failure in a handler: step << 32 | errno; 0 when none.
static HANDLER_FAILURE: AtomicU64 = AtomicU64::new(0);

/// Gives every thread of the process the credentials of `plan`; returns
/// when `/proc/self/task/*/status` shows them for all.
pub fn apply_to_every_thread(plan: ThreadPlan) -> Result<(), ThreadDropError> {
    PLAN.set(plan).map_err(|_| ThreadDropError::AlreadyDone)?;
    let plan = PLAN.get().ok_or(ThreadDropError::AlreadyDone)?;
    // This thread first: a refusal (not root after all, a seccomp filter)
    // is seen here with its errno, before any other thread has changed.
    apply_to_this_thread(plan).map_err(|(step, errno)| ThreadDropError::Step {
        step,
        source: io::Error::from_raw_os_error(errno),
    })?;
    let signal = install_handler()?;
    let pid = std::process::id();
    let started = Instant::now();
    let mut signalled: std::collections::HashMap<u32, Instant> = Default::default();
    loop {
        let failure = HANDLER_FAILURE.load(Ordering::SeqCst);
        if failure != 0 {
            return Err(ThreadDropError::Step {
                step: Step::from_code(failure >> 32),
                source: io::Error::from_raw_os_error((failure & 0xffff_ffff) as i32),
            });
        }
        let threads = all_threads(pid).map_err(ThreadDropError::Proc)?;
        let pending: Vec<u32> = threads
            .iter()
            .filter(|(_, c)| !plan.reached_by(c))
            .map(|(tid, _)| *tid)
            .collect();
        let Some(&first) = pending.first() else {
            return Ok(());
        };
        if started.elapsed() > DEADLINE {
            return Err(ThreadDropError::Stuck { tid: first });
        }
        for tid in pending {
            let due = signalled.get(&tid).is_none_or(|t| t.elapsed() > RESIGNAL);
            if due {
                signal_thread(pid, tid, signal);
                signalled.insert(tid, Instant::now());
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Raw system call numbers of the 32-bit-id calls (on 32-bit x86 and Arm
/// the plain numbers take 16-bit ids).
#[cfg(any(target_arch = "x86", target_arch = "arm"))]
mod nr {
    pub use libc::{
        SYS_setgroups32 as SETGROUPS, SYS_setresgid32 as SETRESGID, SYS_setresuid32 as SETRESUID,
    };
}
#[cfg(not(any(target_arch = "x86", target_arch = "arm")))]
mod nr {
    pub use libc::{
        SYS_setgroups as SETGROUPS, SYS_setresgid as SETRESGID, SYS_setresuid as SETRESUID,
    };
}

/// `_LINUX_CAPABILITY_VERSION_3` (linux/capability.h): 64-bit sets in two
/// 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `Ok` for a system call's non-negative return, else the step and errno.
fn checked(rc: libc::c_long, step: Step) -> Result<libc::c_long, (Step, i32)> {
    if rc < 0 {
        Err((step, errno()))
    } else {
        Ok(rc)
    }
}

fn prctl(
    option: libc::c_int,
    arg: libc::c_ulong,
    arg2: libc::c_ulong,
    step: Step,
) -> Result<libc::c_long, (Step, i32)> {
    // SAFETY: prctl with integer arguments only; it reads or changes
    // this thread's attributes and touches no memory of ours.
    let rc = unsafe { libc::prctl(option, arg, arg2, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    checked(libc::c_long::from(rc), step)
}

/// Whether this thread already has `ids` (a thread cloned from one that
/// had changed): its real, effective and saved uid and gid.
fn has_ids(ids: &Ids) -> bool {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid/getresgid write three ids through the pointers,
    // which point at our locals.
    let uid_ok =
        unsafe { libc::getresuid(&mut r, &mut e, &mut s) } == 0 && [r, e, s] == [ids.uid; 3];
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: as above.
    let gid_ok =
        unsafe { libc::getresgid(&mut r, &mut e, &mut s) } == 0 && [r, e, s] == [ids.gid; 3];
    uid_ok && gid_ok
}

/// The whole change for the calling thread. Async-signal-safe: system
/// calls only, no allocation, no locks.
fn apply_to_this_thread(plan: &ThreadPlan) -> Result<(), (Step, i32)> {
    if let Some(ids) = plan.ids.as_ref().filter(|ids| !has_ids(ids)) {
        // prctl(2) PR_CAPBSET_DROP needs CAP_SETPCAP, which goes with the
        // uid change below: drop the bounding set first. Removing a
        // capability from it does not remove it from the permitted set
        // (capabilities(7) "Capability bounding set").
        for cap in 0..=plan.last_cap {
            let kept = cap < 64 && plan.keep & (1u64 << cap) != 0;
            let held = prctl(libc::PR_CAPBSET_READ, cap.into(), 0, Step::BoundingSet)? == 1;
            if !kept && held {
                prctl(libc::PR_CAPBSET_DROP, cap.into(), 0, Step::BoundingSet)?;
            }
        }
        // capabilities(7) "Effect of user ID changes on capabilities": with
        // the keep-capabilities flag, a uid change from 0 clears only the
        // effective set; the permitted set is trimmed by capset below.
        prctl(libc::PR_SET_KEEPCAPS, 1, 0, Step::KeepCaps)?;
        // SAFETY: setgroups reads `len` gids from the Vec's buffer, which
        // lives in the static plan and is not changed while this runs.
        let rc = unsafe { libc::syscall(nr::SETGROUPS, ids.groups.len(), ids.groups.as_ptr()) };
        checked(rc, Step::Groups)?;
        // SAFETY: integer arguments only; this thread's gids.
        let rc = unsafe { libc::syscall(nr::SETRESGID, ids.gid, ids.gid, ids.gid) };
        checked(rc, Step::Gid)?;
        // SAFETY: integer arguments only; this thread's uids (not glibc's
        // setresuid, which would change every thread, see the module doc).
        let rc = unsafe { libc::syscall(nr::SETRESUID, ids.uid, ids.uid, ids.uid) };
        checked(rc, Step::Uid)?;
        prctl(libc::PR_SET_KEEPCAPS, 0, 0, Step::KeepCaps)?;
    }
    // capset(2): permitted may only shrink; effective and inheritable
    // within it. Inheritable and ambient hold the kept capabilities so
    // that the `ip` commands the server runs for routes (netdev) get
    // CAP_NET_ADMIN across execve (capabilities(7) "Transformation of
    // capabilities during execve()": P'(permitted) includes P'(ambient)).
    let half = |shift: u32| (plan.keep >> shift) as u32;
    let data = [
        CapData {
            effective: half(0),
            permitted: half(0),
            inheritable: half(0),
        },
        CapData {
            effective: half(32),
            permitted: half(32),
            inheritable: half(32),
        },
    ];
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    // SAFETY: capset reads the header and two data structs, laid out as
    // linux/capability.h declares them for version 3; pid 0 is this thread.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_capset,
            &mut header as *mut CapHeader,
            data.as_ptr(),
        )
    };
    checked(rc, Step::Capset)?;
    // prctl(2) PR_CAP_AMBIENT: a capability may be raised only when it is
    // permitted and inheritable, which capset above made so.
    prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
        0,
        Step::Ambient,
    )?;
    for cap in 0..64u32 {
        if plan.keep & (1u64 << cap) != 0 {
            prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                cap.into(),
                Step::Ambient,
            )?;
        }
    }
    // prctl(2) PR_SET_NO_NEW_PRIVS: execve can never add privileges again
    // (set-user-ID files, file capabilities).
    prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, Step::NoNewPrivs)?;
    Ok(())
}

/// The signal the other threads are asked with: a real-time signal near
/// the top of the range, which neither glibc (it takes the lowest ones)
/// nor tokio uses.
fn drop_signal() -> libc::c_int {
    libc::SIGRTMAX() - 2
}

extern "C" fn on_drop_signal(_signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; saving
    // and restoring it keeps the interrupted code's errno intact.
    let saved = unsafe { *libc::__errno_location() };
    if let Some(plan) = PLAN.get() {
        if let Err((step, errno)) = apply_to_this_thread(plan) {
            let code = ((step as u64) << 32) | u64::from(errno as u32);
            let _ = HANDLER_FAILURE.compare_exchange(0, code, Ordering::SeqCst, Ordering::SeqCst);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved };
}

fn install_handler() -> Result<libc::c_int, ThreadDropError> {
    let signal = drop_signal();
    // SAFETY: a zeroed sigaction is a valid "no flags, empty mask" value;
    // the handler is an extern "C" fn that lives as long as the program.
    // SA_RESTART: system calls the signal interrupts are restarted, so no
    // thread sees EINTR because of the drop.
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_drop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(signal, &action, std::ptr::null_mut())
    };
    if rc != 0 {
        return Err(ThreadDropError::Handler {
            signal,
            source: io::Error::last_os_error(),
        });
    }
    Ok(signal)
}

fn signal_thread(pid: u32, tid: u32, signal: libc::c_int) {
    // SAFETY: integer arguments only. A thread that has ended meanwhile
    // gives ESRCH, which is harmless: it no longer needs dropping.
    let _ = unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, signal) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc_status::{CAP_NET_ADMIN, CAP_NET_RAW};

    const NET: u64 = (1 << CAP_NET_ADMIN) | (1 << CAP_NET_RAW);

    fn dropped() -> ThreadCredentials {
        ThreadCredentials {
            uid: [65534; 4],
            gid: [65534; 4],
            groups: vec![65534],
            cap_inheritable: NET,
            cap_permitted: NET,
            cap_effective: NET,
            cap_bounding: NET,
            cap_ambient: NET,
            no_new_privs: true,
        }
    }

    fn plan(ids: bool) -> ThreadPlan {
        ThreadPlan {
            ids: ids.then(|| Ids {
                uid: 65534,
                gid: 65534,
                groups: vec![65534],
            }),
            keep: NET,
            last_cap: 40,
        }
    }

    #[test]
    fn a_dropped_thread_is_recognised() {
        assert!(plan(true).reached_by(&dropped()));
    }

    #[test]
    fn any_leftover_privilege_means_not_done() {
        let p = plan(true);
        let mut root = dropped();
        root.uid = [0, 65534, 65534, 65534];
        assert!(!p.reached_by(&root));
        let mut wide = dropped();
        wide.cap_bounding = u64::MAX >> 23;
        assert!(!p.reached_by(&wide));
        let mut effective = dropped();
        effective.cap_effective |= 1 << 21; // CAP_SYS_ADMIN
        assert!(!p.reached_by(&effective));
        let mut groups = dropped();
        groups.groups = vec![0, 65534];
        assert!(!p.reached_by(&groups));
        let mut nnp = dropped();
        nnp.no_new_privs = false;
        assert!(!p.reached_by(&nnp));
    }

    #[test]
    fn started_as_the_user_only_the_sets_are_compared() {
        // systemd's CapabilityBoundingSet is left as systemd set it.
        let mut c = dropped();
        c.cap_bounding = NET | (1 << 10);
        c.uid = [998; 4];
        assert!(plan(false).reached_by(&c));
        c.cap_permitted |= 1 << 10;
        assert!(!plan(false).reached_by(&c));
    }
}
