//! The IKEv2 responder against a scripted initiator built from the crate's
//! public building blocks (wire, payloads, key derivation, SK protection),
//! which computes everything on its own side: our AUTH, the child SA keys
//! and the narrowed selectors are checked, not assumed.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipsec::ike_crypto::ikev2_keys::{
    child_sa_keymat, ike_sa_keys, rekey_skeyseed, skeyseed, IkeSaKeys,
};
use ipsec::ike_crypto::{DhGroup, DhPrivate, HashAlg, IkeCipher};
use ipsec::ikev1::nat_detection::nat_d;
use ipsec::ikev1::DownReason;
use ipsec::ikev2::auth::{shared_key_auth, signed_octets};
use ipsec::ikev2::config_payload::{attribute, cfg_type, ConfigBuilder, ConfigPayload};
use ipsec::ikev2::encrypted::{self, DirectionKeys, SkCipher, SkInteg, SkTransform};
use ipsec::ikev2::fragments::fragment_message;
use ipsec::ikev2::notify;
use ipsec::ikev2::payloads::{
    auth_method, id_type, Authentication, Delete, Identification, KeyExchange, Notify,
};
use ipsec::ikev2::sa_payload::{self, ids, protocol, transform_type::*, Proposal, Transform};
use ipsec::ikev2::traffic_selectors::{self, TrafficSelector};
use ipsec::ikev2::wire::{
    self, exchange, flags, payload, Header, PayloadChain, HEADER_LEN, VERSION_2_0,
};
use ipsec::ikev2::{
    Authorization, Ikev2Config, Ikev2Event, Ikev2PskTable, Ikev2Responder, LocalIdentity,
};

const PSK: &[u8] = b"a long enough pre-shared key";
const CLIENT_ID: &[u8] = b"client.example";

fn server() -> SocketAddr {
    "198.51.100.1:500".parse().expect("addr")
}
fn client() -> SocketAddr {
    "203.0.113.9:500".parse().expect("addr")
}

fn config() -> Ikev2Config {
    let mut psks = Ikev2PskTable::new();
    psks.insert(CLIENT_ID, PSK);
    Ikev2Config {
        psks,
        local_identity: LocalIdentity::Fqdn("vpn.example".into()),
        ..Ikev2Config::default()
    }
}

fn aes_cbc_sha256_proposal() -> Vec<Proposal> {
    vec![Proposal {
        number: 1,
        protocol: protocol::IKE,
        spi: vec![],
        transforms: vec![
            Transform::with_key_bits(ENCR, ids::ENCR_AES_CBC, 256),
            Transform::new(PRF, ids::PRF_HMAC_SHA2_256),
            Transform::new(INTEG, ids::AUTH_HMAC_SHA2_256_128),
            Transform::new(DH, 19),
        ],
    }]
}

fn esp_proposal(spi: u32) -> Vec<Proposal> {
    vec![Proposal {
        number: 1,
        protocol: protocol::ESP,
        spi: spi.to_be_bytes().to_vec(),
        transforms: vec![
            Transform::with_key_bits(ENCR, ids::ENCR_AES_GCM_16, 256),
            Transform::new(ESN, ids::ESN_NO),
        ],
    }]
}

/// The scripted initiator.
struct Client {
    spi_i: [u8; 8],
    spi_r: [u8; 8],
    group: DhGroup,
    dh: DhPrivate,
    ni: Vec<u8>,
    nr: Vec<u8>,
    init_request: Vec<u8>,
    init_response: Vec<u8>,
    prf: HashAlg,
    protection: SkTransform,
    keys: Option<IkeSaKeys>,
    next_id: u32,
    addr: SocketAddr,
    /// Announce RFC 7427 signature hashes (SHA2-256/384) in IKE_SA_INIT.
    signature_hashes: bool,
}

impl Client {
    fn new(group: DhGroup) -> Client {
        let mut spi_i = [0u8; 8];
        aws_lc_rs::rand::fill(&mut spi_i).expect("rng");
        Client {
            spi_i,
            spi_r: [0; 8],
            group,
            dh: DhPrivate::generate(group).expect("dh"),
            ni: vec![0x11; 32],
            nr: vec![],
            init_request: vec![],
            init_response: vec![],
            prf: HashAlg::Sha256,
            protection: SkTransform {
                cipher: SkCipher::Cbc(IkeCipher::Aes256Cbc),
                integ: Some(SkInteg::HmacSha256_128),
            },
            keys: None,
            next_id: 1,
            addr: client(),
            signature_hashes: false,
        }
    }

    fn sa_init(
        &mut self,
        proposals: &[Proposal],
        cookie: Option<&[u8]>,
        fragmentation: bool,
    ) -> Vec<u8> {
        let mut chain = PayloadChain::new();
        if let Some(c) = cookie {
            chain.push(payload::NOTIFY, &Notify::encode(notify::COOKIE, c));
        }
        chain.push(payload::SA, &sa_payload::encode(proposals));
        chain.push(
            payload::KE,
            &KeyExchange::encode(self.group.id(), self.dh.public_value()),
        );
        chain.push(payload::NONCE, &self.ni);
        let zero = [0u8; 8];
        chain.push(
            payload::NOTIFY,
            &Notify::encode(
                notify::NAT_DETECTION_SOURCE_IP,
                &nat_d(HashAlg::Sha1, &self.spi_i, &zero, self.addr),
            ),
        );
        chain.push(
            payload::NOTIFY,
            &Notify::encode(
                notify::NAT_DETECTION_DESTINATION_IP,
                &nat_d(HashAlg::Sha1, &self.spi_i, &zero, server()),
            ),
        );
        if fragmentation {
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::IKEV2_FRAGMENTATION_SUPPORTED, &[]),
            );
        }
        if self.signature_hashes {
            chain.push(
                payload::NOTIFY,
                &Notify::encode(notify::SIGNATURE_HASH_ALGORITHMS, &[0, 2, 0, 3]),
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
        self.init_request.clone()
    }

    /// Takes the IKE_SA_INIT response and derives the keys.
    fn sa_init_done(&mut self, response: &[u8]) {
        let header = Header::parse(response).expect("response header");
        assert!(header.is_response());
        let chain = wire::payloads(header.next_payload, &response[HEADER_LEN..]).expect("payloads");
        let ke = chain.iter().find(|p| p.kind == payload::KE).expect("KE");
        let ke = KeyExchange::parse(ke.body).expect("KE body");
        self.nr = wire::find(&chain, payload::NONCE).expect("Nr").to_vec();
        let shared = self.dh.agree(ke.data).expect("agree");
        self.spi_r = header.spi_r;
        self.init_response = response.to_vec();
        let seed = skeyseed(self.prf, &self.ni, &self.nr, &shared);
        self.keys = Some(ike_sa_keys(
            self.prf,
            &seed,
            &self.ni,
            &self.nr,
            &self.spi_i,
            &self.spi_r,
            self.protection.key_lengths(),
        ));
    }

    fn keys(&self) -> &IkeSaKeys {
        self.keys.as_ref().expect("keys")
    }

    fn header(&self, exchange_type: u8, message_id: u32, response: bool) -> Header {
        Header {
            spi_i: self.spi_i,
            spi_r: self.spi_r,
            next_payload: 0,
            version: VERSION_2_0,
            exchange: exchange_type,
            flags: flags::INITIATOR | if response { flags::RESPONSE } else { 0 },
            message_id,
            length: 0,
        }
    }

    fn seal(&mut self, exchange_type: u8, chain: &PayloadChain) -> Vec<u8> {
        let id = self.next_id;
        self.next_id += 1;
        let keys = DirectionKeys {
            encr: &self.keys().sk_ei,
            integ: &self.keys().sk_ai,
        };
        encrypted::seal(
            &self.protection,
            keys,
            &self.header(exchange_type, id, false),
            chain.first(),
            chain.bytes(),
        )
        .expect("seal")
    }

    fn open(&self, message: &[u8]) -> (Header, u8, Vec<u8>) {
        let header = Header::parse(message).expect("header");
        let located = encrypted::locate(message).expect("SK");
        let keys = DirectionKeys {
            encr: &self.keys().sk_er,
            integ: &self.keys().sk_ar,
        };
        let inner = encrypted::open(&self.protection, keys, message, &located).expect("opens");
        (header, located.next, inner.to_vec())
    }

    fn auth_chain(&self, psk: &[u8], identity: &[u8], esp_spi: u32, with_cp: bool) -> PayloadChain {
        let idi = Identification::encode(id_type::FQDN, identity);
        let signed = signed_octets(
            self.prf,
            &self.init_request,
            &self.nr,
            &self.keys().sk_pi,
            &idi,
        );
        let auth = shared_key_auth(self.prf, psk, &signed);
        let mut chain = PayloadChain::new();
        chain.push(payload::IDI, &idi);
        chain.push(
            payload::NOTIFY,
            &Notify::encode(notify::INITIAL_CONTACT, &[]),
        );
        chain.push(
            payload::AUTH,
            &Authentication::encode(auth_method::SHARED_KEY_MIC, &auth),
        );
        if with_cp {
            let cp = ConfigBuilder::new(cfg_type::REQUEST)
                .attribute(attribute::INTERNAL_IP4_ADDRESS, &[])
                .attribute(attribute::INTERNAL_IP4_DNS, &[])
                .build();
            chain.push(payload::CP, &cp);
        }
        push_child_request(&mut chain, esp_spi);
        chain
    }
}

