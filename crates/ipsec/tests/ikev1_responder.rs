//! The IKEv1 responder against a scripted initiator written from RFC 2409
//! in this file: Main Mode with a pre-shared key, Quick Mode for L2TP in
//! transport mode, NAT-T, Informational exchanges, DPD and hostile input.
//! The initiator offers what Windows 10/11 offers on its defaults.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ipsec::esp::{EspSa, EspSaConfig, LifetimeLimits};
use ipsec::ike_crypto::{ikev1_keys, DhGroup, DhPrivate, HashAlg, IkeCipher};
use ipsec::ikev1::crypt::{self, MessageKeys};
use ipsec::ikev1::nat_detection::nat_d;
use ipsec::ikev1::payloads::{encode_nat_oa, notify, Delete, Identification, Notification};
use ipsec::ikev1::proposal::{p1, p2};
use ipsec::ikev1::sa_payload::{self, protocol, push_number, Proposal, SaPayload, Transform};
use ipsec::ikev1::vendor_ids;
use ipsec::ikev1::wire::{self, exchange, payload, Header, PayloadChain, HEADER_LEN, VERSION_1_0};
use ipsec::ikev1::{DownReason, IkeEvent, PskTable, Responder, ResponderConfig, Transmit};
use zeroize::Zeroizing;

const PSK: &[u8] = b"ras-test-psk";

fn transform(number: u8, id: u8, attrs: &[(u16, u64)]) -> Transform {
    let mut raw = Vec::new();
    for &(k, v) in attrs {
        push_number(&mut raw, k, v);
    }
    Transform {
        number,
        id,
        attributes: sa_payload::parse_attributes(&raw).unwrap(),
        raw_attributes: raw,
    }
}

/// Windows 10/11 Main Mode proposals for L2TP/IPsec on defaults: AES and
/// 3DES with SHA-1 over ECP and MODP groups, 8-hour lifetime, PSK.
fn windows_main_mode() -> Vec<(u64, u64, Option<u64>, u64)> {
    // (encryption, hash, key length, group)
    vec![
        (7, 2, Some(256), 20),
        (7, 2, Some(128), 19),
        (7, 2, Some(256), 14),
        (7, 2, Some(128), 14),
        (5, 2, None, 14),
        (7, 2, Some(256), 2),
        (7, 2, Some(128), 2),
        (5, 2, None, 2),
    ]
}

fn main_mode_sa(offer: &[(u64, u64, Option<u64>, u64)], auth: u64) -> Vec<u8> {
    let transforms = offer
        .iter()
        .enumerate()
        .map(|(i, &(enc, hash, key, group))| {
            let mut attrs = vec![(p1::ENCRYPTION, enc)];
            if let Some(k) = key {
                attrs.push((p1::KEY_LENGTH, k));
            }
            attrs.extend([
                (p1::HASH, hash),
                (p1::GROUP, group),
                (p1::AUTH_METHOD, auth),
                (p1::LIFE_TYPE, 1),
                (p1::LIFE_DURATION, 28_800),
            ]);
            transform(i as u8 + 1, p1::KEY_IKE, &attrs)
        })
        .collect();
    SaPayload::encode(
        sa_payload::SIT_IDENTITY_ONLY,
        &[Proposal {
            number: 1,
            protocol: protocol::ISAKMP,
            spi: vec![],
            transforms,
        }],
    )
}

/// Windows' Quick Mode offer for L2TP: ESP AES-256/AES-128/3DES with
/// SHA-1, 1 hour or 250000 KB, no PFS.
fn windows_quick_mode_sa(spi: u32, mode: u64, pfs: Option<u64>) -> Vec<u8> {
    let esp = |n: u8, id: u8, key: Option<u64>| {
        let mut attrs = vec![
            (p2::ENCAPSULATION, mode),
            (p2::AUTH_ALGORITHM, p2::AUTH_HMAC_SHA1),
            (p2::LIFE_TYPE, 1),
            (p2::LIFE_DURATION, 3600),
            (p2::LIFE_TYPE, 2),
            (p2::LIFE_DURATION, 250_000),
        ];
        if let Some(k) = key {
            attrs.push((p2::KEY_LENGTH, k));
        }
        if let Some(g) = pfs {
            attrs.push((p2::GROUP, g));
        }
        Proposal {
            number: n,
            protocol: protocol::ESP,
            spi: spi.to_be_bytes().to_vec(),
            transforms: vec![transform(1, id, &attrs)],
        }
    };
    SaPayload::encode(
        sa_payload::SIT_IDENTITY_ONLY,
        &[
            esp(1, p2::ESP_AES_CBC, Some(256)),
            esp(2, p2::ESP_AES_CBC, Some(128)),
            esp(3, p2::ESP_3DES, None),
        ],
    )
}

