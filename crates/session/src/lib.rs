//! What every tunnel's session shares, without I/O (no tokio, no sockets,
//! no clock): the [`SessionCore`] that owns a PPP link and asks its owner
//! the questions of [`HookRequest`] (authenticate, network, up, down), in
//! either role and under any tunnel (SSTP, PPTP, a serial line); and why a
//! session ended, as an [`EndReason`] the server maps to RFC 2866
//! Acct-Terminate-Cause for accounting and prints in words.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod auth_watch;
mod core;
mod end_reason;
mod link_text;
mod local_answer;
pub mod login_log;
mod questions;
mod source_filter;
mod stats;

pub use crate::core::{Role, SessionCore, SessionEvent};
pub use end_reason::{EndReason, LostCarrier, TerminateCause};
pub use link_text::link_up_text;
pub use questions::{AuthAnswer, HookAnswer, HookRequest, IgnoredAnswer, SessionInfo};
pub use source_filter::{describe_source, SourceFilter};
pub use stats::SessionStats;
