//! Known answers: RFC 3602 §4 (AES-128-CBC), NIST SP 800-38A F.2.3/F.2.4
//! (AES-192-CBC), NIST SP 800-67 Rev. 2 App. B (TDEA), plus round trips and
//! the length checks.

use super::IkeCipher;
use crate::ike_crypto::CryptoError;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

/// Encrypts `plain` and expects `cipher`, then decrypts it back.
fn known_answer(alg: IkeCipher, key: &str, iv: &str, plain: &[u8], cipher: &str) {
    let (key, iv, cipher) = (h(key), h(iv), h(cipher));
    let mut buf = plain.to_vec();
    alg.encrypt_in_place(&key, &iv, &mut buf).expect("encrypt");
    assert_eq!(
        hex::encode(&buf),
        hex::encode(&cipher),
        "{} encrypt",
        alg.name()
    );
    alg.decrypt_in_place(&key, &iv, &mut buf).expect("decrypt");
    assert_eq!(buf, plain, "{} decrypt", alg.name());
}

#[test]
fn rfc3602_aes128_cbc_cases() {
    // RFC 3602 §4 case #1: one block.
    known_answer(
        IkeCipher::Aes128Cbc,
        "06a9214036b8a15b512e03d534120006",
        "3dafba429d9eb430b422da802c9fac41",
        b"Single block msg",
        "e353779c1079aeb82708942dbe77181a",
    );
    // Case #2: two blocks.
    known_answer(
        IkeCipher::Aes128Cbc,
        "c286696d887c9aa0611bbb3e2025a45a",
        "562e17996d093d28ddb3ba695a2e6f58",
        &h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"),
        "d296cd94c2cccf8a3a863028b5e1dc0a7586602d253cfff91b8266bea6d61ab1",
    );
    // Case #3: three blocks.
    known_answer(
        IkeCipher::Aes128Cbc,
        "6c3ea0477630ce21a2ce334aa746c2cd",
        "c782dc4c098c66cbd9cd27d825682c81",
        b"This is a 48-byte message (exactly 3 AES blocks)",
        "d0a02b3836451753d493665d33f0e886 2dea54cdb293abc7506939276772f8d5 \
         021c19216bad525c8579695d83ba2684",
    );
}

#[test]
fn rfc3602_case4_decrypts() {
    // RFC 3602 §4 case #4: 64 bytes, decrypt direction first.
    let key = h("56e47a38c5598974bc46903dba290349");
    let iv = h("8ce82eefbea0da3c44699ed7db51b7d9");
    let plain = h(
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\
                   c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
    );
    let mut buf = h(
        "c30e32ffedc0774e6aff6af0869f71aa0f3af07a9a31a9c684db207eb0ef8e4e\
                     35907aa632c3ffdf868bb7b29d3d46ad83ce9f9a102ee99d49a53e87f4c3da55",
    );
    IkeCipher::Aes128Cbc
        .decrypt_in_place(&key, &iv, &mut buf)
        .expect("decrypt");
    assert_eq!(buf, plain);
}

#[test]
fn sp800_38a_aes192_cbc() {
    // NIST SP 800-38A F.2.3 CBC-AES192.Encrypt (F.2.4 is the same in reverse).
    known_answer(
        IkeCipher::Aes192Cbc,
        "8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b",
        "000102030405060708090a0b0c0d0e0f",
        &h(
            "6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51 \
            30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710",
        ),
        "4f021db243bc633d7178183a9fa071e8 b4d9ada9ad7dedf4e5e738763f69145a \
         571b242012fb7ae07fa9baac3df102e0 08b0e27988598881d920a9e64f5615cd",
    );
}

#[test]
fn sp800_38a_aes256_cbc() {
    // NIST SP 800-38A F.2.5 CBC-AES256.Encrypt, first two blocks.
    known_answer(
        IkeCipher::Aes256Cbc,
        "603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4",
        "000102030405060708090a0b0c0d0e0f",
        &h("6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"),
        "f58c4c04d6e5f1ba779eabfb5f7bfbd6 9cfc4e967edb808d679f777bc6702c7d",
    );
}

