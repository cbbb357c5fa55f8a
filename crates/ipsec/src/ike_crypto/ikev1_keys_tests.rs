//! RFC 2409 key derivation tests.
//!
//! 1. A NIST SP 800-135 IKEv1 KDF sample (SHA-1, digital signature
//!    authentication) from the CAVP component test vectors, as quoted with its
//!    intermediate values in public test code; we did not find the CAVP
//!    `ikev1_psk.fax` text itself in the sources we could search, so:
//! 2. The pre-shared-key cases, the Appendix B key expansion, the IVs and
//!    the Quick Mode KEYMAT are checked against a second, independent
//!    computation with python3's `hmac`/`hashlib`. The script is pasted here;
//!    its output is the expected hex in the tests below.
//!
//! ```text
//! import hmac, hashlib
//! H = {'Sha1': hashlib.sha1, 'Sha256': hashlib.sha256, 'Md5': hashlib.md5}
//! def prf(a, k, d): return hmac.new(k, d, H[a]).digest()
//! def pat(n, start, step): return bytes((start + i * step) & 0xff for i in range(n))
//! cases = [
//!     ('Sha1',   pat(16, 0x10, 3), pat(20, 0x80, 5), pat(128, 0x01, 7), b'shared secret one', bytes.fromhex('0102030405060708'), bytes.fromhex('a1a2a3a4a5a6a7a8')),
//!     ('Sha1',   pat(32, 0x33, 1), pat(16, 0x44, 9), pat(256, 0xfe, 11), pat(64, 0x5a, 13), bytes.fromhex('deadbeef00112233'), bytes.fromhex('445566778899aabb')),
//!     ('Sha256', pat(32, 0x21, 17), pat(32, 0x99, 19), pat(256, 0x07, 23), b'correct horse battery staple', bytes.fromhex('0011223344556677'), bytes.fromhex('8899aabbccddeeff')),
//! ]
//! for a, ni, nr, gxy, psk, ci, cr in cases:
//!     s = prf(a, psk, ni + nr)
//!     d = prf(a, s, gxy + ci + cr + b'\0'); aa = prf(a, s, d + gxy + ci + cr + b'\1'); e = prf(a, s, aa + gxy + ci + cr + b'\2')
//!     print('PSK', a, ni.hex(), nr.hex(), gxy.hex(), psk.hex(), ci.hex(), cr.hex(), s.hex(), d.hex(), aa.hex(), e.hex())
//! # Appendix B key expansion: SHA-1 SKEYID_e (20 bytes) to a 32-byte AES-256 key
//! ske = bytes.fromhex('49a1d53a80fb77e663552964fbbcb45092021473')
//! k1 = prf('Sha1', ske, b'\0'); k2 = prf('Sha1', ske, k1)
//! print('KA', (k1 + k2)[:32].hex())
//! k = b''; kk = prf('Md5', ske[:16], b'\0');
//! ka = kk; kk = prf('Md5', ske[:16], kk); ka += kk
//! print('KA_MD5_24', ka[:24].hex())
//! # IVs
//! gxi = pat(128, 0x02, 3); gxr = pat(128, 0x05, 7)
//! print('IV1_SHA1_16', hashlib.sha1(gxi + gxr).digest()[:16].hex())
//! print('IV1_SHA256_8', hashlib.sha256(gxi + gxr).digest()[:8].hex())
//! last = bytes.fromhex('00112233445566778899aabbccddeeff')
//! print('IV2_SHA1_16', hashlib.sha1(last + (0x1f2e3d4c).to_bytes(4, 'big')).digest()[:16].hex())
//! # Quick Mode KEYMAT, ESP (3), SPI 0x12345678
//! skd = bytes.fromhex('486293ed547adb562cefdaf43d3d8457b196f2b6')
//! ni = pat(16, 0x10, 3); nr = pat(20, 0x80, 5); qg = pat(128, 0x09, 5)
//! def keymat(a, skd, g, proto, spi, ni, nr, n):
//!     out = b''; prev = b''
//!     while len(out) < n:
//!         prev = prf(a, skd, prev + g + bytes([proto]) + spi.to_bytes(4, 'big') + ni + nr); out += prev
//!     return out[:n]
//! print('KEYMAT_NOPFS', keymat('Sha1', skd, b'', 3, 0x12345678, ni, nr, 52).hex())
//! print('KEYMAT_PFS', keymat('Sha1', skd, qg, 3, 0x12345678, ni, nr, 52).hex())
//! print('KEYMAT_SHA256_36', keymat('Sha256', skd, b'', 3, 0xcafef00d, ni, nr, 36).hex())
//! ```

use super::*;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

/// `pat(n, start, step)` of the python script: n bytes start, start+step, ...
fn pat(n: usize, start: u8, step: u8) -> Vec<u8> {
    (0..n)
        .map(|i| start.wrapping_add((i as u8).wrapping_mul(step)))
        .collect()
}

