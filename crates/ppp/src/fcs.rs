//! Frame Check Sequences of RFC 1662 (PPP in HDLC-like Framing).
//!
//! * FCS-16 (RFC 1662 Appendix C.2): CRC-CCITT, reflected polynomial
//!   `0x8408`, initial value [`FCS16_INIT`], good final value
//!   [`FCS16_GOOD`]. Same as CRC-16/X-25.
//! * FCS-32 (RFC 1662 Appendix C.3): the IEEE 802.3 CRC, reflected
//!   polynomial `0xEDB88320`, initial value [`FCS32_INIT`], good final
//!   value [`FCS32_GOOD`].
//!
//! Both are table driven; the tables are computed at compile time.
//!
//! Transmit: `!fcs16(FCS16_INIT, frame)` is appended least-significant
//! octet first. Receive: running the FCS over the frame *including* its
//! FCS field yields the "good" constant when the frame is intact.

/// Initial FCS-16 value.
pub const FCS16_INIT: u16 = 0xFFFF;
/// FCS-16 of a frame that includes its own (complemented, little-endian) FCS.
pub const FCS16_GOOD: u16 = 0xF0B8;
/// Reflected generator polynomial of FCS-16 (x^16 + x^12 + x^5 + 1).
pub const FCS16_POLY: u16 = 0x8408;

/// Initial FCS-32 value.
pub const FCS32_INIT: u32 = 0xFFFF_FFFF;
/// FCS-32 of a frame that includes its own (complemented, little-endian) FCS.
pub const FCS32_GOOD: u32 = 0xDEBB_20E3;
/// Reflected generator polynomial of FCS-32.
pub const FCS32_POLY: u32 = 0xEDB8_8320;

const fn make_table16() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut b = 0;
    while b < 256 {
        let mut v = b as u16;
        let mut i = 0;
        while i < 8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ FCS16_POLY
            } else {
                v >> 1
            };
            i += 1;
        }
        table[b] = v;
        b += 1;
    }
    table
}

const fn make_table32() -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut b = 0;
    while b < 256 {
        let mut v = b as u32;
        let mut i = 0;
        while i < 8 {
            v = if v & 1 != 0 {
                (v >> 1) ^ FCS32_POLY
            } else {
                v >> 1
            };
            i += 1;
        }
        table[b] = v;
        b += 1;
    }
    table
}

/// FCS-16 lookup table (RFC 1662 C.2 `fcstab`).
pub static FCS16_TABLE: [u16; 256] = make_table16();
/// FCS-32 lookup table (RFC 1662 C.3 `fcstab_32`).
pub static FCS32_TABLE: [u32; 256] = make_table32();

/// Continue an FCS-16 computation from `fcs` over `data`.
///
/// Start with [`FCS16_INIT`]; calls can be chained over consecutive slices.
#[inline]
pub fn fcs16(mut fcs: u16, data: &[u8]) -> u16 {
    for &b in data {
        fcs = (fcs >> 8) ^ FCS16_TABLE[usize::from((fcs as u8) ^ b)];
    }
    fcs
}

/// Continue an FCS-32 computation from `fcs` over `data`.
///
/// Start with [`FCS32_INIT`]; calls can be chained over consecutive slices.
#[inline]
pub fn fcs32(mut fcs: u32, data: &[u8]) -> u32 {
    for &b in data {
        fcs = (fcs >> 8) ^ FCS32_TABLE[usize::from((fcs as u8) ^ b)];
    }
    fcs
}

/// The two octets to append to `data` on transmit (complemented FCS-16,
/// least-significant octet first).
#[inline]
pub fn fcs16_trailer(data: &[u8]) -> [u8; 2] {
    (!fcs16(FCS16_INIT, data)).to_le_bytes()
}

/// The four octets to append to `data` on transmit (complemented FCS-32,
/// least-significant octet first).
#[inline]
pub fn fcs32_trailer(data: &[u8]) -> [u8; 4] {
    (!fcs32(FCS32_INIT, data)).to_le_bytes()
}

/// Whether `frame` (data followed by its 2-octet FCS) has a good FCS-16.
#[inline]
pub fn fcs16_is_good(frame: &[u8]) -> bool {
    frame.len() >= 2 && fcs16(FCS16_INIT, frame) == FCS16_GOOD
}

