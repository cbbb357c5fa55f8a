//! Vendor ID payloads (RFC 2408 §3.16) that switch on extensions. Most are
//! the MD5 of a text; the tests recompute them.

/// RFC 3947 §3.1: MD5("RFC 3947").
pub const NAT_T_RFC3947: [u8; 16] = hex16("4a131c81070358455c5728f20e95452f");
/// MD5("draft-ietf-ipsec-nat-t-ike-02"), and the variant with a trailing
/// newline that Windows and older clients send.
pub const NAT_T_DRAFT_02: [u8; 16] = hex16("cd60464335df21f87cfdb2fc68b6a448");
pub const NAT_T_DRAFT_02_N: [u8; 16] = hex16("90cb80913ebb696e086381b5ec427b1f");
/// MD5("draft-ietf-ipsec-nat-t-ike-03").
pub const NAT_T_DRAFT_03: [u8; 16] = hex16("7d9419a65310ca6f2c179d9215529d56");
/// RFC 3706 §7: Dead Peer Detection, version 1.0.
pub const DPD: [u8; 16] = hex16("afcad71368a1f1c96b8696fc77570100");
/// MD5("FRAGMENTATION"): IKEv1 fragmentation as Windows and Cisco send it
/// (Cisco appends four flag bytes; the prefix is what counts).
pub const FRAGMENTATION: [u8; 16] = hex16("4048b7d56ebce88525e7de7f00d6c2d3");
/// What we send: the hash and the capability word 0x80000000 ("Main and
/// Aggressive Mode messages may be fragmented", as racoon and strongSwan
/// read it; Windows accepts it with or without the word).
pub const FRAGMENTATION_CAPABLE: [u8; 20] = {
    let mut v = [0u8; 20];
    let mut i = 0;
    while i < 16 {
        v[i] = FRAGMENTATION[i];
        i += 1;
    }
    v[16] = 0x80;
    v
};
/// MD5("MS NT5 ISAKMPOAKLEY") followed by a 4-byte version: Windows.
pub const MS_NT5_PREFIX: [u8; 16] = hex16("1e2b516905991c7d7c96fcbfb587e461");

/// Which NAT-T dialect the initiator speaks; we mirror its choice
/// (RFC 3947 §3.1: the newest both support).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NatTVersion {
    Draft02,
    Draft03,
    Rfc3947,
}

impl NatTVersion {
    /// The vendor ID we send back for this dialect.
    pub fn vendor_id(self) -> &'static [u8; 16] {
        match self {
            NatTVersion::Draft02 => &NAT_T_DRAFT_02_N,
            NatTVersion::Draft03 => &NAT_T_DRAFT_03,
            NatTVersion::Rfc3947 => &NAT_T_RFC3947,
        }
    }

    /// NAT-D and NAT-OA payload types (RFC 3947 §3.2, §5.2; drafts: 130, 131).
    pub fn nat_d_payload(self) -> u8 {
        match self {
            NatTVersion::Rfc3947 => super::wire::payload::NAT_D,
            _ => super::wire::payload::NAT_D_DRAFT,
        }
    }

    pub fn nat_oa_payload(self) -> u8 {
        match self {
            NatTVersion::Rfc3947 => super::wire::payload::NAT_OA,
            _ => super::wire::payload::NAT_OA_DRAFT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            NatTVersion::Draft02 => "NAT-T draft-02",
            NatTVersion::Draft03 => "NAT-T draft-03",
            NatTVersion::Rfc3947 => "NAT-T RFC 3947",
        }
    }
}

/// What the initiator's vendor IDs announce.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerExtensions {
    pub nat_t: Option<NatTVersion>,
    pub dpd: bool,
    pub fragmentation: bool,
    pub windows: bool,
}

impl PeerExtensions {
    /// Notes one vendor ID.
    pub fn note(&mut self, vid: &[u8]) {
        let version = if vid == NAT_T_RFC3947 {
            Some(NatTVersion::Rfc3947)
        } else if vid == NAT_T_DRAFT_03 {
            Some(NatTVersion::Draft03)
        } else if vid == NAT_T_DRAFT_02 || vid == NAT_T_DRAFT_02_N {
            Some(NatTVersion::Draft02)
        } else {
            None
        };
        if let Some(v) = version {
            self.nat_t = Some(self.nat_t.map_or(v, |old| old.max(v)));
        }
        self.dpd |= vid == DPD;
        // 16 bytes (Windows), or 20 with the capability word: only bit 31
        // (Main Mode fragmentation) is what we speak.
        self.fragmentation |= vid.len() >= 16
            && vid[..16] == FRAGMENTATION
            && (vid.len() == 16 || (vid.len() == 20 && vid[16] & 0x80 != 0));
        self.windows |= vid.len() >= 16 && vid[..16] == MS_NT5_PREFIX;
    }
}

const fn hex16(s: &str) -> [u8; 16] {
    let b = s.as_bytes();
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not a hex digit"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ike_crypto::HashAlg;

    #[test]
    fn vendor_ids_are_the_md5_of_their_names() {
        let md5 = |s: &[u8]| HashAlg::Md5.digest(&[s]);
        assert_eq!(md5(b"RFC 3947"), NAT_T_RFC3947);
        assert_eq!(md5(b"draft-ietf-ipsec-nat-t-ike-02"), NAT_T_DRAFT_02);
        assert_eq!(md5(b"draft-ietf-ipsec-nat-t-ike-02\n"), NAT_T_DRAFT_02_N);
        assert_eq!(md5(b"draft-ietf-ipsec-nat-t-ike-03"), NAT_T_DRAFT_03);
        assert_eq!(md5(b"FRAGMENTATION"), FRAGMENTATION);
        assert_eq!(md5(b"MS NT5 ISAKMPOAKLEY"), MS_NT5_PREFIX);
    }

    #[test]
    fn the_newest_nat_t_dialect_wins() {
        let mut ext = PeerExtensions::default();
        ext.note(&NAT_T_DRAFT_02_N);
        ext.note(&NAT_T_RFC3947);
        ext.note(&NAT_T_DRAFT_03);
        ext.note(&DPD);
        assert_eq!(ext.nat_t, Some(NatTVersion::Rfc3947));
        assert!(ext.dpd && !ext.fragmentation);
    }
}