/// The first child's request in IKE_AUTH: SA with ESP SPI `esp_spi`, and
/// any IPv4 address on both sides.
fn push_child_request(chain: &mut PayloadChain, esp_spi: u32) {
    chain.push(payload::SA, &sa_payload::encode(&esp_proposal(esp_spi)));
    push_any_ipv4_selectors(chain);
}

/// TSi and TSr of any IPv4 address.
fn push_any_ipv4_selectors(chain: &mut PayloadChain) {
    chain.push(
        payload::TSI,
        &traffic_selectors::encode(&[TrafficSelector::any_ipv4()]),
    );
    chain.push(
        payload::TSR,
        &traffic_selectors::encode(&[TrafficSelector::any_ipv4()]),
    );
}

fn drain(r: &mut Ikev2Responder) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(t) = r.poll_transmit() {
        out.push(t.bytes);
    }
    out
}

fn events(r: &mut Ikev2Responder) -> Vec<Ikev2Event> {
    let mut out = Vec::new();
    while let Some(e) = r.poll_event() {
        out.push(e);
    }
    out
}

fn notifies(first: u8, inner: &[u8]) -> Vec<u16> {
    wire::payloads(first, inner)
        .expect("payloads")
        .iter()
        .filter(|p| p.kind == payload::NOTIFY)
        .map(|p| Notify::parse(p.body).expect("notify").kind)
        .collect()
}

/// IKE_SA_INIT done; returns the client.
fn init(r: &mut Ikev2Responder, now: Instant) -> Client {
    let mut c = Client::new(DhGroup::Ecp256);
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(r);
    assert_eq!(out.len(), 1);
    c.sa_init_done(&out[0]);
    c
}

const CLIENT_ADDRESS: Ipv4Addr = Ipv4Addr::new(10, 0, 10, 21);

/// A whole connection up to the child SA; returns the client, the IKE SA id
/// and the child SA event.
fn connect(r: &mut Ikev2Responder, now: Instant) -> (Client, u64, ipsec::ikev2::ChildSa) {
    let mut c = init(r, now);
    let chain = c.auth_chain(PSK, CLIENT_ID, 0xc1c2c3c4, true);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    assert!(drain(r).is_empty(), "no answer before the driver decides");
    let ike_sa = match events(r).pop() {
        Some(Ikev2Event::AuthorizationNeeded(req)) => {
            assert_eq!(req.identity, "client.example");
            assert!(req.wants_ipv4);
            req.ike_sa
        }
        _ => panic!("expected an authorization request"),
    };
    r.authorize(
        now,
        ike_sa,
        Ok(Authorization {
            ipv4: Some(CLIENT_ADDRESS),
            dns: vec!["10.0.10.1".parse().expect("ip")],
            routes: vec![TrafficSelector {
                protocol: 0,
                start_port: 0,
                end_port: 65535,
                start: "10.0.0.0".parse().expect("ip"),
                end: "10.0.255.255".parse().expect("ip"),
            }],
            ..Authorization::default()
        }),
    );
    let out = drain(r);
    assert_eq!(out.len(), 1);
    let (header, first, inner) = c.open(&out[0]);
    assert_eq!(header.message_id, 1);
    let chain = wire::payloads(first, &inner).expect("payloads");
    // our AUTH, checked by the client's own computation
    let idr = wire::find(&chain, payload::IDR).expect("IDr");
    assert_eq!(
        Identification::parse(idr).expect("IDr").describe(),
        "vpn.example"
    );
    let auth =
        Authentication::parse(wire::find(&chain, payload::AUTH).expect("AUTH")).expect("auth");
    let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
    assert_eq!(
        auth.data,
        &shared_key_auth(c.prf, PSK, &signed)[..],
        "responder AUTH verifies"
    );
    let cp = ConfigPayload::parse(wire::find(&chain, payload::CP).expect("CP")).expect("cp");
    assert_eq!(cp.cfg_type, cfg_type::REPLY);
    assert_eq!(cp.attributes[0].value, &CLIENT_ADDRESS.octets());
    let tsi =
        traffic_selectors::parse(wire::find(&chain, payload::TSI).expect("TSi")).expect("tsi");
    assert_eq!(tsi, vec![TrafficSelector::host(CLIENT_ADDRESS.into())]);
    let tsr =
        traffic_selectors::parse(wire::find(&chain, payload::TSR).expect("TSr")).expect("tsr");
    assert_eq!(
        tsr[0].start,
        "10.0.0.0".parse::<std::net::IpAddr>().expect("ip")
    );
    let sa = sa_payload::parse(wire::find(&chain, payload::SA).expect("SA")).expect("sa");
    let child = events(r)
        .into_iter()
        .find_map(|e| match e {
            Ikev2Event::ChildSaUp(child) => Some(*child),
            _ => None,
        })
        .expect("child SA up");
    assert_eq!(sa[0].spi, child.inbound.spi.to_be_bytes());
    assert_eq!(child.outbound.spi, 0xc1c2c3c4);
    // §2.17 from the client's side: i→r keys first (the server's inbound)
    let keymat = child_sa_keymat(c.prf, &c.keys().sk_d, None, &c.ni, &c.nr, 72).expect("keymat");
    assert_eq!(&child.inbound.cipher_key[..], &keymat[..36]);
    assert_eq!(&child.outbound.cipher_key[..], &keymat[36..]);
    assert_eq!(child.virtual_ipv4, Some(CLIENT_ADDRESS));
    (c, ike_sa, child)
}