#[test]
fn sp800_67_tdea_known_answer_in_cbc() {
    // NIST SP 800-67 Rev. 2 App. B: keys K1|K2|K3, the ECB example
    // "The qufck brown fox jump" -> A826FD8C E53B855F CCE21C81 12256FE6 68D5C05D D9B6B900.
    // CBC with IV 0 gives the same first block; for the later blocks we feed
    // P_i xor C_(i-1), which CBC turns back into the ECB input P_i, so the
    // CBC output must equal the published ECB ciphertext.
    let key = "0123456789ABCDEF 23456789ABCDEF01 456789ABCDEF0123";
    let ecb_plain = b"The qufck brown fox jump";
    let ecb_cipher = h("A826FD8CE53B855F CCE21C8112256FE6 68D5C05DD9B6B900");
    let mut cbc_plain = ecb_plain.to_vec();
    for i in 8..24 {
        cbc_plain[i] ^= ecb_cipher[i - 8];
    }
    known_answer(
        IkeCipher::TripleDesCbc,
        key,
        "0000000000000000",
        &cbc_plain,
        &hex::encode(&ecb_cipher),
    );
}

#[test]
fn round_trips_for_every_cipher() {
    for alg in [
        IkeCipher::Aes128Cbc,
        IkeCipher::Aes192Cbc,
        IkeCipher::Aes256Cbc,
        IkeCipher::TripleDesCbc,
    ] {
        let key: Vec<u8> = (0..alg.key_len() as u8)
            .map(|b| b.wrapping_mul(37))
            .collect();
        let iv: Vec<u8> = (0..alg.block_len() as u8).collect();
        let plain: Vec<u8> = (0..alg.block_len() * 5).map(|i| i as u8).collect();
        let mut buf = plain.clone();
        alg.encrypt_in_place(&key, &iv, &mut buf).expect("encrypt");
        assert_ne!(buf, plain, "{}", alg.name());
        alg.decrypt_in_place(&key, &iv, &mut buf).expect("decrypt");
        assert_eq!(buf, plain, "{}", alg.name());
        // A different IV changes the first block only after decryption.
        let mut buf2 = plain.clone();
        alg.encrypt_in_place(&key, &iv, &mut buf2).expect("encrypt");
        let mut other_iv = iv.clone();
        other_iv[0] ^= 1;
        alg.decrypt_in_place(&key, &other_iv, &mut buf2)
            .expect("decrypt");
        assert_eq!(buf2[0], plain[0] ^ 1);
        assert_eq!(buf2[1..], plain[1..]);
    }
}

#[test]
fn names_and_sizes() {
    assert_eq!(IkeCipher::Aes256Cbc.name(), "AES-CBC-256");
    assert_eq!(IkeCipher::TripleDesCbc.name(), "3DES-CBC");
    assert_eq!(IkeCipher::TripleDesCbc.block_len(), 8);
    assert_eq!(IkeCipher::Aes192Cbc.key_len(), 24);
}

#[test]
fn rejects_bad_lengths() {
    let alg = IkeCipher::Aes128Cbc;
    let mut ragged = [0u8; 17];
    assert!(matches!(
        alg.encrypt_in_place(&[0; 16], &[0; 16], &mut ragged),
        Err(CryptoError::NotBlockAligned)
    ));
    assert!(matches!(
        alg.decrypt_in_place(&[0; 16], &[0; 16], &mut ragged),
        Err(CryptoError::NotBlockAligned)
    ));
    let mut block = [0u8; 16];
    assert!(matches!(
        alg.encrypt_in_place(&[0; 24], &[0; 16], &mut block),
        Err(CryptoError::KeyLength)
    ));
    assert!(matches!(
        alg.decrypt_in_place(&[0; 16], &[0; 8], &mut block),
        Err(CryptoError::NotBlockAligned)
    ));
    let mut des_ragged = [0u8; 12];
    assert!(matches!(
        IkeCipher::TripleDesCbc.decrypt_in_place(&[0; 24], &[0; 8], &mut des_ragged),
        Err(CryptoError::NotBlockAligned)
    ));
    assert!(matches!(
        IkeCipher::TripleDesCbc.encrypt_in_place(&[0; 16], &[0; 8], &mut [0u8; 8]),
        Err(CryptoError::KeyLength)
    ));
    // An empty buffer is a whole number (zero) of blocks and stays empty.
    let mut empty: [u8; 0] = [];
    alg.encrypt_in_place(&[0; 16], &[0; 16], &mut empty)
        .expect("empty");
}
