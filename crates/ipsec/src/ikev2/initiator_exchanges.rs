//! The initiator's exchanges: IKE_SA_INIT with cookie and INVALID_KE
//! retries (§1.2, §2.6), IKE_AUTH with a pre-shared key or EAP (§2.15,
//! §2.16), and child SA rekeys (§1.3.3).

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use aws_lc_rs::constant_time::verify_slices_are_equal;
use zeroize::Zeroizing;

use crate::esp::{CipherSuite, EspSaConfig, Integrity, LifetimeLimits};
use crate::ike_crypto::ikev2_keys::{child_sa_keymat, ike_sa_keys, skeyseed};
use crate::ike_crypto::{DhGroup, DhPrivate, HashAlg};
use crate::ikev1::nat_detection::{nat_d, NatState};

use super::auth::{shared_key_auth, signed_octets};
use super::config_payload::{attribute, cfg_type, ConfigBuilder, ConfigPayload};
use super::encrypted::{SkCipher, SkInteg};
use super::initiator::{
    child_event, random_spi, ClientChild, Ikev2ClientEvent, Ikev2Initiator, Phase, Purpose,
};
use super::initiator_config::{ClientAuth, Ikev2Offer};
use super::notify;
use super::payloads::{auth_method, Authentication, Delete, Identification, KeyExchange, Notify};
use super::proposal::{choose_child, choose_ike, Ikev2Policy};
use super::sa_payload::{self, ids, protocol, transform_type, Proposal, Transform};
use super::server_signature::verify_server;
use super::signature_auth::{hash_id, parse_hash_algorithms};
use super::traffic_selectors::{self, TrafficSelector};
use super::wire::{self, exchange, flags, payload, Header, PayloadChain, HEADER_LEN};

fn ike_transforms(offer: &Ikev2Offer) -> Vec<Transform> {
    let encr = match offer.cipher {
        SkCipher::Cbc(c) => match c {
            crate::ike_crypto::IkeCipher::TripleDesCbc => {
                Transform::new(transform_type::ENCR, ids::ENCR_3DES)
            }
            other => Transform::with_key_bits(
                transform_type::ENCR,
                ids::ENCR_AES_CBC,
                (other.key_len() * 8) as u16,
            ),
        },
        SkCipher::AesGcm16 { key_len } => Transform::with_key_bits(
            transform_type::ENCR,
            ids::ENCR_AES_GCM_16,
            (key_len * 8) as u16,
        ),
        SkCipher::ChaCha20Poly1305 => {
            Transform::new(transform_type::ENCR, ids::ENCR_CHACHA20_POLY1305)
        }
    };
    let prf = match offer.prf {
        HashAlg::Sha1 | HashAlg::Md5 => ids::PRF_HMAC_SHA1,
        HashAlg::Sha256 => ids::PRF_HMAC_SHA2_256,
        HashAlg::Sha384 => ids::PRF_HMAC_SHA2_384,
        HashAlg::Sha512 => ids::PRF_HMAC_SHA2_512,
    };
    let mut out = vec![encr, Transform::new(transform_type::PRF, prf)];
    if let Some(i) = offer.integ {
        let id = match i {
            SkInteg::HmacSha1_96 => ids::AUTH_HMAC_SHA1_96,
            SkInteg::HmacSha256_128 => ids::AUTH_HMAC_SHA2_256_128,
            SkInteg::HmacSha384_192 => ids::AUTH_HMAC_SHA2_384_192,
            SkInteg::HmacSha512_256 => ids::AUTH_HMAC_SHA2_512_256,
        };
        out.push(Transform::new(transform_type::INTEG, id));
    }
    out.push(Transform::new(transform_type::DH, offer.group.id()));
    out
}

