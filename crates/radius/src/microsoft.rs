//! Microsoft vendor-specific attributes (RFC 2548), Vendor-Id 311.
//!
//! The sub-attributes use the RFC 2865 §5.26 layout (vendor type, vendor
//! length, value) inside a Vendor-Specific attribute.

use thiserror::Error;
use zeroize::Zeroizing;

use crate::packet::{Attribute, EncodeError, SubAttribute, AUTHENTICATOR_LEN};
use crate::security::{md5_chain, Secret};

/// Microsoft's SMI Network Management Private Enterprise Code.
pub const VENDOR_MICROSOFT: u32 = 311;

/// MS-CHAP-Response (RFC 2548 §2.1.3).
pub const MS_CHAP_RESPONSE: u8 = 1;
/// MS-CHAP-Error (RFC 2548 §2.1.5).
pub const MS_CHAP_ERROR: u8 = 2;
/// MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4).
pub const MS_MPPE_ENCRYPTION_POLICY: u8 = 7;
/// MS-MPPE-Encryption-Types (RFC 2548 §2.4.5).
pub const MS_MPPE_ENCRYPTION_TYPES: u8 = 8;
/// MS-CHAP-Domain (RFC 2548 §2.1.6).
pub const MS_CHAP_DOMAIN: u8 = 10;
/// MS-CHAP-Challenge (RFC 2548 §2.1.2).
pub const MS_CHAP_CHALLENGE: u8 = 11;
/// MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1).
pub const MS_CHAP_MPPE_KEYS: u8 = 12;
/// MS-MPPE-Send-Key (RFC 2548 §2.4.2).
pub const MS_MPPE_SEND_KEY: u8 = 16;
/// MS-MPPE-Recv-Key (RFC 2548 §2.4.3).
pub const MS_MPPE_RECV_KEY: u8 = 17;
/// MS-CHAP2-Response (RFC 2548 §2.3.2).
pub const MS_CHAP2_RESPONSE: u8 = 25;
/// MS-CHAP2-Success (RFC 2548 §2.3.3).
pub const MS_CHAP2_SUCCESS: u8 = 26;
/// MS-Primary-DNS-Server (RFC 2548 §2.2.5).
pub const MS_PRIMARY_DNS_SERVER: u8 = 28;
/// MS-Secondary-DNS-Server (RFC 2548 §2.2.6).
pub const MS_SECONDARY_DNS_SERVER: u8 = 29;

/// MS-MPPE-Encryption-Policy: encryption allowed (RFC 2548 §2.4.4).
pub const ENCRYPTION_ALLOWED: u32 = 1;
/// MS-MPPE-Encryption-Policy: encryption required (RFC 2548 §2.4.4).
pub const ENCRYPTION_REQUIRED: u32 = 2;
/// MS-MPPE-Encryption-Types bit: 40-bit keys (RFC 2548 §2.4.5).
pub const ENCRYPTION_TYPE_40BIT: u32 = 0x2;
/// MS-MPPE-Encryption-Types bit: 128-bit keys (RFC 2548 §2.4.5).
pub const ENCRYPTION_TYPE_128BIT: u32 = 0x4;
/// MS-MPPE-Encryption-Types bit: 56-bit keys (the MPPE 0x08 bit, RFC 3078).
pub const ENCRYPTION_TYPE_56BIT: u32 = 0x8;

/// Why a Microsoft attribute could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MsError {
    /// The value has the wrong length for this attribute.
    #[error("Microsoft attribute {typ} has a bad length {len}")]
    Length {
        /// Vendor type.
        typ: u8,
        /// Value length.
        len: usize,
    },
    /// MS-CHAP2-Success without the "S=" prefix.
    #[error("MS-CHAP2-Success does not start with \"S=\"")]
    SuccessFormat,
    /// The salt's most significant bit is clear (RFC 2548 §2.4.2).
    #[error("MPPE key salt {0:#06x} lacks the high bit")]
    Salt(u16),
    /// The decrypted Key-Length exceeds the decrypted data.
    #[error("MPPE Key-Length {0} exceeds the encrypted data")]
    KeyLength(usize),
    /// The attribute would not fit.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// A Microsoft Vendor-Specific attribute holding one sub-attribute.
pub fn ms_attribute(typ: u8, value: &[u8]) -> Result<Attribute, EncodeError> {
    Attribute::vendor_specific(VENDOR_MICROSOFT, &[SubAttribute::new(typ, value.to_vec())])
}