/// A scripted IKEv1 initiator.
struct Initiator {
    addr: SocketAddr,
    server: SocketAddr,
    on_nat_t: bool,
    cookie_i: [u8; 8],
    cookie_r: [u8; 8],
    sa_i_b: Vec<u8>,
    chosen: Option<(IkeCipher, HashAlg, DhGroup)>,
    dh: Option<DhPrivate>,
    ni: Vec<u8>,
    nr: Vec<u8>,
    skeyid: Vec<u8>,
    keys: Option<MessageKeys>,
    iv: Vec<u8>,
    vendor_ids: Vec<Vec<u8>>,
    private_address: SocketAddr,
    g_xr: Vec<u8>,
}

impl Initiator {
    fn new(addr: SocketAddr, server: SocketAddr) -> Self {
        Initiator {
            addr,
            server,
            on_nat_t: false,
            cookie_i: rand8(),
            cookie_r: [0; 8],
            sa_i_b: Vec::new(),
            chosen: None,
            dh: None,
            ni: vec![0x11; 32],
            nr: Vec::new(),
            skeyid: Vec::new(),
            keys: None,
            iv: Vec::new(),
            vendor_ids: Vec::new(),
            private_address: addr,
            g_xr: Vec::new(),
        }
    }

    fn header(&self, exchange: u8, message_id: u32) -> Header {
        Header {
            initiator_cookie: self.cookie_i,
            responder_cookie: self.cookie_r,
            next_payload: 0,
            version: VERSION_1_0,
            exchange,
            flags: 0,
            message_id,
            length: 0,
        }
    }

    fn message_1(&mut self, sa_body: Vec<u8>, vids: &[&[u8]]) -> Vec<u8> {
        self.sa_i_b = sa_body;
        let mut chain = PayloadChain::new();
        chain.push(payload::SA, &self.sa_i_b);
        for v in vids {
            chain.push(payload::VENDOR_ID, v);
        }
        wire::message(&self.header(exchange::MAIN_MODE, 0), &chain)
    }

    fn read_message_2(&mut self, reply: &[u8]) {
        let h = Header::parse(reply).unwrap();
        assert_eq!(h.exchange, exchange::MAIN_MODE);
        self.cookie_r = h.responder_cookie;
        let ps = wire::payloads(h.next_payload, &reply[HEADER_LEN..]).unwrap();
        let sa = SaPayload::parse(ps[0].body).unwrap();
        assert_eq!(sa.proposals.len(), 1);
        assert_eq!(sa.proposals[0].transforms.len(), 1);
        let t = &sa.proposals[0].transforms[0];
        let cipher = match (t.attribute(p1::ENCRYPTION), t.attribute(p1::KEY_LENGTH)) {
            (Some(7), Some(256)) => IkeCipher::Aes256Cbc,
            (Some(7), Some(128)) => IkeCipher::Aes128Cbc,
            (Some(5), None) => IkeCipher::TripleDesCbc,
            other => panic!("unexpected cipher {other:?}"),
        };
        let hash = match t.attribute(p1::HASH) {
            Some(2) => HashAlg::Sha1,
            Some(4) => HashAlg::Sha256,
            other => panic!("unexpected hash {other:?}"),
        };
        let group = DhGroup::from_id(t.attribute(p1::GROUP).unwrap() as u16).unwrap();
        self.chosen = Some((cipher, hash, group));
        self.vendor_ids = ps
            .iter()
            .filter(|p| p.kind == payload::VENDOR_ID)
            .map(|p| p.body.to_vec())
            .collect();
    }

    fn message_3(&mut self, nat_d_kind: Option<u8>) -> Vec<u8> {
        let (_, hash, group) = self.chosen.unwrap();
        let dh = DhPrivate::generate(group).unwrap();
        let mut chain = PayloadChain::new();
        chain.push(payload::KEY_EXCHANGE, dh.public_value());
        chain.push(payload::NONCE, &self.ni);
        if let Some(kind) = nat_d_kind {
            chain.push(
                kind,
                &nat_d(hash, &self.cookie_i, &self.cookie_r, self.server),
            );
            chain.push(
                kind,
                &nat_d(hash, &self.cookie_i, &self.cookie_r, self.private_address),
            );
        }
        self.dh = Some(dh);
        wire::message(&self.header(exchange::MAIN_MODE, 0), &chain)
    }

