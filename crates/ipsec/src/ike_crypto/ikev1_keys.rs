//! IKEv1 key derivation (RFC 2409 §5, §5.5, Appendix B).
//!
//! "prf" is the HMAC of the negotiated hash: RFC 2409 §4 says that when no
//! PRF is negotiated, the HMAC version of the negotiated hash is used (and
//! no IKEv1 PRF is registered besides those).

use zeroize::Zeroizing;

use super::hash::HashAlg;

/// SKEYID for pre-shared key authentication (RFC 2409 §5):
/// prf(pre-shared-key, Ni_b | Nr_b).
pub fn skeyid_psk(prf: HashAlg, psk: &[u8], ni: &[u8], nr: &[u8]) -> Zeroizing<Vec<u8>> {
    prf.hmac(psk, &[ni, nr])
}

/// SKEYID for signature authentication (RFC 2409 §5):
/// prf(Ni_b | Nr_b, g^xy).
pub fn skeyid_signature(prf: HashAlg, ni: &[u8], nr: &[u8], g_xy: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = Zeroizing::new([ni, nr].concat());
    prf.hmac(&key, &[g_xy])
}

/// The phase 1 keying material (RFC 2409 §5).
pub struct Phase1Keys {
    /// SKEYID: the authentication-method-specific seed.
    pub skeyid: Zeroizing<Vec<u8>>,
    /// SKEYID_d: derives non-ISAKMP keys (Quick Mode KEYMAT).
    pub skeyid_d: Zeroizing<Vec<u8>>,
    /// SKEYID_a: authenticates ISAKMP messages (HASH(1..3), informational).
    pub skeyid_a: Zeroizing<Vec<u8>>,
    /// SKEYID_e: the seed of the ISAKMP encryption key (Appendix B).
    pub skeyid_e: Zeroizing<Vec<u8>>,
}

/// SKEYID_d, SKEYID_a and SKEYID_e from SKEYID (RFC 2409 §5):
///
/// ```text
/// SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
/// SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
/// SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
/// ```
pub fn phase1_keys(
    prf: HashAlg,
    skeyid: Zeroizing<Vec<u8>>,
    g_xy: &[u8],
    cky_i: &[u8; 8],
    cky_r: &[u8; 8],
) -> Phase1Keys {
    let skeyid_d = prf.hmac(&skeyid, &[g_xy, cky_i, cky_r, &[0]]);
    let skeyid_a = prf.hmac(&skeyid, &[&skeyid_d, g_xy, cky_i, cky_r, &[1]]);
    let skeyid_e = prf.hmac(&skeyid, &[&skeyid_a, g_xy, cky_i, cky_r, &[2]]);
    Phase1Keys {
        skeyid,
        skeyid_d,
        skeyid_a,
        skeyid_e,
    }
}

/// The phase 1 encryption key from SKEYID_e (RFC 2409 Appendix B): the first
/// `key_len` bytes of SKEYID_e when it is long enough, otherwise of
/// Ka = K1 | K2 | ... with K1 = prf(SKEYID_e, 0) (one zero octet) and
/// K(n+1) = prf(SKEYID_e, Kn).
pub fn encryption_key(prf: HashAlg, skeyid_e: &[u8], key_len: usize) -> Zeroizing<Vec<u8>> {
    if skeyid_e.len() >= key_len {
        return Zeroizing::new(skeyid_e[..key_len].to_vec());
    }
    let mut ka = Zeroizing::new(Vec::with_capacity(key_len + prf.output_len()));
    let mut block = prf.hmac(skeyid_e, &[&[0]]);
    loop {
        ka.extend_from_slice(&block);
        if ka.len() >= key_len {
            break;
        }
        block = prf.hmac(skeyid_e, &[&block]);
    }
    ka.truncate(key_len);
    ka
}

/// The phase 1 IV: hash(g^xi | g^xr) cut to the cipher's block length
/// (RFC 2409 Appendix B). `hash` is the negotiated hash itself, not its
/// HMAC. A hash shorter than the block would give a short IV, which the
/// cipher then refuses; no IKEv1 hash/cipher pair we offer does that.
pub fn phase1_iv(hash: HashAlg, g_xi: &[u8], g_xr: &[u8], block_len: usize) -> Vec<u8> {
    let mut iv = hash.digest(&[g_xi, g_xr]);
    iv.truncate(block_len);
    iv
}

/// The first IV of a phase 2 (Quick Mode) or informational exchange:
/// hash(last phase 1 CBC block | M-ID), M-ID in network byte order, cut to
/// the block length (RFC 2409 Appendix B).
pub fn phase2_iv(
    hash: HashAlg,
    last_phase1_block: &[u8],
    message_id: u32,
    block_len: usize,
) -> Vec<u8> {
    let mut iv = hash.digest(&[last_phase1_block, &message_id.to_be_bytes()]);
    iv.truncate(block_len);
    iv
}

/// Quick Mode KEYMAT (RFC 2409 §5.5), `len` bytes:
///
/// ```text
/// KEYMAT = K1 | K2 | K3 | ...
/// K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b)
/// K2 = prf(SKEYID_d, K1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b) ...
/// ```
///
/// `spi` is the SPI of the SA being keyed (the receiver's, so each direction
/// gets its own KEYMAT), written in network byte order; `protocol` is the
/// IPsec protocol ID (3 for ESP, RFC 2407 §4.4.1).
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
    let g_xy = pfs_g_xy.unwrap_or(&[]);
    let spi = spi.to_be_bytes();
    let mut keymat = Zeroizing::new(Vec::with_capacity(len + prf.output_len()));
    let mut previous: Option<Zeroizing<Vec<u8>>> = None;
    while keymat.len() < len {
        let k_prev: &[u8] = previous.as_deref().map_or(&[], |k| k.as_slice());
        let block = prf.hmac(skeyid_d, &[k_prev, g_xy, &[protocol], &spi, ni_b, nr_b]);
        keymat.extend_from_slice(&block);
        previous = Some(block);
    }
    keymat.truncate(len);
    keymat
}

#[cfg(test)]
#[path = "ikev1_keys_tests.rs"]
mod tests;
