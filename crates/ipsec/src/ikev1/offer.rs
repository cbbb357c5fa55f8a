//! The initiator's side of negotiation: the SA payloads we offer (RFC 2409
//! Appendix A for Main Mode, RFC 2407 §4.5 for Quick Mode) and the check
//! that the responder chose exactly one of them (RFC 2408 §4.2: it must
//! answer with one of the offered transforms, unchanged).

use std::time::Duration;

use crate::esp::{CipherSuite, Integrity};
use crate::ike_crypto::{DhGroup, HashAlg, IkeCipher};

use super::initiator_config::IkeOffer;
use super::proposal::{
    choose_phase1, choose_phase2, p1, p2, AuthMethod, EncapsulationMode, Phase1Choice,
    Phase2Choice, ProposalPolicy, LIFE_SECONDS,
};
use super::sa_payload::{
    parse_attributes, protocol, push_number, Proposal, SaPayload, Transform, SIT_IDENTITY_ONLY,
};

fn transform(number: u8, id: u8, attributes: &[(u16, u64)]) -> Transform {
    let mut raw = Vec::new();
    for &(kind, value) in attributes {
        push_number(&mut raw, kind, value);
    }
    Transform {
        number,
        id,
        attributes: parse_attributes(&raw).expect("attributes we just encoded"),
        raw_attributes: raw,
    }
}

/// RFC 2409 Appendix A: encryption algorithm and key length.
fn cipher_attributes(cipher: IkeCipher) -> (u64, Option<u64>) {
    match cipher {
        IkeCipher::TripleDesCbc => (5, None),
        IkeCipher::Aes128Cbc => (7, Some(128)),
        IkeCipher::Aes192Cbc => (7, Some(192)),
        IkeCipher::Aes256Cbc => (7, Some(256)),
    }
}

fn hash_id(hash: HashAlg) -> u64 {
    match hash {
        HashAlg::Md5 => 1,
        HashAlg::Sha1 => 2,
        HashAlg::Sha256 => 4,
        HashAlg::Sha384 => 5,
        HashAlg::Sha512 => 6,
    }
}

/// The body of our Main Mode SA payload: one ISAKMP proposal with one
/// transform per offer (what Windows and strongSwan send).
/// `auth` is the one method we can prove: a pre-shared key, or the
/// signature our key makes (RFC 2409 Appendix A, RFC 4754 §3).
pub fn main_mode_offer(offers: &[IkeOffer], lifetime: Duration, auth: AuthMethod) -> Vec<u8> {
    let transforms = offers
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let (enc, key) = cipher_attributes(o.cipher);
            let mut attrs = vec![(p1::ENCRYPTION, enc)];
            if let Some(k) = key {
                attrs.push((p1::KEY_LENGTH, k));
            }
            attrs.extend([
                (p1::HASH, hash_id(o.hash)),
                (p1::AUTH_METHOD, auth.id()),
                (p1::GROUP, u64::from(o.group.id())),
                (p1::LIFE_TYPE, LIFE_SECONDS),
                (p1::LIFE_DURATION, lifetime.as_secs().max(1)),
            ]);
            transform(i as u8 + 1, p1::KEY_IKE, &attrs)
        })
        .collect();
    SaPayload::encode(
        SIT_IDENTITY_ONLY,
        &[Proposal {
            number: 1,
            protocol: protocol::ISAKMP,
            spi: Vec::new(),
            transforms,
        }],
    )
}

/// Checks the responder's Main Mode answer: one proposal, one transform,
/// and that transform one we offered.
pub fn accept_main_mode(
    answer: &SaPayload,
    offers: &[IkeOffer],
    auth: AuthMethod,
) -> Result<Phase1Choice, String> {
    let transforms: usize = answer.proposals.iter().map(|p| p.transforms.len()).sum();
    if answer.proposals.len() != 1 || transforms != 1 {
        return Err(format!(
            "the server answered with {} proposals and {} transforms instead of one",
            answer.proposals.len(),
            transforms
        ));
    }
    let policy = ProposalPolicy {
        ike_ciphers: offers.iter().map(|o| o.cipher).collect(),
        ike_hashes: offers.iter().map(|o| o.hash).collect(),
        ike_groups: offers.iter().map(|o| o.group).collect(),
        esp_suites: Vec::new(),
    };
    let choice = choose_phase1(answer, &policy, &|a| a == auth)
        .filter(|c| offers.contains(&IkeOffer::new(c.cipher, c.hash, c.group)))
        .ok_or_else(|| {
            format!(
                "the server chose a Main Mode transform we did not offer: {}",
                super::proposal::describe_offer(answer)
            )
        })?;
    Ok(choice)
}

