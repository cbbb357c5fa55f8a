//! Published ESP packets, byte for byte, both directions.

use std::time::Instant;

use aws_lc_rs::hmac;

use super::super::{CipherSuite, EspSa, Integrity, NEXT_HEADER_IPV4};
use super::{config, hx};

/// RFC 3602 §4 gives CBC-only packets (no ICV). We run them through a CBC
/// suite with HMAC-SHA1-96 and compare everything before the ICV; inbound,
/// we append an HMAC computed here, independently of the SA.
const HMAC_KEY: [u8; 20] = [0x11; 20];

fn cbc_sa(spi: u32, key: &[u8], now: Instant) -> EspSa {
    let suite = CipherSuite::Aes128Cbc(Integrity::HmacSha1_96);
    EspSa::new(&config(spi, suite, key, &HMAC_KEY), now).unwrap()
}

fn with_icv(esp: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &HMAC_KEY);
    let mut packet = esp.to_vec();
    packet.extend_from_slice(&hmac::sign(&key, esp).as_ref()[..12]);
    packet
}

struct CbcCase {
    key: &'static str,
    spi: u32,
    seq: u32,
    iv: &'static str,
    next_header: u8,
    plaintext: &'static str,
    esp: &'static str,
}

/// RFC 3602 §4 Case #5: transport-mode ESP, ping 192.168.123.100.
const CASE_5: CbcCase = CbcCase {
    key: "90d382b4 10eeba7a d938c46c ec1a82bf",
    spi: 0x4321,
    seq: 1,
    iv: "e96e8c08 ab465763 fd098d45 dd3ff893",
    next_header: 1,
    plaintext: "08000ebd a70a0000 8e9c083d b95b0700 08090a0b 0c0d0e0f 10111213 14151617
                18191a1b 1c1d1e1f 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637",
    esp: "00004321 00000001
          e96e8c08 ab465763 fd098d45 dd3ff893
          f663c25d 325c18c6 a9453e19 4e120849 a4870b66 cc6b9965 330013b4 898dc856
          a4699e52 3a55db08 0b59ec3a 8e4b7e52 775b07d1 db34ed9c 538ab50c 551b874a
          a269add0 47ad2d59 13ac19b7 cfbad4a6",
};

/// RFC 3602 §4 Case #7: tunnel-mode ESP (next header 4, an inner IPv4 ping).
const CASE_7: CbcCase = CbcCase {
    key: "01234567 89abcdef 01234567 89abcdef",
    spi: 0x8765,
    seq: 2,
    iv: "f4e76524 4f6407ad f13dc138 0f673f37",
    next_header: NEXT_HEADER_IPV4,
    plaintext: "45000054 09040000 4001f988 c0a87b03 c0a87bc8 08009f76 a90a0100 b49c083d
                02a20400 08090a0b 0c0d0e0f 10111213 14151617 18191a1b 1c1d1e1f 20212223
                24252627 28292a2b 2c2d2e2f 30313233 34353637",
    esp: "00008765 00000002
          f4e76524 4f6407ad f13dc138 0f673f37
          773b5241 a4c44922 5e4f3ce5 ed611b0c 237ca96c f74a9301 3c1b0ea1 a0cf70f8
          e4ecaec7 8ac53aad 7a0f022b 859243c6 47752e94 a859352b 8a4d4d2d ecd136e5
          c177f132 ad3fbfb2 201ac990 4c74ee0a 109e0ca1 e4dfe9d5 a100b842 f1c22f0d",
};

fn check_cbc_case(case: &CbcCase) {
    let now = Instant::now();
    let key = hx(case.key);
    let plaintext = hx(case.plaintext);
    let expected = hx(case.esp);

    let sender = cbc_sa(case.spi, &key, now);
    let mut out = Vec::new();
    sender
        .encapsulate_with(
            case.seq,
            &hx(case.iv),
            case.next_header,
            &plaintext,
            &mut out,
        )
        .unwrap();
    assert_eq!(out.len(), expected.len() + 12);
    assert_eq!(hex::encode(&out[..expected.len()]), hex::encode(&expected));
    assert_eq!(out, with_icv(&expected), "ICV over SPI..ciphertext");

    let mut receiver = cbc_sa(case.spi, &key, now);
    let mut packet = with_icv(&expected);
    let got = receiver.decapsulate(now, &mut packet).unwrap();
    assert_eq!(got.spi, case.spi);
    assert_eq!(got.seq, case.seq);
    assert_eq!(got.next_header, case.next_header);
    assert_eq!(&packet[got.payload], &plaintext[..]);
}

