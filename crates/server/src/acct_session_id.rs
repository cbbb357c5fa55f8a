//! The prefix of every Acct-Session-Id (RFC 2866 §5.5) this server sends.
//!
//! RFC 2866 §5.5 asks for an id unique to the session; several `ras server`
//! instances accounting to one RADIUS server (docs/ADMIN.md, "Scaling
//! out") must not produce the same one. The prefix therefore holds:
//! - the NAS-Identifier (the name RADIUS knows this server by), so a RADIUS
//!   operator sees which server a record came from;
//! - the start time in seconds, so a restarted server does not repeat ids
//!   it sent before (its spool may still hold some);
//! - 16 random bits per process, so two servers that share a name (both
//!   left at the default) and started in the same second still differ.
//!
//! The session's own number follows the prefix (see `Sessions`).

/// At most this many bytes of the NAS-Identifier go into the prefix: the
/// whole id stays far below RADIUS's 253-byte attribute limit.
const MAX_NAME: usize = 64;

/// `NAME-BBBBBBBBRRRR`: the NAS-Identifier reduced to letters, digits and
/// `.`, `_`, `-` (others become `_`; an empty name becomes `ras`), the
/// start time `boot_secs` and `random`, both in hex.
pub fn prefix(nas_identifier: &str, boot_secs: u64, random: u16) -> String {
    let mut name: String = nas_identifier
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(MAX_NAME)
        .collect();
    if name.is_empty() {
        name.push_str("ras");
    }
    format!("{name}-{boot_secs:08X}{random:04X}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_time_and_random_part_are_all_in_it() {
        assert_eq!(prefix("vpn-a", 0x6571_0000, 0xbeef), "vpn-a-65710000BEEF");
    }

    #[test]
    fn servers_with_one_name_started_together_differ_by_the_random_part() {
        assert_ne!(prefix("ras", 1, 1), prefix("ras", 1, 2));
        assert_ne!(prefix("vpn-a", 1, 7), prefix("vpn-b", 1, 7));
    }

    #[test]
    fn names_are_reduced_to_safe_characters_and_bounded() {
        assert_eq!(prefix("a b/é", 1, 0), "a_b__-000000010000");
        assert_eq!(prefix("", 1, 0), "ras-000000010000");
        let long = "x".repeat(300);
        assert_eq!(prefix(&long, 1, 0).len(), MAX_NAME + 1 + 12);
    }
}
