//! Connection Manager service profiles: the `.cms`/`.cmp`/`.inf` files in the Windows
//! INI dialect (lossless), the typed model the dialer acts on, the profile builder (the
//! CMAK role), and signed installable packages.
//!
//! Entry points: [`load`] a profile from a directory, `.cms` or `.cmp`;
//! [`model::ServiceProfile`] is what it gives; [`save_user_settings`] writes the user's
//! logon values back into the `.cmp`. See `docs/CONNECTION-MANAGER.md`.

pub mod error;
pub mod ini;
pub mod load;
pub mod model;
pub mod parse;
pub mod text;

pub use error::ProfileError;
pub use load::{load, save_user_settings};
pub use model::ServiceProfile;
pub mod build;
pub mod endpoint;
pub mod package;
pub mod signing;
pub mod store;
pub mod tar;