/// Whether `frame` (data followed by its 4-octet FCS) has a good FCS-32.
#[inline]
pub fn fcs32_is_good(frame: &[u8]) -> bool {
    frame.len() >= 4 && fcs32(FCS32_INIT, frame) == FCS32_GOOD
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bit-at-a-time reference, written from the CRC definition rather
    /// than from the table code.
    fn fcs16_bitwise(mut fcs: u16, data: &[u8]) -> u16 {
        for &b in data {
            for bit in 0..8 {
                let inbit = u16::from((b >> bit) & 1);
                let mix = (fcs ^ inbit) & 1;
                fcs >>= 1;
                if mix != 0 {
                    fcs ^= 0x8408;
                }
            }
        }
        fcs
    }

    fn fcs32_bitwise(mut fcs: u32, data: &[u8]) -> u32 {
        for &b in data {
            for bit in 0..8 {
                let inbit = u32::from((b >> bit) & 1);
                let mix = (fcs ^ inbit) & 1;
                fcs >>= 1;
                if mix != 0 {
                    fcs ^= 0xEDB8_8320;
                }
            }
        }
        fcs
    }

    #[test]
    fn check_values() {
        // CRC-16/X-25 and CRC-32 (ISO-HDLC) check values.
        assert_eq!(!fcs16(FCS16_INIT, b"123456789"), 0x906E);
        assert_eq!(!fcs32(FCS32_INIT, b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn table_spot_values() {
        // First entries of the RFC 1662 C.2 / C.3 tables.
        assert_eq!(&FCS16_TABLE[..4], &[0x0000, 0x1189, 0x2312, 0x329b]);
        assert_eq!(FCS16_TABLE[255], 0x0f78);
        assert_eq!(
            &FCS32_TABLE[..4],
            &[0x0000_0000, 0x7707_3096, 0xee0e_612c, 0x9909_51ba]
        );
        assert_eq!(FCS32_TABLE[255], 0x2d02_ef8d);
    }

    #[test]
    fn empty_is_identity() {
        assert_eq!(fcs16(FCS16_INIT, &[]), FCS16_INIT);
        assert_eq!(fcs32(FCS32_INIT, &[]), FCS32_INIT);
        assert!(!fcs16_is_good(&[]));
        assert!(!fcs32_is_good(&[0, 0, 0]));
    }

    #[test]
    fn good_fcs_on_check_string() {
        let mut v = b"123456789".to_vec();
        v.extend_from_slice(&fcs16_trailer(b"123456789"));
        assert_eq!(&v[9..], &[0x6E, 0x90]);
        assert_eq!(fcs16(FCS16_INIT, &v), FCS16_GOOD);
        let mut v = b"123456789".to_vec();
        v.extend_from_slice(&fcs32_trailer(b"123456789"));
        assert_eq!(&v[9..], &[0x26, 0x39, 0xF4, 0xCB]);
        assert_eq!(fcs32(FCS32_INIT, &v), FCS32_GOOD);
    }

    proptest! {
        #[test]
        fn table_matches_bitwise(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            prop_assert_eq!(fcs16(FCS16_INIT, &data), fcs16_bitwise(FCS16_INIT, &data));
            prop_assert_eq!(fcs32(FCS32_INIT, &data), fcs32_bitwise(FCS32_INIT, &data));
        }

        #[test]
        fn good_fcs_property(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut v = data.clone();
            v.extend_from_slice(&fcs16_trailer(&data));
            prop_assert_eq!(fcs16(FCS16_INIT, &v), FCS16_GOOD);
            prop_assert!(fcs16_is_good(&v));
            let mut v = data.clone();
            v.extend_from_slice(&fcs32_trailer(&data));
            prop_assert_eq!(fcs32(FCS32_INIT, &v), FCS32_GOOD);
            prop_assert!(fcs32_is_good(&v));
        }

        #[test]
        fn chaining(data in proptest::collection::vec(any::<u8>(), 0..300), split in any::<prop::sample::Index>()) {
            let at = split.index(data.len() + 1);
            let (a, b) = data.split_at(at);
            prop_assert_eq!(fcs16(fcs16(FCS16_INIT, a), b), fcs16(FCS16_INIT, &data));
            prop_assert_eq!(fcs32(fcs32(FCS32_INIT, a), b), fcs32(FCS32_INIT, &data));
        }

        #[test]
        fn single_bit_error_detected(data in proptest::collection::vec(any::<u8>(), 1..300), pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let mut v = data.clone();
            v.extend_from_slice(&fcs16_trailer(&data));
            let i = pos.index(v.len());
            v[i] ^= 1 << bit;
            prop_assert!(!fcs16_is_good(&v));
            let mut v = data.clone();
            v.extend_from_slice(&fcs32_trailer(&data));
            let i = pos.index(v.len());
            v[i] ^= 1 << bit;
            prop_assert!(!fcs32_is_good(&v));
        }
    }
}
