//! Diffie-Hellman tests: RFC 5903 §8.1–§8.3 (ECP-256/384/521) and RFC 7748 §6.1
//! (X25519) known answers, MODP agreement and a fixed-exponent known answer
//! per group, and rejection of invalid peer values.

use super::{DhGroup, DhPrivate};
use crate::ike_crypto::modp::TEST_PRIMES;
use crate::ike_crypto::CryptoError;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.replace(' ', "")).expect("test hex")
}

const ALL_GROUPS: [DhGroup; 7] = [
    DhGroup::Modp1024,
    DhGroup::Modp1536,
    DhGroup::Modp2048,
    DhGroup::Ecp256,
    DhGroup::Ecp384,
    DhGroup::Ecp521,
    DhGroup::Curve25519,
];

#[test]
fn ids_names_and_lengths() {
    for group in ALL_GROUPS {
        assert_eq!(DhGroup::from_id(group.id()), Some(group));
    }
    let ids: Vec<u16> = ALL_GROUPS.iter().map(|g| g.id()).collect();
    assert_eq!(ids, [2, 5, 14, 19, 20, 21, 31]);
    let lens: Vec<usize> = ALL_GROUPS.iter().map(|g| g.public_len()).collect();
    assert_eq!(lens, [128, 192, 256, 64, 96, 132, 32]);
    assert_eq!(DhGroup::Modp1024.name(), "MODP-1024");
    assert_eq!(DhGroup::Ecp256.name(), "ECP-256");
    assert_eq!(DhGroup::Curve25519.name(), "Curve25519");
    // Group 1 (768-bit MODP) and unknown numbers are not offered.
    for id in [0, 1, 3, 15, 22, 32, 0xffff] {
        assert_eq!(DhGroup::from_id(id), None, "{id}");
    }
}

#[test]
fn two_parties_agree_in_every_group() {
    for group in ALL_GROUPS {
        let alice = DhPrivate::generate(group).expect("generate");
        let bob = DhPrivate::generate(group).expect("generate");
        assert_eq!(alice.group(), group);
        assert_eq!(
            alice.public_value().len(),
            group.public_len(),
            "{}",
            group.name()
        );
        assert_ne!(alice.public_value(), bob.public_value(), "{}", group.name());
        let a = alice.agree(bob.public_value()).expect("agree");
        let b = bob.agree(alice.public_value()).expect("agree");
        assert_eq!(*a, *b, "{}", group.name());
        let secret_len = match group {
            // RFC 5903 §7: only the x coordinate.
            DhGroup::Ecp256 => 32,
            DhGroup::Ecp384 => 48,
            DhGroup::Ecp521 => 66,
            other => other.public_len(),
        };
        assert_eq!(a.len(), secret_len, "{}", group.name());
    }
}

#[test]
fn rfc5903_ecp256_vector() {
    // RFC 5903 §8.1.
    let i = h("C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433");
    let gix = "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180";
    let giy = "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3";
    let r = h("C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53");
    let grx = "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63";
    let gry = "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB";
    let girx = h("D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE");
    ecp_vector(DhGroup::Ecp256, &i, gix, giy, &r, grx, gry, &girx);
}

#[test]
fn rfc5903_ecp384_vector() {
    // RFC 5903 §8.2.
    let i = h(
        "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655 \
               E35B5380 41E649EE 3FAEF896 783AB194",
    );
    let gix = "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6 \
               DE3AC808 ACB4BDB4 C88732AE E95F41AA";
    let giy = "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E \
               EB9FCFF3 C2C947DA E69B4C63 4573A81C";
    let r = h(
        "41CB0779 B4BDB85D 47846725 FBEC3C94 30FAB46C C8DC5060 855CC9BD A0AA2942 \
               E0308312 916B8ED2 960E4BD5 5A7448FC",
    );
    let grx = "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D \
               0D1AC43A 0336DEF9 6FDA41D0 774A3571";
    let gry = "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF \
               F83FA401 42209DFF 5EAAD96D B9E6386C";
    let girx = h(
        "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4 \
                  D6031355 69B9E9D0 9CF5D4A2 70F59746",
    );
    ecp_vector(DhGroup::Ecp384, &i, gix, giy, &r, grx, gry, &girx);
}

