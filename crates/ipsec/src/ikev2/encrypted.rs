//! The Encrypted and Authenticated payload SK (RFC 7296 §3.14) and its
//! fragment form SKF (RFC 7383 §2.5): IV, ciphertext of the inner payloads
//! with padding, and the integrity checksum.
//!
//! Two kinds of transform protect it: a CBC cipher with a separate HMAC
//! (§3.14: the checksum covers the message from the IKE header through the
//! ciphertext), or an AEAD (AES-GCM, RFC 5282 §5; ChaCha20-Poly1305,
//! RFC 7634 §3) whose associated data is everything before the IV.

use aws_lc_rs::aead::{
    Aad, LessSafeKey, Nonce, UnboundKey, AES_128_GCM, AES_192_GCM, AES_256_GCM, CHACHA20_POLY1305,
};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use thiserror::Error;
use zeroize::Zeroizing;

use super::sa_payload::ids;
use super::wire::{self, Header, GENERIC_HEADER_LEN, HEADER_LEN};
use crate::ike_crypto::{HashAlg, IkeCipher};

/// The cipher of the SK payload (IKE transform type 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkCipher {
    Cbc(IkeCipher),
    /// AES-GCM with a 16-byte ICV (RFC 5282); key length in bytes.
    AesGcm16 {
        key_len: usize,
    },
    /// RFC 7634.
    ChaCha20Poly1305,
}

/// AEAD salt length (RFC 5282 §7.1, RFC 7634 §4): the last 4 bytes of
/// SK_ei/SK_er, joined with the 8-byte IV into the 12-byte nonce.
const AEAD_SALT_LEN: usize = 4;
const AEAD_IV_LEN: usize = 8;
const AEAD_ICV_LEN: usize = 16;

impl SkCipher {
    /// From an ENCR transform ID and its Key Length attribute (bits).
    pub fn from_transform(id: u16, key_bits: Option<u16>) -> Option<SkCipher> {
        match (id, key_bits) {
            (ids::ENCR_AES_CBC, Some(128)) => Some(SkCipher::Cbc(IkeCipher::Aes128Cbc)),
            (ids::ENCR_AES_CBC, Some(192)) => Some(SkCipher::Cbc(IkeCipher::Aes192Cbc)),
            (ids::ENCR_AES_CBC, Some(256)) => Some(SkCipher::Cbc(IkeCipher::Aes256Cbc)),
            (ids::ENCR_3DES, None) => Some(SkCipher::Cbc(IkeCipher::TripleDesCbc)),
            (ids::ENCR_AES_GCM_16, Some(bits @ (128 | 192 | 256))) => Some(SkCipher::AesGcm16 {
                key_len: bits as usize / 8,
            }),
            (ids::ENCR_CHACHA20_POLY1305, None) => Some(SkCipher::ChaCha20Poly1305),
            _ => None,
        }
    }

    pub fn is_aead(self) -> bool {
        !matches!(self, SkCipher::Cbc(_))
    }

    /// Length of SK_e* (§2.14): the key, plus the salt for an AEAD.
    pub fn key_material_len(self) -> usize {
        match self {
            SkCipher::Cbc(c) => c.key_len(),
            SkCipher::AesGcm16 { key_len } => key_len + AEAD_SALT_LEN,
            SkCipher::ChaCha20Poly1305 => 32 + AEAD_SALT_LEN,
        }
    }

    fn iv_len(self) -> usize {
        match self {
            SkCipher::Cbc(c) => c.block_len(),
            _ => AEAD_IV_LEN,
        }
    }
}

/// The integrity algorithm of the SK payload with a CBC cipher (IKE
/// transform type 3; RFC 2404, RFC 4868 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkInteg {
    HmacSha1_96,
    HmacSha256_128,
    HmacSha384_192,
    HmacSha512_256,
}

impl SkInteg {
    pub fn from_transform(id: u16) -> Option<SkInteg> {
        match id {
            ids::AUTH_HMAC_SHA1_96 => Some(SkInteg::HmacSha1_96),
            ids::AUTH_HMAC_SHA2_256_128 => Some(SkInteg::HmacSha256_128),
            ids::AUTH_HMAC_SHA2_384_192 => Some(SkInteg::HmacSha384_192),
            ids::AUTH_HMAC_SHA2_512_256 => Some(SkInteg::HmacSha512_256),
            _ => None,
        }
    }

