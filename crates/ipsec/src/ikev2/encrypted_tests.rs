//! SK payload tests. The three fixed messages were built independently with
//! python3's `cryptography` 38 (AES-CBC, AESGCM, ChaCha20Poly1305) and
//! `hmac`, following RFC 7296 §3.14 and RFC 5282 §5.1 / RFC 7634 §3 (AAD =
//! IKE header + SK generic header; nonce = salt | IV): an IKE_AUTH message
//! (SPIs 01..08 / 11..18, Message ID 1) whose SK payload carries one IDi
//! payload `00 00 00 0c 01 00 00 00 0a 00 00 05` (ID_IPV4_ADDR 10.0.0.5).

use super::*;
use crate::ikev2::wire::{exchange, flags, payload};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

const INNER: [u8; 12] = [0, 0, 0, 12, 1, 0, 0, 0, 10, 0, 0, 5];

const CBC_ENCR: &str = "404142434445464748494a4b4c4d4e4f";
const CBC_INTEG: &str = "606162636465666768696a6b6c6d6e6f70717273";
const CBC_MESSAGE: &str = "010203040506070811121314151617182e202308000000010000004c23000030a0a1a2a3a4a5a6a7a8a9aaabacadaeaf78d243b3b1246d26e6eede5161e78f38cd744486dd7f6be1dcfc8cf5";
const GCM_ENCR: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fc0c1c2c3";
const GCM_MESSAGE: &str = "010203040506070811121314151617182e202308000000010000004523000029d0d1d2d3d4d5d6d71ed00eb9b424dd2acea600cca3c47c1d371f5a19f923a44eafe795d769";
const CHACHA_ENCR: &str =
    "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3fe0e1e2e3";
const CHACHA_MESSAGE: &str = "010203040506070811121314151617182e202308000000010000004523000029d0d1d2d3d4d5d6d7efe39c276649023a619d463ffb61588204183f98e87edccddc6d82213e";

fn cbc() -> SkTransform {
    SkTransform {
        cipher: SkCipher::Cbc(IkeCipher::Aes128Cbc),
        integ: Some(SkInteg::HmacSha1_96),
    }
}

fn gcm256() -> SkTransform {
    SkTransform {
        cipher: SkCipher::AesGcm16 { key_len: 32 },
        integ: None,
    }
}

fn chacha() -> SkTransform {
    SkTransform {
        cipher: SkCipher::ChaCha20Poly1305,
        integ: None,
    }
}

fn open_fixed(
    transform: SkTransform,
    encr: &str,
    integ: &str,
    message: &str,
) -> Result<Vec<u8>, SkError> {
    let (encr, integ, message) = (h(encr), h(integ), h(message));
    let located = locate(&message)?;
    assert_eq!(located.next, payload::IDI);
    let keys = DirectionKeys {
        encr: &encr,
        integ: &integ,
    };
    open(&transform, keys, &message, &located).map(|p| p.to_vec())
}

#[test]
fn independently_built_messages_open() {
    assert_eq!(
        open_fixed(cbc(), CBC_ENCR, CBC_INTEG, CBC_MESSAGE),
        Ok(INNER.to_vec())
    );
    assert_eq!(
        open_fixed(gcm256(), GCM_ENCR, "", GCM_MESSAGE),
        Ok(INNER.to_vec())
    );
    assert_eq!(
        open_fixed(chacha(), CHACHA_ENCR, "", CHACHA_MESSAGE),
        Ok(INNER.to_vec())
    );
}

#[test]
fn any_flipped_bit_fails_the_integrity_check() {
    for (transform, encr, integ, message) in [
        (cbc(), CBC_ENCR, CBC_INTEG, CBC_MESSAGE),
        (gcm256(), GCM_ENCR, "", GCM_MESSAGE),
        (chacha(), CHACHA_ENCR, "", CHACHA_MESSAGE),
    ] {
        let original = h(message);
        // every byte after the header's next-payload/length fields: SPIs,
        // exchange, flags, message ID, SK header, IV, ciphertext, ICV
        for at in (0..original.len()).filter(|&i| !(16..17).contains(&i) && !(24..28).contains(&i))
        {
            let mut bad = original.clone();
            bad[at] ^= 0x01;
            let Ok(located) = locate(&bad) else { continue };
            let (e, i) = (h(encr), h(integ));
            let result = open(
                &transform,
                DirectionKeys {
                    encr: &e,
                    integ: &i,
                },
                &bad,
                &located,
            );
            assert!(result.is_err(), "flip at {at} went unnoticed");
        }
    }
}

#[test]
fn a_wrong_key_is_an_integrity_failure() {
    let mut wrong = h(CBC_INTEG);
    wrong[0] ^= 1;
    assert_eq!(
        open_fixed(cbc(), CBC_ENCR, &hex::encode(wrong), CBC_MESSAGE),
        Err(SkError::Integrity)
    );
    let mut wrong = h(GCM_ENCR);
    wrong[35] ^= 1; // the salt
    assert_eq!(
        open_fixed(gcm256(), &hex::encode(wrong), "", GCM_MESSAGE),
        Err(SkError::Integrity)
    );
}

fn header() -> Header {
    Header::new([1; 8], [2; 8], exchange::IKE_AUTH, flags::INITIATOR, 1)
}

