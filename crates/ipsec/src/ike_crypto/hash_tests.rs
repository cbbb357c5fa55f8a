//! Known-answer tests: RFC 2202 (HMAC-MD5, HMAC-SHA-1) and RFC 4231
//! (HMAC-SHA-256/384/512), including the keys longer than a block, plus
//! FIPS 180 / RFC 1321 digests of "abc".

use super::HashAlg;

fn check(alg: HashAlg, key: &[u8], data: &[u8], expected_hex: &str) {
    let mac = alg.hmac(key, &[data]);
    assert_eq!(
        hex::encode(&*mac),
        expected_hex,
        "{alg:?} key {} bytes",
        key.len()
    );
    // The same input split into parts must give the same MAC.
    let (a, b) = data.split_at(data.len() / 2);
    assert_eq!(hex::encode(&*alg.hmac(key, &[a, &[], b])), expected_hex);
    assert_eq!(mac.len(), alg.output_len());
}

#[test]
fn rfc2202_hmac_md5_and_sha1() {
    let cases: &[(HashAlg, Vec<u8>, Vec<u8>, &str)] = &[
        // RFC 2202 §2 test_case 1, 2, 3, 6, 7
        (
            HashAlg::Md5,
            vec![0x0b; 16],
            b"Hi There".to_vec(),
            "9294727a3638bb1c13f48ef8158bfc9d",
        ),
        (
            HashAlg::Md5,
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "750c783e6ab0b503eaa86e310a5db738",
        ),
        (
            HashAlg::Md5,
            vec![0xaa; 16],
            vec![0xdd; 50],
            "56be34521d144c88dbb8c733f0e8b3f6",
        ),
        (
            HashAlg::Md5,
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "6b1ab7fe4bd7bf8f0b62e6ce61b9d0cd",
        ),
        (
            HashAlg::Md5,
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
            "6f630fad67cda0ee1fb1f562db3aa53e",
        ),
        // RFC 2202 §3 test_case 1, 2, 3, 6, 7
        (
            HashAlg::Sha1,
            vec![0x0b; 20],
            b"Hi There".to_vec(),
            "b617318655057264e28bc0b6fb378c8ef146be00",
        ),
        (
            HashAlg::Sha1,
            b"Jefe".to_vec(),
            b"what do ya want for nothing?".to_vec(),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79",
        ),
        (
            HashAlg::Sha1,
            vec![0xaa; 20],
            vec![0xdd; 50],
            "125d7342b9ac11cd91a39af48aa17b4f63f175d3",
        ),
        (
            HashAlg::Sha1,
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112",
        ),
        (
            HashAlg::Sha1,
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
            "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
        ),
    ];
    for (alg, key, data, expected) in cases {
        check(*alg, key, data, expected);
    }
}

#[test]
fn rfc4231_hmac_sha2() {
    let cases: &[(HashAlg, Vec<u8>, Vec<u8>, &str)] = &[
        // RFC 4231 §4.2, 4.3, 4.4, 4.7, 4.8
        (HashAlg::Sha256, vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (HashAlg::Sha256, b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (HashAlg::Sha256, vec![0xaa; 20], vec![0xdd; 50], "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        (HashAlg::Sha256, vec![0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        (HashAlg::Sha256, vec![0xaa; 131], b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(), "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
        // RFC 4231 §4.2, 4.3, 4.4, 4.7, 4.8
        (HashAlg::Sha384, vec![0x0b; 20], b"Hi There".to_vec(), "afd03944d84895626b0825f4ab46907f15f9dadbe4101ec682aa034c7cebc59cfaea9ea9076ede7f4af152e8b2fa9cb6"),
        (HashAlg::Sha384, b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"),
        (HashAlg::Sha384, vec![0xaa; 20], vec![0xdd; 50], "88062608d3e6ad8a0aa2ace014c8a86f0aa635d947ac9febe83ef4e55966144b2a5ab39dc13814b94e3ab6e101a34f27"),
        (HashAlg::Sha384, vec![0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(), "4ece084485813e9088d2c63a041bc5b44f9ef1012a2b588f3cd11f05033ac4c60c2ef6ab4030fe8296248df163f44952"),
        (HashAlg::Sha384, vec![0xaa; 131], b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(), "6617178e941f020d351e2f254e8fd32c602420feb0b8fb9adccebb82461e99c5a678cc31e799176d3860e6110c46523e"),
        // RFC 4231 §4.2, 4.3, 4.4, 4.7, 4.8
        (HashAlg::Sha512, vec![0x0b; 20], b"Hi There".to_vec(), "87aa7cdea5ef619d4ff0b4241a1d6cb02379f4e2ce4ec2787ad0b30545e17cdedaa833b7d6b8a702038b274eaea3f4e4be9d914eeb61f1702e696c203a126854"),
        (HashAlg::Sha512, b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"),
        (HashAlg::Sha512, vec![0xaa; 20], vec![0xdd; 50], "fa73b0089d56a284efb0f0756c890be9b1b5dbdd8ee81a3655f83e33b2279d39bf3e848279a722c806b485a47e67c807b946a337bee8942674278859e13292fb"),
        (HashAlg::Sha512, vec![0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(), "80b24263c7c1a3ebb71493c1dd7be8b49b46d1f41b4aeec1121b013783f8f3526b56d037e05f2598bd0fd2215d6a1e5295e64f73f63f0aec8b915a985d786598"),
        (HashAlg::Sha512, vec![0xaa; 131], b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.".to_vec(), "e37b6a775dc87dbaa4dfa9f96e5e3ffddebd71f8867289865df5a32d20cdc944b6022cac3c4982b10d5eeb55c3e4de15134676fb6de0446065c97440fa8c6a58"),
    ];
    for (alg, key, data, expected) in cases {
        check(*alg, key, data, expected);
    }
}

#[test]
fn digests_of_abc() {
    // RFC 1321 App. A.5; FIPS 180-2 App. A, B, C, D.
    assert_eq!(
        hex::encode(HashAlg::Md5.digest(&[b"ab", b"c"])),
        "900150983cd24fb0d6963f7d28e17f72"
    );
    assert_eq!(
        hex::encode(HashAlg::Sha1.digest(&[b"ab", b"c"])),
        "a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        hex::encode(HashAlg::Sha256.digest(&[b"ab", b"c"])),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(hex::encode(HashAlg::Sha384.digest(&[b"ab", b"c"])), "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7");
    assert_eq!(hex::encode(HashAlg::Sha512.digest(&[b"ab", b"c"])), "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
    for alg in [
        HashAlg::Md5,
        HashAlg::Sha1,
        HashAlg::Sha256,
        HashAlg::Sha384,
        HashAlg::Sha512,
    ] {
        assert_eq!(alg.digest(&[b""]).len(), alg.output_len());
    }
}
