//! The AUTH payload's shared-key form (RFC 7296 §2.15): what each side
//! signs, and the MAC a pre-shared key (or an EAP MSK, §2.16) makes of it.

use zeroize::Zeroizing;

use crate::ike_crypto::HashAlg;

/// §2.15: the pad string of the shared-key MAC (17 ASCII characters, no
/// terminator).
pub const KEY_PAD: &[u8] = b"Key Pad for IKEv2";

/// `<SignedOctets>` of §2.15: the sender's first message of the IKE SA
/// (its IKE_SA_INIT request or response, as sent), the other side's nonce
/// data, and `prf(SK_px, RestOfIDPayload)` over the sender's ID body.
pub fn signed_octets(
    prf: HashAlg,
    real_message: &[u8],
    other_nonce: &[u8],
    sk_p: &[u8],
    id_body: &[u8],
) -> Vec<u8> {
    let maced_id = prf.hmac(sk_p, &[id_body]);
    let mut out = Vec::with_capacity(real_message.len() + other_nonce.len() + maced_id.len());
    out.extend_from_slice(real_message);
    out.extend_from_slice(other_nonce);
    out.extend_from_slice(&maced_id);
    out
}

/// `AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)`
/// (§2.15). With EAP the shared secret is the MSK, or SK_pi/SK_pr when the
/// method makes none (§2.16).
pub fn shared_key_auth(prf: HashAlg, secret: &[u8], signed: &[u8]) -> Zeroizing<Vec<u8>> {
    let key = prf.hmac(secret, &[KEY_PAD]);
    prf.hmac(&key, &[signed])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checked against python3:
    /// ```text
    /// import hmac, hashlib
    /// p = lambda k, d: hmac.new(k, d, hashlib.sha256).digest()
    /// signed = b'message-one' + bytes(range(32)) + p(bytes(32), bytes([2,0,0,0]) + b'client.example')
    /// print(p(p(b'correct horse', b'Key Pad for IKEv2'), signed).hex())
    /// ```
    #[test]
    fn shared_key_mac_matches_an_independent_computation() {
        let id_body = [&[2u8, 0, 0, 0][..], b"client.example"].concat();
        let nonce: Vec<u8> = (0..32).collect();
        let signed = signed_octets(HashAlg::Sha256, b"message-one", &nonce, &[0; 32], &id_body);
        let auth = shared_key_auth(HashAlg::Sha256, b"correct horse", &signed);
        assert_eq!(
            hex::encode(&*auth),
            "e64051d15dc86be8dfce1947d61b53c3d18099b4bb4f162a03ddb295719295a0"
        );
    }
}