#[test]
fn seal_then_open_with_every_transform() {
    let transforms = [
        cbc(),
        SkTransform {
            cipher: SkCipher::Cbc(IkeCipher::Aes256Cbc),
            integ: Some(SkInteg::HmacSha256_128),
        },
        SkTransform {
            cipher: SkCipher::Cbc(IkeCipher::TripleDesCbc),
            integ: Some(SkInteg::HmacSha384_192),
        },
        SkTransform {
            cipher: SkCipher::Cbc(IkeCipher::Aes192Cbc),
            integ: Some(SkInteg::HmacSha512_256),
        },
        SkTransform {
            cipher: SkCipher::AesGcm16 { key_len: 16 },
            integ: None,
        },
        SkTransform {
            cipher: SkCipher::AesGcm16 { key_len: 24 },
            integ: None,
        },
        gcm256(),
        chacha(),
    ];
    for transform in transforms {
        let lengths = transform.key_lengths();
        let encr: Vec<u8> = (0..lengths.encr_len as u8).collect();
        let integ: Vec<u8> = (0..lengths.integ_len as u8).map(|b| b ^ 0x5a).collect();
        let keys = DirectionKeys {
            encr: &encr,
            integ: &integ,
        };
        for inner_len in [0usize, 1, 15, 16, 17, 100, 1000] {
            let inner: Vec<u8> = (0..inner_len).map(|i| i as u8).collect();
            let message = seal(&transform, keys, &header(), payload::IDI, &inner).expect("seal");
            let parsed = Header::parse(&message).expect("header");
            assert_eq!(parsed.next_payload, payload::SK);
            let located = locate(&message).expect("SK found");
            assert_eq!(located.next, payload::IDI);
            let plain = open(&transform, keys, &message, &located).expect("opens");
            assert_eq!(&*plain, &inner[..], "{transform:?} with {inner_len} bytes");
            assert_eq!(
                message.len(),
                HEADER_LEN + GENERIC_HEADER_LEN + inner_len + transform.overhead(inner_len)
            );
        }
    }
}

#[test]
fn fragments_carry_their_numbers_and_only_the_first_names_the_chain() {
    let transform = gcm256();
    let encr = h(GCM_ENCR);
    let keys = DirectionKeys {
        encr: &encr,
        integ: &[],
    };
    let first = seal_fragment(&transform, keys, &header(), payload::IDI, 1, 2, b"part one")
        .expect("fragment 1");
    let second = seal_fragment(&transform, keys, &header(), payload::IDI, 2, 2, b"part two")
        .expect("fragment 2");
    let l1 = locate(&first).expect("SKF");
    let l2 = locate(&second).expect("SKF");
    assert_eq!(
        (l1.kind, l1.next, l1.fragment),
        (payload::SKF, payload::IDI, Some((1, 2)))
    );
    assert_eq!((l2.next, l2.fragment), (0, Some((2, 2))));
    assert_eq!(
        &*open(&transform, keys, &second, &l2).expect("opens"),
        b"part two"
    );
    // the numbers are covered by the AAD: change one and it no longer opens
    let mut renumbered = second.clone();
    renumbered[HEADER_LEN + 5] = 1;
    let l = locate(&renumbered).expect("SKF");
    assert_eq!(
        open(&transform, keys, &renumbered, &l),
        Err(SkError::Integrity)
    );
}

#[test]
fn short_and_unencrypted_messages_are_errors() {
    let keys = DirectionKeys {
        encr: &[0; 16],
        integ: &[0; 20],
    };
    // an SK payload with only 5 bytes of content
    let mut chain = crate::ikev2::wire::PayloadChain::new();
    chain.push(payload::SK, &[0; 5]);
    let message = crate::ikev2::wire::message(&header(), &chain);
    let located = locate(&message).expect("located");
    assert_eq!(open(&cbc(), keys, &message, &located), Err(SkError::Short));
    // no SK payload at all
    let mut chain = crate::ikev2::wire::PayloadChain::new();
    chain.push(payload::NONCE, &[0; 16]);
    let message = crate::ikev2::wire::message(&header(), &chain);
    assert_eq!(locate(&message), Err(SkError::NoEncryptedPayload));
    // a pad length larger than the data it pads (a correctly protected
    // message from a broken peer)
    let mut block = [0u8; 16];
    block[15] = 200;
    let iv = [7u8; 16];
    IkeCipher::Aes128Cbc
        .encrypt_in_place(&[0; 16], &iv, &mut block)
        .expect("encrypt");
    let mut body = iv.to_vec();
    body.extend_from_slice(&block);
    body.extend_from_slice(&[0; 12]);
    let mut chain = crate::ikev2::wire::PayloadChain::new();
    chain.push(payload::SK, &body);
    let mut message = crate::ikev2::wire::message(&header(), &chain);
    let icv_at = message.len() - 12;
    let mac = HashAlg::Sha1.hmac(&[0; 20], &[&message[..icv_at]]);
    message[icv_at..].copy_from_slice(&mac[..12]);
    let located = locate(&message).expect("SK");
    assert_eq!(
        open(&cbc(), keys, &message, &located),
        Err(SkError::Padding)
    );
    // an empty inner chain is fine
    let transform = gcm256();
    let encr = h(GCM_ENCR);
    let gkeys = DirectionKeys {
        encr: &encr,
        integ: &[],
    };
    let message = seal(&transform, gkeys, &header(), payload::IDI, &[]).expect("seal");
    let located = locate(&message).expect("SK");
    assert!(open(&transform, gkeys, &message, &located)
        .expect("empty")
        .is_empty());
}
