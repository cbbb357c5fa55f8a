//! How a session ended, as its driver returns it.

use session::{EndReason, SessionStats};

/// How a session ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Why (mapped to RFC 2866 Acct-Terminate-Cause by the server).
    pub reason: EndReason,
    /// What it carried.
    pub stats: SessionStats,
    /// The link came up at some point.
    pub was_up: bool,
}
