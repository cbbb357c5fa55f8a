//! The Connection Manager runtime behind `ras dial PROFILE`: the nine
//! custom-action points in the seed's order, the seed's command-line
//! macros, programs and shared-library actions, the three connection
//! kinds (direct, dial-up over a serial line, double-dial), redial, the
//! built-in phone-book update, a log file and a state file per profile.
//!
//! The protocol work is the `client` crate's (SSTP, PPTP, PPP over a
//! serial line); the profile is the `profile` crate's typed model.

pub mod action;
pub mod command_line;
pub mod engine;
pub mod macros;
pub mod remembered;
pub mod status;

pub use engine::{DialError, Dialer, Ending, HostOptions, Logon, Progress};
