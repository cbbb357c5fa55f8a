//! 16-bit serial arithmetic for Ns and Nr (RFC 2661 §5.8: "all arithmetic
//! on Ns and Nr is modulo 65536"; a value is "earlier" when it is less than
//! 32768 behind).

/// `a` comes before `b` in sequence space.
pub fn seq_lt(a: u16, b: u16) -> bool {
    (a.wrapping_sub(b) as i16) < 0
}

/// `a` comes before or is `b`.
pub fn seq_le(a: u16, b: u16) -> bool {
    a == b || seq_lt(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_wraps() {
        assert!(seq_lt(1, 2));
        assert!(!seq_lt(2, 1));
        assert!(seq_lt(65535, 0));
        assert!(seq_lt(65000, 100));
        assert!(!seq_lt(100, 65000));
        assert!(seq_le(7, 7));
        assert!(!seq_lt(7, 7));
    }
}