#[test]
fn rfc5903_ecp521_vector() {
    // RFC 5903 §8.3 (checked here against python3's `cryptography` too).
    let i = h(
        "0037ADE9 319A89F4 DABDB3EF 411AACCC A5123C61 ACAB57B5 393DCE47 608172A0 \
         95AA85A3 0FE1C295 2C6771D9 37BA9777 F5957B26 39BAB072 462F68C2 7A57382D 4A52",
    );
    let gix = "0015417E 84DBF28C 0AD3C278 713349DC 7DF153C8 97A1891B D98BAB43 57C9ECBE \
               E1E3BF42 E00B8E38 0AEAE57C 2D107564 94188594 2AF5A7F4 601723C4 195D176C ED3E";
    let giy = "017CAE20 B6641D2E EB695786 D8C94614 6239D099 E18E1D5A 514C739D 7CB4A10A \
               D8A78801 5AC405D7 799DC75E 7B7D5B6C F2261A6A 7F150743 8BF01BEB 6CA3926F 9582";
    let r = h(
        "0145BA99 A847AF43 793FDD0E 872E7CDF A16BE30F DC780F97 BCCC3F07 8380201E \
         9C677D60 0B343757 A3BDBF2A 3163E4C2 F869CCA7 458AA4A4 EFFC311F 5CB15168 5EB9",
    );
    let grx = "00D0B397 5AC4B799 F5BEA16D 5E13E9AF 971D5E9B 984C9F39 728B5E57 39735A21 \
               9B97C356 436ADC6E 95BB0352 F6BE64A6 C2912D4E F2D0433C ED2B6171 640012D9 460F";
    let gry = "015C6822 6383956E 3BD066E7 97B623C2 7CE0EAC2 F551A10C 2C724D98 52077B87 \
               220B6536 C5C408A1 D2AEBB8E 86D678AE 49CB5709 1F473229 6579AB44 FCD17F0F C56A";
    let girx = h(
        "01144C7D 79AE6956 BC8EDB8E 7C787C45 21CB086F A64407F9 7894E5E6 B2D79B04 \
         D1427E73 CA4BAA24 0A347868 59810C06 B3C715A3 A8CC3151 F2BEE417 996D19F3 DDEA",
    );
    ecp_vector(DhGroup::Ecp521, &i, gix, giy, &r, grx, gry, &girx);
}

#[allow(clippy::too_many_arguments)]
fn ecp_vector(
    group: DhGroup,
    i: &[u8],
    gix: &str,
    giy: &str,
    r: &[u8],
    grx: &str,
    gry: &str,
    girx: &[u8],
) {
    let initiator = DhPrivate::from_private_bytes(group, i).expect("i");
    let responder = DhPrivate::from_private_bytes(group, r).expect("r");
    // RFC 5903 §7: the KE payload is x || y.
    assert_eq!(initiator.public_value(), h(&format!("{gix}{giy}")));
    assert_eq!(responder.public_value(), h(&format!("{grx}{gry}")));
    assert_eq!(
        *initiator.agree(responder.public_value()).expect("agree"),
        girx
    );
    assert_eq!(
        *responder.agree(initiator.public_value()).expect("agree"),
        girx
    );
    // A point off the curve (y changed) is refused.
    let mut bad = responder.public_value().to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(matches!(
        initiator.agree(&bad),
        Err(CryptoError::InvalidPublicValue)
    ));
    // So is the all-zero "point" and a value with the 0x04 prefix left on.
    assert!(matches!(
        initiator.agree(&vec![0; group.public_len()]),
        Err(CryptoError::InvalidPublicValue)
    ));
    let mut prefixed = vec![0x04];
    prefixed.extend_from_slice(responder.public_value());
    assert!(matches!(
        initiator.agree(&prefixed),
        Err(CryptoError::InvalidPublicValue)
    ));
}