fn esp_transforms(suite: CipherSuite) -> Vec<Transform> {
    let integ = |i: Integrity| match i {
        Integrity::HmacSha1_96 => ids::AUTH_HMAC_SHA1_96,
        Integrity::HmacSha256_128 => ids::AUTH_HMAC_SHA2_256_128,
    };
    let mut out = match suite {
        CipherSuite::Aes128Gcm16 => vec![Transform::with_key_bits(
            transform_type::ENCR,
            ids::ENCR_AES_GCM_16,
            128,
        )],
        CipherSuite::Aes256Gcm16 => vec![Transform::with_key_bits(
            transform_type::ENCR,
            ids::ENCR_AES_GCM_16,
            256,
        )],
        CipherSuite::Aes128Cbc(i) => vec![
            Transform::with_key_bits(transform_type::ENCR, ids::ENCR_AES_CBC, 128),
            Transform::new(transform_type::INTEG, integ(i)),
        ],
        CipherSuite::Aes256Cbc(i) => vec![
            Transform::with_key_bits(transform_type::ENCR, ids::ENCR_AES_CBC, 256),
            Transform::new(transform_type::INTEG, integ(i)),
        ],
        // RFC 7634 §4: no Key Length attribute, no integrity transform.
        CipherSuite::ChaCha20Poly1305 => vec![Transform::new(
            transform_type::ENCR,
            ids::ENCR_CHACHA20_POLY1305,
        )],
        CipherSuite::TripleDesCbc(i) => vec![
            Transform::new(transform_type::ENCR, ids::ENCR_3DES),
            Transform::new(transform_type::INTEG, integ(i)),
        ],
    };
    out.push(Transform::new(transform_type::ESN, ids::ESN_NO));
    out
}

