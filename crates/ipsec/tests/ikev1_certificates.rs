//! Main Mode with certificates (RFC 2409 §5.1, RFC 4754) and IKEv1
//! fragmentation, our initiator against our responder in memory, with
//! certificates rcgen makes: RSA and ECDSA, an intermediate CA, a client
//! from another CA, a wrong identity, and messages cut into small fragments.

use std::net::SocketAddr;
use std::time::Instant;

use ipsec::ike_crypto::signature::{KeyKind, PrivateKey, PublicKey};
use ipsec::ikev1::certificates::{
    CertificateAuth, LocalCertificate, PeerCertificateError, TrustAnchors,
};
use ipsec::ikev1::payloads::{id_type, Identification};
use ipsec::ikev1::wire::{payload, Header};
use ipsec::ikev1::{IkeEvent, Initiator, InitiatorConfig, PskTable, Responder, ResponderConfig};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType, SignatureAlgorithm,
};

const SERVER: &str = "198.51.100.1";
const CLIENT: &str = "192.0.2.10";

/// A CA (or intermediate) that issues certificates.
struct Ca {
    pem: String,
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
    alg: &'static SignatureAlgorithm,
}

fn key(alg: &'static SignatureAlgorithm) -> KeyPair {
    if alg == &rcgen::PKCS_RSA_SHA256 {
        KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_2048).unwrap()
    } else {
        KeyPair::generate_for(alg).unwrap()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

impl Ca {
    fn root(cn: &str, alg: &'static SignatureAlgorithm) -> Ca {
        let k = key(alg);
        let params = ca_params(cn);
        let cert = params.self_signed(&k).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, k),
            alg,
        }
    }

    fn intermediate(&self, cn: &str) -> Ca {
        let k = key(self.alg);
        let params = ca_params(cn);
        let cert = params.signed_by(&k, &self.issuer).unwrap();
        Ca {
            pem: cert.pem(),
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, k),
            alg: self.alg,
        }
    }

    /// An end-entity certificate (DER) and its key (PKCS#8 DER).
    fn leaf(&self, cn: &str, sans: &[SanType]) -> (Vec<u8>, Vec<u8>) {
        let k = key(self.alg);
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.subject_alt_names = sans.to_vec();
        let c = p.signed_by(&k, &self.issuer).unwrap();
        (c.der().to_vec(), k.serialize_der())
    }

    fn trust(&self) -> TrustAnchors {
        TrustAnchors::from_pem(self.pem.as_bytes()).unwrap()
    }
}

fn credentials(chain: Vec<Vec<u8>>, key: &[u8], trust: TrustAnchors) -> CertificateAuth {
    let local = LocalCertificate::new(chain, PrivateKey::from_der(key).unwrap()).unwrap();
    CertificateAuth::new(local, trust)
}

/// Our initiator and responder, and the datagrams between them.
struct Lab {
    now: Instant,
    i: Initiator,
    r: Responder,
    i_events: Vec<IkeEvent>,
    r_events: Vec<IkeEvent>,
    /// Fragment messages seen: client to server, server to client.
    fragments: (usize, usize),
}

impl Lab {
    fn new(client: CertificateAuth, server: Option<CertificateAuth>, fragment_size: usize) -> Lab {
        let now = Instant::now();
        let mut ic = InitiatorConfig::with_certificates(client);
        ic.fragment_size = fragment_size;
        let rc = ResponderConfig {
            psks: PskTable::new().with_wildcard(b"a key the client does not use"),
            certificates: server,
            fragment_size,
            ..Default::default()
        };
        let local = SocketAddr::new(CLIENT.parse().unwrap(), 500);
        let server = SocketAddr::new(SERVER.parse().unwrap(), 500);
        Lab {
            now,
            i: Initiator::new(ic, local, server, now),
            r: Responder::new(rc),
            i_events: Vec::new(),
            r_events: Vec::new(),
            fragments: (0, 0),
        }
    }

