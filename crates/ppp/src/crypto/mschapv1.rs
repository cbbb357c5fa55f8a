//! MS-CHAP version 1 computations (RFC 2433 Appendix A) and the MPPE keys
//! derived from an MS-CHAPv1 login (RFC 3079 §2), with the published test
//! vectors (RFC 2433 Appendix B, RFC 3079 §2.5.3).
//!
//! Only the Windows NT half of RFC 2433 is implemented: the peer sends a
//! zeroed LM-Response with the use-NT flag set (as Windows does, RFC 2433
//! §4), and the authenticator verifies only the NT-Response. The LAN
//! Manager hash needs the cleartext password, upper-cased and cut to 14
//! characters; a store holding NT hashes cannot compute it.

use md4::{Digest as _, Md4};
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::mschap::challenge_response;

/// RFC 2433 §A.5 NtChallengeResponse: the 24-octet NT-Response to an
/// 8-octet challenge, from the NT password hash (RFC 2433 §A.3,
/// identical to RFC 2759 §8.3).
pub fn nt_challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    challenge_response(challenge, password_hash)
}

/// Constant-time check of a peer's NT-Response.
pub fn verify_nt_challenge_response(
    challenge: &[u8; 8],
    password_hash: &[u8; 16],
    received: &[u8; 24],
) -> bool {
    bool::from(nt_challenge_response(challenge, password_hash).ct_eq(received))
}

/// RFC 3079 §2.4 GetStartKey: the 16-octet MPPE start key of an MS-CHAPv1
/// login, the first 16 octets of SHA1(NtPasswordHashHash |
/// NtPasswordHashHash | Challenge). Used for both directions.
///
/// RFC 3079 §2.3 derives 128-bit session keys from it; §2.1/§2.2 derive
/// 40- and 56-bit keys from the LAN Manager hash instead, which this crate
/// does not have (see the module documentation). For those strengths the
/// first 8 octets of this start key are used, which is what Linux pppd
/// (`mppe_set_chapv1`) and its kernel MPPE do, so 40/56-bit MPPE after
/// MS-CHAPv1 interoperates with Linux, not with Windows.
pub fn get_start_key(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 16] {
    let password_hash_hash: [u8; 16] = Md4::digest(password_hash).into();
    get_start_key_from_hash_hash(challenge, &password_hash_hash)
}

/// [`get_start_key`] from NtPasswordHashHash, which is what a RADIUS
/// server hands the NAS in MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1).
pub fn get_start_key_from_hash_hash(
    challenge: &[u8; 8],
    password_hash_hash: &[u8; 16],
) -> [u8; 16] {
    let mut sha = Sha1::new();
    sha.update(password_hash_hash);
    sha.update(password_hash_hash);
    sha.update(challenge);
    let digest = sha.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::mppe_keys::{initial_session_key, MasterKeys};
    use crate::crypto::mschap::nt_password_hash;
    use crate::mppe::MppeStrength;

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).expect("hex")
    }

    const CHALLENGE: [u8; 8] = [0x10, 0x2D, 0xB5, 0xDF, 0x08, 0x5D, 0x30, 0x41];

    /// RFC 2433 Appendix B (Examples): password "MyPw", challenge
    /// 10 2D B5 DF 08 5D 30 41.
    #[test]
    fn rfc2433_appendix_b() {
        let hash = nt_password_hash("MyPw");
        assert_eq!(
            hash.to_vec(),
            h("FC 15 6A F7 ED CD 6C 0E DD E3 33 7D 42 7F 4E AC")
        );
        let response = nt_challenge_response(&CHALLENGE, &hash);
        assert_eq!(
            response.to_vec(),
            h("4E 9D 3C 8F 9C FD 38 5D 5B F4 D3 24 67 91 95 6C A4 C3 51 AB 40 9A 3D 61")
        );
        assert!(verify_nt_challenge_response(&CHALLENGE, &hash, &response));
        let mut wrong = response;
        wrong[23] ^= 1;
        assert!(!verify_nt_challenge_response(&CHALLENGE, &hash, &wrong));
    }

    /// RFC 3079 §2.5.3, Sample 128-bit Key Derivation: password
    /// "clientPass", challenge 10 2D B5 DF 08 5D 30 41. The RFC prints the
    /// start key twice; its step 3 has a misprint (...AC CA D1...) that its
    /// step 4 and the session key derived from it contradict
    /// (...AC C1 D1..., checked here through the session key).
    #[test]
    fn rfc3079_2_5_3_one_twenty_eight_bit() {
        let hash = nt_password_hash("clientPass");
        let start = get_start_key(&CHALLENGE, &hash);
        assert_eq!(
            start.to_vec(),
            h("A8 94 78 50 CF C0 AC C1 D1 78 9F B6 2D DC DD B0")
        );
        let session = initial_session_key(&start, MppeStrength::Bits128);
        assert_eq!(
            session.to_vec(),
            h("59 D1 59 BC 09 F7 6F 1D A2 A8 6A 28 FF EC 0B 1E")
        );
        // Both directions use the same start key (RFC 3079 §2).
        let keys = MasterKeys::from_mschapv1(&hash, &CHALLENGE);
        assert_eq!(keys.send, start);
        assert_eq!(keys.recv, start);
    }
}