fn cookie(s: &str) -> [u8; 8] {
    h(s).try_into().expect("8-byte cookie")
}

#[test]
fn nist_sp800_135_ikev1_sha1_signature_sample() {
    // NIST CAVP SP 800-135 component vectors, IKEv1 KDF, [SHA-1], DSA
    // (signature) authentication: Ni/Nr 64 bits, g^xy 1024 bits.
    let cky_i = cookie("382e5c8b0a3fa307");
    let cky_r = cookie("ba4b7616700a2413");
    let ni = h("ced5635da6796075");
    let nr = h("6244b427712fb776");
    let gxy = h(concat!(
        "2a2e0bbe8da3657a83f3d35826e49e2d38e557e912a1b9e6c30c63577b3eab71",
        "5466202862027f2c26f3090743555579611771db0b92bef93834432a3a7762fc",
        "8a0f4889fd281d6082770d10a40d7bad61e832f041e620d6787e7f62ab2861dd",
        "fbe272e0d9d3cdec5f1bbf750e24b8b32d6d714968ad69ce5086c32ad2742ebc",
    ));
    let skeyid = skeyid_signature(HashAlg::Sha1, &ni, &nr, &gxy);
    assert_eq!(
        hex::encode(&*skeyid),
        "dc37ac99de6dcfbd1ee74af7fb36f9b4b0a7829d"
    );
    let keys = phase1_keys(HashAlg::Sha1, skeyid, &gxy, &cky_i, &cky_r);
    assert_eq!(
        hex::encode(&*keys.skeyid),
        "dc37ac99de6dcfbd1ee74af7fb36f9b4b0a7829d"
    );
    assert_eq!(
        hex::encode(&*keys.skeyid_d),
        "486293ed547adb562cefdaf43d3d8457b196f2b6"
    );
    assert_eq!(
        hex::encode(&*keys.skeyid_a),
        "f4053b5ca07e59bb41b8f401037ca90b72b3917e"
    );
    assert_eq!(
        hex::encode(&*keys.skeyid_e),
        "49a1d53a80fb77e663552964fbbcb45092021473"
    );
}