#[test]
fn a_psk_client_gets_an_address_and_a_tunnel_mode_child_sa() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let (_, _, child) = connect(&mut r, now);
    assert!(!child.udp_encapsulated, "no NAT between the scripted peers");
    assert_eq!(r.ike_sa_count(), 1);
    assert_eq!(r.half_open_count(), 0);
    assert_eq!(r.child_sa_count(), 1);
}

#[test]
fn a_wrong_key_and_an_unknown_identity_get_the_same_answer() {
    let now = Instant::now();
    let mut answers = Vec::new();
    for (psk, identity) in [
        (&b"wrong key"[..], CLIENT_ID),
        (PSK, &b"nobody.example"[..]),
    ] {
        let mut r = Ikev2Responder::new(config(), now);
        let mut c = init(&mut r, now);
        let chain = c.auth_chain(psk, identity, 1000, true);
        let request = c.seal(exchange::IKE_AUTH, &chain);
        r.handle_datagram(now, server(), c.addr, false, &request);
        let out = drain(&mut r);
        let (_, first, inner) = c.open(&out[0]);
        answers.push(
            wire::payloads(first, &inner)
                .expect("payloads")
                .iter()
                .map(|p| (p.kind, p.body.to_vec()))
                .collect::<Vec<_>>(),
        );
        assert_eq!(notifies(first, &inner), vec![notify::AUTHENTICATION_FAILED]);
        assert_eq!(r.ike_sa_count(), 0, "the SA is forgotten");
        let logged = events(&mut r).into_iter().any(|e| matches!(e, Ikev2Event::Refused { reason, .. } if reason.contains("authentication failed")));
        assert!(logged);
    }
    assert_eq!(answers[0], answers[1]);
}

#[test]
fn windows_10_default_proposals_are_answered() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let mut offer = Vec::new();
    let mut n = 0;
    for encr in [
        Transform::with_key_bits(ENCR, ids::ENCR_AES_CBC, 256),
        Transform::new(ENCR, ids::ENCR_3DES),
    ] {
        for (prf, integ) in [(2, 2), (5, 12), (6, 13)] {
            n += 1;
            offer.push(Proposal {
                number: n,
                protocol: protocol::IKE,
                spi: vec![],
                transforms: vec![
                    encr,
                    Transform::new(PRF, prf),
                    Transform::new(INTEG, integ),
                    Transform::new(DH, 2),
                ],
            });
        }
    }
    let mut c = Client::new(DhGroup::Modp1024);
    let request = c.sa_init(&offer, None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let header = Header::parse(&out[0]).expect("header");
    assert_ne!(header.spi_r, [0; 8]);
    let chain = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    let sa = sa_payload::parse(chain[0].body).expect("SA");
    assert_eq!(sa[0].number, 1);
    assert_eq!(
        KeyExchange::parse(chain[1].body).expect("KE").data.len(),
        128
    );
}

#[test]
fn a_mismatched_key_exchange_is_answered_with_the_group_to_use() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let mut c = Client::new(DhGroup::Modp2048);
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let header = Header::parse(&out[0]).expect("header");
    assert_eq!(header.spi_r, [0; 8], "no state kept");
    let chain = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    let n = Notify::parse(chain[0].body).expect("notify");
    assert_eq!(
        (n.kind, n.data),
        (notify::INVALID_KE_PAYLOAD, &19u16.to_be_bytes()[..])
    );
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn an_unacceptable_offer_is_refused_and_logged_with_what_was_offered() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.policy.groups = vec![DhGroup::Ecp384];
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = Client::new(DhGroup::Ecp256);
    let mut offer = aes_cbc_sha256_proposal();
    offer[0].transforms.retain(|t| t.kind != DH);
    offer[0].transforms.push(Transform::new(DH, 19));
    let request = c.sa_init(&offer, None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let header = Header::parse(&out[0]).expect("header");
    let chain = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    assert_eq!(
        Notify::parse(chain[0].body).expect("n").kind,
        notify::NO_PROPOSAL_CHOSEN
    );
    let reason = events(&mut r)
        .into_iter()
        .find_map(|e| match e {
            Ikev2Event::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .expect("logged");
    assert!(
        reason.contains("IKE #1 AES-CBC-256/PRF-HMAC-SHA2-256/HMAC-SHA2-256-128/ECP-256"),
        "{reason}"
    );
}

#[test]
fn under_load_a_cookie_is_required_and_then_accepted() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.cookie_threshold = 0;
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = Client::new(DhGroup::Ecp256);
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let header = Header::parse(&out[0]).expect("header");
    let chain = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    let cookie = Notify::parse(chain[0].body).expect("notify");
    assert_eq!(cookie.kind, notify::COOKIE);
    assert_eq!(r.ike_sa_count(), 0, "stateless");
    let cookie = cookie.data.to_vec();
    // a forged cookie is not enough
    let forged = c.sa_init(&aes_cbc_sha256_proposal(), Some(&[0; 36]), false);
    r.handle_datagram(now, server(), c.addr, false, &forged);
    assert_eq!(r.ike_sa_count(), 0);
    drain(&mut r);
    // from another address the cookie is worthless
    let mut elsewhere = Client::new(DhGroup::Ecp256);
    elsewhere.spi_i = c.spi_i;
    elsewhere.addr = "203.0.113.10:500".parse().expect("addr");
    let moved = elsewhere.sa_init(&aes_cbc_sha256_proposal(), Some(&cookie), false);
    r.handle_datagram(now, server(), elsewhere.addr, false, &moved);
    assert_eq!(r.ike_sa_count(), 0);
    drain(&mut r);
    // the real one goes through
    let retry = c.sa_init(&aes_cbc_sha256_proposal(), Some(&cookie), false);
    r.handle_datagram(now, server(), c.addr, false, &retry);
    let out = drain(&mut r);
    assert_ne!(Header::parse(&out[0]).expect("header").spi_r, [0; 8]);
    assert_eq!(r.ike_sa_count(), 1);
    assert!(r.stats().cookies_sent >= 3);
}

#[test]
fn retransmitted_requests_get_the_same_answers() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let mut c = Client::new(DhGroup::Ecp256);
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let first = drain(&mut r);
    r.handle_datagram(now, server(), c.addr, false, &request);
    assert_eq!(drain(&mut r), first);
    assert_eq!(r.ike_sa_count(), 1);
    c.sa_init_done(&first[0]);
    let chain = c.auth_chain(PSK, CLIENT_ID, 1000, false);
    let auth = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &auth);
    r.handle_datagram(now, server(), c.addr, false, &auth); // while deciding: ignored
    let Some(Ikev2Event::AuthorizationNeeded(req)) = events(&mut r).pop() else {
        panic!("authorization request");
    };
    r.authorize(now, req.ike_sa, Ok(Authorization::default()));
    let answer = drain(&mut r);
    assert_eq!(answer.len(), 1);
    r.handle_datagram(now, server(), c.addr, false, &auth);
    assert_eq!(drain(&mut r), answer);
    assert!(r.stats().retransmits_answered >= 2);
}

