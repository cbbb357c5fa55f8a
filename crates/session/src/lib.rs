//! What every tunnel's session shares, as plain data and pure functions (no
//! tokio, no sockets, no clock): SSTP, PPTP and dial-in sessions in either
//! role end for one of the reasons of [`EndReason`], which the server maps
//! to RFC 2866 Acct-Terminate-Cause for accounting and prints in words.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod end_reason;

pub use end_reason::{EndReason, LostCarrier, TerminateCause};