/// MS-CHAP2-Response (RFC 2548 §2.3.2): 50 octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsChap2Response {
    /// The PPP CHAP Identifier of the peer's Response.
    pub ident: u8,
    /// Flags (currently zero).
    pub flags: u8,
    /// The peer's 16-octet challenge.
    pub peer_challenge: [u8; 16],
    /// The 24-octet NT-Response.
    pub response: [u8; 24],
}

impl MsChap2Response {
    /// Encoded length.
    pub const LEN: usize = 50;

    /// The 50-octet value: Ident, Flags, Peer-Challenge, 8 reserved zero
    /// octets, Response.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = self.ident;
        v[1] = self.flags;
        v[2..18].copy_from_slice(&self.peer_challenge);
        v[26..50].copy_from_slice(&self.response);
        v
    }

    /// Reads the 50-octet value (the reserved octets are not checked).
    pub fn decode(v: &[u8]) -> Result<MsChap2Response, MsError> {
        if v.len() != Self::LEN {
            return Err(MsError::Length {
                typ: MS_CHAP2_RESPONSE,
                len: v.len(),
            });
        }
        let mut peer_challenge = [0u8; 16];
        peer_challenge.copy_from_slice(&v[2..18]);
        let mut response = [0u8; 24];
        response.copy_from_slice(&v[26..50]);
        Ok(MsChap2Response {
            ident: v[0],
            flags: v[1],
            peer_challenge,
            response,
        })
    }
}

/// MS-CHAP-Response (RFC 2548 §2.1.3): 50 octets, the fields of an
/// MS-CHAPv1 Response (RFC 2433 §4) after the CHAP Identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsChapResponse {
    /// The PPP CHAP Identifier of the peer's Response.
    pub ident: u8,
    /// 1: use the NT-Response; 0: the LM-Response.
    pub flags: u8,
    /// The 24-octet LM-Response (zero when unused).
    pub lm_response: [u8; 24],
    /// The 24-octet NT-Response.
    pub nt_response: [u8; 24],
}

impl MsChapResponse {
    /// Encoded length.
    pub const LEN: usize = 50;

    /// The 50-octet value: Ident, Flags, LM-Response, NT-Response.
    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut v = [0u8; Self::LEN];
        v[0] = self.ident;
        v[1] = self.flags;
        v[2..26].copy_from_slice(&self.lm_response);
        v[26..50].copy_from_slice(&self.nt_response);
        v
    }
}

/// The MS-CHAPv1 keys of MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1), decrypted.
#[derive(Clone, PartialEq, Eq)]
pub struct MsChapMppeKeys {
    /// The NT-Key: what FreeRADIUS and Windows servers put there is the
    /// NtPasswordHashHash (MD4 of the NT hash), from which the NAS derives
    /// the MPPE start key with the challenge (RFC 3079 §2.4).
    pub nt_key: Zeroizing<[u8; 16]>,
}

impl std::fmt::Debug for MsChapMppeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never key material.
        f.write_str("MsChapMppeKeys(..)")
    }
}

/// Decrypts MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1): the 24-octet Keys field
/// (LM-Key 8, NT-Key 16), padded to 32, hidden like a User-Password
/// (RFC 2865 §5.2) with the shared secret and the Request Authenticator.
pub fn decrypt_mschap_mppe_keys(
    value: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<MsChapMppeKeys, MsError> {
    if value.len() != 32 {
        return Err(MsError::Length {
            typ: MS_CHAP_MPPE_KEYS,
            len: value.len(),
        });
    }
    let mut plain = Zeroizing::new([0u8; 32]);
    plain.copy_from_slice(value);
    md5_chain(
        secret.as_bytes(),
        &[request_authenticator],
        &mut plain[..],
        false,
    );
    let mut nt_key = Zeroizing::new([0u8; 16]);
    nt_key.copy_from_slice(&plain[8..24]);
    Ok(MsChapMppeKeys { nt_key })
}

/// MS-CHAP2-Success (RFC 2548 §2.3.3): Ident, then the 42-octet
/// authenticator response "S=" followed by 40 hexadecimal digits, which the
/// NAS relays to the peer in the CHAP Success message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsChap2Success {
    /// The PPP CHAP Identifier.
    pub ident: u8,
    /// "S=<40 hex digits>".
    pub authenticator_response: [u8; 42],
}