    fn pump(&mut self) {
        let is_fragment =
            |b: &[u8]| Header::parse(b).is_ok_and(|h| h.next_payload == payload::FRAGMENT);
        for _ in 0..200 {
            let mut moved = false;
            while let Some(t) = self.i.poll_transmit() {
                moved = true;
                self.fragments.0 += usize::from(is_fragment(&t.bytes));
                let src = SocketAddr::new(CLIENT.parse().unwrap(), t.remote.port());
                self.r
                    .handle_datagram(self.now, t.remote, src, t.from_nat_t_port, &t.bytes);
            }
            while let Some(t) = self.r.poll_transmit() {
                moved = true;
                self.fragments.1 += usize::from(is_fragment(&t.bytes));
                self.i
                    .handle_datagram(self.now, t.from_nat_t_port, &t.bytes);
            }
            self.i_events
                .extend(std::iter::from_fn(|| self.i.poll_event()));
            self.r_events
                .extend(std::iter::from_fn(|| self.r.poll_event()));
            if !moved {
                return;
            }
        }
        panic!("the exchange never settled");
    }
}

fn ike_up(events: &[IkeEvent]) -> Option<(String, String)> {
    events.iter().find_map(|e| match e {
        IkeEvent::IkeSaUp {
            identity, suite, ..
        } => Some((identity.clone(), suite.clone())),
        _ => None,
    })
}

fn child_up(events: &[IkeEvent]) -> bool {
    events.iter().any(|e| matches!(e, IkeEvent::ChildSaUp(_)))
}

fn refusals(events: &[IkeEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::Refused { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Client and server certificates from one CA, both roles signing with
/// `alg`; the whole exchange up to ESP.
fn both_ways(alg: &'static SignatureAlgorithm, method: &str) {
    let ca = Ca::root("ras test CA", alg);
    let (c_cert, c_key) = ca.leaf("ras test client", &[]);
    let (s_cert, s_key) = ca.leaf("ras test server", &[]);
    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, ca.trust()),
        Some(credentials(vec![s_cert], &s_key, ca.trust())),
        1248,
    );
    lab.pump();
    let (server_id, suite) = ike_up(&lab.i_events).unwrap_or_else(|| {
        panic!(
            "client up: {:?} {:?}",
            refusals(&lab.i_events),
            refusals(&lab.r_events)
        )
    });
    assert_eq!(server_id, "CN=ras test server");
    assert!(suite.ends_with(method), "{suite}");
    let (client_id, _) = ike_up(&lab.r_events).expect("server up");
    assert_eq!(client_id, "CN=ras test client");
    assert!(child_up(&lab.i_events) && child_up(&lab.r_events));
}

#[test]
fn rsa_signatures_both_ways() {
    both_ways(&rcgen::PKCS_RSA_SHA256, "/RSA");
}

#[test]
fn ecdsa_p256_signatures_both_ways() {
    both_ways(&rcgen::PKCS_ECDSA_P256_SHA256, "/ECDSA-256");
}

#[test]
fn ecdsa_p384_signatures_both_ways() {
    both_ways(&rcgen::PKCS_ECDSA_P384_SHA384, "/ECDSA-384");
}

/// The client sends its certificate and the intermediate that issued it
/// (two CERT payloads, end entity first); the server trusts only the root.
#[test]
fn a_chain_through_an_intermediate_ca_is_verified() {
    let root = Ca::root("ras root", &rcgen::PKCS_ECDSA_P256_SHA256);
    let sub = root.intermediate("ras issuing CA");
    let (c_cert, c_key) = sub.leaf("chained client", &[]);
    let (s_cert, s_key) = root.leaf("ras test server", &[]);
    let mut lab = Lab::new(
        credentials(vec![c_cert.clone(), sub.der.clone()], &c_key, root.trust()),
        Some(credentials(vec![s_cert.clone()], &s_key, root.trust())),
        1248,
    );
    lab.pump();
    let (client_id, _) =
        ike_up(&lab.r_events).unwrap_or_else(|| panic!("server up: {:?}", refusals(&lab.r_events)));
    assert_eq!(client_id, "CN=chained client");

    // Without the intermediate the chain ends nowhere we trust.
    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, root.trust()),
        Some(credentials(vec![s_cert], &s_key, root.trust())),
        1248,
    );
    lab.pump();
    assert!(ike_up(&lab.r_events).is_none());
    let r = refusals(&lab.r_events);
    assert!(
        r.iter()
            .any(|l| l.contains("no trusted CA issued \"CN=chained client\"")),
        "{r:?}"
    );
}