    fn hash(self) -> HashAlg {
        match self {
            SkInteg::HmacSha1_96 => HashAlg::Sha1,
            SkInteg::HmacSha256_128 => HashAlg::Sha256,
            SkInteg::HmacSha384_192 => HashAlg::Sha384,
            SkInteg::HmacSha512_256 => HashAlg::Sha512,
        }
    }

    /// Length of SK_a* (RFC 4868 §2.1.1: the HMAC's full output length).
    pub fn key_len(self) -> usize {
        self.hash().output_len()
    }

    /// Length of the truncated checksum.
    pub fn icv_len(self) -> usize {
        match self {
            SkInteg::HmacSha1_96 => 12,
            SkInteg::HmacSha256_128 => 16,
            SkInteg::HmacSha384_192 => 24,
            SkInteg::HmacSha512_256 => 32,
        }
    }
}

/// The negotiated protection of an IKE SA's messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SkTransform {
    pub cipher: SkCipher,
    /// `None` exactly when the cipher is an AEAD.
    pub integ: Option<SkInteg>,
}

impl SkTransform {
    fn icv_len(&self) -> usize {
        match self.integ {
            Some(i) => i.icv_len(),
            None => AEAD_ICV_LEN,
        }
    }

    /// Key lengths for the §2.14 split.
    pub fn key_lengths(&self) -> crate::ike_crypto::ikev2_keys::IkeKeyLengths {
        crate::ike_crypto::ikev2_keys::IkeKeyLengths {
            encr_len: self.cipher.key_material_len(),
            integ_len: self.integ.map_or(0, |i| i.key_len()),
        }
    }

    /// Bytes the SK/SKF body adds around `plaintext_len` bytes of inner
    /// payloads (IV, padding, pad length, ICV), for fragment sizing.
    pub fn overhead(&self, plaintext_len: usize) -> usize {
        let padded = padded_len(self.cipher, plaintext_len);
        self.cipher.iv_len() + padded - plaintext_len + self.icv_len()
    }
}

