use super::*;
use ids::*;
use transform_type::*;

fn ike(number: u8, transforms: Vec<Transform>) -> Proposal {
    Proposal {
        number,
        protocol: protocol::IKE,
        spi: vec![],
        transforms,
    }
}

fn esp(number: u8, transforms: Vec<Transform>) -> Proposal {
    Proposal {
        number,
        protocol: protocol::ESP,
        spi: vec![0xca, 0xfe, 0xf0, 0x0d],
        transforms,
    }
}

/// Windows 10's default IKE_SA_INIT offer (issue 14): 3DES/AES-CBC ×
/// SHA-1/SHA2-256/384 × MODP-1024, one combination per proposal.
fn windows10() -> Vec<Proposal> {
    let mut out = Vec::new();
    let mut n = 0;
    for encr in [
        Transform::with_key_bits(ENCR, ENCR_AES_CBC, 256),
        Transform::new(ENCR, ENCR_3DES),
    ] {
        for (prf, integ) in [
            (PRF_HMAC_SHA1, AUTH_HMAC_SHA1_96),
            (PRF_HMAC_SHA2_256, AUTH_HMAC_SHA2_256_128),
            (PRF_HMAC_SHA2_384, AUTH_HMAC_SHA2_384_192),
        ] {
            n += 1;
            out.push(ike(
                n,
                vec![
                    encr,
                    Transform::new(PRF, prf),
                    Transform::new(INTEG, integ),
                    Transform::new(DH, 2),
                ],
            ));
        }
    }
    out
}

#[test]
fn windows_defaults_are_answered_with_its_first_proposal() {
    let choice = choose_ike(&windows10(), &Ikev2Policy::default(), 2).expect("chosen");
    assert_eq!(choice.reply.number, 1);
    assert_eq!(choice.group, DhGroup::Modp1024);
    assert_eq!(choice.prf, HashAlg::Sha1);
    assert_eq!(
        choice.protection,
        SkTransform {
            cipher: SkCipher::Cbc(IkeCipher::Aes256Cbc),
            integ: Some(SkInteg::HmacSha1_96),
        }
    );
    assert_eq!(choice.reply.transforms.len(), 4);
}

#[test]
fn an_operator_can_remove_weak_choices() {
    let policy = Ikev2Policy {
        groups: vec![DhGroup::Modp2048, DhGroup::Ecp256],
        ..Ikev2Policy::default()
    };
    assert_eq!(
        choose_ike(&windows10(), &policy, 2),
        Err(IkeRefusal::NoProposalChosen)
    );
    let policy = Ikev2Policy {
        ike_prfs: vec![HashAlg::Sha256],
        ..Ikev2Policy::default()
    };
    let choice = choose_ike(&windows10(), &policy, 2).expect("SHA-256 proposal");
    assert_eq!(choice.reply.number, 2);
}

#[test]
fn a_strongswan_like_aead_proposal() {
    let offer = vec![ike(
        1,
        vec![
            Transform::with_key_bits(ENCR, ENCR_AES_GCM_16, 128),
            Transform::new(ENCR, ENCR_CHACHA20_POLY1305),
            Transform::new(PRF, PRF_HMAC_SHA2_256),
            Transform::new(DH, 31),
            Transform::new(DH, 19),
        ],
    )];
    let choice = choose_ike(&offer, &Ikev2Policy::default(), 31).expect("chosen");
    assert_eq!(choice.protection.cipher, SkCipher::AesGcm16 { key_len: 16 });
    assert_eq!(choice.protection.integ, None);
    assert_eq!(choice.group, DhGroup::Curve25519);
    // an AEAD proposal that also carries a real integrity transform is malformed
    let mut bad = offer.clone();
    bad[0]
        .transforms
        .push(Transform::new(INTEG, AUTH_HMAC_SHA1_96));
    assert_eq!(
        choose_ike(&bad, &Ikev2Policy::default(), 31),
        Err(IkeRefusal::NoProposalChosen)
    );
}

#[test]
fn a_mismatched_ke_asks_for_an_acceptable_group() {
    let offer = vec![ike(
        1,
        vec![
            Transform::with_key_bits(ENCR, ENCR_AES_CBC, 128),
            Transform::new(PRF, PRF_HMAC_SHA2_256),
            Transform::new(INTEG, AUTH_HMAC_SHA2_256_128),
            Transform::new(DH, 19),
            Transform::new(DH, 14),
        ],
    )];
    let policy = Ikev2Policy {
        groups: vec![DhGroup::Modp2048],
        ..Ikev2Policy::default()
    };
    assert_eq!(
        choose_ike(&offer, &policy, 19),
        Err(IkeRefusal::InvalidKe(DhGroup::Modp2048))
    );
    assert_eq!(
        choose_ike(&offer, &policy, 14).map(|c| c.group),
        Ok(DhGroup::Modp2048)
    );
}