/// A client whose certificate another CA issued is refused with one log
/// line, and told so (INVALID-CERT-AUTHORITY, RFC 2408 §3.14.1).
#[test]
fn a_client_of_another_ca_is_refused() {
    let ours = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let theirs = Ca::root("someone else's CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (c_cert, c_key) = theirs.leaf("stranger", &[]);
    let (s_cert, s_key) = ours.leaf("ras test server", &[]);
    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, ours.trust()),
        Some(credentials(vec![s_cert], &s_key, ours.trust())),
        1248,
    );
    lab.pump();
    assert!(ike_up(&lab.r_events).is_none() && ike_up(&lab.i_events).is_none());
    let r = refusals(&lab.r_events);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains("certificate authentication of 192.0.2.10:500 (DN \"CN=stranger\") failed: no trusted CA issued \"CN=stranger\""),
        "{}",
        r[0]
    );
    let i = refusals(&lab.i_events);
    assert!(
        i.iter().any(|l| l.contains("INVALID-CERT-AUTHORITY")),
        "the client was told: {i:?}"
    );
}

/// The server must not accept a certificate a client of another CA shows
/// when the server has no certificate of its own: no signature proposal
/// is acceptable, and the refusal names what was offered.
#[test]
fn without_a_server_certificate_signatures_are_not_accepted() {
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (c_cert, c_key) = ca.leaf("ras test client", &[]);
    let mut lab = Lab::new(credentials(vec![c_cert], &c_key, ca.trust()), None, 1248);
    lab.pump();
    let r = refusals(&lab.r_events);
    assert!(
        r.iter()
            .any(|l| l.contains("no acceptable Main Mode proposal") && l.contains("ECDSA-256")),
        "{r:?}"
    );
}

/// Fragments of 300 bytes: messages 5 and 6 (certificates, signatures)
/// travel in pieces both ways and are put together again.
#[test]
fn messages_5_and_6_travel_in_small_fragments() {
    let ca = Ca::root("ras test CA", &rcgen::PKCS_RSA_SHA256);
    let (c_cert, c_key) = ca.leaf("ras test client", &[]);
    let (s_cert, s_key) = ca.leaf("ras test server", &[]);
    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, ca.trust()),
        Some(credentials(vec![s_cert], &s_key, ca.trust())),
        300,
    );
    lab.pump();
    assert!(ike_up(&lab.i_events).is_some() && ike_up(&lab.r_events).is_some());
    assert!(child_up(&lab.i_events));
    let (to_server, to_client) = lab.fragments;
    assert!(
        to_server >= 4 && to_client >= 4,
        "fragments: {to_server} to the server, {to_client} to the client"
    );
}

/// RFC 4945 §3.1: the ID payload must name the certificate: its subject DN,
/// or a subjectAltName of the ID's type.
#[test]
fn the_identity_must_be_named_by_the_certificate() {
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (cert, _) = ca.leaf(
        "vpn client",
        &[
            SanType::DnsName("client.example.com".try_into().unwrap()),
            SanType::IpAddress("192.0.2.10".parse().unwrap()),
        ],
    );
    let trust = ca.trust();
    let now = 1_800_000_000; // 2027, within rcgen's default dates
    let id = |t: u8, data: &[u8]| Identification {
        id_type: t,
        protocol: 17,
        port: 500,
        data: data.to_vec(),
    };
    let check = |i: &Identification| trust.verify_peer(&[&cert], i, now);
    assert!(check(&id(id_type::FQDN, b"client.example.com")).is_ok());
    assert!(check(&id(id_type::FQDN, b"CLIENT.example.com")).is_ok());
    assert!(check(&id(id_type::IPV4_ADDR, &[192, 0, 2, 10])).is_ok());
    assert!(matches!(
        check(&id(id_type::FQDN, b"other.example.com")),
        Err(PeerCertificateError::IdMismatch(..))
    ));
    assert!(matches!(
        check(&id(id_type::IPV4_ADDR, &[192, 0, 2, 11])),
        Err(PeerCertificateError::IdMismatch(..))
    ));
    // The DN of another certificate.
    let (other, _) = ca.leaf("someone else", &[]);
    let other_dn = {
        use x509_parser::prelude::*;
        let (_, c) = X509Certificate::from_der(&other).unwrap();
        c.subject().as_raw().to_vec()
    };
    let e = check(&id(id_type::DER_ASN1_DN, &other_dn)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "its identity DN \"CN=someone else\" is not named by its certificate \"CN=vpn client\""
    );
    // Outside the validity dates (rcgen's default ends in 4096; 1970 is before).
    assert!(matches!(
        trust.verify_peer(&[&cert], &id(id_type::FQDN, b"client.example.com"), 0),
        Err(PeerCertificateError::Expired(_))
    ));
}