/// The keys of one direction: SK_ei and SK_ai, or SK_er and SK_ar.
#[derive(Clone, Copy)]
pub struct DirectionKeys<'a> {
    pub encr: &'a [u8],
    pub integ: &'a [u8],
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum SkError {
    #[error("the message has no encrypted payload")]
    NoEncryptedPayload,
    #[error("encrypted payload too short for its IV and checksum")]
    Short,
    #[error("integrity check failed")]
    Integrity,
    #[error("ciphertext is not a whole number of blocks")]
    NotBlockAligned,
    #[error("padding length runs past the decrypted data")]
    Padding,
    #[error("key of the wrong length for the negotiated transform")]
    Key,
    #[error("no random IV could be made")]
    Random,
    #[error("message would exceed 64 KiB")]
    TooLong,
    #[error(transparent)]
    Wire(#[from] wire::WireError),
}

/// Total length of the encrypted part (inner payloads, padding, pad length
/// byte). CBC pads to the block size (§3.14); an AEAD needs no padding.
fn padded_len(cipher: SkCipher, plaintext_len: usize) -> usize {
    match cipher {
        SkCipher::Cbc(c) => {
            let block = c.block_len();
            (plaintext_len + 1).div_ceil(block) * block
        }
        _ => plaintext_len + 1,
    }
}

/// Builds a whole protected message: `header` (its Next Payload and Length
/// are filled in), then an SK payload whose Next Payload is `inner_first`,
/// carrying `inner` (a payload chain's bytes).
pub fn seal(
    transform: &SkTransform,
    keys: DirectionKeys<'_>,
    header: &Header,
    inner_first: u8,
    inner: &[u8],
) -> Result<Vec<u8>, SkError> {
    seal_payload(
        transform,
        keys,
        header,
        wire::payload::SK,
        inner_first,
        &[],
        inner,
    )
}

/// Builds one fragment message (RFC 7383 §2.5): an SKF payload with its
/// Fragment Number and Total Fragments. The first fragment names the inner
/// chain's first payload; the others carry 0 there.
pub fn seal_fragment(
    transform: &SkTransform,
    keys: DirectionKeys<'_>,
    header: &Header,
    inner_first: u8,
    number: u16,
    total: u16,
    chunk: &[u8],
) -> Result<Vec<u8>, SkError> {
    let mut numbers = [0u8; 4];
    numbers[..2].copy_from_slice(&number.to_be_bytes());
    numbers[2..].copy_from_slice(&total.to_be_bytes());
    let next = if number == 1 { inner_first } else { 0 };
    seal_payload(
        transform,
        keys,
        header,
        wire::payload::SKF,
        next,
        &numbers,
        chunk,
    )
}

fn seal_payload(
    transform: &SkTransform,
    keys: DirectionKeys<'_>,
    header: &Header,
    kind: u8,
    next: u8,
    fields: &[u8],
    inner: &[u8],
) -> Result<Vec<u8>, SkError> {
    let cipher = transform.cipher;
    let iv_len = cipher.iv_len();
    let padded = padded_len(cipher, inner.len());
    let icv_len = transform.icv_len();
    let payload_len = GENERIC_HEADER_LEN + fields.len() + iv_len + padded + icv_len;
    let total = HEADER_LEN + payload_len;
    if total > wire::MAX_MESSAGE_LEN {
        return Err(SkError::TooLong);
    }
    let mut out = Vec::with_capacity(total);
    let mut h = *header;
    h.next_payload = kind;
    h.length = total as u32;
    out.resize(HEADER_LEN, 0);
    h.write(&mut out);
    out.extend_from_slice(&[next, 0]);
    out.extend_from_slice(&(payload_len as u16).to_be_bytes());
    out.extend_from_slice(fields);
    let iv_at = out.len();
    out.resize(iv_at + iv_len, 0);
    aws_lc_rs::rand::fill(&mut out[iv_at..]).map_err(|_| SkError::Random)?;
    let data_at = out.len();
    out.extend_from_slice(inner);
    // §3.14: padding content is arbitrary; zeros. The pad length byte last.
    let pad = padded - inner.len() - 1;
    out.resize(data_at + padded - 1, 0);
    out.push(pad as u8);
    match cipher {
        SkCipher::Cbc(c) => {
            let integ = transform.integ.ok_or(SkError::Key)?;
            if keys.integ.len() != integ.key_len() {
                return Err(SkError::Key);
            }
            let iv = out[iv_at..data_at].to_vec();
            c.encrypt_in_place(keys.encr, &iv, &mut out[data_at..])
                .map_err(|_| SkError::Key)?;
            let mac = integ.hash().hmac(keys.integ, &[&out]);
            out.extend_from_slice(&mac[..icv_len]);
        }
        _ => {
            let key = aead_key(cipher, keys.encr)?;
            let nonce = aead_nonce(keys.encr, &out[iv_at..data_at])?;
            let (aad, data) = out.split_at_mut(data_at);
            let tag = key
                .seal_in_place_separate_tag(nonce, Aad::from(&aad[..iv_at]), data)
                .map_err(|_| SkError::Key)?;
            out.extend_from_slice(tag.as_ref());
        }
    }
    Ok(out)
}

/// Where the protected content of a message's last payload (SK or SKF)
/// starts, the payload's Next Payload, and for SKF its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Located {
    pub kind: u8,
    pub next: u8,
    /// (Fragment Number, Total Fragments) of an SKF payload.
    pub fragment: Option<(u16, u16)>,
    /// Offset of the IV in the message.
    content_at: usize,
}

/// Finds the SK or SKF payload of a parsed message (it is last, §3.14).
pub fn locate(message: &[u8]) -> Result<Located, SkError> {
    let header = Header::parse(message)?;
    let chain = wire::payloads(header.next_payload, &message[HEADER_LEN..])?;
    let last = chain
        .last()
        .filter(|p| p.kind == wire::payload::SK || p.kind == wire::payload::SKF)
        .ok_or(SkError::NoEncryptedPayload)?;
    // The body is a sub-slice of `message`; its offset is the difference.
    let body_at = last.body.as_ptr() as usize - message.as_ptr() as usize;
    if last.kind == wire::payload::SKF {
        if last.body.len() < 4 {
            return Err(SkError::Short);
        }
        let number = u16::from_be_bytes([last.body[0], last.body[1]]);
        let total = u16::from_be_bytes([last.body[2], last.body[3]]);
        Ok(Located {
            kind: last.kind,
            next: last.next,
            fragment: Some((number, total)),
            content_at: body_at + 4,
        })
    } else {
        Ok(Located {
            kind: last.kind,
            next: last.next,
            fragment: None,
            content_at: body_at,
        })
    }
}

