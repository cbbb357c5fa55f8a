//! MS-CHAPv2 computations, RFC 2759 §8 (pseudocode) with the §9 test vectors.
//!
//! Every function here is a direct transcription of the RFC's pseudocode; the
//! names carry the RFC's names in snake case so a reader can follow along.

use des::cipher::{BlockEncrypt, KeyInit};
use md4::{Digest, Md4};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// RFC 2759 §8.3: NtPasswordHash — MD4 of the password in UTF-16LE ("Unicode").
pub fn nt_password_hash(password: &str) -> [u8; 16] {
    let mut md4 = Md4::new();
    for unit in password.encode_utf16() {
        md4.update(unit.to_le_bytes());
    }
    md4.finalize().into()
}

/// RFC 2759 §8.4: HashNtPasswordHash — MD4 of the 16-byte password hash.
pub fn hash_nt_password_hash(password_hash: &[u8; 16]) -> [u8; 16] {
    Md4::digest(password_hash).into()
}

/// RFC 2759 §8.2: ChallengeHash — first 8 bytes of
/// SHA1(PeerChallenge | AuthenticatorChallenge | UserName).
///
/// `user_name` is the name without any domain prefix stripping: RFC 2759 §4
/// says the user name used here has any leading "DOMAIN\" removed; callers
/// pass [`strip_domain`] of the name when the peer sent one.
pub fn challenge_hash(
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 8] {
    let mut sha = Sha1::new();
    sha.update(peer_challenge);
    sha.update(authenticator_challenge);
    sha.update(user_name);
    let digest = sha.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    out
}

/// RFC 2759 §4: the user name in ChallengeHash is the name with any
/// "domain\" qualification removed.
pub fn strip_domain(user_name: &[u8]) -> &[u8] {
    match user_name.iter().rposition(|&b| b == b'\\') {
        Some(pos) => &user_name[pos + 1..],
        None => user_name,
    }
}

/// RFC 2759 §8.6: DesEncrypt with a 7-byte key expanded to the 8-byte DES
/// key form (parity bits in the low bit of every byte, which DES ignores).
fn des_encrypt(clear: &[u8; 8], key7: &[u8]) -> [u8; 8] {
    let k = key7;
    let key8 = [
        k[0],
        (k[0] << 7) | (k[1] >> 1),
        (k[1] << 6) | (k[2] >> 2),
        (k[2] << 5) | (k[3] >> 3),
        (k[3] << 4) | (k[4] >> 4),
        (k[4] << 3) | (k[5] >> 5),
        (k[5] << 2) | (k[6] >> 6),
        k[6] << 1,
    ];
    let cipher = des::Des::new_from_slice(&key8).expect("8-byte DES key");
    let mut block = des::cipher::generic_array::GenericArray::clone_from_slice(clear);
    cipher.encrypt_block(&mut block);
    let mut out = [0u8; 8];
    out.copy_from_slice(&block);
    out
}

/// RFC 2759 §8.5: ChallengeResponse — three DES encryptions of the 8-byte
/// challenge under the zero-padded 21-byte password hash.
pub fn challenge_response(challenge: &[u8; 8], password_hash: &[u8; 16]) -> [u8; 24] {
    let mut z = [0u8; 21];
    z[..16].copy_from_slice(password_hash);
    let mut out = [0u8; 24];
    out[0..8].copy_from_slice(&des_encrypt(challenge, &z[0..7]));
    out[8..16].copy_from_slice(&des_encrypt(challenge, &z[7..14]));
    out[16..24].copy_from_slice(&des_encrypt(challenge, &z[14..21]));
    out
}

/// RFC 2759 §8.1: GenerateNTResponse, from the password hash (so that a
/// store holding only NT hashes can verify).
pub fn generate_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; 16],
) -> [u8; 24] {
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    challenge_response(&challenge, password_hash)
}

/// RFC 2759 §8.7 magic constants.
const MAGIC1: &[u8; 39] = b"Magic server to client signing constant";
const MAGIC2: &[u8; 41] = b"Pad to make it do more than one iteration";

/// RFC 2759 §8.7: GenerateAuthenticatorResponse. Returns the 20-byte digest;
/// [`authenticator_response_string`] formats it as "S=<40 hex digits>".
pub fn generate_authenticator_response(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
) -> [u8; 20] {
    let password_hash_hash = hash_nt_password_hash(password_hash);
    let mut sha = Sha1::new();
    sha.update(password_hash_hash);
    sha.update(nt_response);
    sha.update(MAGIC1);
    let digest = sha.finalize();
    let challenge = challenge_hash(peer_challenge, authenticator_challenge, user_name);
    let mut sha = Sha1::new();
    sha.update(digest);
    sha.update(challenge);
    sha.update(MAGIC2);
    sha.finalize().into()
}