impl MsChap2Success {
    /// Reads the 43-octet value.
    pub fn decode(v: &[u8]) -> Result<MsChap2Success, MsError> {
        if v.len() != 43 {
            return Err(MsError::Length {
                typ: MS_CHAP2_SUCCESS,
                len: v.len(),
            });
        }
        if &v[1..3] != b"S=" {
            return Err(MsError::SuccessFormat);
        }
        let mut authenticator_response = [0u8; 42];
        authenticator_response.copy_from_slice(&v[1..]);
        Ok(MsChap2Success {
            ident: v[0],
            authenticator_response,
        })
    }

    /// The 43-octet value.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(43);
        v.push(self.ident);
        v.extend_from_slice(&self.authenticator_response);
        v
    }
}

/// MS-CHAP-Error (RFC 2548 §2.1.5): Ident, then text such as
/// "E=691 R=0 C=... V=3 M=...".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MsChapError {
    /// The PPP CHAP Identifier.
    pub ident: u8,
    /// The error text, as sent.
    pub message: Vec<u8>,
}

impl MsChapError {
    /// Reads the value (at least the Ident octet).
    pub fn decode(v: &[u8]) -> Result<MsChapError, MsError> {
        let (&ident, rest) = v.split_first().ok_or(MsError::Length {
            typ: MS_CHAP_ERROR,
            len: 0,
        })?;
        Ok(MsChapError {
            ident,
            message: rest.to_vec(),
        })
    }

    /// The value.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = vec![self.ident];
        v.extend_from_slice(&self.message);
        v
    }

    /// The "E=" error code, if it parses.
    pub fn error_code(&self) -> Option<u32> {
        let text = std::str::from_utf8(&self.message).ok()?;
        let e = text.split(' ').find_map(|f| f.strip_prefix("E="))?;
        e.parse().ok()
    }
}

/// Encrypts an MS-MPPE-Send-Key or MS-MPPE-Recv-Key value (RFC 2548
/// §2.4.2): Salt (2 octets, high bit set) followed by the encryption of
/// Key-Length, Key and zero padding to a multiple of 16, with
/// `b(1) = MD5(S + R + A)`, `b(i) = MD5(S + c(i-1))` where S is the shared
/// secret, R the Request Authenticator and A the salt.
pub fn encrypt_mppe_key(
    key: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    salt: u16,
) -> Result<Vec<u8>, MsError> {
    if salt & 0x8000 == 0 {
        return Err(MsError::Salt(salt));
    }
    // Key-Length is one octet and the attribute value at most 247 octets.
    if key.len() > 224 {
        return Err(MsError::Length {
            typ: MS_MPPE_SEND_KEY,
            len: key.len(),
        });
    }
    let plain_len = (1 + key.len()).div_ceil(16) * 16;
    let mut p = Zeroizing::new(vec![0u8; plain_len]);
    p[0] = key.len() as u8;
    p[1..=key.len()].copy_from_slice(key);
    let salt_bytes = salt.to_be_bytes();
    md5_chain(
        secret.as_bytes(),
        &[request_authenticator, &salt_bytes],
        &mut p,
        true,
    );
    let mut out = Vec::with_capacity(2 + plain_len);
    out.extend_from_slice(&salt_bytes);
    out.extend_from_slice(&p);
    Ok(out)
}

