//! aws-lc seeds each thread's random generator from jitter entropy the
//! first time that thread asks for random bytes (the `jent_*` functions in
//! a `perf` profile): about 10–30 ms of CPU per thread here. A thread that
//! will make key exchanges calls [`seed_this_thread`] when it starts, so
//! that the first clients after a (re)start do not wait for it.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// Seed aws-lc's random generator for the calling thread now. A failure
/// is not reported here: the thread's first real use fails the same way
/// and reports it where it matters.
pub fn seed_this_thread() {
    let mut byte = [0u8; 1];
    let _ = SystemRandom::new().fill(&mut byte);
}