/// A key that is not the certificate's is refused when it is loaded, not
/// when a peer fails to verify a signature.
#[test]
fn a_key_that_is_not_the_certificates_is_refused_at_loading() {
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (cert, _) = ca.leaf("client", &[]);
    let (_, other_key) = ca.leaf("client", &[]);
    let e = LocalCertificate::new(vec![cert], PrivateKey::from_der(&other_key).unwrap())
        .err()
        .expect("refused");
    assert_eq!(
        e.to_string(),
        "the private key does not belong to the first certificate"
    );
}

/// RFC 4754 §8.1: the ECDSA-256 test vector (w, gw, the signature of
/// "abc") verifies as our r||s signature of SHA-256("abc").
#[test]
fn rfc4754_ecdsa_256_vector_verifies() {
    let x = hex("2442A5CC0ECD015FA3CA31DC8E2BBC70BF42D60CBCA20085E0822CB04235E970");
    let y = hex("6FC98BD7E50211A4A27102FA3549DF79EBCB4BF246B80945CDDFE7D509BBFD7D");
    let r = hex("CB28E0999B9C7715FD0A80D8E47A77079716CBBF917DD72E97566EA1C066957C");
    let s = hex("86FA3BB4E26CAD5BF90B7F81899256CE7594BB1EA0C89212748BFF3B3D5B0315");
    // SubjectPublicKeyInfo of id-ecPublicKey / prime256v1.
    let mut spki = hex("3059301306072A8648CE3D020106082A8648CE3D030107034200");
    spki.push(0x04);
    spki.extend_from_slice(&x);
    spki.extend_from_slice(&y);
    let key = PublicKey::from_spki_der(&spki).unwrap();
    assert_eq!(key.kind(), KeyKind::EcdsaP256);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b"abc");
    let sig = [r.clone(), s.clone()].concat();
    key.verify_hash(digest.as_ref(), &sig)
        .expect("the RFC's signature");
    let mut bad = sig.clone();
    bad[5] ^= 1;
    assert!(key.verify_hash(digest.as_ref(), &bad).is_err());
    assert!(key.verify_hash(&digest.as_ref()[1..], &sig).is_err());
}

/// RFC 4754 §8.3: the ECDSA-521 test vector (gw, the signature of "abc"
/// with SHA-512) verifies as our r||s signature (66 octets each).
#[test]
fn rfc4754_ecdsa_521_vector_verifies() {
    let x = hex("0151518F1AF0F563517EDD5485190DF95A4BF57B5CBA4CF2A9A3F6474725A35F7AFE0A6DDEB8BEDBCD6A197E592D40188901CECD650699C9B5E456AEA5ADD19052A8");
    let y = hex("006F3B142EA1BFFF7E2837AD44C9E4FF6D2D34C73184BBAD90026DD5E6E85317D9DF45CAD7803C6C20035B2F3FF63AFF4E1BA64D1C077577DA3F4286C58F0AEAE643");
    let r = hex("0154FD3836AF92D0DCA57DD5341D3053988534FDE8318FC6AAAAB68E2E6F4339B19F2F281A7E0B22C269D93CF8794A9278880ED7DBB8D9362CAEACEE544320552251");
    let s = hex("017705A7030290D1CEB605A9A1BB03FF9CDD521E87A696EC926C8C10C8362DF4975367101F67D1CF9BCCBF2F3D239534FA509E70AAC851AE01AAC68D62F866472660");
    // SubjectPublicKeyInfo of id-ecPublicKey / secp521r1 (RFC 5480).
    let mut spki = hex("30819B301006072A8648CE3D020106052B8104002303818600");
    spki.push(0x04);
    spki.extend_from_slice(&x);
    spki.extend_from_slice(&y);
    let key = PublicKey::from_spki_der(&spki).unwrap();
    assert_eq!(key.kind(), KeyKind::EcdsaP521);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA512, b"abc");
    let sig = [r, s].concat();
    key.verify_hash(digest.as_ref(), &sig)
        .expect("the RFC's signature");
    let mut bad = sig.clone();
    bad[70] ^= 1;
    assert!(key.verify_hash(digest.as_ref(), &bad).is_err());
    assert!(key.verify_hash(digest.as_ref(), &sig[..131]).is_err());
}

