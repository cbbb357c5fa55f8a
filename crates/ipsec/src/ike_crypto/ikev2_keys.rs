//! IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18).
//!
//! Pure functions over the negotiated PRF (an HMAC, RFC 7296 §3.3.2
//! transform type 2: PRF_HMAC_SHA1 2, PRF_HMAC_SHA2_256/384/512 5/6/7).

use zeroize::Zeroizing;

use super::HashAlg;

/// `prf+ (K, S)` of RFC 7296 §2.13: T1 = prf(K, S | 0x01),
/// Tn = prf(K, Tn-1 | S | n), concatenated and cut to `len` bytes.
///
/// The counter is one byte, so prf+ yields at most 255 blocks; asking for
/// more is a programming error of the caller (our largest need, the seven
/// IKE SA keys with SHA-512 and AES-256-GCM, is far below it), answered
/// with `None` instead of a panic.
pub fn prf_plus(prf: HashAlg, key: &[u8], seed: &[u8], len: usize) -> Option<Zeroizing<Vec<u8>>> {
    let block = prf.output_len();
    if len > block * 255 {
        return None;
    }
    let mut out = Zeroizing::new(Vec::with_capacity(len + block));
    let mut previous = Zeroizing::new(Vec::new());
    let mut counter: u8 = 1;
    while out.len() < len {
        previous = prf.hmac(key, &[&previous, seed, &[counter]]);
        out.extend_from_slice(&previous);
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    Some(out)
}

/// `SKEYSEED = prf(Ni | Nr, g^ir)` (RFC 7296 §2.14).
///
/// The nonces are the key: HMAC takes keys of any length, and §2.14 says
/// for PRFs with a fixed key length (AES-XCBC, not offered by us) half of
/// the key comes from each nonce.
pub fn skeyseed(prf: HashAlg, ni: &[u8], nr: &[u8], g_ir: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut key = Zeroizing::new(Vec::with_capacity(ni.len() + nr.len()));
    key.extend_from_slice(ni);
    key.extend_from_slice(nr);
    prf.hmac(&key, &[g_ir])
}

/// `SKEYSEED = prf(SK_d (old), g^ir (new) | Ni | Nr)` for a new IKE SA made
/// by CREATE_CHILD_SA (RFC 7296 §2.18). The nonces are those of the
/// CREATE_CHILD_SA exchange.
pub fn rekey_skeyseed(
    prf: HashAlg,
    old_sk_d: &[u8],
    g_ir_new: &[u8],
    ni: &[u8],
    nr: &[u8],
) -> Zeroizing<Vec<u8>> {
    prf.hmac(old_sk_d, &[g_ir_new, ni, nr])
}

/// Lengths of the seven IKE SA keys (RFC 7296 §2.14). `integ_len` is 0 for
/// combined-mode (AEAD) ciphers, whose `encr_len` includes the salt
/// (RFC 5282 §7: 4 bytes for AES-GCM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IkeKeyLengths {
    pub encr_len: usize,
    pub integ_len: usize,
}

/// The seven secrets of an IKE SA, in the order §2.14 takes them from
/// `prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)`.
pub struct IkeSaKeys {
    /// Derives CHILD_SA keys and the next IKE SA's SKEYSEED.
    pub sk_d: Zeroizing<Vec<u8>>,
    /// Integrity of messages from the original initiator / responder.
    pub sk_ai: Zeroizing<Vec<u8>>,
    pub sk_ar: Zeroizing<Vec<u8>>,
    /// Encryption of messages from the original initiator / responder.
    pub sk_ei: Zeroizing<Vec<u8>>,
    pub sk_er: Zeroizing<Vec<u8>>,
    /// Keys of the AUTH payload's MACedIDFor{Initiator,Responder} (§2.15).
    pub sk_pi: Zeroizing<Vec<u8>>,
    pub sk_pr: Zeroizing<Vec<u8>>,
}

/// Splits `prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)` into the seven keys
/// (RFC 7296 §2.14). SK_d, SK_pi and SK_pr are as long as the PRF's key
/// (its output, for the HMAC PRFs). The SPIs are the 8-byte values of the
/// IKE header, initiator's first, whichever side computes.
pub fn ike_sa_keys(
    prf: HashAlg,
    skeyseed: &[u8],
    ni: &[u8],
    nr: &[u8],
    spi_i: &[u8; 8],
    spi_r: &[u8; 8],
    lengths: IkeKeyLengths,
) -> IkeSaKeys {
    let prf_len = prf.output_len();
    let total = 3 * prf_len + 2 * lengths.integ_len + 2 * lengths.encr_len;
    let mut seed = Vec::with_capacity(ni.len() + nr.len() + 16);
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    seed.extend_from_slice(spi_i);
    seed.extend_from_slice(spi_r);
    // At most 3×64 + 2×64 + 2×36 bytes, far below prf+'s 255 blocks.
    let keymat = prf_plus(prf, skeyseed, &seed, total).unwrap_or_default();
    let mut rest: &[u8] = &keymat;
    let mut take = |n: usize| {
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        Zeroizing::new(head.to_vec())
    };
    IkeSaKeys {
        sk_d: take(prf_len),
        sk_ai: take(lengths.integ_len),
        sk_ar: take(lengths.integ_len),
        sk_ei: take(lengths.encr_len),
        sk_er: take(lengths.encr_len),
        sk_pi: take(prf_len),
        sk_pr: take(prf_len),
    }
}

/// CHILD_SA keying material `prf+ (SK_d, [g^ir (new) |] Ni | Nr)`
/// (RFC 7296 §2.17), `len` bytes. The caller takes, in this order, the
/// initiator-to-responder encryption and integrity keys, then the
/// responder-to-initiator ones. `None` only when `len` exceeds prf+'s
/// 255 blocks.
pub fn child_sa_keymat(
    prf: HashAlg,
    sk_d: &[u8],
    g_ir_new: Option<&[u8]>,
    ni: &[u8],
    nr: &[u8],
    len: usize,
) -> Option<Zeroizing<Vec<u8>>> {
    let mut seed = Zeroizing::new(Vec::new());
    if let Some(g) = g_ir_new {
        seed.extend_from_slice(g);
    }
    seed.extend_from_slice(ni);
    seed.extend_from_slice(nr);
    prf_plus(prf, sk_d, &seed, len)
}

#[cfg(test)]
#[path = "ikev2_keys_tests.rs"]
mod tests;