    /// Reads message 4; returns the NAT-D payloads the responder sent.
    fn read_message_4(&mut self, reply: &[u8], psk: &[u8]) -> Vec<Vec<u8>> {
        let h = Header::parse(reply).unwrap();
        let ps = wire::payloads(h.next_payload, &reply[HEADER_LEN..]).unwrap();
        let ke = ps
            .iter()
            .find(|p| p.kind == payload::KEY_EXCHANGE)
            .unwrap()
            .body;
        self.nr = ps
            .iter()
            .find(|p| p.kind == payload::NONCE)
            .unwrap()
            .body
            .to_vec();
        let (cipher, hash, _) = self.chosen.unwrap();
        let dh = self.dh.as_ref().unwrap();
        let g_xy = dh.agree(ke).unwrap();
        let skeyid = ikev1_keys::skeyid_psk(hash, psk, &self.ni, &self.nr);
        self.skeyid = skeyid.to_vec();
        let k = ikev1_keys::phase1_keys(hash, skeyid, &g_xy, &self.cookie_i, &self.cookie_r);
        let enc_key = ikev1_keys::encryption_key(hash, &k.skeyid_e, cipher.key_len());
        self.iv = ikev1_keys::phase1_iv(hash, dh.public_value(), ke, cipher.block_len());
        self.keys = Some(MessageKeys {
            cipher,
            hash,
            enc_key,
            skeyid_a: k.skeyid_a,
            skeyid_d: k.skeyid_d,
            phase1_last_block: Vec::new(),
        });
        self.g_xr = ke.to_vec();
        ps.iter()
            .filter(|p| p.kind == payload::NAT_D || p.kind == payload::NAT_D_DRAFT)
            .map(|p| p.body.to_vec())
            .collect()
    }
}

impl Initiator {
    fn message_5(&mut self, initial_contact: bool) -> Vec<u8> {
        let (_, hash, _) = self.chosen.unwrap();
        let id = Identification::address(self.private_address.ip(), 17, 500).encode();
        let g_xi = self.dh.as_ref().unwrap().public_value().to_vec();
        let hash_i = hash.hmac(
            &self.skeyid,
            &[
                &g_xi,
                &self.g_xr,
                &self.cookie_i,
                &self.cookie_r,
                &self.sa_i_b,
                &id,
            ],
        );
        let mut chain = PayloadChain::new();
        chain.push(payload::IDENTIFICATION, &id);
        chain.push(payload::HASH, &hash_i);
        if initial_contact {
            chain.push(
                payload::NOTIFICATION,
                &Notification {
                    protocol: protocol::ISAKMP,
                    spi: [self.cookie_i, self.cookie_r].concat(),
                    kind: notify::INITIAL_CONTACT,
                    data: vec![],
                }
                .encode(),
            );
        }
        let keys = self.keys.as_ref().unwrap();
        let (msg, next) = crypt::encrypt(
            keys.cipher,
            &keys.enc_key,
            &self.iv,
            &self.header(exchange::MAIN_MODE, 0),
            &chain,
        );
        self.iv = next;
        msg
    }

    fn read_message_6(&mut self, reply: &[u8]) {
        let keys = self.keys.as_mut().unwrap();
        let (plain, last) = crypt::decrypt(keys.cipher, &keys.enc_key, &self.iv, reply).unwrap();
        let h = Header::parse(reply).unwrap();
        let ps = wire::payloads(h.next_payload, &plain).unwrap();
        let id = ps
            .iter()
            .find(|p| p.kind == payload::IDENTIFICATION)
            .unwrap()
            .body;
        let hash_r = ps.iter().find(|p| p.kind == payload::HASH).unwrap().body;
        let g_xi = self.dh.as_ref().unwrap().public_value().to_vec();
        let expected = keys.hash.hmac(
            &self.skeyid,
            &[
                &self.g_xr,
                &g_xi,
                &self.cookie_r,
                &self.cookie_i,
                &self.sa_i_b,
                id,
            ],
        );
        assert_eq!(&expected[..], hash_r, "HASH_R verifies");
        keys.phase1_last_block = last;
    }

    /// Quick Mode message 1; returns it and the state for message 3.
    fn quick_mode_1(&mut self, mid: u32, sa_body: &[u8], nat_oa: Option<u8>) -> (Vec<u8>, Vec<u8>) {
        let keys = self.keys.as_ref().unwrap();
        let hash_len = keys.hash.output_len();
        let ni = vec![0x22; 16];
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        chain.push(payload::SA, sa_body);
        chain.push(payload::NONCE, &ni);
        chain.push(
            payload::IDENTIFICATION,
            &Identification::address(self.private_address.ip(), 17, 1701).encode(),
        );
        chain.push(
            payload::IDENTIFICATION,
            &Identification::address(self.server.ip(), 17, 1701).encode(),
        );
        if let Some(kind) = nat_oa {
            chain.push(kind, &encode_nat_oa(self.private_address.ip()));
            chain.push(kind, &encode_nat_oa(self.server.ip()));
        }
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        let h1 = keys.hash_a(&[&mid.to_be_bytes(), &covered]);
        chain.patch(4, &h1);
        let iv = keys.exchange_iv(mid);
        let (msg, next) = crypt::encrypt(
            keys.cipher,
            &keys.enc_key,
            &iv,
            &self.header(exchange::QUICK_MODE, mid),
            &chain,
        );
        self.iv = next;
        (msg, ni)
    }

