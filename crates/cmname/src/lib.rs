//! The one naming rule shared by Connection Manager short service names
//! (`ras profile`) and phone book names (`ras phonebook`, `ras pbs`).
//!
//! A profile's short name and the phone book it ships usually carry the
//! same name, and both become a directory name, a file stem and a URL path
//! or query component (`pb=NAME`), so one rule serves both:
//!
//! * 1 to 8 characters (the seed: "no more than eight characters");
//! * ASCII letters, digits, `_` and `-` only: no space and none of the
//!   seed's symbols (`! , ; * = / \ : ? < > | . & % { } [ ] @ ( ) ` ~`);
//!   `_` and `-` are not in the seed's list, CMAK short names use them, and
//!   they are safe in every file system and unreserved in URLs
//!   (RFC 3986 §2.3), so they need no escaping anywhere;
//! * not all digits (the seed).
//!
//! Seed: "A phone book name must contain no more than eight characters,
//! cannot consist of all digits, and must not contain a space or any
//! symbols." (Connection Manager seed, "performance limitations and
//! requirements").

/// The longest name.
pub const MAX_LEN: usize = 8;

/// The rule in one line, for help texts and error messages.
pub const RULE: &str = "1 to 8 characters: letters A-Z a-z, digits, '_' and '-', not all digits";

/// Why a name is refused. Every message states the whole rule, so the
/// user learns it from the first mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// No characters.
    #[error("the name is empty (a name has {RULE})")]
    Empty,
    /// More than [`MAX_LEN`] characters.
    #[error("{0:?} is longer than 8 characters (a name has {RULE})")]
    TooLong(String),
    /// Only digits.
    #[error("{0:?} is all digits (a name has {RULE})")]
    AllDigits(String),
    /// A space or a symbol.
    #[error("{0:?} has a space or a symbol (a name has {RULE})")]
    Symbol(String),
}

/// Checks a short service name or phone book name against the rule.
pub fn check(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(NameError::Symbol(name.to_owned()));
    }
    if name.len() > MAX_LEN {
        return Err(NameError::TooLong(name.to_owned()));
    }
    if name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NameError::AllDigits(name.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule() {
        for ok in ["Corp1", "ABCDEFGH", "c-vpn_1", "a", "_", "1a"] {
            assert_eq!(check(ok), Ok(()), "{ok}");
        }
        assert_eq!(check(""), Err(NameError::Empty));
        assert_eq!(
            check("ABCDEFGHI"),
            Err(NameError::TooLong("ABCDEFGHI".into()))
        );
        assert_eq!(check("1234"), Err(NameError::AllDigits("1234".into())));
        // The seed's symbols, a space and non-ASCII.
        for bad in [
            "my pb", "a!", "a,b", "a;", "a*", "a=", "a/", "a\\", "a:", "a?", "a<", "a>", "a|",
            "a.", "a&", "a%", "a{", "a}", "a[", "a]", "a@", "a(", "a)", "a`", "a~", "é",
        ] {
            assert!(matches!(check(bad), Err(NameError::Symbol(_))), "{bad}");
        }
    }
}
