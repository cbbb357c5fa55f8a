use super::*;
use ids::*;
use transform_type::*;

/// Windows 10's first default IKE proposal: AES-CBC-256, SHA-1 (PRF and
/// integrity), MODP-1024, hand-assembled from RFC 7296 §3.3.1/§3.3.2.
const WINDOWS_LIKE: &[u8] = &[
    0, 0, 0, 44, // last proposal, length 44
    1, 1, 0, 4, // number 1, IKE, no SPI, 4 transforms
    3, 0, 0, 12, 1, 0, 0, 12, 0x80, 14, 1, 0, // ENCR AES-CBC, key length 256
    3, 0, 0, 8, 2, 0, 0, 2, // PRF HMAC-SHA1
    3, 0, 0, 8, 3, 0, 0, 2, // INTEG HMAC-SHA1-96
    0, 0, 0, 8, 4, 0, 0, 2, // D-H MODP-1024
];

#[test]
fn a_hand_assembled_proposal_parses() {
    let p = parse(WINDOWS_LIKE).expect("valid SA");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].protocol, protocol::IKE);
    assert!(p[0].spi.is_empty());
    assert_eq!(
        p[0].transforms,
        vec![
            Transform::with_key_bits(ENCR, ENCR_AES_CBC, 256),
            Transform::new(PRF, PRF_HMAC_SHA1),
            Transform::new(INTEG, AUTH_HMAC_SHA1_96),
            Transform::new(DH, 2),
        ]
    );
    // and our encoder produces exactly those bytes
    assert_eq!(encode(&p), WINDOWS_LIKE);
}

#[test]
fn several_proposals_round_trip() {
    let proposals = vec![
        Proposal {
            number: 1,
            protocol: protocol::ESP,
            spi: vec![0xc0, 0xff, 0xee, 0x01],
            transforms: vec![
                Transform::with_key_bits(ENCR, ENCR_AES_GCM_16, 128),
                Transform::new(ESN, ESN_NO),
            ],
        },
        Proposal {
            number: 2,
            protocol: protocol::ESP,
            spi: vec![0xc0, 0xff, 0xee, 0x01],
            transforms: vec![
                Transform::with_key_bits(ENCR, ENCR_AES_CBC, 128),
                Transform::new(INTEG, AUTH_HMAC_SHA2_256_128),
                Transform::new(ESN, ESN_NO),
            ],
        },
    ];
    let bytes = encode(&proposals);
    assert_eq!(parse(&bytes).expect("round trip"), proposals);
    assert_eq!(proposals[1].of_type(ENCR).count(), 1);
}

#[test]
fn unknown_attributes_mark_the_transform() {
    let mut bytes = WINDOWS_LIKE.to_vec();
    bytes[17] = 15; // attribute type 15 instead of Key Length
    let p = parse(&bytes).expect("still parses");
    assert!(p[0].transforms[0].unknown_attribute);
    assert_eq!(p[0].transforms[0].key_bits, None);
}

#[test]
fn malformed_payloads_are_errors_not_panics() {
    assert_eq!(parse(&[]), Err(SaError::Truncated));
    let mut short = WINDOWS_LIKE.to_vec();
    short[3] = 60; // proposal longer than the payload
    assert_eq!(parse(&short), Err(SaError::ProposalLength(1)));
    let mut count = WINDOWS_LIKE.to_vec();
    count[7] = 5;
    assert_eq!(parse(&count), Err(SaError::TransformCount(1)));
    // a lone proposal may carry any number (an answer echoes the chosen
    // one), but the next one must follow it
    let mut echoed = WINDOWS_LIKE.to_vec();
    echoed[4] = 3;
    assert_eq!(parse(&echoed).expect("echoed number")[0].number, 3);
    let mut two = WINDOWS_LIKE.to_vec();
    two[0] = 2; // more proposals follow
    two.extend_from_slice(WINDOWS_LIKE);
    two[44 + 4] = 5; // second proposal numbered 5 after 1
    assert!(matches!(
        parse(&two),
        Err(SaError::Numbering {
            number: 5,
            previous: 1
        })
    ));
    let mut tlen = WINDOWS_LIKE.to_vec();
    tlen[11] = 7; // transform shorter than its header
    assert_eq!(parse(&tlen), Err(SaError::TransformLength(1)));
    // every truncation of a valid payload is an error, never a panic
    for cut in 0..WINDOWS_LIKE.len() {
        assert!(parse(&WINDOWS_LIKE[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn names_for_the_refusal_log() {
    assert_eq!(
        transform_name(&Transform::with_key_bits(ENCR, ENCR_AES_CBC, 256)),
        "AES-CBC-256"
    );
    assert_eq!(transform_name(&Transform::new(DH, 31)), "Curve25519");
    assert_eq!(transform_name(&Transform::new(9, 99)), "transform 9/99");
}