#[test]
fn rsa_and_ecdsa_sign_and_verify_prf_outputs() {
    for alg in [
        &rcgen::PKCS_RSA_SHA256,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &rcgen::PKCS_ECDSA_P521_SHA512,
    ] {
        let ca = Ca::root("CA", alg);
        let (cert, key) = ca.leaf("signer", &[]);
        let key = PrivateKey::from_der(&key).unwrap();
        let public = {
            use x509_parser::prelude::*;
            let (_, c) = X509Certificate::from_der(&cert).unwrap();
            PublicKey::from_spki(c.public_key()).unwrap()
        };
        // A SHA-1 HMAC (20 bytes) and a SHA-512 one (64 bytes).
        for hash in [[7u8; 20].to_vec(), [9u8; 64].to_vec()] {
            let sig = key.sign_hash(&hash).unwrap();
            public.verify_hash(&hash, &sig).unwrap();
            let mut other = hash.clone();
            other[0] ^= 0x80;
            assert!(
                public.verify_hash(&other, &sig).is_err(),
                "{:?}",
                key.kind()
            );
        }
        if key.kind() == KeyKind::Rsa {
            // RFC 2409 §5.1: as long as the modulus, no DigestInfo.
            assert_eq!(key.sign_hash(&[1; 20]).unwrap().len(), 256);
        } else {
            let len = match key.kind() {
                KeyKind::EcdsaP256 => 64,
                KeyKind::EcdsaP384 => 96,
                _ => 132,
            };
            assert_eq!(key.sign_hash(&[1; 20]).unwrap().len(), len, "r||s");
        }
    }
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// RFC 4945 §5.1.3.2 / §5.1.3.12: a certificate whose key may not sign, or
/// whose extended key usage is for something else, is refused; one for
/// client authentication (what Windows client certificates carry) is not.
#[test]
fn a_certificate_for_something_else_than_ike_is_refused() {
    use rcgen::{ExtendedKeyUsagePurpose as Eku, KeyUsagePurpose as Ku};
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let trust = ca.trust();
    let leaf = |ku: Vec<Ku>, eku: Vec<Eku>| {
        let k = key(ca.alg);
        let mut p = CertificateParams::new(vec!["client.example.com".to_string()]).unwrap();
        p.distinguished_name.push(DnType::CommonName, "vpn client");
        p.key_usages = ku;
        p.extended_key_usages = eku;
        p.signed_by(&k, &ca.issuer).unwrap().der().to_vec()
    };
    let id = Identification {
        id_type: id_type::FQDN,
        protocol: 17,
        port: 500,
        data: b"client.example.com".to_vec(),
    };
    let now = 1_800_000_000;
    let check = |der: &[u8]| trust.verify_peer(&[der], &id, now);
    assert!(check(&leaf(vec![], vec![])).is_ok(), "no usage extensions");
    assert!(check(&leaf(vec![Ku::DigitalSignature], vec![Eku::ClientAuth])).is_ok());
    assert!(check(&leaf(vec![Ku::DigitalSignature], vec![Eku::ServerAuth])).is_ok());
    assert!(check(&leaf(
        vec![Ku::DigitalSignature],
        vec![Eku::Other(vec![1, 3, 6, 1, 5, 5, 7, 3, 17])]
    ))
    .is_ok());
    let e = check(&leaf(vec![Ku::KeyEncipherment], vec![])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "its certificate \"CN=vpn client\" is not for IKE: its key usage does not allow signatures"
    );
    assert_eq!(
        e.notify_type(),
        ipsec::ikev1::payloads::notify::INVALID_CERTIFICATE
    );
    let e = check(&leaf(vec![Ku::DigitalSignature], vec![Eku::CodeSigning])).unwrap_err();
    assert!(matches!(e, PeerCertificateError::WrongUsage(..)), "{e}");
}

/// Revocation (issue 13): an L2TP/IPsec client whose certificate its CA's
/// CRL lists is refused in Main Mode with one log line naming the serial,
/// and told INVALID-CERTIFICATE as for any bad certificate; without the
/// CRL the same client comes up.
#[test]
fn a_revoked_client_certificate_is_refused_in_main_mode() {
    use ipsec::ikev1::revocation::{CrlPolicy, CrlSet, Revocation};
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (c_cert, c_key) = ca.leaf("lost laptop", &[]);
    let (s_cert, s_key) = ca.leaf("ras test server", &[]);
    let (_, leaf) = x509_parser::parse_x509_certificate(&c_cert).unwrap();
    let serial = leaf.raw_serial_as_string();
    // rcgen adds the sign byte back.
    let raw: Vec<u8> = leaf
        .raw_serial()
        .iter()
        .copied()
        .skip_while(|&b| b == 0)
        .collect();
    let crl = rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2020, 1, 1),
        next_update: rcgen::date_time_ymd(2090, 1, 1),
        crl_number: rcgen::SerialNumber::from(7u64),
        issuing_distribution_point: None,
        revoked_certs: vec![rcgen::RevokedCertParams {
            serial_number: rcgen::SerialNumber::from(raw),
            revocation_time: rcgen::date_time_ymd(2024, 3, 1),
            reason_code: None,
            invalidity_date: None,
        }],
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&ca.issuer)
    .unwrap();
    let mut set = CrlSet::new(CrlPolicy::IfAvailable);
    set.add(crl.pem().unwrap().as_bytes()).unwrap();
    let server_trust = ca.trust().with_revocation(Revocation::new(set));
    let mut lab = Lab::new(
        credentials(vec![c_cert.clone()], &c_key, ca.trust()),
        Some(credentials(vec![s_cert.clone()], &s_key, server_trust)),
        1248,
    );
    lab.pump();
    assert!(ike_up(&lab.r_events).is_none() && ike_up(&lab.i_events).is_none());
    let r = refusals(&lab.r_events);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0].contains(&format!(
            "(DN \"CN=lost laptop\") failed: its certificate \"CN=lost laptop\" is revoked: serial {serial} revoked on Fri, 01 Mar 2024 00:00:00 +0000"
        )),
        "{}",
        r[0]
    );
    let i = refusals(&lab.i_events);
    assert!(
        i.iter().any(|l| l.contains("INVALID-CERTIFICATE")),
        "the client was told: {i:?}"
    );

    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, ca.trust()),
        Some(credentials(vec![s_cert], &s_key, ca.trust())),
        1248,
    );
    lab.pump();
    assert!(
        ike_up(&lab.r_events).is_some(),
        "{:?}",
        refusals(&lab.r_events)
    );
}