impl Ikev2Initiator {
    /// Our NAT_DETECTION_SOURCE_IP (§2.23) with the responder SPI `spi_r`
    /// (zero in IKE_SA_INIT). To force UDP encapsulation §2.23 lets us
    /// send one that cannot match: the hash of 0.0.0.0:0, an address no
    /// datagram comes from, so the server sees us behind a NAT.
    fn source_nat_d(&self, spi_r: &[u8; 8]) -> Vec<u8> {
        let source = if self.config.force_udp_encapsulation {
            SocketAddr::new(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), 0)
        } else {
            self.local
        };
        nat_d(HashAlg::Sha1, &self.spi_i, spi_r, source)
    }

    pub(crate) fn our_policy(&self) -> Ikev2Policy {
        let offers = &self.config.ike_offers;
        Ikev2Policy {
            ike_ciphers: offers.iter().map(|o| o.cipher).collect(),
            ike_prfs: offers.iter().map(|o| o.prf).collect(),
            ike_integrity: offers.iter().filter_map(|o| o.integ).collect(),
            groups: offers.iter().map(|o| o.group).collect(),
            esp_suites: self.config.esp_suites.clone(),
        }
    }

    pub(crate) fn esp_proposals(&self, spi: u32) -> Vec<Proposal> {
        self.config
            .esp_suites
            .iter()
            .enumerate()
            .map(|(i, s)| Proposal {
                number: i as u8 + 1,
                protocol: protocol::ESP,
                spi: spi.to_be_bytes().to_vec(),
                transforms: esp_transforms(*s),
            })
            .collect()
    }

    pub(crate) fn send_sa_init(&mut self, now: Instant, group: DhGroup, cookie: Option<Vec<u8>>) {
        let dh = match DhPrivate::generate(group) {
            Ok(dh) => dh,
            Err(e) => {
                self.fail(now, format!("could not make a key exchange value: {e}"));
                return;
            }
        };
        let proposals: Vec<Proposal> = self
            .config
            .ike_offers
            .iter()
            .enumerate()
            .map(|(i, o)| Proposal {
                number: i as u8 + 1,
                protocol: protocol::IKE,
                spi: Vec::new(),
                transforms: ike_transforms(o),
            })
            .collect();
        let mut chain = PayloadChain::new();
        if let Some(c) = &cookie {
            // §2.6: the cookie goes first.
            chain.push(payload::NOTIFY, &Notify::encode(notify::COOKIE, c));
        }
        chain.push(payload::SA, &sa_payload::encode(&proposals));
        chain.push(
            payload::KE,
            &KeyExchange::encode(group.id(), dh.public_value()),
        );
        chain.push(payload::NONCE, &self.ni);
        let zero = [0u8; 8];
        chain.push(
            payload::NOTIFY,
            &Notify::encode(notify::NAT_DETECTION_SOURCE_IP, &self.source_nat_d(&zero)),
        );
        chain.push(
            payload::NOTIFY,
            &Notify::encode(
                notify::NAT_DETECTION_DESTINATION_IP,
                &nat_d(HashAlg::Sha1, &self.spi_i, &zero, self.remote),
            ),
        );
        if self.config.fragmentation {
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::IKEV2_FRAGMENTATION_SUPPORTED, &[]),
            );
        }
        if self.config.server_trust.is_some() {
            // RFC 7427 §4: SHA-2 signatures, rather than RSA with SHA-1.
            let hashes: Vec<u8> = [hash_id::SHA2_256, hash_id::SHA2_384, hash_id::SHA2_512]
                .iter()
                .flat_map(|h| h.to_be_bytes())
                .collect();
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::SIGNATURE_HASH_ALGORITHMS, &hashes),
            );
        }
        let header = Header::new(
            self.spi_i,
            [0; 8],
            exchange::IKE_SA_INIT,
            flags::INITIATOR,
            0,
        );
        self.init_request = wire::message(&header, &chain);
        self.phase = Phase::SaInit { dh, cookie };
        let request = self.init_request.clone();
        self.send_tracked(now, 0, vec![request], Purpose::SaInit);
    }

    pub(crate) fn sa_init_response(&mut self, now: Instant, header: &Header, message: &[u8]) {
        let Ok(chain) = wire::payloads(header.next_payload, &message[HEADER_LEN..]) else {
            return;
        };
        let notifies: Vec<Notify> = wire::notifies(&chain).collect();
        if let Some(cookie) = notifies.iter().find(|n| n.kind == notify::COOKIE) {
            // §2.6: repeat the request with the cookie.
            let Phase::SaInit { dh, .. } = &self.phase else {
                return;
            };
            let group = dh.group();
            let cookie = cookie.data.to_vec();
            self.send_sa_init(now, group, Some(cookie));
            return;
        }
        if let Some(n) = notifies
            .iter()
            .find(|n| n.kind == notify::INVALID_KE_PAYLOAD)
        {
            // §1.2: the server wants another group; only one we offered.
            let wanted = (n.data.len() == 2)
                .then(|| u16::from_be_bytes([n.data[0], n.data[1]]))
                .and_then(DhGroup::from_id)
                .filter(|g| self.config.ike_offers.iter().any(|o| o.group == *g));
            let Phase::SaInit { cookie, dh } = &self.phase else {
                return;
            };
            match wanted {
                Some(group) if group != dh.group() => {
                    let cookie = cookie.clone();
                    self.send_sa_init(now, group, cookie);
                }
                _ => self.fail(
                    now,
                    "the server asked for a key exchange group we do not offer".into(),
                ),
            }
            return;
        }
        if let Some(n) = notifies.iter().find(|n| n.is_error()) {
            let reason = format!("the server refused IKE_SA_INIT: {}", notify::name(n.kind));
            self.fail(now, reason);
            return;
        }
        let Some((sa, ke, nr)) = sa_ke_nonce(&chain) else {
            self.fail(now, "malformed IKE_SA_INIT answer".into());
            return;
        };
        // The answer must be one of our proposals, with the group we sent.
        let Phase::SaInit { dh, .. } = &self.phase else {
            return;
        };
        let choice = match choose_ike(&sa, &self.our_policy(), dh.group().id()) {
            Ok(c) if sa.len() == 1 && ke.group == dh.group().id() => c,
            _ => {
                self.fail(now, "the server chose a proposal we did not offer".into());
                return;
            }
        };
        let shared = match dh.agree(ke.data) {
            Ok(s) => s,
            Err(e) => {
                self.fail(
                    now,
                    format!("the server's key exchange value is invalid: {e}"),
                );
                return;
            }
        };
        self.spi_r = header.spi_r;
        self.nr = nr.to_vec();
        self.init_response = message.to_vec();
        self.prf = choice.prf;
        self.protection = Some(choice.protection);
        self.ike_group = choice.group;
        self.ike_proposal = Some(choice.reply.clone());
        let seed = skeyseed(choice.prf, &self.ni, &self.nr, &shared);
        self.keys = Some(ike_sa_keys(
            choice.prf,
            &seed,
            &self.ni,
            &self.nr,
            &self.spi_i,
            &self.spi_r,
            choice.protection.key_lengths(),
        ));
        // §2.23: NAT detection with both SPIs of the answer's header.
        let sources: Vec<&[u8]> = notifies
            .iter()
            .filter(|n| n.kind == notify::NAT_DETECTION_SOURCE_IP)
            .map(|n| n.data)
            .collect();
        let destination = notifies
            .iter()
            .find(|n| n.kind == notify::NAT_DETECTION_DESTINATION_IP)
            .map(|n| n.data);
        let expected_source = nat_d(HashAlg::Sha1, &self.spi_i, &self.spi_r, self.remote);
        let expected_destination = nat_d(HashAlg::Sha1, &self.spi_i, &self.spi_r, self.local);
        self.nat_seen = NatState {
            peer_behind_nat: !sources.is_empty() && !sources.contains(&expected_source.as_slice()),
            local_behind_nat: destination.is_some_and(|d| d != expected_destination.as_slice()),
        };
        // A forced encapsulation acts as if we were behind a NAT.
        self.nat = NatState {
            local_behind_nat: self.nat_seen.local_behind_nat || self.config.force_udp_encapsulation,
            ..self.nat_seen
        };
        self.server_fragments = notifies
            .iter()
            .any(|n| n.kind == notify::IKEV2_FRAGMENTATION_SUPPORTED);
        self.server_hashes = notifies
            .iter()
            .find(|n| n.kind == notify::SIGNATURE_HASH_ALGORITHMS)
            .map(|n| parse_hash_algorithms(n.data))
            .unwrap_or_default();
        if self.nat.any() {
            // §2.23: after a NAT is detected, IKE and ESP move to port 4500.
            self.remote = SocketAddr::new(self.remote.ip(), self.config.nat_t_port);
            self.on_nat_t = true;
        }
        self.outstanding = None;
        self.next_message_id = 1;
        self.send_first_auth(now);
    }

    fn send_first_auth(&mut self, now: Instant) {
        let Some(keys) = &self.keys else { return };
        self.idi_body = Identification::encode(self.config.identity_type, &self.config.identity);
        let mut chain = PayloadChain::new();
        chain.push(payload::IDI, &self.idi_body);
        if let Some(trust) = &self.config.server_trust {
            // §3.7: names our CAs, and asks the server for its chain.
            chain.push(payload::CERTREQ, &trust.cert_request());
        }
        chain.push(
            payload::NOTIFY,
            &Notify::encode(notify::INITIAL_CONTACT, &[]),
        );
        // §2.15: our AUTH covers our IKE_SA_INIT request, the server's
        // nonce and prf(SK_pi, IDi); without AUTH we ask for EAP (§2.16).
        let signed = signed_octets(
            self.prf,
            &self.init_request,
            &self.nr,
            &keys.sk_pi,
            &self.idi_body,
        );
        match &self.config.auth {
            ClientAuth::SharedKey(key) => {
                chain.push(
                    payload::AUTH,
                    &Authentication::encode(
                        auth_method::SHARED_KEY_MIC,
                        &shared_key_auth(self.prf, key, &signed),
                    ),
                );
            }
            ClientAuth::Certificate(credential) => {
                // RFC 7427 when the server announced it, else method 1 (RSA)
                // or RFC 4754 (ECDSA).
                if let Err(e) = credential.push_auth(&mut chain, &signed, &self.server_hashes) {
                    self.fail(now, format!("cannot sign our AUTH: {e}"));
                    return;
                }
            }
            ClientAuth::Eap { .. } => {}
        }
        if self.config.request_address {
            let cp = ConfigBuilder::new(cfg_type::REQUEST)
                .attribute(attribute::INTERNAL_IP4_ADDRESS, &[])
                .attribute(attribute::INTERNAL_IP4_DNS, &[])
                .build();
            chain.push(payload::CP, &cp);
        }
        chain.push(
            payload::SA,
            &sa_payload::encode(&self.esp_proposals(self.first_inbound_spi)),
        );
        chain.push(
            payload::TSI,
            &traffic_selectors::encode(&[TrafficSelector::any_ipv4()]),
        );
        chain.push(
            payload::TSR,
            &traffic_selectors::encode(&[TrafficSelector::any_ipv4()]),
        );
        if self.config.mobike {
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::MOBIKE_SUPPORTED, &[]),
            );
        }
        if self.config.nat_probe.is_some() {
            // Our private-use extension (nat_probe.rs); other servers
            // ignore it (RFC 7296 §3.10.1).
            chain.push(
                payload::NOTIFY,
                &Notify::encode(super::nat_probe::NAT_PROBE_SUPPORTED, &[]),
            );
        }
        self.phase = Phase::Auth;
        self.send_request(now, exchange::IKE_AUTH, &chain, Purpose::Auth);
    }

    /// The key that checks the server's AUTH: the PSK, or after EAP the MSK.
    fn server_auth_key(&self, final_round: bool) -> Zeroizing<Vec<u8>> {
        if final_round {
            if let Some(msk) = &self.msk {
                return msk.clone();
            }
        }
        match &self.config.auth {
            ClientAuth::SharedKey(k) => k.clone(),
            ClientAuth::Eap { server_key } => server_key.clone(),
            // The server must sign; no key checks it.
            ClientAuth::Certificate(_) => Zeroizing::new(Vec::new()),
        }
    }

    pub(crate) fn auth_response(&mut self, now: Instant, first: u8, inner: &[u8]) {
        let Ok(chain) = wire::payloads(first, inner) else {
            self.fail(now, "malformed IKE_AUTH answer".into());
            return;
        };
        let auth = wire::find(&chain, payload::AUTH).and_then(|b| Authentication::parse(b).ok());
        let eap = wire::find(&chain, payload::EAP).map(|b| b.to_vec());
        if let Some(auth) = auth {
            // §2.15: the server's AUTH covers its IKE_SA_INIT answer, our
            // nonce and prf(SK_pr, IDr). IDr is in the first answer.
            if let Some(idr) = chain.iter().find(|p| p.kind == payload::IDR) {
                self.server_idr = idr.body.to_vec();
            }
            let Some(keys) = &self.keys else { return };
            let final_round = self.msk.is_some();
            let signed = signed_octets(
                self.prf,
                &self.init_response,
                &self.ni,
                &keys.sk_pr,
                &self.server_idr,
            );
            let by_signature =
                !final_round && (self.config.server_trust.is_some() || is_signature(auth.method));
            let verdict = if by_signature {
                self.check_server_signature(&chain, auth.method, auth.data, &signed)
            } else {
                let key = self.server_auth_key(final_round);
                let expected = shared_key_auth(self.prf, &key, &signed);
                if auth.method == auth_method::SHARED_KEY_MIC
                    && verify_slices_are_equal(&expected, auth.data).is_ok()
                {
                    Ok(())
                } else {
                    Err(
                        "the server's AUTH did not verify: wrong key, or not the server we think"
                            .to_string(),
                    )
                }
            };
            if let Err(reason) = verdict {
                self.fail(now, reason);
                return;
            }
        } else if self.msk.is_some()
            || matches!(
                self.config.auth,
                ClientAuth::SharedKey(_) | ClientAuth::Certificate(_)
            )
            || self.server_idr.is_empty()
        {
            let reason = Self::error_notify(first, inner).unwrap_or_else(|| "no AUTH".into());
            self.fail(now, format!("the server refused IKE_AUTH: {reason}"));
            return;
        }
        if let Some(packet) = eap {
            if packet.first() == Some(&4) {
                self.fail(now, "EAP authentication failed".into());
                return;
            }
            self.phase = if packet.first() == Some(&3) {
                Phase::EapDone
            } else {
                Phase::EapWithCaller
            };
            self.events
                .push_back(Ikev2ClientEvent::EapRequest { packet });
            return;
        }
        self.first_child_answer(now, &chain, first, inner);
    }

    /// §2.15: a certificate-authenticated server; never believed without
    /// `server_trust` (an EAP password must not go to a server we cannot
    /// check, §2.16).
    fn check_server_signature(
        &mut self,
        chain: &[wire::RawPayload<'_>],
        method: u8,
        data: &[u8],
        signed: &[u8],
    ) -> Result<(), String> {
        let Some(trust) = &self.config.server_trust else {
            return Err(
                "the server authenticated with a certificate, but no CA was given to check it"
                    .to_string(),
            );
        };
        let certs: Vec<&[u8]> = chain
            .iter()
            .filter(|p| p.kind == payload::CERT)
            .map(|p| p.body)
            .collect();
        match verify_server(trust, &certs, &self.server_idr, method, data, signed) {
            Ok(subject) => {
                self.server_subject = subject;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        }
    }

    fn first_child_answer(
        &mut self,
        now: Instant,
        chain: &[wire::RawPayload<'_>],
        first: u8,
        inner: &[u8],
    ) {
        let sa = wire::find(chain, payload::SA).and_then(|b| sa_payload::parse(b).ok());
        let tsi = wire::find(chain, payload::TSI).and_then(|b| traffic_selectors::parse(b).ok());
        let tsr = wire::find(chain, payload::TSR).and_then(|b| traffic_selectors::parse(b).ok());
        let (Some(sa), Some(tsi), Some(tsr)) = (sa, tsi, tsr) else {
            let reason = Self::error_notify(first, inner).unwrap_or_else(|| "no child SA".into());
            self.fail(
                now,
                format!("the server authenticated us but refused the tunnel: {reason}"),
            );
            return;
        };
        let mut dns = Vec::new();
        if let Some(cp) = wire::find(chain, payload::CP).and_then(|b| ConfigPayload::parse(b).ok())
        {
            for a in &cp.attributes {
                match (a.kind, a.value.len()) {
                    (attribute::INTERNAL_IP4_ADDRESS, 4) => {
                        self.virtual_ipv4 =
                            Some([a.value[0], a.value[1], a.value[2], a.value[3]].into())
                    }
                    (attribute::INTERNAL_IP4_DNS, 4) => dns.push(IpAddr::from([
                        a.value[0], a.value[1], a.value[2], a.value[3],
                    ])),
                    (attribute::INTERNAL_IP6_DNS, 16) => {
                        let mut o = [0u8; 16];
                        o.copy_from_slice(a.value);
                        dns.push(IpAddr::from(o));
                    }
                    _ => {}
                }
            }
        }
        let choice = match choose_child(&sa, &self.our_policy(), None) {
            Ok(c) if sa.len() == 1 => c,
            _ => {
                self.fail(
                    now,
                    "the server chose an ESP proposal we did not offer".into(),
                );
                return;
            }
        };
        let inbound_spi = self.first_inbound_spi;
        let Some((inbound, outbound)) = self.client_child_keys(
            None,
            &self.ni.clone(),
            &self.nr.clone(),
            choice.suite,
            inbound_spi,
            choice.peer_spi,
        ) else {
            self.fail(now, "child SA key derivation failed".into());
            return;
        };
        self.server_mobike = wire::notifies(chain).any(|n| n.kind == notify::MOBIKE_SUPPORTED);
        let child = ClientChild {
            inbound_spi,
            outbound_spi: choice.peer_spi,
            suite: choice.suite,
            created: now,
            client_selectors: tsi,
            server_selectors: tsr.clone(),
            rekeying: false,
        };
        let event = child_event(self, inbound, outbound, &child, None);
        self.children.push(child);
        self.phase = Phase::Established;
        self.ike_rekey_at = Some(now + self.ike_rekey_after());
        self.last_heard = now;
        self.last_keepalive = now;
        let nat_probe =
            wire::notifies(chain).any(|n| n.kind == super::nat_probe::NAT_PROBE_SUPPORTED);
        self.nat_probe_established(now, nat_probe);
        self.events.push_back(Ikev2ClientEvent::Connected {
            virtual_ipv4: self.virtual_ipv4,
            dns,
            server_selectors: tsr,
            // What the NAT detection saw, worded as the initiator ("local"
            // is this client); a forced encapsulation is not called a NAT.
            nat: if self.config.force_udp_encapsulation && !self.nat_seen.any() {
                "UDP encapsulation forced".to_string()
            } else {
                self.nat_seen.describe_as_initiator().to_string()
            },
            suite: choice.suite.to_string(),
        });
        self.events
            .push_back(Ikev2ClientEvent::ChildSaUp(Box::new(event)));
    }

    /// KEYMAT for a child SA of ours (§2.17): initiator-to-responder keys
    /// first — our outbound.
    pub(crate) fn client_child_keys(
        &self,
        g_ir_new: Option<&[u8]>,
        ni: &[u8],
        nr: &[u8],
        suite: CipherSuite,
        inbound_spi: u32,
        outbound_spi: u32,
    ) -> Option<(EspSaConfig, EspSaConfig)> {
        let keys = self.keys.as_ref()?;
        let encr_len = suite.cipher_key_len() + suite.salt_len();
        let integ_len = suite.integrity_key_len();
        let keymat = child_sa_keymat(
            self.prf,
            &keys.sk_d,
            g_ir_new,
            ni,
            nr,
            2 * (encr_len + integ_len),
        )?;
        let limits = LifetimeLimits {
            soft_time: None,
            hard_time: Some(self.config.child_lifetime),
            soft_bytes: None,
            hard_bytes: None,
        };
        let half = |at: usize, spi: u32, window: u32| EspSaConfig {
            spi,
            suite,
            cipher_key: Zeroizing::new(keymat[at..at + encr_len].to_vec()),
            integrity_key: Zeroizing::new(
                keymat[at + encr_len..at + encr_len + integ_len].to_vec(),
            ),
            lifetime: limits,
            replay_window: window,
        };
        let outbound = half(0, outbound_spi, 0);
        let inbound = half(encr_len + integ_len, inbound_spi, self.config.replay_window);
        Some((inbound, outbound))
    }

    /// RFC 4555 §3.5: an INFORMATIONAL request with UPDATE_SA_ADDRESSES
    /// and fresh NAT-D payloads, sent from the new address.
    pub(crate) fn send_address_update(&mut self, now: Instant) {
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode(notify::UPDATE_SA_ADDRESSES, &[]),
        );
        chain.push(
            payload::NOTIFY,
            &Notify::encode(
                notify::NAT_DETECTION_SOURCE_IP,
                &self.source_nat_d(&self.spi_r),
            ),
        );
        chain.push(
            payload::NOTIFY,
            &Notify::encode(
                notify::NAT_DETECTION_DESTINATION_IP,
                &nat_d(HashAlg::Sha1, &self.spi_i, &self.spi_r, self.remote),
            ),
        );
        self.send_request(
            now,
            exchange::INFORMATIONAL,
            &chain,
            Purpose::UpdateAddresses,
        );
    }

    /// The server's NAT-D in its answer to UPDATE_SA_ADDRESSES (§3.5).
    pub(crate) fn note_update_answer(&mut self, first: u8, inner: &[u8]) {
        let Ok(chain) = wire::payloads(first, inner) else {
            return;
        };
        let sources: Vec<Vec<u8>> = wire::notifies(&chain)
            .filter(|n| n.kind == notify::NAT_DETECTION_SOURCE_IP)
            .map(|n| n.data.to_vec())
            .collect();
        let destination = wire::notifies(&chain)
            .find(|n| n.kind == notify::NAT_DETECTION_DESTINATION_IP)
            .map(|n| n.data.to_vec());
        if sources.is_empty() && destination.is_none() {
            return;
        }
        let expected_source = nat_d(HashAlg::Sha1, &self.spi_i, &self.spi_r, self.remote);
        let expected_destination = nat_d(HashAlg::Sha1, &self.spi_i, &self.spi_r, self.local);
        self.nat_seen = NatState {
            peer_behind_nat: !sources.is_empty() && !sources.contains(&expected_source),
            local_behind_nat: destination.is_some_and(|d| d != expected_destination),
        };
        self.nat = NatState {
            local_behind_nat: self.nat_seen.local_behind_nat || self.config.force_udp_encapsulation,
            ..self.nat_seen
        };
    }

    /// The driver's answer to an EAP Request.
    pub fn eap_response(&mut self, now: Instant, packet: &[u8]) {
        if !matches!(self.phase, Phase::EapWithCaller) {
            return;
        }
        let mut chain = PayloadChain::new();
        chain.push(payload::EAP, packet);
        self.phase = Phase::Auth;
        self.send_request(now, exchange::IKE_AUTH, &chain, Purpose::Auth);
    }

    /// EAP succeeded; `msk` keys our final AUTH and checks the server's
    /// (§2.16).
    pub fn eap_finished(&mut self, now: Instant, msk: Zeroizing<Vec<u8>>) {
        if !matches!(self.phase, Phase::EapDone) {
            return;
        }
        let Some(keys) = &self.keys else { return };
        let signed = signed_octets(
            self.prf,
            &self.init_request,
            &self.nr,
            &keys.sk_pi,
            &self.idi_body,
        );
        let auth = shared_key_auth(self.prf, &msk, &signed);
        self.msk = Some(msk);
        let mut chain = PayloadChain::new();
        chain.push(
            payload::AUTH,
            &Authentication::encode(auth_method::SHARED_KEY_MIC, &auth),
        );
        self.phase = Phase::Auth;
        self.send_request(now, exchange::IKE_AUTH, &chain, Purpose::Auth);
    }

    /// §1.3.3: a new child SA replacing `children[index]`, without a new
    /// key exchange (as Windows does).
    pub(crate) fn start_child_rekey(&mut self, now: Instant, index: usize) {
        let old = &mut self.children[index];
        old.rekeying = true;
        let old_inbound_spi = old.inbound_spi;
        let (tsi, tsr) = (old.client_selectors.clone(), old.server_selectors.clone());
        let new_inbound_spi = random_spi();
        let mut nonce = vec![0u8; 32];
        let _ = aws_lc_rs::rand::fill(&mut nonce);
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode_for(
                protocol::ESP,
                &old_inbound_spi.to_be_bytes(),
                notify::REKEY_SA,
                &[],
            ),
        );
        chain.push(
            payload::SA,
            &sa_payload::encode(&self.esp_proposals(new_inbound_spi)),
        );
        chain.push(payload::NONCE, &nonce);
        chain.push(payload::TSI, &traffic_selectors::encode(&tsi));
        chain.push(payload::TSR, &traffic_selectors::encode(&tsr));
        self.send_request(
            now,
            exchange::CREATE_CHILD_SA,
            &chain,
            Purpose::RekeyChild {
                new_inbound_spi,
                nonce,
                old_inbound_spi,
            },
        );
    }

    pub(crate) fn rekey_response(
        &mut self,
        now: Instant,
        first: u8,
        inner: &[u8],
        new_inbound_spi: u32,
        nonce: &[u8],
        old_inbound_spi: u32,
    ) {
        let Ok(chain) = wire::payloads(first, inner) else {
            return;
        };
        let sa = wire::find(&chain, payload::SA).and_then(|b| sa_payload::parse(b).ok());
        let nr = wire::find(&chain, payload::NONCE).map(|b| b.to_vec());
        let old_index = self
            .children
            .iter()
            .position(|c| c.inbound_spi == old_inbound_spi);
        let (Some(sa), Some(nr), Some(old_index)) = (sa, nr, old_index) else {
            // The rekey failed; try again at the next opportunity.
            if let Some(c) = self
                .children
                .iter_mut()
                .find(|c| c.inbound_spi == old_inbound_spi)
            {
                c.rekeying = false;
                c.created = now;
            }
            return;
        };
        let Ok(choice) = choose_child(&sa, &self.our_policy(), None) else {
            return;
        };
        let Some((inbound, outbound)) = self.client_child_keys(
            None,
            nonce,
            &nr,
            choice.suite,
            new_inbound_spi,
            choice.peer_spi,
        ) else {
            return;
        };
        let old = self.children[old_index].clone();
        let child = ClientChild {
            inbound_spi: new_inbound_spi,
            outbound_spi: choice.peer_spi,
            suite: choice.suite,
            created: now,
            client_selectors: old.client_selectors.clone(),
            server_selectors: old.server_selectors.clone(),
            rekeying: false,
        };
        let event = child_event(self, inbound, outbound, &child, Some(old_inbound_spi));
        self.children.push(child);
        self.events
            .push_back(Ikev2ClientEvent::ChildSaUp(Box::new(event)));
        // §1.4.1: then the old child is deleted.
        let mut delete = PayloadChain::new();
        delete.push(
            payload::DELETE,
            &Delete {
                protocol: protocol::ESP,
                spis: vec![old.inbound_spi.to_be_bytes()],
            }
            .encode(),
        );
        self.send_request(
            now,
            exchange::INFORMATIONAL,
            &delete,
            Purpose::DeleteChild {
                inbound_spi: old.inbound_spi,
                outbound_spi: old.outbound_spi,
            },
        );
    }
}