#[test]
fn a_forged_request_is_dropped_and_counted() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let mut c = init(&mut r, now);
    let chain = c.auth_chain(PSK, CLIENT_ID, 1000, true);
    let mut request = c.seal(exchange::IKE_AUTH, &chain);
    let last = request.len() - 1;
    request[last] ^= 0x80;
    r.handle_datagram(now, server(), c.addr, false, &request);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.stats().integrity_failed, 1);
    assert_eq!(r.ike_sa_count(), 1, "the half-open SA survives a forgery");
}

#[test]
fn fragmented_ike_auth_both_ways() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.fragment_size = 200;
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = Client::new(DhGroup::Ecp256);
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, true);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let header = Header::parse(&out[0]).expect("header");
    let chain = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    assert!(chain.iter().any(|p| p.kind == payload::NOTIFY
        && Notify::parse(p.body).expect("n").kind == notify::IKEV2_FRAGMENTATION_SUPPORTED));
    c.sa_init_done(&out[0]);
    let chain = c.auth_chain(PSK, CLIENT_ID, 1000, true);
    let keys = DirectionKeys {
        encr: &c.keys().sk_ei,
        integ: &c.keys().sk_ai,
    };
    let fragments = fragment_message(
        &c.protection,
        keys,
        &c.header(exchange::IKE_AUTH, 1, false),
        chain.first(),
        chain.bytes(),
        150,
    )
    .expect("fragments");
    assert!(fragments.len() > 2);
    for f in fragments.iter().rev() {
        r.handle_datagram(now, server(), c.addr, false, f);
    }
    let Some(Ikev2Event::AuthorizationNeeded(req)) = events(&mut r).pop() else {
        panic!("the reassembled IKE_AUTH was processed");
    };
    r.authorize(
        now,
        req.ike_sa,
        Ok(Authorization {
            ipv4: Some(CLIENT_ADDRESS),
            ..Authorization::default()
        }),
    );
    let answer = drain(&mut r);
    assert!(answer.len() > 1, "our answer is fragmented too");
    let mut reassembly = ipsec::ikev2::fragments::Reassembly::new();
    let mut done = None;
    for m in &answer {
        assert!(m.len() <= 200);
        let located = encrypted::locate(m).expect("SKF");
        let (n, t) = located.fragment.expect("fragment");
        let keys = DirectionKeys {
            encr: &c.keys().sk_er,
            integ: &c.keys().sk_ar,
        };
        let content = encrypted::open(&c.protection, keys, m, &located).expect("opens");
        done = reassembly
            .add(n, t, located.next, content)
            .expect("fragment");
    }
    let done = done.expect("complete");
    let chain = wire::payloads(done.first_payload, &done.inner).expect("payloads");
    assert!(chain.iter().any(|p| p.kind == payload::AUTH));
}