    /// Reads Quick Mode message 2, answers with message 3 and returns it with
    /// the responder's SPI and nonce.
    fn quick_mode_3(&mut self, mid: u32, ni: &[u8], reply: &[u8]) -> (Vec<u8>, u32, Vec<u8>, u64) {
        let keys = self.keys.as_ref().unwrap();
        let (plain, next) = crypt::decrypt(keys.cipher, &keys.enc_key, &self.iv, reply).unwrap();
        let h = Header::parse(reply).unwrap();
        let ps = wire::payloads(h.next_payload, &plain).unwrap();
        assert_eq!(ps[0].kind, payload::HASH);
        let nr = ps
            .iter()
            .find(|p| p.kind == payload::NONCE)
            .unwrap()
            .body
            .to_vec();
        let covered = crypt::after_first_payload(&ps);
        let h2 = keys.hash_a(&[&mid.to_be_bytes(), ni, &covered]);
        assert_eq!(&h2[..], ps[0].body, "HASH(2) verifies");
        let sa = SaPayload::parse(ps.iter().find(|p| p.kind == payload::SA).unwrap().body).unwrap();
        let spi = u32::from_be_bytes(sa.proposals[0].spi[..4].try_into().unwrap());
        let mode = sa.proposals[0].transforms[0]
            .attribute(p2::ENCAPSULATION)
            .unwrap();
        let h3 = keys.hash_a(&[&[0u8], &mid.to_be_bytes(), ni, &nr]);
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &h3);
        let (msg, _) = crypt::encrypt(
            keys.cipher,
            &keys.enc_key,
            &next,
            &self.header(exchange::QUICK_MODE, mid),
            &chain,
        );
        (msg, spi, nr, mode)
    }

    fn informational(&self, mid: u32, kind: u8, body: &[u8]) -> Vec<u8> {
        let keys = self.keys.as_ref().unwrap();
        let hash_len = keys.hash.output_len();
        let mut chain = PayloadChain::new();
        chain.push(payload::HASH, &vec![0; hash_len]);
        chain.push(kind, body);
        let covered = chain.bytes()[4 + hash_len..].to_vec();
        let h = keys.hash_a(&[&mid.to_be_bytes(), &covered]);
        chain.patch(4, &h);
        let iv = keys.exchange_iv(mid);
        crypt::encrypt(
            keys.cipher,
            &keys.enc_key,
            &iv,
            &self.header(exchange::INFORMATIONAL, mid),
            &chain,
        )
        .0
    }

    /// Decrypts an Informational from the responder: its payloads.
    fn read_informational(&self, msg: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let keys = self.keys.as_ref().unwrap();
        let h = Header::parse(msg).unwrap();
        assert_eq!(h.exchange, exchange::INFORMATIONAL);
        let iv = keys.exchange_iv(h.message_id);
        let (plain, _) = crypt::decrypt(keys.cipher, &keys.enc_key, &iv, msg).unwrap();
        let ps = wire::payloads(h.next_payload, &plain).unwrap();
        let covered = crypt::after_first_payload(&ps);
        let expected = keys.hash_a(&[&h.message_id.to_be_bytes(), &covered]);
        assert_eq!(&expected[..], ps[0].body, "Informational HASH verifies");
        ps[1..].iter().map(|p| (p.kind, p.body.to_vec())).collect()
    }
}

fn rand8() -> [u8; 8] {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).unwrap();
    b
}

fn responder(config_tweak: impl FnOnce(&mut ResponderConfig)) -> Responder {
    let mut config = ResponderConfig {
        psks: PskTable::new().with_wildcard(PSK),
        ..Default::default()
    };
    config_tweak(&mut config);
    Responder::new(config)
}