/// The "S=" string of RFC 2759 §5: 'S=' followed by 40 upper-case hex digits.
pub fn authenticator_response_string(digest: &[u8; 20]) -> [u8; 42] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = [0u8; 42];
    out[0] = b'S';
    out[1] = b'=';
    for (i, byte) in digest.iter().enumerate() {
        out[2 + 2 * i] = HEX[(byte >> 4) as usize];
        out[3 + 2 * i] = HEX[(byte & 0xf) as usize];
    }
    out
}

/// RFC 2759 §8.8: CheckAuthenticatorResponse, in constant time.
pub fn check_authenticator_response(
    password_hash: &[u8; 16],
    nt_response: &[u8; 24],
    peer_challenge: &[u8; 16],
    authenticator_challenge: &[u8; 16],
    user_name: &[u8],
    received: &[u8],
) -> bool {
    let expected = authenticator_response_string(&generate_authenticator_response(
        password_hash,
        nt_response,
        peer_challenge,
        authenticator_challenge,
        user_name,
    ));
    // Hex digits may arrive in lower case from some servers; compare
    // case-insensitively but without early exit.
    if received.len() != expected.len() {
        return false;
    }
    let upper: Vec<u8> = received.iter().map(|b| b.to_ascii_uppercase()).collect();
    bool::from(upper.as_slice().ct_eq(&expected[..]))
}

/// Constant-time check of a peer's NT-Response against the one computed from
/// the stored password hash.
pub fn verify_nt_response(
    authenticator_challenge: &[u8; 16],
    peer_challenge: &[u8; 16],
    user_name: &[u8],
    password_hash: &[u8; 16],
    received: &[u8; 24],
) -> bool {
    let expected = generate_nt_response(
        authenticator_challenge,
        peer_challenge,
        user_name,
        password_hash,
    );
    bool::from(expected.ct_eq(received))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    // RFC 2759 §9.2, "Hash Test Vectors".
    const USER: &[u8] = b"User";
    const PASSWORD: &str = "clientPass";
    fn auth_challenge() -> [u8; 16] {
        h("5B 5D 7C 7D 7B 3F 2F 3E 3C 2C 60 21 32 26 26 28")
            .try_into()
            .unwrap()
    }
    fn peer_challenge() -> [u8; 16] {
        h("21 40 23 24 25 5E 26 2A 28 29 5F 2B 3A 33 7C 7E")
            .try_into()
            .unwrap()
    }

    #[test]
    fn rfc2759_section9_vectors() {
        let challenge = challenge_hash(&peer_challenge(), &auth_challenge(), USER);
        assert_eq!(challenge.to_vec(), h("D0 2E 43 86 BC E9 12 26"));
        let password_hash = nt_password_hash(PASSWORD);
        assert_eq!(
            password_hash.to_vec(),
            h("44 EB BA 8D 53 12 B8 D6 11 47 44 11 F5 69 89 AE")
        );
        let nt_response =
            generate_nt_response(&auth_challenge(), &peer_challenge(), USER, &password_hash);
        assert_eq!(
            nt_response.to_vec(),
            h("82 30 9E CD 8D 70 8B 5E A0 8F AA 39 81 CD 83 54 42 33 11 4A 3D 85 D6 DF")
        );
        assert_eq!(
            hash_nt_password_hash(&password_hash).to_vec(),
            h("41 C0 0C 58 4B D2 D9 1C 40 17 A2 A1 2F A5 9F 3F")
        );
        let digest = generate_authenticator_response(
            &password_hash,
            &nt_response,
            &peer_challenge(),
            &auth_challenge(),
            USER,
        );
        assert_eq!(
            &authenticator_response_string(&digest)[..],
            b"S=407A5589115FD0D6209F510FE9C04566932CDA56"
        );
        assert!(check_authenticator_response(
            &password_hash,
            &nt_response,
            &peer_challenge(),
            &auth_challenge(),
            USER,
            b"s=407a5589115fd0d6209f510fe9c04566932cda56",
        ));
        assert!(!check_authenticator_response(
            &password_hash,
            &nt_response,
            &peer_challenge(),
            &auth_challenge(),
            USER,
            b"S=407A5589115FD0D6209F510FE9C04566932CDA57",
        ));
        assert!(verify_nt_response(
            &auth_challenge(),
            &peer_challenge(),
            USER,
            &password_hash,
            &nt_response
        ));
    }

    #[test]
    fn domain_is_stripped_from_user_name() {
        assert_eq!(strip_domain(b"CORP\\alice"), b"alice");
        assert_eq!(strip_domain(b"alice"), b"alice");
        assert_eq!(strip_domain(b"a\\b\\c"), b"c");
    }
}