/// The SA, KE and Nonce payloads of an answer that makes an IKE SA
/// (IKE_SA_INIT, §1.2; an IKE SA rekey, §1.3.2), parsed.
pub(crate) fn sa_ke_nonce<'a>(
    chain: &[wire::RawPayload<'a>],
) -> Option<(Vec<Proposal>, KeyExchange<'a>, &'a [u8])> {
    let sa = wire::find(chain, payload::SA).and_then(|b| sa_payload::parse(b).ok())?;
    let ke = wire::find(chain, payload::KE).and_then(|b| KeyExchange::parse(b).ok())?;
    let nr =
        wire::find(chain, payload::NONCE).and_then(|b| super::payloads::parse_nonce(b).ok())?;
    Some((sa, ke, nr))
}

/// AUTH methods that are signatures (§3.8, RFC 4754, RFC 7427).
fn is_signature(method: u8) -> bool {
    matches!(
        method,
        auth_method::RSA_SIGNATURE
            | auth_method::DSS_SIGNATURE
            | auth_method::ECDSA_SHA256_P256
            | auth_method::ECDSA_SHA384_P384
            | auth_method::ECDSA_SHA512_P521
            | auth_method::DIGITAL_SIGNATURE
    )
}

#[cfg(test)]
#[path = "initiator_force_encap_tests.rs"]
mod force_encap_tests;