fn exchange_with(r: &mut Responder, now: Instant, i: &Initiator, msg: &[u8]) -> Transmit {
    r.handle_datagram(now, i.server, i.addr, i.on_nat_t, msg);
    let t = r.poll_transmit().unwrap_or_else(|| {
        let reasons: Vec<String> = std::iter::from_fn(|| r.poll_event())
            .filter_map(|e| match e {
                IkeEvent::Refused { reason, .. } => Some(reason),
                _ => None,
            })
            .collect();
        panic!("no answer; refused: {reasons:?}")
    });
    assert_eq!(t.remote, i.addr);
    t
}

struct Connected {
    initiator: Initiator,
    /// The responder's SAs.
    inbound: EspSa,
    outbound: EspSa,
    /// The initiator's SAs, keyed from its own KEYMAT.
    initiator_inbound: EspSa,
    initiator_outbound: EspSa,
    udp: bool,
}

/// Main Mode + Quick Mode as Windows does it; behind a NAT when `nat`.
fn connect(r: &mut Responder, now: Instant, nat: bool) -> Connected {
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let public: SocketAddr = if nat {
        "203.0.113.7:40500"
    } else {
        "192.0.2.10:500"
    }
    .parse()
    .unwrap();
    let mut i = Initiator::new(public, server);
    if nat {
        i.private_address = "192.168.1.20:500".parse().unwrap();
    }
    let vids: Vec<&[u8]> = vec![
        &vendor_ids::MS_NT5_PREFIX,
        &vendor_ids::NAT_T_RFC3947,
        &vendor_ids::NAT_T_DRAFT_02_N,
        &vendor_ids::FRAGMENTATION,
        &vendor_ids::DPD,
    ];
    let m1 = i.message_1(main_mode_sa(&windows_main_mode(), 1), &vids);
    let m2 = exchange_with(r, now, &i, &m1);
    i.read_message_2(&m2.bytes);
    assert!(i
        .vendor_ids
        .iter()
        .any(|v| v[..] == vendor_ids::NAT_T_RFC3947));
    assert!(i.vendor_ids.iter().any(|v| v[..] == vendor_ids::DPD));
    let m3 = i.message_3(Some(payload::NAT_D));
    let m4 = exchange_with(r, now, &i, &m3);
    let nat_ds = i.read_message_4(&m4.bytes, PSK);
    assert_eq!(nat_ds.len(), 2);
    let (_, hash, _) = i.chosen.unwrap();
    // The responder's first NAT-D is us as it sees us.
    assert_eq!(nat_ds[0], nat_d(hash, &i.cookie_i, &i.cookie_r, i.addr));
    if nat {
        // RFC 3947 §4: float to 4500; the NAT maps that flow to a new port.
        i.addr = "203.0.113.7:40501".parse().unwrap();
        i.server = "198.51.100.1:4500".parse().unwrap();
        i.on_nat_t = true;
    }
    let m5 = i.message_5(true);
    let m6 = exchange_with(r, now, &i, &m5);
    assert_eq!(m6.from_nat_t_port, nat);
    i.read_message_6(&m6.bytes);
    let up = std::iter::from_fn(|| r.poll_event()).find_map(|e| match e {
        IkeEvent::IkeSaUp {
            identity,
            suite,
            nat,
            ..
        } => Some((identity, suite, nat)),
        _ => None,
    });
    let (identity, suite, nat_text) = up.expect("IkeSaUp");
    assert_eq!(identity, i.private_address.ip().to_string());
    assert_eq!(suite, "AES-CBC-256/SHA1/ECP-384/PSK");
    assert_eq!(nat_text.contains("client behind NAT"), nat);

    let mode = if nat { 4 } else { 2 };
    let mid = 0x0102_0304;
    let our_spi = 0xc0de_0001;
    let (q1, ni) = i.quick_mode_1(
        mid,
        &windows_quick_mode_sa(our_spi, mode, None),
        nat.then_some(payload::NAT_OA),
    );
    let q2 = exchange_with(r, now, &i, &q1);
    let (q3, server_spi, nr, echoed_mode) = i.quick_mode_3(mid, &ni, &q2.bytes);
    assert_eq!(
        echoed_mode, mode,
        "the responder mirrors the encapsulation mode"
    );
    r.handle_datagram(now, i.server, i.addr, i.on_nat_t, &q3);
    assert!(r.poll_transmit().is_none(), "message 3 gets no answer");
    let child = std::iter::from_fn(|| r.poll_event())
        .find_map(|e| match e {
            IkeEvent::ChildSaUp(c) => Some(c),
            _ => None,
        })
        .expect("ChildSaUp");
    assert_eq!(child.inbound.spi, server_spi);
    assert_eq!(child.outbound.spi, our_spi);
    assert_eq!(child.peer_port, 1701);
    assert_eq!(child.suite, "aes256-cbc/hmac-sha1-96");
    if nat {
        assert_eq!(child.peer_original_address, Some(i.private_address.ip()));
    }
    // The initiator derives the same keys (RFC 2409 §5.5) in its roles.
    let keys = i.keys.as_ref().unwrap();
    let keymat = |spi: u32| {
        ikev1_keys::quick_mode_keymat(
            keys.hash,
            &keys.skeyid_d,
            None,
            protocol::ESP,
            spi,
            &ni,
            &nr,
            32 + 20,
        )
    };
    let mine_out = keymat(server_spi);
    assert_eq!(&mine_out[..32], &child.inbound.cipher_key[..]);
    assert_eq!(&mine_out[32..], &child.inbound.integrity_key[..]);
    let mine_in = keymat(our_spi);
    let initiator_sa = |spi: u32, material: &[u8], window: u32| {
        EspSa::new(
            &EspSaConfig {
                spi,
                suite: child.inbound.suite,
                cipher_key: Zeroizing::new(material[..32].to_vec()),
                integrity_key: Zeroizing::new(material[32..].to_vec()),
                lifetime: LifetimeLimits::default(),
                replay_window: window,
            },
            now,
        )
        .unwrap()
    };
    let initiator_inbound = initiator_sa(our_spi, &mine_in, 64);
    let initiator_outbound = initiator_sa(server_spi, &mine_out, 0);
    let inbound = EspSa::new(&child.inbound, now).unwrap();
    let outbound = EspSa::new(&child.outbound, now).unwrap();
    Connected {
        initiator: i,
        inbound,
        outbound,
        initiator_inbound,
        initiator_outbound,
        udp: child.udp_encapsulated,
    }
}

