//! Connection Point Services phone books (MS-CPSP) and their tools.
//!
//! * Formats: [`pbk`] (POP lines), [`pbr`] (regions), [`version_file`],
//!   [`history`] (PBA's change history), [`import`] (PBA's import format),
//!   [`delta`] (our delta format), [`cab`] (Microsoft cabinets),
//!   [`answer`] (the service's answer), [`bundle`] (a post).
//! * The administrator: [`store`] (one SQLite database per phone book),
//!   [`publish`] (versions, Full/Delta cabinets), [`post`] (upload).
//! * The client: [`update`] (the post-connect update action) and
//!   [`select`] (choosing a dial-up POP).
//!
//! docs/PHONEBOOK.md describes the formats that are ours.

pub mod answer;
pub mod bundle;
pub mod cab;
pub mod delta;
pub mod field_error;
pub mod fsutil;
pub mod history;
pub mod http;
pub mod import;
pub mod limits;
pub mod name;
pub mod pbk;
pub mod pbr;
pub mod pop;
pub mod post;
pub mod publish;
pub mod select;
pub mod store;
pub mod trust;
pub mod update;
pub mod version_file;

pub use field_error::FieldError;
pub use pop::{Pop, PopFlags, PopProperties};
pub use trust::Trust;
pub use update::{update_profile_phonebook, UpdateError, UpdateOutcome};
