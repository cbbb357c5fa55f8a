//! The service's decision (seed, step 7.6): "If the version number in the
//! request is the same or higher than the version that PBS has, PBS
//! provides no phone book update. If the number is lower but less than
//! five versions lower, PBS sends a delta phone book. If the number is
//! more than five versions lower, PBS sends a full phone book."
//!
//! The seed leaves exactly five behind open; its example (current 10,
//! client 7 → delta, 3 → full) and the delta cabinets, which hold the last
//! four versions' changes, settle it: 1 to 4 behind → delta, 5 or more (or
//! 0, no phone book) → full. When the current version is a Full one (no
//! delta cabinet), the full phone book is what brings the client up to date.

use phonebook::answer::UpdateKind;
use phonebook::limits::MAX_DELTA_DISTANCE;

/// What to send a client at `client` when the service has `current`.
pub fn decide(current: u32, client: u32, has_delta: bool) -> UpdateKind {
    if client >= current {
        UpdateKind::None
    } else if client > 0 && current - client <= MAX_DELTA_DISTANCE && has_delta {
        UpdateKind::Delta
    } else {
        UpdateKind::Full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The decision table (current 10).
    #[test]
    fn decision_table_of_the_seed() {
        assert_eq!(decide(10, 10, true), UpdateKind::None);
        assert_eq!(decide(10, 11, true), UpdateKind::None);
        assert_eq!(decide(10, 9, true), UpdateKind::Delta);
        assert_eq!(decide(10, 7, true), UpdateKind::Delta);
        assert_eq!(decide(10, 6, true), UpdateKind::Delta);
        assert_eq!(decide(10, 5, true), UpdateKind::Full);
        assert_eq!(decide(10, 3, true), UpdateKind::Full);
        assert_eq!(decide(10, 0, true), UpdateKind::Full);
        assert_eq!(decide(7, 6, false), UpdateKind::Full);
    }
}
