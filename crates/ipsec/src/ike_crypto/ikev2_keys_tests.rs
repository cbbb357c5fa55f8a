//! RFC 7296 key derivation against the NIST SP 800-135 IKEv2 KDF sample
//! (CAVS component test, SHA-1, 64-bit nonces, 256-bit g^ir, 1056-bit DKM),
//! as quoted with its inputs and outputs in libreswan's public CAVS test
//! driver (programs/cavp, "ikev2kdf"), and re-computed independently with
//! python3's `hmac`/`hashlib`:
//!
//! ```text
//! prf = lambda k, d: hmac.new(k, d, hashlib.sha1).digest()
//! def pp(k, s, n):          # prf+ of RFC 7296 §2.13
//!     o = t = b''; c = 1
//!     while len(o) < n: t = prf(k, t + s + bytes([c])); o += t; c += 1
//!     return o[:n]
//! ```

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).expect("test hex")
}

const GIR: &str = "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52";
const GIR_NEW: &str = "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330";
const NI: &str = "32b50d5f4a3763f3";
const NR: &str = "9206a04b26564cb1";
const SPI_I: [u8; 8] = [0x34, 0xc9, 0xe7, 0xc1, 0x88, 0x86, 0x87, 0x85];
const SPI_R: [u8; 8] = [0x3f, 0xf7, 0x7d, 0x76, 0x0d, 0x2b, 0x21, 0x99];
const SKEYSEED: &str = "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7";
const DKM: &str = "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4";
const DKM_CHILD: &str = "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e664994d234cb4";
const DKM_CHILD_DH: &str = "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054d56fd74c";
const SKEYSEED_REKEY: &str = "63e81194946ebd05df7df5ebf5d8750056bf1f1d";

#[test]
fn skeyseed_matches_the_sp800_135_sample() {
    let s = skeyseed(HashAlg::Sha1, &h(NI), &h(NR), &h(GIR));
    assert_eq!(hex::encode(&*s), SKEYSEED);
}

#[test]
fn prf_plus_gives_the_sample_dkm() {
    let seed = [h(NI), h(NR), SPI_I.to_vec(), SPI_R.to_vec()].concat();
    let dkm = prf_plus(HashAlg::Sha1, &h(SKEYSEED), &seed, 132).expect("132 bytes fit");
    assert_eq!(hex::encode(&*dkm), DKM);
    // A shorter request is a prefix (prf+ is a stream).
    let short = prf_plus(HashAlg::Sha1, &h(SKEYSEED), &seed, 33).expect("fits");
    assert_eq!(hex::encode(&*short), &DKM[..66]);
}

#[test]
fn seven_keys_are_cut_from_the_dkm_in_rfc_order() {
    // SHA-1 PRF, AES-128-CBC (16) and HMAC-SHA1-96 (key 20): 3×20 + 2×20 +
    // 2×16 = 132 bytes, exactly the sample's DKM.
    let keys = ike_sa_keys(
        HashAlg::Sha1,
        &h(SKEYSEED),
        &h(NI),
        &h(NR),
        &SPI_I,
        &SPI_R,
        IkeKeyLengths {
            encr_len: 16,
            integ_len: 20,
        },
    );
    let dkm = h(DKM);
    assert_eq!(&*keys.sk_d, &dkm[0..20]);
    assert_eq!(&*keys.sk_ai, &dkm[20..40]);
    assert_eq!(&*keys.sk_ar, &dkm[40..60]);
    assert_eq!(&*keys.sk_ei, &dkm[60..76]);
    assert_eq!(&*keys.sk_er, &dkm[76..92]);
    assert_eq!(&*keys.sk_pi, &dkm[92..112]);
    assert_eq!(&*keys.sk_pr, &dkm[112..132]);
}

#[test]
fn aead_keys_have_no_integrity_key() {
    let keys = ike_sa_keys(
        HashAlg::Sha1,
        &h(SKEYSEED),
        &h(NI),
        &h(NR),
        &SPI_I,
        &SPI_R,
        IkeKeyLengths {
            encr_len: 20,
            integ_len: 0,
        },
    );
    let dkm = h(DKM);
    assert!(keys.sk_ai.is_empty() && keys.sk_ar.is_empty());
    assert_eq!(&*keys.sk_ei, &dkm[20..40]);
    assert_eq!(&*keys.sk_er, &dkm[40..60]);
    assert_eq!(&*keys.sk_pr, &dkm[80..100]);
}

#[test]
fn child_sa_keymat_with_and_without_a_new_key_exchange() {
    let sk_d = &h(DKM)[..20];
    let plain = child_sa_keymat(HashAlg::Sha1, sk_d, None, &h(NI), &h(NR), 132).expect("fits");
    assert_eq!(hex::encode(&*plain), DKM_CHILD);
    let with_dh =
        child_sa_keymat(HashAlg::Sha1, sk_d, Some(&h(GIR_NEW)), &h(NI), &h(NR), 132).expect("fits");
    assert_eq!(hex::encode(&*with_dh), DKM_CHILD_DH);
}

#[test]
fn rekeyed_skeyseed_matches_the_sample() {
    let sk_d = &h(DKM)[..20];
    let s = rekey_skeyseed(HashAlg::Sha1, sk_d, &h(GIR_NEW), &h(NI), &h(NR));
    assert_eq!(hex::encode(&*s), SKEYSEED_REKEY);
}

#[test]
fn prf_plus_refuses_more_than_255_blocks() {
    assert!(prf_plus(HashAlg::Sha1, b"k", b"s", 255 * 20).is_some());
    assert!(prf_plus(HashAlg::Sha1, b"k", b"s", 255 * 20 + 1).is_none());
}
