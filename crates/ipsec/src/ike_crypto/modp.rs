//! Modular exponentiation Diffie-Hellman (MODP) for IKE groups 2, 5 and 14,
//! generator 2, on crypto-bigint's constant-time Montgomery arithmetic.
//!
//! The primes below were checked when pasted: each equals its defining
//! formula (RFC 2409 §6.2, RFC 3526 §2 and §3) and is a safe prime.

use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
use crypto_bigint::{Odd, Uint, U1024, U1536, U2048, U512};
use zeroize::{Zeroize, Zeroizing};

use super::error::CryptoError;

/// Length in bytes of our private exponents: 512 bits for every group.
///
/// NIST SP 800-56A Rev. 3 §5.6.1.1.4 lets a safe-prime group's private key be
/// N random bits with N >= 2s (s = security strength); RFC 3526 §8 estimates
/// s at most 160 bits for the 2048-bit group (exponent 320 bits) and less for
/// the others, so 512 bits is more than enough for groups 2, 5 and 14, and
/// being below (p-1)/2 it needs no reduction. One size keeps the code simple.
pub(super) const EXPONENT_LEN: usize = 64;

/// The prime of RFC 2409 §6.2 (group 2): 2^1024 - 2^960 - 1 + 2^64 * ([2^894 pi] + 129093).
const MODP_1024_PRIME: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE65381FFFFFFFFFFFFFFFF",
);

/// The prime of RFC 3526 §2 (group 5): 2^1536 - 2^1472 - 1 + 2^64 * ([2^1406 pi] + 741804).
const MODP_1536_PRIME: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA237327FFFFFFFFFFFFFFFF",
);

/// The prime of RFC 3526 §3 (group 14): 2^2048 - 2^1984 - 1 + 2^64 * ([2^1918 pi] + 124476).
const MODP_2048_PRIME: &str = concat!(
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74",
    "020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F1437",
    "4FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED",
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF05",
    "98DA48361C55D39A69163FA8FD24CF5F83655D23DCA3AD961C62F356208552BB",
    "9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B",
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF695581718",
    "3995497CEA956AE515D2261898FA051015728E5A8AACAA68FFFFFFFFFFFFFFFF",
);

/// The MODP groups we implement, by modulus size in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ModpPrime {
    Bits1024,
    Bits1536,
    Bits2048,
}

impl ModpPrime {
    /// Modulus length in bytes: also the length of public values and of the
    /// shared secret (RFC 2409 §5, RFC 7296 §3.4: left-padded with zeros).
    pub(super) fn len(self) -> usize {
        match self {
            ModpPrime::Bits1024 => 128,
            ModpPrime::Bits1536 => 192,
            ModpPrime::Bits2048 => 256,
        }
    }

    /// g^x mod p with g = 2: our public value.
    pub(super) fn public_value(
        self,
        exponent: &[u8; EXPONENT_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let mut two = vec![0u8; self.len()];
        two[self.len() - 1] = 2;
        // The generator is in range by construction: no check needed.
        self.dispatch(&two, exponent, false)
    }

    /// y^x mod p for the peer's public value y, after checking 1 < y < p-1.
    pub(super) fn shared_secret(
        self,
        peer_public: &[u8],
        exponent: &[u8; EXPONENT_LEN],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if peer_public.len() != self.len() {
            return Err(CryptoError::InvalidPublicValue);
        }
        self.dispatch(peer_public, exponent, true)
    }

    fn dispatch(
        self,
        base: &[u8],
        exponent: &[u8; EXPONENT_LEN],
        check_base: bool,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self {
            ModpPrime::Bits1024 => {
                modp_pow::<{ U1024::LIMBS }>(MODP_1024_PRIME, base, exponent, check_base)
            }
            ModpPrime::Bits1536 => {
                modp_pow::<{ U1536::LIMBS }>(MODP_1536_PRIME, base, exponent, check_base)
            }
            ModpPrime::Bits2048 => {
                modp_pow::<{ U2048::LIMBS }>(MODP_2048_PRIME, base, exponent, check_base)
            }
        }
    }
}

/// base^exponent mod p, big-endian, exactly the modulus length.
fn modp_pow<const LIMBS: usize>(
    prime_hex: &str,
    base: &[u8],
    exponent: &[u8; EXPONENT_LEN],
    check_base: bool,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let prime = Uint::<LIMBS>::from_be_hex(prime_hex);
    let base = Uint::<LIMBS>::from_be_slice(base);
    // RFC 2631 §2.1.5 / SP 800-56A §5.6.2.3.1: reject y <= 1 and y >= p-1.
    // For a safe prime the only small subgroup is {1, p-1}, so this range
    // check is the full check. The value is public, so comparing it in
    // variable time leaks nothing.
    if check_base && (base <= Uint::ONE || base >= prime.wrapping_sub(&Uint::ONE)) {
        return Err(CryptoError::InvalidPublicValue);
    }
    let modulus = Odd::new(prime)
        .into_option()
        .ok_or(CryptoError::Failed("MODP prime is even"))?;
    // The modulus is public, so the variable-time setup is fine.
    let params = FixedMontyParams::new_vartime(modulus);
    let mut exponent = U512::from_be_slice(exponent);
    let mut power = FixedMontyForm::new(&base, &params).pow(&exponent);
    let mut result = power.retrieve();
    let mut bytes = result.to_be_bytes();
    let out = Zeroizing::new(bytes.as_slice().to_vec());
    exponent.zeroize();
    power.zeroize();
    result.zeroize();
    bytes.zeroize();
    Ok(out)
}

#[cfg(test)]
pub(super) const TEST_PRIMES: [(ModpPrime, &str); 3] = [
    (ModpPrime::Bits1024, MODP_1024_PRIME),
    (ModpPrime::Bits1536, MODP_1536_PRIME),
    (ModpPrime::Bits2048, MODP_2048_PRIME),
];