/// RFC 2407 §4.4.4 transform ID, key length and authentication algorithm
/// of an ESP suite; `None` for a suite IKEv1 has no transform for
/// (ChaCha20-Poly1305 is defined for IKEv2 only, RFC 7634 §4).
fn esp_attributes(suite: CipherSuite) -> Option<(u8, Option<u64>, Option<u64>)> {
    let auth = |i: Integrity| match i {
        Integrity::HmacSha1_96 => p2::AUTH_HMAC_SHA1,
        Integrity::HmacSha256_128 => p2::AUTH_HMAC_SHA2_256,
    };
    Some(match suite {
        CipherSuite::Aes128Cbc(i) => (p2::ESP_AES_CBC, Some(128), Some(auth(i))),
        CipherSuite::Aes256Cbc(i) => (p2::ESP_AES_CBC, Some(256), Some(auth(i))),
        // RFC 4106 §8.4: no separate authentication algorithm with GCM.
        CipherSuite::Aes128Gcm16 => (p2::ESP_AES_GCM_16, Some(128), None),
        CipherSuite::Aes256Gcm16 => (p2::ESP_AES_GCM_16, Some(256), None),
        // RFC 2451 §2.2: 3DES has a fixed key size, so no Key Length.
        CipherSuite::TripleDesCbc(i) => (p2::ESP_3DES, None, Some(auth(i))),
        _ => return None,
    })
}

/// The encapsulation mode number we ask for (RFC 2407 §4.5, RFC 3947
/// §5.1, and the drafts' 61444).
pub fn mode_id(mode: EncapsulationMode) -> u64 {
    match mode {
        EncapsulationMode::Tunnel => 1,
        EncapsulationMode::Transport => 2,
        EncapsulationMode::UdpTunnel => 3,
        EncapsulationMode::UdpTransport => 4,
        EncapsulationMode::UdpTunnelDraft => 61443,
        EncapsulationMode::UdpTransportDraft => 61444,
    }
}

/// The body of our Quick Mode SA payload: one ESP proposal per suite (as
/// Windows sends them), all with our inbound SPI.
pub fn quick_mode_offer(
    suites: &[CipherSuite],
    spi: u32,
    mode: EncapsulationMode,
    pfs: Option<DhGroup>,
    lifetime: Duration,
) -> Vec<u8> {
    let proposals: Vec<Proposal> = suites
        .iter()
        .filter_map(|&suite| esp_attributes(suite))
        .enumerate()
        .map(|(i, (id, key_len, auth))| {
            let mut attrs = vec![
                (p2::LIFE_TYPE, LIFE_SECONDS),
                (p2::LIFE_DURATION, lifetime.as_secs().max(1)),
                (p2::ENCAPSULATION, mode_id(mode)),
            ];
            if let Some(a) = auth {
                attrs.push((p2::AUTH_ALGORITHM, a));
            }
            if let Some(bits) = key_len {
                attrs.push((p2::KEY_LENGTH, bits));
            }
            if let Some(g) = pfs {
                attrs.push((p2::GROUP, u64::from(g.id())));
            }
            Proposal {
                number: i as u8 + 1,
                protocol: protocol::ESP,
                spi: spi.to_be_bytes().to_vec(),
                transforms: vec![transform(1, id, &attrs)],
            }
        })
        .collect();
    SaPayload::encode(SIT_IDENTITY_ONLY, &proposals)
}

/// Checks the responder's Quick Mode answer: one ESP proposal with one
/// transform, a suite we offered, our mode and PFS group. The proposal's
/// SPI is the responder's inbound SPI (our outbound).
pub fn accept_quick_mode(
    answer: &SaPayload,
    suites: &[CipherSuite],
    mode: EncapsulationMode,
    pfs: Option<DhGroup>,
) -> Result<Phase2Choice, String> {
    if answer.proposals.len() != 1 || answer.proposals[0].transforms.len() != 1 {
        return Err("the server answered Quick Mode with more than one proposal".into());
    }
    let policy = ProposalPolicy {
        ike_ciphers: Vec::new(),
        ike_hashes: Vec::new(),
        ike_groups: pfs.into_iter().collect(),
        esp_suites: suites.to_vec(),
    };
    let choice = choose_phase2(answer, &policy).ok_or_else(|| {
        format!(
            "the server chose an ESP transform we did not offer: {}",
            super::proposal::describe_offer(answer)
        )
    })?;
    if choice.mode != mode {
        return Err(format!(
            "the server changed the encapsulation mode to {}",
            mode_id(choice.mode)
        ));
    }
    if choice.pfs_group != pfs {
        return Err("the server changed the PFS group".into());
    }
    Ok(choice)
}

/// RFC 2407 §4.6.3.1: RESPONDER-LIFETIME carries SA attributes; the
/// lifetime in seconds among them, if any.
pub fn responder_lifetime_seconds(data: &[u8], type_kind: u16, duration_kind: u16) -> Option<u64> {
    let t = Transform {
        number: 0,
        id: 0,
        attributes: parse_attributes(data).ok()?,
        raw_attributes: data.to_vec(),
    };
    t.lifetimes(type_kind, duration_kind)
        .into_iter()
        .find(|(kind, _)| *kind == LIFE_SECONDS)
        .map(|(_, d)| d)
}