#[test]
fn rfc7748_x25519_vector() {
    // RFC 7748 §6.1.
    let alice = DhPrivate::from_private_bytes(
        DhGroup::Curve25519,
        &h("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"),
    )
    .expect("alice");
    let bob = DhPrivate::from_private_bytes(
        DhGroup::Curve25519,
        &h("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"),
    )
    .expect("bob");
    assert_eq!(
        hex::encode(alice.public_value()),
        "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    );
    assert_eq!(
        hex::encode(bob.public_value()),
        "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
    );
    let shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    assert_eq!(
        hex::encode(&*alice.agree(bob.public_value()).expect("agree")),
        shared
    );
    assert_eq!(
        hex::encode(&*bob.agree(alice.public_value()).expect("agree")),
        shared
    );
    // A low-order point (here u = 0) gives an all-zero secret: refused.
    assert!(matches!(
        alice.agree(&[0; 32]),
        Err(CryptoError::InvalidPublicValue)
    ));
    assert!(matches!(
        alice.agree(&[9; 31]),
        Err(CryptoError::InvalidPublicValue)
    ));
}

/// Fixed MODP exponents x = 0x0102..40 and y = 0xfffe..c0 (64 bytes each).
///
/// The expected values were computed once with python3 and pasted:
///
/// ```text
/// x = int.from_bytes(bytes(range(1, 65)), 'big')
/// y = int.from_bytes(bytes(range(0xff, 0xbf, -1)), 'big')
/// gx = pow(2, x, p); gxy = pow(pow(2, y, p), x, p)   # for each prime p
/// print(gx.to_bytes(L, 'big').hex(), gxy.to_bytes(L, 'big').hex())
/// ```
fn fixed_exponents() -> (Vec<u8>, Vec<u8>) {
    ((1..=64).collect(), (0xc0..=0xff).rev().collect())
}

#[test]
fn modp_fixed_exponent_known_answers() {
    let expected: [(DhGroup, &str, &str); 3] = [
        (
            DhGroup::Modp1024,
            concat!(
                "d45667a37a74bf24b2769872354064f51fc26e5dbd8c376726aa1a415eca14d2",
                "36bf60467e64f0489d8d6ec4a5f983c48ea58ade3493336e00c9c6b442182822",
                "0017700d77039c0e090ded7807c9e9bc28e42fb2939ebb9d1ac4af10a7b2bef1",
                "356cb6f6b21eba5c8191ba982955698d860bb25fdfa60569adc75a68d160536e",
            ),
            concat!(
                "e1169aa28ec145323601e731ca2d643ffa50d5790d803259fab8b75692ffd72c",
                "ac416ef2346baaecfcd2e1bcaa6a4ea2623dc04f877b193185b25227fefa2ec0",
                "dfe8a4becb11d1dd910dd121f9f500a1e3155c3cbe42ba19e5ba191e6b1f6416",
                "a16a0787b4bf544071e39154eb40b1ec07ae0683eaf9daabfcb92b16a90432e0",
            ),
        ),
        (
            DhGroup::Modp1536,
            concat!(
                "f45fdcf52cc6cf5702d5c2d920ffe9265565b3c462c24d8c65e2dbdf5da7ab96",
                "4ad006aac1445920e9fb4f938935c82503afafebefb84520777d0242613eee7b",
                "6eda7a4cf389213494647c8927b317ec0752d2dc34c50f5556adfe09d5a283e9",
                "e1a8a53f434eb2bdb95ae8933f95fc270d70a86730519c9619a223ba6289a20d",
                "b610f7f755e762a75e09f391429bcf289cb8d95b71b6d2c7fa02b931ab4327da",
                "f12ef533f341e6da89a2e4fc2b9e681e5923160936d0b06562dce02242e5928f",
            ),
            concat!(
                "fc0c605a96905d6e43acfc6fca230346d954ec62198bd9894b358302c9c21aec",
                "5a3a90333e5dc90ea8047b1fc62940d12ea4c559d11cb94da2ac3f1967258beb",
                "2aeb6a1f4eaada681c186c43e063ddedc37775ffc13431c2905752704ea07946",
                "75e4a14d52a77d8352106761ae13e51c1a9decdb890855966e8e4abc4f417198",
                "c62036aa5df5971b81a77b6e9173ae862e63bf3fd267525857a149b00c89759e",
                "9e328d9a1ebef12243366b5afa3438cb410a09c15d7acbe6978b00e6e8ba50c3",
            ),
        ),
        (
            DhGroup::Modp2048,
            concat!(
                "ca737546c70b3a25a43d745a3e31526b3fc9f28dca1b890fed9c1cc46a1d2302",
                "2c597a3f9dcc6de91383f788f139e35c290558305a7935d242e1ca4d830a0b94",
                "abdc8b3f1bc6b0c43c6e8330b29a5f61ae8ac3ebddebbd69206d41fe819e975e",
                "982b4d290a93c8ecb87ec2c2e363544fe5b9f44af371e15c9f5d3c83e7904001",
                "bb9cf1667538acd767c24f2bed29ae165c5e3ad7ca009d9c801eb75febd18c50",
                "477ac0ae9562c684efd4d0c696046f8a95603d228c6c407f8d15d6aba62f433c",
                "6b023e8f2d9722cd34bd355dc2496693ee66a3cdc55d1ee1d7766554428a0b12",
                "99b5882359f9de57ca7a3ba3c3ca2d552ac6584a7ce9fd4846140888a7b411f8",
            ),
            concat!(
                "a22a2b96511bab1e64e2ea597ba05936eb689b796fd453327d116afb00c321b6",
                "ac148186ad45452ad0b4b3b194b6c9e71d6602f82d44596718068f13d6351a40",
                "035ecd7f52ef4d5674c5fa754b61eac90418770ba130e2f9fd70b02a49bb173b",
                "ce12a31c0c2269e04823fbcc70b3dc72257257ee5fe78e9741193073be525125",
                "9eca837ab2ab97f7affc6a96e841e577cdfeed3f527297fdcb9027bf84fd9936",
                "be42d3f98616963a7eb6a2d3797f69d29bee4aadfdf92378bbe66236b4999c3a",
                "f4246b2dc153a4555e5babc2e53855522b97b127e604c88a9401c87b6b402dc0",
                "01f088db483363ff9d512f800c00f6861826f7a4501c05fa553374f141d57a1f",
            ),
        ),
    ];
    let (x, y) = fixed_exponents();
    for (group, gx, gxy) in expected {
        let ours = DhPrivate::from_private_bytes(group, &x).expect("x");
        let theirs = DhPrivate::from_private_bytes(group, &y).expect("y");
        assert_eq!(hex::encode(ours.public_value()), gx, "{}", group.name());
        assert_eq!(
            hex::encode(&*ours.agree(theirs.public_value()).expect("agree")),
            gxy
        );
        assert_eq!(
            hex::encode(&*theirs.agree(ours.public_value()).expect("agree")),
            gxy
        );
    }
}

#[test]
fn modp_small_exponent_is_left_padded() {
    // 2^1 = 2: the public value is the modulus length with leading zeros
    // (RFC 2409 §5), and agreeing with exponent 1 returns the peer's value.
    for group in [DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp2048] {
        let one = DhPrivate::from_private_bytes(group, &[1]).expect("x = 1");
        let mut two = vec![0u8; group.public_len()];
        *two.last_mut().expect("non-empty") = 2;
        assert_eq!(one.public_value(), two);
        let mut peer = vec![0u8; group.public_len()];
        peer[group.public_len() - 2] = 0x01; // 256: many leading zeros
        assert_eq!(*one.agree(&peer).expect("agree"), peer);
    }
}

#[test]
fn modp_rejects_invalid_peer_values() {
    for ((prime, hex_p), group) in
        TEST_PRIMES
            .iter()
            .zip([DhGroup::Modp1024, DhGroup::Modp1536, DhGroup::Modp2048])
    {
        assert_eq!(prime.len(), group.public_len());
        let ours = DhPrivate::generate(group).expect("generate");
        let p = h(hex_p);
        let mut p_minus_1 = p.clone();
        *p_minus_1.last_mut().expect("non-empty") -= 1; // p is odd: no borrow
        let mut p_minus_2 = p_minus_1.clone();
        *p_minus_2.last_mut().expect("non-empty") -= 1;
        let len = group.public_len();
        let mut one = vec![0u8; len];
        one[len - 1] = 1;
        let all_ones = vec![0xff; len];
        for (what, bad) in [
            ("0", vec![0u8; len]),
            ("1", one),
            ("p-1", p_minus_1),
            ("p", p.clone()),
            ("2^n-1", all_ones),
            ("oversize", [&[0u8][..], &p_minus_2].concat()),
            ("short", p_minus_2[1..].to_vec()),
            ("empty", Vec::new()),
        ] {
            assert!(
                matches!(ours.agree(&bad), Err(CryptoError::InvalidPublicValue)),
                "{} {what}",
                group.name()
            );
        }
        // p-2 is the largest acceptable value.
        assert_eq!(ours.agree(&p_minus_2).expect("p-2").len(), len);
    }
}

#[test]
fn modp_exponent_longer_than_64_bytes_is_refused() {
    assert!(matches!(
        DhPrivate::from_private_bytes(DhGroup::Modp2048, &[1; 65]),
        Err(CryptoError::KeyLength)
    ));
}

#[test]
fn debug_shows_the_group_but_no_secret() {
    let key = DhPrivate::from_private_bytes(DhGroup::Modp1024, &[0xab; 64]).expect("key");
    let shown = format!("{key:?}");
    assert!(shown.contains("MODP-1024"), "{shown}");
    assert!(!shown.to_lowercase().contains("abab"), "{shown}");
}