/// Checks and decrypts the SK/SKF payload `located` in `message`, giving
/// the inner bytes without padding. The checksum is verified (in constant
/// time) before anything is decrypted.
pub fn open(
    transform: &SkTransform,
    keys: DirectionKeys<'_>,
    message: &[u8],
    located: &Located,
) -> Result<Zeroizing<Vec<u8>>, SkError> {
    let cipher = transform.cipher;
    let iv_len = cipher.iv_len();
    let icv_len = transform.icv_len();
    let content = message.get(located.content_at..).ok_or(SkError::Short)?;
    if content.len() < iv_len + icv_len + 1 {
        return Err(SkError::Short);
    }
    let data_at = located.content_at + iv_len;
    let icv_at = message.len() - icv_len;
    let mut plain = Zeroizing::new(message[data_at..icv_at].to_vec());
    match cipher {
        SkCipher::Cbc(c) => {
            let integ = transform.integ.ok_or(SkError::Key)?;
            if keys.integ.len() != integ.key_len() {
                return Err(SkError::Key);
            }
            let mac = integ.hash().hmac(keys.integ, &[&message[..icv_at]]);
            verify_slices_are_equal(&mac[..icv_len], &message[icv_at..])
                .map_err(|_| SkError::Integrity)?;
            if !plain.len().is_multiple_of(c.block_len()) {
                return Err(SkError::NotBlockAligned);
            }
            c.decrypt_in_place(keys.encr, &message[located.content_at..data_at], &mut plain)
                .map_err(|_| SkError::Key)?;
        }
        _ => {
            let key = aead_key(cipher, keys.encr)?;
            let nonce = aead_nonce(keys.encr, &message[located.content_at..data_at])?;
            let mut sealed = Zeroizing::new(message[data_at..].to_vec());
            let opened = key
                .open_in_place(
                    nonce,
                    Aad::from(&message[..located.content_at]),
                    &mut sealed,
                )
                .map_err(|_| SkError::Integrity)?;
            plain = Zeroizing::new(opened.to_vec());
        }
    }
    let pad = *plain.last().ok_or(SkError::Padding)? as usize;
    let keep = plain.len().checked_sub(pad + 1).ok_or(SkError::Padding)?;
    plain.truncate(keep);
    Ok(plain)
}

fn aead_key(cipher: SkCipher, encr: &[u8]) -> Result<LessSafeKey, SkError> {
    let key_len = encr.len().checked_sub(AEAD_SALT_LEN).ok_or(SkError::Key)?;
    let algorithm = match (cipher, key_len) {
        (SkCipher::AesGcm16 { key_len: 16 }, 16) => &AES_128_GCM,
        (SkCipher::AesGcm16 { key_len: 24 }, 24) => &AES_192_GCM,
        (SkCipher::AesGcm16 { key_len: 32 }, 32) => &AES_256_GCM,
        (SkCipher::ChaCha20Poly1305, 32) => &CHACHA20_POLY1305,
        _ => return Err(SkError::Key),
    };
    let unbound = UnboundKey::new(algorithm, &encr[..key_len]).map_err(|_| SkError::Key)?;
    Ok(LessSafeKey::new(unbound))
}

fn aead_nonce(encr: &[u8], iv: &[u8]) -> Result<Nonce, SkError> {
    let salt = &encr[encr.len().saturating_sub(AEAD_SALT_LEN)..];
    let mut nonce = [0u8; 12];
    nonce[..AEAD_SALT_LEN].copy_from_slice(salt);
    nonce[AEAD_SALT_LEN..].copy_from_slice(iv);
    Ok(Nonce::assume_unique_for_key(nonce))
}

#[cfg(test)]
#[path = "encrypted_tests.rs"]
mod tests;