#[test]
fn rfc3602_case5_transport_mode() {
    check_cbc_case(&CASE_5);
}

#[test]
fn rfc3602_case7_tunnel_mode() {
    check_cbc_case(&CASE_7);
}

struct GcmCase {
    suite: CipherSuite,
    /// Key followed by the 4-byte salt (RFC 4106 §8.1).
    keymat: &'static str,
    packet: &'static str,
    /// The decrypted payload data, padding, pad length and next header.
    decrypted: &'static str,
}

/// draft-mcgrew-gcm-test-01, AES-GCM-128 (SPI 0000a5f8, seq 10, IV
/// facedbaddecaf888): an IPv4/UDP DNS query, no padding. As published, the
/// trailer says next header 1 although the payload is a whole IPv4 packet;
/// we reproduce the packet as published.
const GCM_128: GcmCase = GcmCase {
    suite: CipherSuite::Aes128Gcm16,
    keymat: "feffe992 8665731c 6d6a8f94 67308308 cafebabe",
    packet: "0000a5f8 0000000a facedbad decaf888
             deb22cd9 b07c72c1 6e3a65be eb8df304
             a5a5897d 33ae530f 1ba76d5d 114d2a5c
             3de81827 c10e9a4f 51330d0e ec416642
             cfbb85a5 b47e48a4 ec3b9ba9 5d918bd1
             83b70d3a a8bc6ee4 c309e9d8 5a41ad4a",
    decrypted: "4500003e 698f0000 80114dcc c0a80102
                c0a80101 0a980035 002a2343 b2d00100
                00010000 00000000 03736970 09637962
                65726369 74790264 6b000001 00010001",
};

/// draft-mcgrew-gcm-test-01, AES-GCM-256 (SPI 4a2cbfe3, seq 2): an
/// IPv4/TCP SYN with two pad bytes (next header 1 as published, see above).
const GCM_256: GcmCase = GcmCase {
    suite: CipherSuite::Aes256Gcm16,
    keymat: "abbccdde f0011223 34455667 78899aab
             abbccdde f0011223 34455667 78899aab
             11223344",
    packet: "4a2cbfe3 00000002 01020304 05060708
             ff425c9b 724599df 7a3bcd51 0194e00d
             6a78107f 1b0b1cbf 06efae9d 65a5d763
             748a6379 85771d34 7f054565 9f14e99d
             ef842d8e b335f4ee cfdbf831 824b4c49
             15956c96",
    decrypted: "45000030 69a64000 80062690 c0a80102
                9389155e 0a9e008b 2dc57ee0 00000000
                70024000 20bf0000 020405b4 01010402
                01020201",
};

fn check_gcm_case(case: &GcmCase) {
    let now = Instant::now();
    let keymat = hx(case.keymat);
    let expected = hx(case.packet);
    let decrypted = hx(case.decrypted);
    // The decrypted text ends with pad length and next header (RFC 4303 §2).
    let next_header = decrypted[decrypted.len() - 1];
    let pad_len = usize::from(decrypted[decrypted.len() - 2]);
    let payload = &decrypted[..decrypted.len() - 2 - pad_len];
    let spi = u32::from_be_bytes(expected[..4].try_into().unwrap());
    let seq = u32::from_be_bytes(expected[4..8].try_into().unwrap());

    let mut receiver = EspSa::new(&config(spi, case.suite, &keymat, &[]), now).unwrap();
    let mut packet = expected.clone();
    let got = receiver.decapsulate(now, &mut packet).unwrap();
    assert_eq!(got.seq, seq);
    assert_eq!(got.next_header, next_header);
    assert_eq!(&packet[got.payload.clone()], payload);
    // The whole decrypted region, trailer included, matches the draft.
    assert_eq!(&packet[16..packet.len() - 16], &decrypted[..]);

    let sender = EspSa::new(&config(spi, case.suite, &keymat, &[]), now).unwrap();
    let mut out = Vec::new();
    sender
        .encapsulate_with(seq, &expected[8..16], next_header, payload, &mut out)
        .unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&expected));
}

