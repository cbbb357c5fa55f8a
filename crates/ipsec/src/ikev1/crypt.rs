//! Encryption of ISAKMP messages after the key exchange (RFC 2409 §5,
//! Appendix B; RFC 2408 §3.1): CBC over the payloads, zero-padded to the
//! block size, with the IV chained from the previous message of the same
//! exchange.

use zeroize::Zeroizing;

use crate::ike_crypto::{ikev1_keys, HashAlg, IkeCipher};

use super::wire::{self, flags, Header, PayloadChain, HEADER_LEN};

/// The keys of an established (or establishing) IKE SA.
pub struct MessageKeys {
    pub cipher: IkeCipher,
    pub hash: HashAlg,
    pub enc_key: Zeroizing<Vec<u8>>,
    pub skeyid_a: Zeroizing<Vec<u8>>,
    pub skeyid_d: Zeroizing<Vec<u8>>,
    /// The last CBC block of Main Mode (RFC 2409 Appendix B: the IV of
    /// every later exchange is derived from it and the message ID).
    pub phase1_last_block: Vec<u8>,
}

impl MessageKeys {
    /// The first IV of a Quick Mode or Informational exchange.
    pub fn exchange_iv(&self, message_id: u32) -> Vec<u8> {
        ikev1_keys::phase2_iv(
            self.hash,
            &self.phase1_last_block,
            message_id,
            self.cipher.block_len(),
        )
    }

    /// prf(SKEYID_a, parts): the HASH payloads of Quick Mode and
    /// Informational exchanges (RFC 2409 §5.5, §5.7).
    pub fn hash_a(&self, parts: &[&[u8]]) -> Zeroizing<Vec<u8>> {
        self.hash.hmac(&self.skeyid_a, parts)
    }
}

/// Decrypts the body of an encrypted message with `iv`. Returns the
/// plaintext payload bytes (padding included: the chain parser ignores it)
/// and the IV for the next message (the last ciphertext block).
pub fn decrypt(
    cipher: IkeCipher,
    key: &[u8],
    iv: &[u8],
    message: &[u8],
) -> Option<(Vec<u8>, Vec<u8>)> {
    let body = message.get(HEADER_LEN..)?;
    let block = cipher.block_len();
    if body.is_empty() || body.len() % block != 0 {
        return None;
    }
    let next_iv = body[body.len() - block..].to_vec();
    let mut plain = body.to_vec();
    cipher.decrypt_in_place(key, iv, &mut plain).ok()?;
    Some((plain, next_iv))
}

/// Builds an encrypted message: header (E flag set), then the chain,
/// zero-padded to the block size and encrypted with `iv`. Returns the
/// message and the IV for the next message.
pub fn encrypt(
    cipher: IkeCipher,
    key: &[u8],
    iv: &[u8],
    header: &Header,
    chain: &PayloadChain,
) -> (Vec<u8>, Vec<u8>) {
    let block = cipher.block_len();
    let mut body = chain.bytes().to_vec();
    let padded = body.len().div_ceil(block) * block;
    body.resize(padded.max(block), 0);
    cipher
        .encrypt_in_place(key, iv, &mut body)
        .expect("key and IV sizes come from the negotiated cipher");
    let next_iv = body[body.len() - block..].to_vec();
    let mut out = vec![0u8; HEADER_LEN];
    out.extend_from_slice(&body);
    let mut h = *header;
    h.next_payload = chain.first();
    h.flags |= flags::ENCRYPTED;
    h.length = out.len() as u32;
    h.write(&mut out);
    (out, next_iv)
}

/// The bytes of every payload after the first (the HASH payload), up to the
/// end of the last one: what HASH(1)/HASH(2) of RFC 2409 §5.5 cover.
pub fn after_first_payload<'a>(payloads: &[wire::RawPayload<'a>]) -> Vec<u8> {
    payloads
        .iter()
        .skip(1)
        .flat_map(|p| p.whole.iter().copied())
        .collect()
}
