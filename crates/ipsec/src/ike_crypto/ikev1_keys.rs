//! IKEv1 key derivation (RFC 2409 §5, §5.5, Appendix B).
//!
//! "prf" is the HMAC of the negotiated hash: RFC 2409 §4 says that when no
//! PRF is negotiated, the HMAC version of the negotiated hash is used.

use zeroize::Zeroizing;

use super::hash::HashAlg;

/// SKEYID for pre-shared key authentication (RFC 2409 §5):
/// prf(pre-shared-key, Ni_b | Nr_b).
pub fn skeyid_psk(prf: HashAlg, psk: &[u8], ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
    todo!("{prf:?} {} {} {}", psk.len(), ni.len(), nr.len())
}

/// SKEYID for signature authentication (RFC 2409 §5):
/// prf(Ni_b | Nr_b, g^xy).
pub fn skeyid_signature(prf: HashAlg, ni: &[u8], nr: &[u8], g_xy: &[u8]) -> Zeroizing<Vec<u8>> {
    todo!("{prf:?} {} {} {}", ni.len(), nr.len(), g_xy.len())
}

/// The phase 1 keying material (RFC 2409 §5).
pub struct Phase1Keys {
    pub skeyid: Zeroizing<Vec<u8>>,
    pub skeyid_d: Zeroizing<Vec<u8>>,
    pub skeyid_a: Zeroizing<Vec<u8>>,
    pub skeyid_e: Zeroizing<Vec<u8>>,
}

/// SKEYID_d, SKEYID_a and SKEYID_e from SKEYID (RFC 2409 §5).
pub fn phase1_keys(
    prf: HashAlg,
    skeyid: Zeroizing<Vec<u8>>,
    g_xy: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
) -> Phase1Keys {
    todo!(
        "{prf:?} {} {} {cky_i:?} {cky_r:?}",
        skeyid.len(),
        g_xy.len()
    )
}

/// The phase 1 encryption key from SKEYID_e (RFC 2409 Appendix B).
pub fn encryption_key(prf: HashAlg, skeyid_e: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    todo!("{prf:?} {} {key_len}", skeyid_e.len())
}

/// The phase 1 IV: hash(g^xi | g^xr) truncated to the block length
/// (RFC 2409 Appendix B).
pub fn phase1_iv(hash: HashAlg, g_xi: &[u8], g_xr: &[u8], block_len: usize) -> Vec<u8> {
    todo!("{hash:?} {} {} {block_len}", g_xi.len(), g_xr.len())
}

/// The IV of a phase 2 (or informational) exchange: hash(last phase 1 CBC
/// block | M-ID) truncated to the block length (RFC 2409 Appendix B).
pub fn phase2_iv(
    hash: HashAlg,
    last_phase1_block: &[u8],
    message_id: u32,
    block_len: usize,
) -> Vec<u8> {
    todo!(
        "{hash:?} {} {message_id} {block_len}",
        last_phase1_block.len()
    )
}

/// Quick Mode KEYMAT (RFC 2409 §5.5), `len` bytes.
#[allow(clippy::too_many_arguments)]
pub fn quick_mode_keymat(
    prf: HashAlg,
    skeyid_d: &[u8],
    pfs_g_xy: Option<&[u8]>,
    protocol: u8,
    spi: u32,
    ni_b: &[u8],
    nr_b: &[u8],
    len: usize,
) -> Zeroizing<Vec<u8>> {
    todo!(
        "{prf:?} {} {} {protocol} {spi} {} {} {len}",
        skeyid_d.len(),
        pfs_g_xy.is_some(),
        ni_b.len(),
        nr_b.len()
    )
}