/// A lab whose server asks about client certificates online (OCSP on,
/// `crl_policy = "strict"`, no CRL file): Main Mode finishes, and the
/// responder hands the driver the certificate to ask about.
fn online_lab() -> (Lab, u64, Vec<u8>) {
    use ipsec::ikev1::revocation::{CrlPolicy, CrlSet, OnlineChecks, Revocation};
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (c_cert, c_key) = ca.leaf("laptop", &[]);
    let (s_cert, s_key) = ca.leaf("ras test server", &[]);
    let set = CrlSet::new(CrlPolicy::Strict).with_online(OnlineChecks {
        ocsp: true,
        ocsp_responder: None,
        fetch_crls: false,
    });
    let server_trust = ca.trust().with_revocation(Revocation::new(set));
    let mut lab = Lab::new(
        credentials(vec![c_cert.clone()], &c_key, ca.trust()),
        Some(credentials(vec![s_cert], &s_key, server_trust)),
        1248,
    );
    lab.pump();
    assert!(
        ike_up(&lab.r_events).is_some() && ike_up(&lab.i_events).is_some(),
        "Main Mode finishes while the status is asked: {:?}",
        refusals(&lab.r_events)
    );
    let asked: Vec<_> = lab
        .r_events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::CertificateStatusNeeded {
                ike_sa,
                identity,
                certificate,
                ..
            } => Some((*ike_sa, identity.clone(), certificate.der.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 1, "one question per IKE SA");
    let (ike_sa, identity, der) = asked.into_iter().next().unwrap();
    assert_eq!(identity, "CN=laptop");
    assert_eq!(der, c_cert, "the end entity is asked about");
    assert!(lab.r.certificate_status_pending(ike_sa));
    // The initiator's Quick Mode is held, not answered, however often it
    // is retransmitted while the question is open.
    assert!(!child_up(&lab.i_events) && !child_up(&lab.r_events));
    retransmit(&mut lab);
    assert!(!child_up(&lab.i_events) && !child_up(&lab.r_events));
    assert!(lab.r.stats().held_for_status >= 2, "{:?}", lab.r.stats());
    (lab, ike_sa, der)
}

/// Time passes until the initiator has retransmitted its Quick Mode.
fn retransmit(lab: &mut Lab) {
    lab.now += std::time::Duration::from_secs(3);
    lab.i.handle_timeout(lab.now);
    lab.pump();
}

fn ike_down(events: &[IkeEvent]) -> Vec<ipsec::ikev1::DownReason> {
    events
        .iter()
        .filter_map(|e| match e {
            IkeEvent::IkeSaDown { reason, .. } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

/// Issue 13, IKEv1: a good status lets the held Quick Mode through on
/// the initiator's next retransmission.
#[test]
fn a_good_certificate_status_lets_quick_mode_through() {
    let (mut lab, ike_sa, _) = online_lab();
    lab.r.certificate_status(lab.now, ike_sa, Ok(()));
    assert!(!lab.r.certificate_status_pending(ike_sa));
    retransmit(&mut lab);
    assert!(child_up(&lab.i_events) && child_up(&lab.r_events));
    assert!(ike_down(&lab.r_events).is_empty());
}

/// A refused status deletes the IKE SA (the peer is told, RFC 2408
/// §4.6.3) and its Quick Mode is never answered.
#[test]
fn a_refused_certificate_status_deletes_the_ike_sa() {
    use ipsec::ikev1::DownReason;
    let (mut lab, ike_sa, _) = online_lab();
    let why = "certificate serial 10:01 revoked on Mar  1 00:00:00 2024 GMT (keyCompromise), by OCSP at http://127.0.0.1:8880/";
    lab.r.certificate_status(lab.now, ike_sa, Err(why.into()));
    lab.pump();
    assert_eq!(
        ike_down(&lab.r_events),
        vec![DownReason::CertificateRefused(why.into())]
    );
    assert_eq!(
        ike_down(&lab.r_events)[0].to_string(),
        format!("certificate refused: {why}")
    );
    assert_eq!(
        ike_down(&lab.i_events),
        vec![DownReason::DeletedByPeer],
        "the client got the Delete"
    );
    assert!(
        lab.i.is_closed()
            && refusals(&lab.i_events)
                .iter()
                .any(|r| r.contains("deleted the IKE SA before any ESP SA")),
        "the client gives up at once: {:?}",
        refusals(&lab.i_events)
    );
    assert_eq!(lab.r.ike_sa_count(), 0);
    retransmit(&mut lab);
    assert!(!child_up(&lab.i_events) && !child_up(&lab.r_events));
    assert_eq!(lab.r.child_sa_count(), 0);
    // A late answer for the SA that is gone changes nothing.
    lab.r.certificate_status(lab.now, ike_sa, Ok(()));
    assert_eq!(lab.r.ike_sa_count(), 0);
}

/// No answer by the deadline is a refusal: the core does not wait on a
/// driver forever.
#[test]
fn an_unanswered_certificate_status_times_out() {
    use ipsec::ikev1::DownReason;
    let (mut lab, ike_sa, _) = online_lab();
    let deadline = lab.r.poll_timeout().expect("a deadline");
    let limit = lab.r.config().certificate_status_timeout;
    assert!(deadline <= lab.now + limit, "the status deadline is polled");
    lab.now += limit;
    lab.r.handle_timeout(lab.now);
    lab.pump();
    assert_eq!(
        ike_down(&lab.r_events),
        vec![DownReason::CertificateRefused(
            "no certificate status within 30 s".into()
        )]
    );
    assert_eq!(ike_down(&lab.i_events), vec![DownReason::DeletedByPeer]);
    assert!(!lab.r.certificate_status_pending(ike_sa));
    lab.r.certificate_status(lab.now, ike_sa, Ok(()));
    retransmit(&mut lab);
    assert!(!child_up(&lab.i_events) && !child_up(&lab.r_events));
}

/// Without online checks nothing is asked and Quick Mode goes through at
/// once (the CRL files answered in Main Mode).
#[test]
fn without_online_checks_no_status_is_asked() {
    let ca = Ca::root("ras test CA", &rcgen::PKCS_ECDSA_P256_SHA256);
    let (c_cert, c_key) = ca.leaf("laptop", &[]);
    let (s_cert, s_key) = ca.leaf("ras test server", &[]);
    let mut lab = Lab::new(
        credentials(vec![c_cert], &c_key, ca.trust()),
        Some(credentials(vec![s_cert], &s_key, ca.trust())),
        1248,
    );
    lab.pump();
    assert!(!lab
        .r_events
        .iter()
        .any(|e| matches!(e, IkeEvent::CertificateStatusNeeded { .. })));
    assert!(child_up(&lab.i_events) && child_up(&lab.r_events));
}