#[test]
fn windows_default_proposals_are_answered_and_esp_keys_agree() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let mut c = connect(&mut r, now, false);
    assert!(!c.udp);
    // ESP sealed with one side's outbound keys opens with the other side's
    // inbound keys, both ways.
    let mut packet = Vec::new();
    c.outbound
        .encapsulate(now, 17, b"l2tp to the client", &mut packet)
        .unwrap();
    let d = c.initiator_inbound.decapsulate(now, &mut packet).unwrap();
    assert_eq!(&packet[d.payload], b"l2tp to the client");
    let mut packet = Vec::new();
    c.initiator_outbound
        .encapsulate(now, 17, b"l2tp to the server", &mut packet)
        .unwrap();
    let d = c.inbound.decapsulate(now, &mut packet).unwrap();
    assert_eq!(&packet[d.payload], b"l2tp to the server");
    assert_eq!(r.child_sa_count(), 1);
    assert_eq!(r.ike_sa_count(), 1);
}

#[test]
fn a_client_behind_nat_floats_to_4500_with_udp_encapsulation() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let c = connect(&mut r, now, true);
    assert!(c.udp);
}

#[test]
fn two_clients_behind_one_nat_get_separate_sas() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let a = connect(&mut r, now, true);
    // Same public address, another NAT port: another client.
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let mut i = Initiator::new("203.0.113.7:40600".parse().unwrap(), server);
    i.private_address = "192.168.1.21:500".parse().unwrap();
    let m1 = i.message_1(
        main_mode_sa(&windows_main_mode(), 1),
        &[&vendor_ids::NAT_T_RFC3947],
    );
    let m2 = exchange_with(&mut r, now, &i, &m1);
    i.read_message_2(&m2.bytes);
    let m3 = i.message_3(Some(payload::NAT_D));
    let m4 = exchange_with(&mut r, now, &i, &m3);
    i.read_message_4(&m4.bytes, PSK);
    i.addr = "203.0.113.7:40601".parse().unwrap();
    i.on_nat_t = true;
    let m5 = i.message_5(true);
    let m6 = exchange_with(&mut r, now, &i, &m5);
    i.read_message_6(&m6.bytes);
    assert_eq!(
        r.ike_sa_count(),
        2,
        "INITIAL-CONTACT of one client leaves the other alone"
    );
    assert!(std::iter::from_fn(|| r.poll_event())
        .all(|e| !matches!(e, IkeEvent::IkeSaDown { .. } | IkeEvent::ChildSaDown { .. })));
    assert_eq!(r.child_sa_count(), 1);
    drop(a);
}