#[test]
fn child_sa_choice_in_ike_auth_ignores_dh_and_requires_esn_no() {
    let offer = vec![
        esp(
            1,
            vec![
                Transform::with_key_bits(ENCR, ENCR_AES_CBC, 192), // not ours
                Transform::new(INTEG, AUTH_HMAC_SHA1_96),
                Transform::new(ESN, ESN_NO),
            ],
        ),
        esp(
            2,
            vec![
                Transform::with_key_bits(ENCR, ENCR_AES_CBC, 256),
                Transform::new(INTEG, AUTH_HMAC_SHA2_512_256), // not ours
                Transform::new(INTEG, AUTH_HMAC_SHA1_96),
                Transform::new(DH, 14),
                Transform::new(ESN, ESN_NO),
            ],
        ),
    ];
    let choice = choose_child(&offer, &Ikev2Policy::default(), None).expect("chosen");
    assert_eq!(choice.reply.number, 2);
    assert_eq!(choice.suite, CipherSuite::Aes256Cbc(Integrity::HmacSha1_96));
    assert_eq!(choice.peer_spi, 0xcafef00d);
    assert_eq!(choice.group, None);
    assert!(!choice.reply.transforms.iter().any(|t| t.kind == DH));
    let esn_only = vec![esp(
        1,
        vec![
            Transform::with_key_bits(ENCR, ENCR_AES_GCM_16, 256),
            Transform::new(ESN, ESN_YES),
        ],
    )];
    assert_eq!(
        choose_child(&esn_only, &Ikev2Policy::default(), None),
        Err(IkeRefusal::NoProposalChosen)
    );
}

#[test]
fn child_rekey_with_pfs_uses_the_ke_group() {
    let offer = vec![esp(
        1,
        vec![
            Transform::with_key_bits(ENCR, ENCR_AES_GCM_16, 128),
            Transform::new(DH, 19),
            Transform::new(ESN, ESN_NO),
        ],
    )];
    let choice = choose_child(&offer, &Ikev2Policy::default(), Some(19)).expect("chosen");
    assert_eq!(choice.group, Some(DhGroup::Ecp256));
    assert_eq!(
        choose_child(&offer, &Ikev2Policy::default(), Some(14)),
        Err(IkeRefusal::InvalidKe(DhGroup::Ecp256))
    );
    // a rekey without KE (Windows' default) against a proposal with DH
    assert_eq!(
        choose_child(&offer, &Ikev2Policy::default(), None).map(|c| c.group),
        Ok(None)
    );
}

#[test]
fn the_refusal_log_names_every_offer() {
    let line = describe_offer(&windows10()[..2]);
    assert_eq!(
        line,
        "IKE #1 AES-CBC-256/PRF-HMAC-SHA1/HMAC-SHA1-96/MODP-1024, \
         IKE #2 AES-CBC-256/PRF-HMAC-SHA2-256/HMAC-SHA2-256-128/MODP-1024"
    );
}

/// Apple's and strongSwan's ChaCha20-Poly1305 child SA (RFC 7634 §4: no
/// key length, no integrity transform) is accepted by default; 3DES only
/// when the operator lists it.
#[test]
fn chacha20_poly1305_children_by_default_and_3des_only_when_listed() {
    let chacha = vec![esp(
        1,
        vec![
            Transform::new(ENCR, ENCR_CHACHA20_POLY1305),
            Transform::new(ESN, ESN_NO),
        ],
    )];
    let choice = choose_child(&chacha, &Ikev2Policy::default(), None).expect("chosen");
    assert_eq!(choice.suite, CipherSuite::ChaCha20Poly1305);
    assert_eq!(
        choice.reply.transforms[0],
        Transform::new(ENCR, ENCR_CHACHA20_POLY1305)
    );

    let triple_des = vec![esp(
        1,
        vec![
            Transform::new(ENCR, ENCR_3DES),
            Transform::new(INTEG, AUTH_HMAC_SHA1_96),
            Transform::new(ESN, ESN_NO),
        ],
    )];
    assert_eq!(
        choose_child(&triple_des, &Ikev2Policy::default(), None),
        Err(IkeRefusal::NoProposalChosen)
    );
    let mut legacy = Ikev2Policy::default();
    legacy
        .esp_suites
        .push(CipherSuite::TripleDesCbc(Integrity::HmacSha1_96));
    let choice = choose_child(&triple_des, &legacy, None).expect("chosen when listed");
    assert_eq!(
        choice.suite,
        CipherSuite::TripleDesCbc(Integrity::HmacSha1_96)
    );
}