struct PskCase {
    prf: HashAlg,
    ni: Vec<u8>,
    nr: Vec<u8>,
    gxy: Vec<u8>,
    psk: Vec<u8>,
    cky_i: [u8; 8],
    cky_r: [u8; 8],
    expected: [&'static str; 4],
}

#[test]
fn pre_shared_key_cases_match_python() {
    let cases = [
        PskCase {
            prf: HashAlg::Sha1,
            ni: pat(16, 0x10, 3),
            nr: pat(20, 0x80, 5),
            gxy: pat(128, 0x01, 7),
            psk: b"shared secret one".to_vec(),
            cky_i: cookie("0102030405060708"),
            cky_r: cookie("a1a2a3a4a5a6a7a8"),
            expected: [
                "c03fcb293ba9e8c57054da82c0cfea2395146920",
                "51a5cf803e9213c03587cec2116da6e88d357096",
                "fb5360cebb61ecb1c9d8015557b4fe1d8a57c1ef",
                "ec55da7205e6c01bbe26385eb3c131e4a431a534",
            ],
        },
        PskCase {
            prf: HashAlg::Sha1,
            ni: pat(32, 0x33, 1),
            nr: pat(16, 0x44, 9),
            gxy: pat(256, 0xfe, 11),
            psk: pat(64, 0x5a, 13),
            cky_i: cookie("deadbeef00112233"),
            cky_r: cookie("445566778899aabb"),
            expected: [
                "be1c0f440319a95b6d7d19ff4c58a3327d8c08b8",
                "34a91ebd8f80815b3df3383b6def06ab52fd6ab8",
                "380064d7a1f6e0c7a044cf8537227b6cfedfbcb5",
                "38321fe5e7d91525a6ab3515fafe933917a921bf",
            ],
        },
        PskCase {
            prf: HashAlg::Sha256,
            ni: pat(32, 0x21, 17),
            nr: pat(32, 0x99, 19),
            gxy: pat(256, 0x07, 23),
            psk: b"correct horse battery staple".to_vec(),
            cky_i: cookie("0011223344556677"),
            cky_r: cookie("8899aabbccddeeff"),
            expected: [
                "f5bc3a2734a4e352d214ec0ad53dafe61ebc13da2d4958163298962a7e5e50fb",
                "b5f78be29a2ba079abcb5dba2a654b5a251cf7c546e50e60f2d3fe9376e7e0f2",
                "773f767f8655cc9297ed30eb00ce4ad4d170297229cfab67efc74912d28f72e5",
                "75a04467209969fa292f8c7297a9fcb89d91e4aaf760d76dcd2cf902c4f877ae",
            ],
        },
    ];
    for case in cases {
        let skeyid = skeyid_psk(case.prf, &case.psk, &case.ni, &case.nr);
        let keys = phase1_keys(case.prf, skeyid, &case.gxy, &case.cky_i, &case.cky_r);
        let got = [&keys.skeyid, &keys.skeyid_d, &keys.skeyid_a, &keys.skeyid_e]
            .map(|k| hex::encode(&***k));
        assert_eq!(got, case.expected, "{:?}", case.prf);
    }
}

#[test]
fn encryption_key_appendix_b() {
    let skeyid_e = h("49a1d53a80fb77e663552964fbbcb45092021473");
    // Long enough: the first key_len bytes.
    assert_eq!(
        *encryption_key(HashAlg::Sha1, &skeyid_e, 16),
        skeyid_e[..16]
    );
    assert_eq!(*encryption_key(HashAlg::Sha1, &skeyid_e, 20), skeyid_e[..]);
    // Too short for AES-256: Ka = K1 | K2, K1 = prf(SKEYID_e, 0), K2 = prf(SKEYID_e, K1).
    assert_eq!(
        hex::encode(&*encryption_key(HashAlg::Sha1, &skeyid_e, 32)),
        "dbe7a1ae4f76e6c66288748b73d73c87141d43198957f96f22fdf7c98140dfa3"
    );
    // MD5 SKEYID_e (16 bytes) for 3DES (24 bytes).
    assert_eq!(
        hex::encode(&*encryption_key(HashAlg::Md5, &skeyid_e[..16], 24)),
        "47a9b9ee44639b5c07c1e609ddd5f1e0b37912c6e7a8d94e"
    );
}

#[test]
fn phase1_and_phase2_ivs() {
    let g_xi = pat(128, 0x02, 3);
    let g_xr = pat(128, 0x05, 7);
    assert_eq!(
        hex::encode(phase1_iv(HashAlg::Sha1, &g_xi, &g_xr, 16)),
        "1605e6e5d2b8b2afb0f9e2a185536a6b"
    );
    assert_eq!(
        hex::encode(phase1_iv(HashAlg::Sha256, &g_xi, &g_xr, 8)),
        "8346e8d29238c815"
    );
    let last_block = h("00112233445566778899aabbccddeeff");
    assert_eq!(
        hex::encode(phase2_iv(HashAlg::Sha1, &last_block, 0x1f2e_3d4c, 16)),
        "0420a946f9a584c72da998c25a837a6b"
    );
}

#[test]
fn quick_mode_keymat_with_and_without_pfs() {
    let skeyid_d = h("486293ed547adb562cefdaf43d3d8457b196f2b6");
    let ni = pat(16, 0x10, 3);
    let nr = pat(20, 0x80, 5);
    let qm_gxy = pat(128, 0x09, 5);
    // 52 bytes: three SHA-1 blocks, the last one cut.
    let no_pfs = quick_mode_keymat(HashAlg::Sha1, &skeyid_d, None, 3, 0x1234_5678, &ni, &nr, 52);
    assert_eq!(
        hex::encode(&*no_pfs),
        concat!(
            "72db4f6257c1bcc1ff4c238bd6803e74f2c1b6d26336969c43d937d46efdc307",
            "e1605b9bc3f78cd5c262dd946d4080ca13285f44",
        )
    );
    let pfs = quick_mode_keymat(
        HashAlg::Sha1,
        &skeyid_d,
        Some(&qm_gxy),
        3,
        0x1234_5678,
        &ni,
        &nr,
        52,
    );
    assert_eq!(
        hex::encode(&*pfs),
        concat!(
            "206f8b24dbff29a9bcbffda2f1992e96eb3abfef2394bb96bff91fb5ca858607",
            "cfc1046f4a25233ee6dd31dc24fee660d922b9dd",
        )
    );
    let sha256 = quick_mode_keymat(
        HashAlg::Sha256,
        &skeyid_d,
        None,
        3,
        0xcafe_f00d,
        &ni,
        &nr,
        36,
    );
    assert_eq!(
        hex::encode(&*sha256),
        concat!(
            "799c71c6dae3e0c2b02848fcce6fd492c1a140dc63c123edb456794fbbefa8a6",
            "be80f003",
        )
    );
    // A shorter request is a prefix of a longer one; zero bytes is empty.
    let short = quick_mode_keymat(HashAlg::Sha1, &skeyid_d, None, 3, 0x1234_5678, &ni, &nr, 20);
    assert_eq!(*short, no_pfs[..20]);
    assert!(quick_mode_keymat(HashAlg::Sha1, &skeyid_d, None, 3, 1, &ni, &nr, 0).is_empty());
}