#[test]
fn a_wrong_psk_fails_authentication_and_leaves_no_state() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let mut i = Initiator::new("192.0.2.44:500".parse().unwrap(), server);
    let m1 = i.message_1(main_mode_sa(&windows_main_mode(), 1), &[]);
    let m2 = exchange_with(&mut r, now, &i, &m1);
    i.read_message_2(&m2.bytes);
    let m3 = i.message_3(None);
    let m4 = exchange_with(&mut r, now, &i, &m3);
    i.read_message_4(&m4.bytes, b"not the key");
    let m5 = i.message_5(false);
    r.handle_datagram(now, i.server, i.addr, false, &m5);
    assert!(r.poll_transmit().is_none());
    let refused = std::iter::from_fn(|| r.poll_event()).find_map(|e| match e {
        IkeEvent::Refused { reason, .. } => Some(reason),
        _ => None,
    });
    assert!(refused.unwrap().contains("pre-shared keys differ"));
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn weak_proposals_removed_by_policy_are_refused_with_the_offer_logged() {
    let now = Instant::now();
    let mut r = responder(|c| {
        c.proposals.ike_groups.retain(|g| *g != DhGroup::Modp1024);
        c.proposals
            .ike_ciphers
            .retain(|c| *c != IkeCipher::TripleDesCbc);
    });
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let mut i = Initiator::new("192.0.2.45:500".parse().unwrap(), server);
    let m1 = i.message_1(
        main_mode_sa(&[(5, 2, None, 2), (7, 1, Some(128), 2)], 1),
        &[],
    );
    let answer = exchange_with(&mut r, now, &i, &m1);
    let h = Header::parse(&answer.bytes).unwrap();
    assert_eq!(h.exchange, exchange::INFORMATIONAL);
    let ps = wire::payloads(h.next_payload, &answer.bytes[HEADER_LEN..]).unwrap();
    assert_eq!(
        Notification::parse(ps[0].body).unwrap().kind,
        notify::NO_PROPOSAL_CHOSEN
    );
    let reason = std::iter::from_fn(|| r.poll_event())
        .find_map(|e| match e {
            IkeEvent::Refused { reason, .. } => Some(reason),
            _ => None,
        })
        .unwrap();
    assert!(reason.contains("3DES-CBC/SHA1/MODP-1024/PSK"), "{reason}");
    assert!(reason.contains("AES-CBC-128/MD5/MODP-1024/PSK"), "{reason}");
    // A policy that keeps them answers the same offer.
    let mut r = responder(|_| {});
    let answer = exchange_with(&mut r, now, &i, &m1);
    assert_eq!(
        Header::parse(&answer.bytes).unwrap().exchange,
        exchange::MAIN_MODE
    );
}

#[test]
fn retransmitted_requests_get_the_same_answer() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let mut i = Initiator::new("192.0.2.46:500".parse().unwrap(), server);
    let m1 = i.message_1(main_mode_sa(&windows_main_mode(), 1), &[]);
    let a = exchange_with(&mut r, now, &i, &m1);
    let b = exchange_with(&mut r, now, &i, &m1);
    assert_eq!(a.bytes, b.bytes);
    assert_eq!(r.ike_sa_count(), 1);
    i.read_message_2(&a.bytes);
    let m3 = i.message_3(None);
    let a = exchange_with(&mut r, now, &i, &m3);
    let b = exchange_with(&mut r, now, &i, &m3);
    assert_eq!(a.bytes, b.bytes);
}