#[test]
fn gcm_test_draft_aes128_packet() {
    check_gcm_case(&GCM_128);
}

#[test]
fn gcm_test_draft_aes256_packet() {
    check_gcm_case(&GCM_256);
}

/// RFC 7634 Appendix A: ChaCha20-Poly1305 ESP (SPI 01020304, seq 5, IV
/// 1011121314151617), a tunnel-mode ICMP echo with two pad bytes.
const CHACHA20_POLY1305: GcmCase = GcmCase {
    suite: CipherSuite::ChaCha20Poly1305,
    keymat: "80818283 84858687 88898a8b 8c8d8e8f
             90919293 94959697 98999a9b 9c9d9e9f
             a0a1a2a3",
    packet: "01020304 00000005 10111213 14151617
             24039428 b97f417e 3c13753a 4f05087b
             67c352e6 a7fab1b9 82d466ef 407ae5c6
             14ee8099 d52844eb 61aa95df ab4c02f7
             2aa71e7c 4c4f64c9 befe2fac c638e8f3
             cbec163f ac469b50 2773f6fb 94e664da
             9165b828 29f641e0
             76aaa826 6b7fb0f7 b11b3699 07e1ad43",
    decrypted: "45000054 a6f20000 4001e778 c6336405
                c0000205 08005b7a 3a080000 553bec10
                00073627 08090a0b 0c0d0e0f 10111213
                14151617 18191a1b 1c1d1e1f 20212223
                24252627 28292a2b 2c2d2e2f 30313233
                34353637 01020204",
};

#[test]
fn rfc7634_chacha20_poly1305_packet() {
    check_gcm_case(&CHACHA20_POLY1305);
}

/// 3DES-CBC with HMAC-SHA1-96 (RFC 2451, RFC 2404). No RFC publishes a
/// whole 3DES ESP packet, so this one was built independently of our code
/// with python3's `cryptography` 48 (TripleDES-CBC, then HMAC-SHA1 over
/// SPI, sequence number, IV and ciphertext, truncated to 12 bytes).
#[test]
fn triple_des_cbc_packet_built_independently() {
    let now = Instant::now();
    let suite = CipherSuite::TripleDesCbc(Integrity::HmacSha1_96);
    let key = hx("01234567 89abcdef 23456789 abcdef01 456789ab cdef0123");
    let mac_key: Vec<u8> = (0x40..0x54).collect();
    let payload = hx("0800f7ff 00000000 72617320 33646573 20746573 74");
    let expected = hx("00003de5 00000007 f1e2d3c4 b5a69788
                       289bfdda 36dcdc37 58c9841f 813603cf
                       32aa7dff 0dd96150 56ac4c6a e629b3f2 c3d821cd");

    let sender = EspSa::new(&config(0x3de5, suite, &key, &mac_key), now).unwrap();
    let mut out = Vec::new();
    sender
        .encapsulate_with(7, &expected[8..16], 1, &payload, &mut out)
        .unwrap();
    assert_eq!(hex::encode(&out), hex::encode(&expected));

    let mut receiver = EspSa::new(&config(0x3de5, suite, &key, &mac_key), now).unwrap();
    let mut packet = expected.clone();
    let got = receiver.decapsulate(now, &mut packet).unwrap();
    assert_eq!((got.seq, got.next_header), (7, 1));
    assert_eq!(&packet[got.payload.clone()], &payload[..]);

    // One flipped ciphertext bit fails the ICV before anything is decrypted.
    let mut tampered = expected.clone();
    tampered[20] ^= 1;
    let mut receiver = EspSa::new(&config(0x3de5, suite, &key, &mac_key), now).unwrap();
    assert!(matches!(
        receiver.decapsulate(now, &mut tampered),
        Err(crate::esp::EspError::AuthenticationFailed)
    ));
}