#[test]
fn liveness_checks_and_a_dead_peer() {
    let start = Instant::now();
    let mut r = Ikev2Responder::new(config(), start);
    let (c, ike_sa, child) = connect(&mut r, start);
    // traffic keeps it quiet
    let t1 = start + Duration::from_secs(25);
    r.note_traffic(ike_sa, t1);
    r.handle_timeout(start + Duration::from_secs(31));
    assert!(drain(&mut r).is_empty());
    // silence: a liveness check, an empty INFORMATIONAL request
    let t2 = t1 + Duration::from_secs(31);
    r.handle_timeout(t2);
    let out = drain(&mut r);
    assert_eq!(out.len(), 1);
    let (header, first, inner) = c.open(&out[0]);
    assert_eq!(header.exchange, exchange::INFORMATIONAL);
    assert!(!header.is_response() && !header.from_initiator());
    assert!(wire::payloads(first, &inner).expect("payloads").is_empty());
    // retransmitted, then given up
    r.handle_timeout(t2 + Duration::from_secs(5));
    assert_eq!(drain(&mut r).len(), 1);
    r.handle_timeout(t2 + Duration::from_secs(61));
    let evs = events(&mut r);
    assert!(evs.iter().any(|e| matches!(e, Ikev2Event::ChildSaDown { inbound_spi, reason: DownReason::DeadPeer, .. } if *inbound_spi == child.inbound.spi)));
    assert!(evs.iter().any(|e| matches!(
        e,
        Ikev2Event::IkeSaDown {
            reason: DownReason::DeadPeer,
            ..
        }
    )));
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn an_answered_liveness_check_keeps_the_sa() {
    let start = Instant::now();
    let mut r = Ikev2Responder::new(config(), start);
    let (c, _, _) = connect(&mut r, start);
    let t = start + Duration::from_secs(31);
    r.handle_timeout(t);
    let out = drain(&mut r);
    let (header, _, _) = c.open(&out[0]);
    // the client answers (an empty response under the initiator's keys)
    let keys = DirectionKeys {
        encr: &c.keys().sk_ei,
        integ: &c.keys().sk_ai,
    };
    let answer = encrypted::seal(
        &c.protection,
        keys,
        &c.header(exchange::INFORMATIONAL, header.message_id, true),
        0,
        &[],
    )
    .expect("seal");
    r.handle_datagram(t, server(), c.addr, false, &answer);
    r.handle_timeout(t + Duration::from_secs(70));
    assert_eq!(r.ike_sa_count(), 1);
}

#[test]
fn child_sa_rekeys_with_and_without_pfs_then_the_old_one_is_deleted() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let (mut c, _, first_child) = connect(&mut r, now);
    events(&mut r);
    let mut current_peer_spi = 0xc1c2c3c4u32;
    for (round, pfs) in [(1u32, false), (2, true)] {
        let new_spi = 0xd0000000 + round;
        let ni = vec![0x20 + round as u8; 32];
        let dh = DhPrivate::generate(DhGroup::Ecp256).expect("dh");
        let mut proposal = esp_proposal(new_spi);
        if pfs {
            proposal[0].transforms.insert(1, Transform::new(DH, 19));
        }
        let mut chain = PayloadChain::new();
        chain.push(
            payload::NOTIFY,
            &Notify::encode_for(
                protocol::ESP,
                &current_peer_spi.to_be_bytes(),
                notify::REKEY_SA,
                &[],
            ),
        );
        chain.push(payload::SA, &sa_payload::encode(&proposal));
        chain.push(payload::NONCE, &ni);
        if pfs {
            chain.push(payload::KE, &KeyExchange::encode(19, dh.public_value()));
        }
        chain.push(
            payload::TSI,
            &traffic_selectors::encode(&[TrafficSelector::host(CLIENT_ADDRESS.into())]),
        );
        chain.push(
            payload::TSR,
            &traffic_selectors::encode(&[TrafficSelector::any_ipv4()]),
        );
        let request = c.seal(exchange::CREATE_CHILD_SA, &chain);
        r.handle_datagram(now, server(), c.addr, false, &request);
        let out = drain(&mut r);
        let (_, first, inner) = c.open(&out[0]);
        let reply = wire::payloads(first, &inner).expect("payloads");
        let nr = wire::find(&reply, payload::NONCE).expect("Nr").to_vec();
        let shared = if pfs {
            let ke = KeyExchange::parse(wire::find(&reply, payload::KE).expect("KEr")).expect("ke");
            Some(dh.agree(ke.data).expect("agree"))
        } else {
            assert!(!reply.iter().any(|p| p.kind == payload::KE));
            None
        };
        let child = events(&mut r)
            .into_iter()
            .find_map(|e| match e {
                Ikev2Event::ChildSaUp(child) => Some(*child),
                _ => None,
            })
            .expect("rekeyed child");
        assert!(child.replaces_inbound_spi.is_some());
        let keymat = child_sa_keymat(
            c.prf,
            &c.keys().sk_d,
            shared.as_deref().map(|s| s.as_slice()),
            &ni,
            &nr,
            72,
        )
        .expect("keymat");
        assert_eq!(
            &child.inbound.cipher_key[..],
            &keymat[..36],
            "round {round}"
        );
        assert_eq!(child.outbound.spi, new_spi);
        current_peer_spi = new_spi;
    }
    // the client deletes the first child: the server names its inbound half
    let mut chain = PayloadChain::new();
    chain.push(
        payload::DELETE,
        &Delete {
            protocol: protocol::ESP,
            spis: vec![0xc1c2c3c4u32.to_be_bytes()],
        }
        .encode(),
    );
    let request = c.seal(exchange::INFORMATIONAL, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    let delete = Delete::parse(reply[0].body).expect("delete");
    assert_eq!(delete.spis, vec![first_child.inbound.spi.to_be_bytes()]);
    assert!(events(&mut r).iter().any(|e| matches!(e, Ikev2Event::ChildSaDown { inbound_spi, reason: DownReason::DeletedByPeer, .. } if *inbound_spi == first_child.inbound.spi)));
    assert_eq!(r.child_sa_count(), 2);
}

#[test]
fn an_ike_sa_rekey_moves_the_children_and_the_old_sa_goes_quietly() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let (mut c, ike_sa, child) = connect(&mut r, now);
    events(&mut r);
    let new_spi_i = [0x77; 8];
    let ni = vec![0x55; 32];
    let dh = DhPrivate::generate(DhGroup::Ecp256).expect("dh");
    let mut proposal = aes_cbc_sha256_proposal();
    proposal[0].spi = new_spi_i.to_vec();
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &sa_payload::encode(&proposal));
    chain.push(payload::NONCE, &ni);
    chain.push(payload::KE, &KeyExchange::encode(19, dh.public_value()));
    let request = c.seal(exchange::CREATE_CHILD_SA, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    let sa = sa_payload::parse(wire::find(&reply, payload::SA).expect("SA")).expect("sa");
    let new_spi_r: [u8; 8] = sa[0].spi.as_slice().try_into().expect("8-byte SPI");
    let nr = wire::find(&reply, payload::NONCE).expect("Nr").to_vec();
    let ke = KeyExchange::parse(wire::find(&reply, payload::KE).expect("KE")).expect("ke");
    let shared = dh.agree(ke.data).expect("agree");
    let seed = rekey_skeyseed(c.prf, &c.keys().sk_d, &shared, &ni, &nr);
    let new_keys = ike_sa_keys(
        c.prf,
        &seed,
        &ni,
        &nr,
        &new_spi_i,
        &new_spi_r,
        c.protection.key_lengths(),
    );
    // the old SA is deleted by the client: nothing goes down
    let mut chain = PayloadChain::new();
    chain.push(
        payload::DELETE,
        &Delete {
            protocol: protocol::IKE,
            spis: vec![],
        }
        .encode(),
    );
    let request = c.seal(exchange::INFORMATIONAL, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    drain(&mut r);
    assert!(
        events(&mut r).is_empty(),
        "a rekeyed-away SA reports nothing"
    );
    assert_eq!(r.child_sa_count(), 1);
    // the new SA works: a liveness check from the client (Message ID 0)
    let mut rekeyed = Client {
        spi_i: new_spi_i,
        spi_r: new_spi_r,
        keys: Some(new_keys),
        next_id: 0,
        ..Client::new(DhGroup::Ecp256)
    };
    let request = rekeyed.seal(exchange::INFORMATIONAL, &PayloadChain::new());
    r.handle_datagram(now, server(), rekeyed.addr, false, &request);
    let out = drain(&mut r);
    assert_eq!(out.len(), 1);
    let (header, _, _) = rekeyed.open(&out[0]);
    assert!(header.is_response());
    // deleting the new SA brings everything down
    let mut chain = PayloadChain::new();
    chain.push(
        payload::DELETE,
        &Delete {
            protocol: protocol::IKE,
            spis: vec![],
        }
        .encode(),
    );
    let request = rekeyed.seal(exchange::INFORMATIONAL, &chain);
    r.handle_datagram(now, server(), rekeyed.addr, false, &request);
    let evs = events(&mut r);
    assert!(evs.iter().any(|e| matches!(e, Ikev2Event::ChildSaDown { inbound_spi, .. } if *inbound_spi == child.inbound.spi)));
    assert!(evs.iter().any(|e| matches!(e, Ikev2Event::IkeSaDown { ike_sa: id, reason: DownReason::DeletedByPeer, .. } if *id == ike_sa)));
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn half_open_sas_expire_and_a_refused_authorization_looks_like_a_wrong_key() {
    let start = Instant::now();
    let mut r = Ikev2Responder::new(config(), start);
    let _idle = init(&mut r, start);
    assert_eq!(r.half_open_count(), 1);
    r.handle_timeout(start + Duration::from_secs(31));
    assert_eq!((r.ike_sa_count(), r.half_open_count()), (0, 0));
    assert!(events(&mut r).is_empty(), "a half-open SA was never up");
    let mut c = init(&mut r, start);
    let chain = c.auth_chain(PSK, CLIENT_ID, 1000, true);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(start, server(), c.addr, false, &request);
    let Some(Ikev2Event::AuthorizationNeeded(req)) = events(&mut r).pop() else {
        panic!("authorization request");
    };
    r.authorize(
        start,
        req.ike_sa,
        Err("the access policy refuses client.example".into()),
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    assert_eq!(notifies(first, &inner), vec![notify::AUTHENTICATION_FAILED]);
    let evs = events(&mut r);
    assert!(evs
        .iter()
        .all(|e| !matches!(e, Ikev2Event::IkeSaDown { .. })));
    assert!(evs.iter().any(
        |e| matches!(e, Ikev2Event::Refused { reason, .. } if reason.contains("access policy"))
    ));
    assert_eq!(r.ike_sa_count(), 0);
}

/// EAP in IKE_AUTH (§2.16), with the responder only carrying messages: the
/// test plays the driver's EAP server (Identity, then success with an MSK),
/// and both final AUTH payloads are checked against the MSK.
#[test]
fn eap_client_authenticates_through_the_driver_and_the_msk_keys_both_auths() {
    let now = Instant::now();
    // the key that authenticates the server before EAP (no certificates yet)
    let mut cfg = config();
    cfg.psks = Ikev2PskTable::new().with_wildcard(PSK);
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = init(&mut r, now);
    // Windows' IKE identity is its address; the user comes with EAP
    let idi = Identification::encode(id_type::IPV4_ADDR, &[192, 168, 1, 20]);
    let mut chain = PayloadChain::new();
    chain.push(payload::IDI, &idi);
    chain.push(
        payload::CP,
        &ConfigBuilder::new(cfg_type::REQUEST)
            .attribute(attribute::INTERNAL_IP4_ADDRESS, &[])
            .build(),
    );
    push_child_request(&mut chain, 0xabcd0001);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let ike_sa = match events(&mut r).pop() {
        Some(Ikev2Event::EapStart {
            ike_sa,
            ike_identity,
            ..
        }) => {
            assert_eq!(ike_identity, "192.168.1.20");
            ike_sa
        }
        _ => panic!("EAP start"),
    };
    r.handle_datagram(now, server(), c.addr, false, &request); // retransmitted while waiting
    assert!(drain(&mut r).is_empty());
    r.eap_reply(
        now,
        ike_sa,
        ipsec::ikev2::EapReply::Continue(vec![1, 7, 0, 5, 1]),
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    let idr = wire::find(&reply, payload::IDR).expect("IDr");
    let auth =
        Authentication::parse(wire::find(&reply, payload::AUTH).expect("AUTH")).expect("auth");
    let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
    assert_eq!(
        auth.data,
        &shared_key_auth(c.prf, PSK, &signed)[..],
        "server authenticated first"
    );
    assert_eq!(
        wire::find(&reply, payload::EAP).expect("EAP"),
        &[1, 7, 0, 5, 1]
    );
    // EAP-Response/Identity "alice"
    let mut chain = PayloadChain::new();
    chain.push(
        payload::EAP,
        &[2, 7, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'],
    );
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    match events(&mut r).pop() {
        Some(Ikev2Event::EapResponse { packet, .. }) => assert_eq!(&packet[5..], b"alice"),
        _ => panic!("EAP response to the driver"),
    }
    let msk = zeroize::Zeroizing::new((0..64u8).collect::<Vec<u8>>());
    r.eap_reply(
        now,
        ike_sa,
        ipsec::ikev2::EapReply::Success {
            packet: vec![3, 8, 0, 4],
            msk: msk.clone(),
            identity: "alice".into(),
        },
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    assert_eq!(reply.len(), 1, "only EAP Success this time");
    assert_eq!(reply[0].body, &[3, 8, 0, 4]);
    // the client's AUTH keyed with the MSK
    let signed = signed_octets(c.prf, &c.init_request, &c.nr, &c.keys().sk_pi, &idi);
    let mut chain = PayloadChain::new();
    chain.push(
        payload::AUTH,
        &Authentication::encode(
            auth_method::SHARED_KEY_MIC,
            &shared_key_auth(c.prf, &msk, &signed),
        ),
    );
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    match events(&mut r).pop() {
        Some(Ikev2Event::AuthorizationNeeded(req)) => {
            assert_eq!(req.identity, "alice");
            assert_eq!(req.method, ipsec::ikev2::ClientAuthMethod::Eap);
            assert!(req.wants_ipv4);
        }
        _ => panic!("authorization after EAP"),
    }
    assert_eq!(r.half_open_count(), 0);
    r.authorize(
        now,
        ike_sa,
        Ok(Authorization {
            ipv4: Some(CLIENT_ADDRESS),
            ..Authorization::default()
        }),
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    assert!(
        !reply.iter().any(|p| p.kind == payload::IDR),
        "IDr went out in the first answer"
    );
    let auth =
        Authentication::parse(wire::find(&reply, payload::AUTH).expect("AUTH")).expect("auth");
    let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
    assert_eq!(
        auth.data,
        &shared_key_auth(c.prf, &msk, &signed)[..],
        "final AUTH keyed with the MSK"
    );
    assert!(reply.iter().any(|p| p.kind == payload::SA));
    assert!(events(&mut r)
        .iter()
        .any(|e| matches!(e, Ikev2Event::ChildSaUp(_))));
}

#[test]
fn an_eap_failure_ends_the_sa_with_the_failure_packet() {
    let now = Instant::now();
    let mut cfg = config();
    cfg.psks = Ikev2PskTable::new().with_wildcard(PSK);
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = init(&mut r, now);
    let mut chain = PayloadChain::new();
    chain.push(
        payload::IDI,
        &Identification::encode(id_type::IPV4_ADDR, &[10, 1, 1, 1]),
    );
    push_child_request(&mut chain, 5000);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let Some(Ikev2Event::EapStart { ike_sa, .. }) = events(&mut r).pop() else {
        panic!("EAP start");
    };
    r.eap_reply(
        now,
        ike_sa,
        ipsec::ikev2::EapReply::Failure {
            packet: vec![4, 1, 0, 4],
            reason: "wrong password for bob".into(),
        },
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    assert_eq!(
        wire::find(&reply, payload::EAP).expect("EAP"),
        &[4, 1, 0, 4]
    );
    assert_eq!(r.ike_sa_count(), 0);
    assert_eq!(r.half_open_count(), 0);
    assert!(events(&mut r).iter().any(
        |e| matches!(e, Ikev2Event::Refused { reason, .. } if reason == "wrong password for bob")
    ));
}

#[test]
fn mobike_address_update_moves_the_tunnel_and_echoes_cookie2() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let mut c = init(&mut r, now);
    let mut chain = c.auth_chain(PSK, CLIENT_ID, 0x1234, false);
    chain.push(
        payload::NOTIFY,
        &Notify::encode(notify::MOBIKE_SUPPORTED, &[]),
    );
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let Some(Ikev2Event::AuthorizationNeeded(req)) = events(&mut r).pop() else {
        panic!("authorization request");
    };
    r.authorize(now, req.ike_sa, Ok(Authorization::default()));
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    assert!(notifies(first, &inner).contains(&notify::MOBIKE_SUPPORTED));
    events(&mut r);
    // the client moves to a mobile network behind a NAT, on the NAT-T port
    let moved: SocketAddr = "198.18.0.77:34567".parse().expect("addr");
    let mut update = PayloadChain::new();
    update.push(
        payload::NOTIFY,
        &Notify::encode(notify::UPDATE_SA_ADDRESSES, &[]),
    );
    update.push(payload::NOTIFY, &Notify::encode(notify::COOKIE2, &[9; 16]));
    let private: SocketAddr = "10.20.30.40:4500".parse().expect("addr");
    update.push(
        payload::NOTIFY,
        &Notify::encode(
            notify::NAT_DETECTION_SOURCE_IP,
            &nat_d(HashAlg::Sha1, &c.spi_i, &c.spi_r, private),
        ),
    );
    let to_server: SocketAddr = "198.51.100.1:4500".parse().expect("addr");
    update.push(
        payload::NOTIFY,
        &Notify::encode(
            notify::NAT_DETECTION_DESTINATION_IP,
            &nat_d(HashAlg::Sha1, &c.spi_i, &c.spi_r, to_server),
        ),
    );
    let request = c.seal(exchange::INFORMATIONAL, &update);
    r.handle_datagram(now, to_server, moved, true, &request);
    let evs = events(&mut r);
    let moves: Vec<_> = evs
        .iter()
        .filter_map(|e| match e {
            Ikev2Event::PeerMoved {
                peer,
                udp_encapsulated,
                ..
            } => Some((*peer, *udp_encapsulated)),
            _ => None,
        })
        .collect();
    assert_eq!(
        moves,
        vec![(moved, true)],
        "one move, to the NAT's address, in UDP"
    );
    let mut t = r.poll_transmit().expect("answer");
    assert_eq!(t.remote, moved);
    assert!(t.from_nat_t_port);
    let (_, first, inner) = c.open(&std::mem::take(&mut t.bytes));
    let reply = wire::payloads(first, &inner).expect("payloads");
    let cookie2 = reply
        .iter()
        .filter(|p| p.kind == payload::NOTIFY)
        .map(|p| Notify::parse(p.body).expect("n"))
        .find(|n| n.kind == notify::COOKIE2)
        .expect("COOKIE2 echoed");
    assert_eq!(cookie2.data, &[9; 16]);
    assert!(notifies(first, &inner).contains(&notify::NAT_DETECTION_SOURCE_IP));
}

/// A server with a certificate proves itself to an EAP client by
/// signature: RFC 7427 (method 14) when the client announced hashes, RFC
/// 4754 (method 9) with an ECDSA key otherwise. The client checks the
/// signature with the certificate's public key.
#[test]
fn a_server_certificate_signs_our_auth_for_eap_clients() {
    use aws_lc_rs::signature::{
        UnparsedPublicKey, ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_FIXED,
        RSA_PKCS1_2048_8192_SHA256,
    };
    use ipsec::ikev2::signature_auth::ServerCredential;

    let ecdsa = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let rsa_pkcs8 = {
        use aws_lc_rs::encoding::AsDer;
        let k = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        k.as_der().expect("der").as_ref().to_vec()
    };
    let rsa = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &rsa_pkcs8.clone().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("rsa key");
    let cases: Vec<(&rcgen::KeyPair, Vec<u8>, bool, u8)> = vec![
        (&ecdsa, ecdsa.serialize_der(), true, 14),
        (&ecdsa, ecdsa.serialize_der(), false, 9),
        (&rsa, rsa_pkcs8.clone(), true, 14),
    ];
    for (key, pkcs8, rfc7427, method) in cases {
        let cert = rcgen::CertificateParams::new(vec!["vpn.example".to_string()])
            .expect("params")
            .self_signed(key)
            .expect("cert");
        let credential =
            ServerCredential::from_pkcs8(vec![cert.der().to_vec()], &pkcs8).expect("credential");
        let public = credential.public_key();
        let now = Instant::now();
        let mut cfg = config();
        cfg.certificate = Some(std::sync::Arc::new(credential));
        let mut r = Ikev2Responder::new(cfg, now);
        let mut c = Client::new(DhGroup::Ecp256);
        c.signature_hashes = rfc7427;
        let (_, mut events) = ask_for_eap(&mut r, &mut c, now);
        let Some(Ikev2Event::EapStart { ike_sa, .. }) = events.pop() else {
            panic!("EAP start");
        };
        r.eap_reply(
            now,
            ike_sa,
            ipsec::ikev2::EapReply::Continue(vec![1, 1, 0, 5, 1]),
        );
        let out = drain(&mut r);
        let (_, first, inner) = c.open(&out[0]);
        let reply = wire::payloads(first, &inner).expect("payloads");
        let cert_payload = wire::find(&reply, payload::CERT).expect("CERT");
        assert_eq!(cert_payload[0], 4, "X.509 signature encoding");
        assert_eq!(&cert_payload[1..], cert.der().as_ref());
        let idr = wire::find(&reply, payload::IDR).expect("IDr");
        let auth =
            Authentication::parse(wire::find(&reply, payload::AUTH).expect("AUTH")).expect("auth");
        assert_eq!(auth.method, method);
        let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
        let verified = if method == 14 {
            let len = auth.data[0] as usize;
            let algorithm = &auth.data[1..1 + len];
            let signature = &auth.data[1 + len..];
            let scheme: &dyn aws_lc_rs::signature::VerificationAlgorithm = if algorithm[4] == 0x2a
                && algorithm[5] == 0x86
                && algorithm[6] == 0x48
                && algorithm[7] == 0xce
            {
                &ECDSA_P256_SHA256_ASN1
            } else {
                &RSA_PKCS1_2048_8192_SHA256
            };
            UnparsedPublicKey::new(scheme, &public).verify(&signed, signature)
        } else {
            assert_eq!(auth.data.len(), 64, "r || s on P-256");
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public).verify(&signed, auth.data)
        };
        assert!(
            verified.is_ok(),
            "method {method}: the signature verifies with the certificate's key"
        );
    }
}

/// IKE_SA_INIT, then a first IKE_AUTH without AUTH (the client wants
/// EAP): the IKE_AUTH request and the events it raised.
fn ask_for_eap(r: &mut Ikev2Responder, c: &mut Client, now: Instant) -> (Vec<u8>, Vec<Ikev2Event>) {
    let request = c.sa_init(&aes_cbc_sha256_proposal(), None, false);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(r);
    let header = Header::parse(&out[0]).expect("header");
    let init = wire::payloads(header.next_payload, &out[0][HEADER_LEN..]).expect("payloads");
    assert!(
        wire::notifies(&init).any(|n| n.kind == notify::SIGNATURE_HASH_ALGORITHMS),
        "we announce RFC 7427"
    );
    c.sa_init_done(&out[0]);
    let mut chain = PayloadChain::new();
    chain.push(
        payload::IDI,
        &Identification::encode(id_type::RFC822_ADDR, b"alice@example"),
    );
    push_child_request(&mut chain, 7000);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    (request, events(r))
}

/// With `offload_signatures` the responder leaves its signature to the
/// driver (`SignatureNeeded`) and holds the first EAP answer until the
/// signature is back, whichever comes first; a retransmitted IKE_AUTH
/// meanwhile gets nothing. The answer carries the certificate, the
/// driver's EAP request and an AUTH that verifies with the certificate's
/// key. Without the hold, the answer would leave with no AUTH or block.
#[test]
fn an_offloaded_signature_holds_the_first_eap_answer_until_it_is_made() {
    use aws_lc_rs::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_ASN1};
    use ipsec::ikev2::signature_auth::ServerCredential;

    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
    let cert = rcgen::CertificateParams::new(vec!["vpn.example".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let credential = ServerCredential::from_pkcs8(vec![cert.der().to_vec()], &key.serialize_der())
        .expect("credential");
    let public = credential.public_key();
    let credential = std::sync::Arc::new(credential);
    for signature_first in [false, true] {
        let now = Instant::now();
        let mut cfg = config();
        cfg.certificate = Some(credential.clone());
        cfg.offload_signatures = true;
        let mut r = Ikev2Responder::new(cfg, now);
        let mut c = Client::new(DhGroup::Ecp256);
        c.signature_hashes = true;
        let (request, events) = ask_for_eap(&mut r, &mut c, now);
        let mut ike_sa = None;
        let mut job = None;
        for event in events {
            match event {
                Ikev2Event::EapStart { ike_sa: id, .. } => ike_sa = Some(id),
                Ikev2Event::SignatureNeeded(j) => job = Some(j),
                _ => {}
            }
        }
        let (ike_sa, job) = (ike_sa.expect("EapStart"), job.expect("SignatureNeeded"));
        assert_eq!(job.ike_sa, ike_sa);
        let eap_request = vec![1, 1, 0, 5, 1];
        if signature_first {
            r.signature_ready(now, job.run());
            assert!(drain(&mut r).is_empty(), "nothing to say before EAP");
            r.eap_reply(
                now,
                ike_sa,
                ipsec::ikev2::EapReply::Continue(eap_request.clone()),
            );
        } else {
            r.eap_reply(
                now,
                ike_sa,
                ipsec::ikev2::EapReply::Continue(eap_request.clone()),
            );
            assert!(drain(&mut r).is_empty(), "held for the signature");
            r.handle_datagram(now, server(), c.addr, false, &request);
            assert!(drain(&mut r).is_empty(), "a retransmission waits too");
            r.signature_ready(now, job.run());
        }
        let out = drain(&mut r);
        assert_eq!(out.len(), 1, "signature first: {signature_first}");
        let (_, first, inner) = c.open(&out[0]);
        let reply = wire::payloads(first, &inner).expect("payloads");
        assert_eq!(wire::find(&reply, payload::EAP), Some(&eap_request[..]));
        assert_eq!(
            &wire::find(&reply, payload::CERT).expect("CERT")[1..],
            cert.der().as_ref()
        );
        let idr = wire::find(&reply, payload::IDR).expect("IDr");
        let auth =
            Authentication::parse(wire::find(&reply, payload::AUTH).expect("AUTH")).expect("auth");
        assert_eq!(auth.method, 14);
        let len = auth.data[0] as usize;
        let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
        assert!(
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &public)
                .verify(&signed, &auth.data[1 + len..])
                .is_ok(),
            "the offloaded signature verifies"
        );
    }
}

#[test]
/// A client without RFC 7427 (no SIGNATURE_HASH_ALGORITHMS) gets an RSA
/// server's AUTH as method 1 (RFC 7296 §3.8: PKCS#1 v1.5 with SHA-1),
/// which verifies with the certificate's key. (This was refused with a
/// reason naming RFC 7427 until method 1 was implemented.)
fn an_rsa_certificate_without_rfc_7427_signs_with_method_1() {
    let pkcs8 = {
        use aws_lc_rs::encoding::AsDer;
        let k = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).expect("rsa");
        k.as_der().expect("der").as_ref().to_vec()
    };
    let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
        &pkcs8.clone().into(),
        &rcgen::PKCS_RSA_SHA256,
    )
    .expect("key");
    let cert = rcgen::CertificateParams::new(vec!["vpn.example".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let credential = ipsec::ikev2::signature_auth::ServerCredential::from_pkcs8(
        vec![cert.der().to_vec()],
        &pkcs8,
    )
    .expect("credential");
    let public_key = credential.public_key();
    let now = Instant::now();
    let mut cfg = config();
    cfg.certificate = Some(std::sync::Arc::new(credential));
    let mut r = Ikev2Responder::new(cfg, now);
    let mut c = init(&mut r, now);
    let mut chain = PayloadChain::new();
    chain.push(
        payload::IDI,
        &Identification::encode(id_type::IPV4_ADDR, &[10, 0, 0, 1]),
    );
    push_child_request(&mut chain, 7001);
    let request = c.seal(exchange::IKE_AUTH, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let Some(Ikev2Event::EapStart { ike_sa, .. }) = events(&mut r).pop() else {
        panic!("EAP start");
    };
    r.eap_reply(
        now,
        ike_sa,
        ipsec::ikev2::EapReply::Continue(vec![1, 1, 0, 5, 1]),
    );
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    assert!(notifies(first, &inner).is_empty());
    let reply = wire::payloads(first, &inner).expect("payloads");
    let idr = wire::find(&reply, payload::IDR).expect("IDr");
    let auth =
        Authentication::parse(wire::find(&reply, payload::AUTH).expect("AUTH")).expect("auth");
    assert_eq!(auth.method, auth_method::RSA_SIGNATURE);
    let signed = signed_octets(c.prf, &c.init_response, &c.ni, &c.keys().sk_pr, idr);
    let public = public_key;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY,
        &public,
    )
    .verify(&signed, auth.data)
    .expect("the signature verifies with the certificate's key");
}

/// A CREATE_CHILD_SA without REKEY_SA for a new child.
fn new_child_request(c: &mut Client, spi: u32) -> Vec<u8> {
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &sa_payload::encode(&esp_proposal(spi)));
    chain.push(payload::NONCE, &[0x61; 32]);
    push_any_ipv4_selectors(&mut chain);
    c.seal(exchange::CREATE_CHILD_SA, &chain)
}

/// One tunnel per client: a second child SA next to a live one is refused
/// with NO_ADDITIONAL_SAS, but a client whose child expired and was
/// deleted (strongSwan recreates it after a hard expiry) gets a new one
/// with the selectors it was narrowed to at IKE_AUTH.
#[test]
fn a_child_is_recreated_only_when_the_client_has_none() {
    let now = Instant::now();
    let mut r = Ikev2Responder::new(config(), now);
    let (mut c, _, first_child) = connect(&mut r, now);
    events(&mut r);
    let request = new_child_request(&mut c, 0xe0000001);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    assert_eq!(notifies(first, &inner), vec![notify::NO_ADDITIONAL_SAS]);
    assert!(!events(&mut r)
        .iter()
        .any(|e| matches!(e, Ikev2Event::ChildSaUp(_))));

    // The client deletes its only child, then asks for a new one.
    let mut chain = PayloadChain::new();
    chain.push(
        payload::DELETE,
        &Delete {
            protocol: protocol::ESP,
            spis: vec![0xc1c2c3c4u32.to_be_bytes()],
        }
        .encode(),
    );
    let request = c.seal(exchange::INFORMATIONAL, &chain);
    r.handle_datagram(now, server(), c.addr, false, &request);
    drain(&mut r);
    events(&mut r);
    assert_eq!(r.child_sa_count(), 0);
    let request = new_child_request(&mut c, 0xe0000002);
    r.handle_datagram(now, server(), c.addr, false, &request);
    let out = drain(&mut r);
    let (_, first, inner) = c.open(&out[0]);
    let reply = wire::payloads(first, &inner).expect("payloads");
    let tsi = traffic_selectors::parse(wire::find(&reply, payload::TSI).expect("TSi")).expect("ts");
    assert_eq!(
        tsi,
        vec![TrafficSelector::host(CLIENT_ADDRESS.into())],
        "narrowed to the client's address again"
    );
    let child = events(&mut r)
        .into_iter()
        .find_map(|e| match e {
            Ikev2Event::ChildSaUp(child) => Some(*child),
            _ => None,
        })
        .expect("a new child");
    assert_eq!(child.replaces_inbound_spi, None);
    assert_eq!(child.outbound.spi, 0xe0000002);
    assert_ne!(child.inbound.spi, first_child.inbound.spi);
    assert_eq!(r.child_sa_count(), 1);
}