#[test]
fn delete_and_dpd_end_sas_with_a_reason() {
    let t0 = Instant::now();
    let mut r = responder(|c| {
        c.dpd_delay = Duration::from_secs(10);
        c.dpd_timeout = Duration::from_secs(30);
    });
    let c = connect(&mut r, t0, true);
    let i = &c.initiator;
    // The peer deletes its ESP SA (naming its inbound SPI, our outbound).
    let d = Delete {
        protocol: protocol::ESP,
        spi_len: 4,
        spis: vec![c.outbound.spi().to_be_bytes().to_vec()],
    };
    let msg = i.informational(77, payload::DELETE, &d.encode());
    r.handle_datagram(t0, i.server, i.addr, true, &msg);
    let down = std::iter::from_fn(|| r.poll_event()).find_map(|e| match e {
        IkeEvent::ChildSaDown {
            inbound_spi,
            reason,
            ..
        } => Some((inbound_spi, reason)),
        _ => None,
    });
    assert_eq!(down, Some((c.inbound.spi(), DownReason::DeletedByPeer)));
    assert_eq!(r.child_sa_count(), 0);

    // R-U-THERE from the peer is acknowledged with its sequence number.
    let n = Notification {
        protocol: protocol::ISAKMP,
        spi: [i.cookie_i, i.cookie_r].concat(),
        kind: notify::R_U_THERE,
        data: 9u32.to_be_bytes().to_vec(),
    };
    r.handle_datagram(
        t0,
        i.server,
        i.addr,
        true,
        &i.informational(78, payload::NOTIFICATION, &n.encode()),
    );
    let ack = r.poll_transmit().unwrap();
    let ps = i.read_informational(&ack.bytes);
    let n = Notification::parse(&ps[0].1).unwrap();
    assert_eq!(
        (n.kind, n.data),
        (notify::R_U_THERE_ACK, 9u32.to_be_bytes().to_vec())
    );

    // Silence: probes after the delay, then the peer is declared dead.
    let t1 = t0 + Duration::from_secs(11);
    r.handle_timeout(t1);
    let probe = r.poll_transmit().expect("R-U-THERE");
    let ps = i.read_informational(&probe.bytes);
    assert_eq!(
        Notification::parse(&ps[0].1).unwrap().kind,
        notify::R_U_THERE
    );
    r.handle_timeout(t1 + Duration::from_secs(31));
    let gone = std::iter::from_fn(|| r.poll_event()).find_map(|e| match e {
        IkeEvent::IkeSaDown { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(gone, Some(DownReason::DeadPeer));
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn a_flood_of_half_open_main_modes_is_capped_per_source() {
    let now = Instant::now();
    let mut r = responder(|c| c.half_open_per_source = 4);
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    for port in 0..10u16 {
        let mut i = Initiator::new(
            SocketAddr::new("192.0.2.99".parse().unwrap(), 1000 + port),
            server,
        );
        let m1 = i.message_1(main_mode_sa(&windows_main_mode(), 1), &[]);
        r.handle_datagram(now, server, i.addr, false, &m1);
    }
    assert_eq!(r.ike_sa_count(), 4);
    assert_eq!(r.stats().half_open_refused, 6);
    assert_eq!(
        std::iter::from_fn(|| r.poll_transmit()).count(),
        4,
        "only the admitted are answered"
    );
    // Another source is still served; the flood expires.
    let mut i = Initiator::new("192.0.2.100:500".parse().unwrap(), server);
    let m1 = i.message_1(main_mode_sa(&windows_main_mode(), 1), &[]);
    exchange_with(&mut r, now, &i, &m1);
    r.handle_timeout(now + Duration::from_secs(31));
    assert_eq!(r.ike_sa_count(), 0);
}

#[test]
fn garbage_and_aggressive_mode_are_dropped() {
    let now = Instant::now();
    let mut r = responder(|_| {});
    let server: SocketAddr = "198.51.100.1:500".parse().unwrap();
    let peer: SocketAddr = "192.0.2.7:500".parse().unwrap();
    r.handle_datagram(now, server, peer, false, &[0u8; 10]);
    let i = Initiator::new(peer, server);
    let mut chain = PayloadChain::new();
    chain.push(payload::SA, &main_mode_sa(&windows_main_mode(), 1));
    let aggressive = wire::message(&i.header(exchange::AGGRESSIVE, 0), &chain);
    r.handle_datagram(now, server, peer, false, &aggressive);
    assert!(r.poll_transmit().is_none());
    assert_eq!(r.ike_sa_count(), 0);
    assert_eq!(r.stats().malformed, 1);
    assert_eq!(r.stats().refused, 1);
}

/// A server behind a port-forwarding NAT: the client hashes the public
/// address, the server sees its private one. With `hide_server_nat` the
/// server's own NAT-D payload equals the client's hash for it, so the client
/// (Windows) sees no NAT on the server's side; without it, it does.
#[test]
fn hide_server_nat_answers_nat_detection_with_the_clients_view() {
    let now = Instant::now();
    for hide in [false, true] {
        let mut r = responder(|c| c.hide_server_nat = hide);
        let public_server: SocketAddr = "203.0.113.1:500".parse().unwrap();
        let private_server: SocketAddr = "10.0.0.1:500".parse().unwrap();
        let mut i = Initiator::new("192.0.2.60:500".parse().unwrap(), public_server);
        let m1 = i.message_1(
            main_mode_sa(&windows_main_mode(), 1),
            &[&vendor_ids::NAT_T_RFC3947],
        );
        r.handle_datagram(now, private_server, i.addr, false, &m1);
        let m2 = r.poll_transmit().unwrap();
        i.read_message_2(&m2.bytes);
        let m3 = i.message_3(Some(payload::NAT_D));
        r.handle_datagram(now, private_server, i.addr, false, &m3);
        let m4 = r.poll_transmit().unwrap();
        let nat_ds = i.read_message_4(&m4.bytes, PSK);
        let (_, hash, _) = i.chosen.unwrap();
        let clients_view = nat_d(hash, &i.cookie_i, &i.cookie_r, public_server);
        assert_eq!(
            nat_ds[1] == clients_view,
            hide,
            "hide_server_nat = {hide}: the server's NAT-D matches the client's view"
        );
    }
}
