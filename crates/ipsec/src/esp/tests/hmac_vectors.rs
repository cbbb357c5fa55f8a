//! The truncated HMACs against RFC 2202 (HMAC-SHA1) and RFC 4231
//! (HMAC-SHA-256) test cases, truncated as RFC 2404 §2 and RFC 4868 §2.3 say.

use aws_lc_rs::hmac;

use super::super::transform::{hmac_algorithm, truncated_hmac};
use super::super::Integrity;
use super::hx;

fn icv(integrity: Integrity, key: &[u8], data: &[u8]) -> String {
    let key = hmac::Key::new(hmac_algorithm(integrity), key);
    hex::encode(truncated_hmac(integrity, &key, data))
}

/// (key, data, full HMAC-SHA1 from RFC 2202 §3, full HMAC-SHA-256 from RFC 4231 §4)
fn cases() -> Vec<(Vec<u8>, Vec<u8>, &'static str, &'static str)> {
    vec![
        // Test case 1.
        (
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b617318655057264e28bc0b6fb378c8ef146be00",
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
        ),
        // Test case 2.
        (
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
        ),
        // Test case 3.
        (
            vec![0xaa; 20],
            vec![0xdd; 50],
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe",
        ),
    ]
}

#[test]
fn hmac_sha1_96_is_rfc2202_truncated_to_12_bytes() {
    for (key, data, sha1, _) in cases() {
        assert_eq!(icv(Integrity::HmacSha1_96, &key, &data), sha1[..24]);
    }
}

#[test]
fn hmac_sha256_128_is_rfc4231_truncated_to_16_bytes() {
    for (key, data, _, sha256) in cases() {
        assert_eq!(icv(Integrity::HmacSha256_128, &key, &data), sha256[..32]);
    }
}

/// RFC 2202 test case 5 and RFC 4231 test case 5 print the truncated values.
#[test]
fn published_truncation_cases() {
    let key = [0x0c; 20];
    let data = b"Test With Truncation";
    assert_eq!(
        icv(Integrity::HmacSha1_96, &key, data),
        hex::encode(hx("4c1a03424b55e07fe7f27be1"))
    );
    assert_eq!(
        icv(Integrity::HmacSha256_128, &key, data),
        hex::encode(hx("a3b6167473100ee06e0c796c2955552b"))
    );
}