/// Decrypts an MS-MPPE-Send-Key or MS-MPPE-Recv-Key value (RFC 2548
/// §2.4.2, §2.4.3) with the shared secret and the Request Authenticator of
/// the Access-Request it answers.
pub fn decrypt_mppe_key(
    value: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Zeroizing<Vec<u8>>, MsError> {
    if value.len() < 2 + 16 || !(value.len() - 2).is_multiple_of(16) {
        return Err(MsError::Length {
            typ: MS_MPPE_SEND_KEY,
            len: value.len(),
        });
    }
    let salt = u16::from_be_bytes([value[0], value[1]]);
    if salt & 0x8000 == 0 {
        return Err(MsError::Salt(salt));
    }
    let mut p = Zeroizing::new(value[2..].to_vec());
    md5_chain(
        secret.as_bytes(),
        &[request_authenticator, &value[..2]],
        &mut p,
        false,
    );
    let key_len = usize::from(p[0]);
    if 1 + key_len > p.len() {
        return Err(MsError::KeyLength(key_len));
    }
    Ok(Zeroizing::new(p[1..=key_len].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chap2_response_layout() {
        let r = MsChap2Response {
            ident: 1,
            flags: 0,
            peer_challenge: [0xaa; 16],
            response: [0xbb; 24],
        };
        let v = r.encode();
        assert_eq!(v[0], 1);
        assert_eq!(&v[18..26], &[0; 8]);
        assert_eq!(MsChap2Response::decode(&v).unwrap(), r);
        assert!(MsChap2Response::decode(&v[..49]).is_err());
    }

    #[test]
    fn chap2_success_and_error() {
        let mut v = vec![7u8];
        v.extend_from_slice(b"S=");
        v.extend_from_slice(&[b'A'; 40]);
        let s = MsChap2Success::decode(&v).unwrap();
        assert_eq!(s.ident, 7);
        assert_eq!(s.encode(), v);
        v[1] = b'X';
        assert_eq!(MsChap2Success::decode(&v), Err(MsError::SuccessFormat));
        assert!(MsChap2Success::decode(&v[..42]).is_err());

        let e = MsChapError::decode(b"\x01E=691 R=0 C=00 V=3").unwrap();
        assert_eq!(e.ident, 1);
        assert_eq!(e.error_code(), Some(691));
        assert_eq!(e.encode(), b"\x01E=691 R=0 C=00 V=3");
        assert!(MsChapError::decode(b"").is_err());
    }

    #[test]
    fn chap_response_layout() {
        let r = MsChapResponse {
            ident: 9,
            flags: 1,
            lm_response: [0; 24],
            nt_response: [0xcc; 24],
        };
        let v = r.encode();
        assert_eq!(&v[..2], &[9, 1]);
        assert_eq!(&v[2..26], &[0; 24]);
        assert_eq!(&v[26..], &[0xcc; 24]);
    }

    /// RFC 2548 §2.4.1 as a server builds it: LM-Key (8) and NT-Key (16)
    /// padded to 32 and hidden like a User-Password (RFC 2865 §5.2). The
    /// NT-Key ends in zero octets on purpose: they are key, not padding.
    #[test]
    fn mschap_mppe_keys_decrypt() {
        let s = Secret::new("xyzzy5461");
        let ra = [0x5a; 16];
        let mut nt_key = [0x42u8; 16];
        nt_key[14] = 0;
        nt_key[15] = 0;
        let mut plain = vec![0u8; 8];
        plain.extend_from_slice(&nt_key);
        let hidden = crate::security::hide_user_password(&plain, &s, &ra).unwrap();
        assert_eq!(hidden.len(), 32);
        let keys = decrypt_mschap_mppe_keys(&hidden, &s, &ra).unwrap();
        assert_eq!(*keys.nt_key, nt_key);
        assert_eq!(format!("{keys:?}"), "MsChapMppeKeys(..)");
        assert!(decrypt_mschap_mppe_keys(&hidden[..24], &s, &ra).is_err());
        let other = decrypt_mschap_mppe_keys(&hidden, &Secret::new("other"), &ra).unwrap();
        assert_ne!(*other.nt_key, nt_key);
    }

    #[test]
    fn mppe_key_errors() {
        let s = Secret::new("secret");
        let ra = [1u8; 16];
        assert_eq!(
            encrypt_mppe_key(&[0; 16], &s, &ra, 0x1234),
            Err(MsError::Salt(0x1234))
        );
        let mut v = encrypt_mppe_key(&[9; 16], &s, &ra, 0x8001).unwrap();
        assert_eq!(v.len(), 2 + 32);
        assert!(decrypt_mppe_key(&v[..33], &s, &ra).is_err());
        v[0] &= 0x7f;
        assert!(matches!(
            decrypt_mppe_key(&v, &s, &ra),
            Err(MsError::Salt(_))
        ));
        // A wrong secret gives a wrong Key-Length or a wrong key.
        let v = encrypt_mppe_key(&[9; 16], &s, &ra, 0x8001).unwrap();
        match decrypt_mppe_key(&v, &Secret::new("other"), &ra) {
            Ok(k) => assert_ne!(&k[..], &[9; 16]),
            Err(e) => assert!(matches!(e, MsError::KeyLength(_))),
        }
    }

    proptest! {
        #[test]
        fn mppe_key_round_trip(
            key in proptest::collection::vec(any::<u8>(), 0..=64),
            secret in proptest::collection::vec(any::<u8>(), 1..32),
            ra in any::<[u8; 16]>(),
            salt in 0x8000u16..=0xffff,
        ) {
            let s = Secret::new(secret);
            let v = encrypt_mppe_key(&key, &s, &ra, salt).unwrap();
            prop_assert_eq!((v.len() - 2) % 16, 0);
            prop_assert_eq!(&decrypt_mppe_key(&v, &s, &ra).unwrap()[..], &key[..]);
        }

        #[test]
        fn mppe_decrypt_never_panics(v in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = decrypt_mppe_key(&v, &Secret::new("s"), &[0; 16]);
        }
    }
}
