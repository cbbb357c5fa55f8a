//! Phone book names: the one rule shared with profile short names
//! (`cmname`, which cites the seed). Only ASCII letters, digits, `_` and
//! `-` are let through, which also keeps the name safe as a file name and
//! a URL path or query component.

pub use cmname::{NameError, MAX_LEN as MAX_NAME_LEN};

/// Checks a phone book name.
pub fn check_name(name: &str) -> Result<(), NameError> {
    cmname::check(name)
}
