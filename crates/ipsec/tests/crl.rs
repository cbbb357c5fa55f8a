//! Certificate revocation (RFC 5280 §5, §6.3) in the peer-chain check
//! that IKEv1 and IKEv2 share: a root, an intermediate and leaves made by
//! rcgen, and CRLs rcgen signs (PEM and DER), checked at a fixed date.

use ipsec::ikev1::certificates::{PeerCertificateError, TrustAnchors};
use ipsec::ikev1::payloads::{id_type, Identification};
use ipsec::ikev1::revocation::{CrlError, CrlPolicy, CrlSet, Revocation};
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    IsCa, Issuer, KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SerialNumber,
};
use x509_parser::prelude::*;

/// 2030-01-01T00:00:00Z: the date every check is made at.
const NOW: i64 = 1_893_456_000;

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p
}

impl Ca {
    fn root(cn: &str) -> Ca {
        let k = KeyPair::generate().unwrap();
        let params = ca_params(cn);
        let cert = params.self_signed(&k).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, k),
        }
    }

    fn intermediate(&self, cn: &str, serial: u64) -> Ca {
        let k = KeyPair::generate().unwrap();
        let mut params = ca_params(cn);
        params.serial_number = Some(SerialNumber::from(serial));
        let cert = params.signed_by(&k, &self.issuer).unwrap();
        Ca {
            der: cert.der().to_vec(),
            issuer: Issuer::new(params, k),
        }
    }

    fn leaf(&self, cn: &str, serial: u64) -> Vec<u8> {
        let k = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.serial_number = Some(SerialNumber::from(serial));
        p.signed_by(&k, &self.issuer).unwrap().der().to_vec()
    }

    /// A CRL this CA signs, valid from `this` to `next` (years), listing
    /// `serials`: (its PEM, its DER).
    fn crl(&self, serials: &[u64], this: i32, next: i32) -> (String, Vec<u8>) {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(this, 1, 1),
            next_update: date_time_ymd(next, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|&s| RevokedCertParams {
                    serial_number: SerialNumber::from(s),
                    revocation_time: date_time_ymd(2029, 6, 1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        (crl.pem().unwrap(), crl.der().to_vec())
    }
}

/// The ID a leaf authenticates with: its subject DN.
fn dn_of(der: &[u8]) -> Identification {
    let (_, c) = X509Certificate::from_der(der).unwrap();
    Identification {
        id_type: id_type::DER_ASN1_DN,
        protocol: 0,
        port: 0,
        data: c.subject().as_raw().to_vec(),
    }
}

fn trust(root: &Ca, policy: CrlPolicy, crls: &[&[u8]]) -> TrustAnchors {
    let mut set = CrlSet::new(policy);
    for c in crls {
        set.add(c).unwrap();
    }
    TrustAnchors::new(vec![root.der.clone()])
        .unwrap()
        .with_revocation(Revocation::new(set))
}

fn check(t: &TrustAnchors, chain: &[&[u8]]) -> Result<(), PeerCertificateError> {
    t.verify_peer(chain, &dn_of(chain[0]), NOW).map(|_| ())
}

#[test]
fn a_revoked_leaf_is_refused_naming_its_serial_and_the_others_pass() {
    let root = Ca::root("Test Root");
    let revoked = root.leaf("lost laptop", 0x1001);
    let kept = root.leaf("desk", 0x1002);
    let (pem, _) = root.crl(&[0x1001], 2029, 2031);
    let t = trust(&root, CrlPolicy::IfAvailable, &[pem.as_bytes()]);
    let e = check(&t, &[&revoked]).unwrap_err();
    match &e {
        PeerCertificateError::Revoked { subject, revoked } => {
            assert_eq!(subject, "CN=lost laptop");
            assert_eq!(revoked.serial, "10:01");
            assert_eq!(revoked.reason, Some("keyCompromise"));
        }
        other => panic!("not refused as revoked: {other}"),
    }
    assert_eq!(
        e.to_string(),
        "its certificate \"CN=lost laptop\" is revoked: serial 10:01 revoked on \
         Fri, 01 Jun 2029 00:00:00 +0000 (keyCompromise)"
    );
    // IKEv1 answers as for any bad certificate.
    assert_eq!(
        e.notify_type(),
        ipsec::ikev1::payloads::notify::INVALID_CERTIFICATE
    );
    check(&t, &[&kept]).unwrap();
    // Without CRLs the same leaf passes: the CRL is what refused it.
    check(&trust(&root, CrlPolicy::IfAvailable, &[]), &[&revoked]).unwrap();
}

#[test]
fn a_revoked_intermediate_refuses_its_leaves() {
    let root = Ca::root("Test Root");
    let sub = root.intermediate("Test Sub CA", 0x2001);
    let leaf = sub.leaf("client", 0x3001);
    let (root_crl, _) = root.crl(&[0x2001], 2029, 2031);
    let (sub_crl, _) = sub.crl(&[], 2029, 2031);
    let ok = trust(
        &root,
        CrlPolicy::Strict,
        &[root.crl(&[], 2029, 2031).0.as_bytes(), sub_crl.as_bytes()],
    );
    check(&ok, &[&leaf, &sub.der]).unwrap();
    let t = trust(
        &root,
        CrlPolicy::IfAvailable,
        &[root_crl.as_bytes(), sub_crl.as_bytes()],
    );
    match check(&t, &[&leaf, &sub.der]).unwrap_err() {
        PeerCertificateError::Revoked { subject, revoked } => {
            assert_eq!(subject, "CN=Test Sub CA");
            assert_eq!(revoked.serial, "20:01");
        }
        other => panic!("not refused as revoked: {other}"),
    }
    // The intermediate's own CRL lists the leaf: refused too.
    let (sub_lists_leaf, _) = sub.crl(&[0x3001], 2029, 2031);
    let t = trust(&root, CrlPolicy::IfAvailable, &[sub_lists_leaf.as_bytes()]);
    match check(&t, &[&leaf, &sub.der]).unwrap_err() {
        PeerCertificateError::Revoked { subject, .. } => assert_eq!(subject, "CN=client"),
        other => panic!("not refused as revoked: {other}"),
    }
}

#[test]
fn a_crl_signed_by_another_key_is_ignored_and_under_strict_refused() {
    let root = Ca::root("Test Root");
    // Same name, other key: an impostor's CRL (or one for a re-keyed CA).
    let impostor = Ca::root("Test Root");
    let leaf = root.leaf("client", 0x4001);
    let (forged, _) = impostor.crl(&[0x4001], 2029, 2031);
    check(
        &trust(&root, CrlPolicy::IfAvailable, &[forged.as_bytes()]),
        &[&leaf],
    )
    .unwrap();
    match check(
        &trust(&root, CrlPolicy::Strict, &[forged.as_bytes()]),
        &[&leaf],
    )
    .unwrap_err()
    {
        PeerCertificateError::RevocationUnknown { subject, why } => {
            assert_eq!(subject, "CN=client");
            assert_eq!(why, "no CRL signed by its issuer");
        }
        other => panic!("not refused for want of a CRL: {other}"),
    }
    // Strict with the real, empty CRL: accepted.
    let (real, _) = root.crl(&[], 2029, 2031);
    check(
        &trust(&root, CrlPolicy::Strict, &[real.as_bytes()]),
        &[&leaf],
    )
    .unwrap();
}

static WARNINGS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn record(line: &str) {
    WARNINGS.lock().unwrap().push(line.to_owned());
}

#[test]
fn an_expired_crl_warns_once_under_if_available_and_refuses_under_strict() {
    let root = Ca::root("Expired CRL Root");
    let leaf = root.leaf("client", 0x5001);
    let revoked = root.leaf("gone", 0x5002);
    // Valid 2028 to 2029; checked in 2030.
    let (old, _) = root.crl(&[0x5002], 2028, 2029);
    let t = trust(&root, CrlPolicy::IfAvailable, &[old.as_bytes()]);
    t.revocation().set_warning_sink(record);
    check(&t, &[&leaf]).unwrap();
    check(&t, &[&leaf]).unwrap();
    let mine = |w: &Vec<String>| w.iter().filter(|l| l.contains("Expired CRL Root")).count();
    assert_eq!(mine(&WARNINGS.lock().unwrap()), 1, "rate limited to one");
    // An hour later it warns again.
    t.verify_peer(&[&leaf], &dn_of(&leaf), NOW + 3600).unwrap();
    assert_eq!(mine(&WARNINGS.lock().unwrap()), 2);
    // A serial on an expired CRL is still revoked.
    assert!(matches!(
        check(&t, &[&revoked]),
        Err(PeerCertificateError::Revoked { .. })
    ));
    let strict = trust(&root, CrlPolicy::Strict, &[old.as_bytes()]);
    match check(&strict, &[&leaf]).unwrap_err() {
        PeerCertificateError::RevocationUnknown { why, .. } => {
            assert_eq!(why, "its issuer's CRL is past its nextUpdate")
        }
        other => panic!("not refused: {other}"),
    }
    // A CRL not yet in force (thisUpdate after now) counts as none.
    let (future, _) = root.crl(&[0x5001], 2031, 2032);
    check(
        &trust(&root, CrlPolicy::IfAvailable, &[future.as_bytes()]),
        &[&leaf],
    )
    .unwrap();
}

#[test]
fn crls_load_from_der_and_pem_and_bad_files_are_named_errors() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf("client", 0x6001);
    let (pem, der) = root.crl(&[0x6001], 2029, 2031);
    for contents in [pem.as_bytes(), der.as_slice()] {
        assert!(matches!(
            check(&trust(&root, CrlPolicy::IfAvailable, &[contents]), &[&leaf]),
            Err(PeerCertificateError::Revoked { .. })
        ));
    }
    // Two CRLs in one PEM file.
    let other = Ca::root("Other Root");
    let mut both = other.crl(&[], 2029, 2031).0;
    both.push_str(&pem);
    let mut set = CrlSet::new(CrlPolicy::Strict);
    assert_eq!(set.add(both.as_bytes()), Ok(2));
    let mut set = CrlSet::new(CrlPolicy::Strict);
    assert_eq!(
        set.add(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n"),
        Err(CrlError::NoCrl)
    );
    assert!(matches!(
        set.add(&der[..der.len() - 3]),
        Err(CrlError::Unreadable { index: 0, .. })
    ));
    assert!(matches!(
        set.add(b"not a CRL at all"),
        Err(CrlError::Unreadable { .. })
    ));
    assert!(set.is_empty());
}

#[test]
fn replacing_the_crls_reaches_a_verifier_already_holding_them() {
    let root = Ca::root("Test Root");
    let leaf = root.leaf("client", 0x7001);
    let revocation = Revocation::new(CrlSet::new(CrlPolicy::IfAvailable));
    let t = TrustAnchors::new(vec![root.der.clone()])
        .unwrap()
        .with_revocation(revocation.clone());
    check(&t, &[&leaf]).unwrap();
    let mut set = CrlSet::new(CrlPolicy::IfAvailable);
    set.add(root.crl(&[0x7001], 2029, 2031).0.as_bytes())
        .unwrap();
    revocation.replace(set);
    assert!(check(&t, &[&leaf]).is_err());
    let mut set = CrlSet::new(CrlPolicy::IfAvailable);
    set.add(&root.crl(&[], 2029, 2031).1).unwrap();
    revocation.replace(set);
    check(&t, &[&leaf]).unwrap();
}

/// With online checks on (OCSP, CRL distribution points: the IKEv2
/// driver's), `verify_peer_deferring` leaves an end entity no CRL file
/// covers to the driver, with its issuer for the request, even under
/// strict; an intermediate without a CRL is still refused, a listed end
/// entity still refused at once, and `verify_peer` (IKEv1, no driver
/// step) keeps the file-only rules.
#[test]
fn online_checks_defer_only_the_uncovered_end_entity_and_only_when_asked() {
    use ipsec::ikev1::revocation::OnlineChecks;
    let root = Ca::root("Test Root");
    let leaf = root.leaf("client", 0x8001);
    let online = |crls: &[&[u8]]| {
        let mut set = CrlSet::new(CrlPolicy::Strict).with_online(OnlineChecks {
            ocsp: true,
            ocsp_responder: None,
            fetch_crls: false,
        });
        for c in crls {
            set.add(c).unwrap();
        }
        TrustAnchors::new(vec![root.der.clone()])
            .unwrap()
            .with_revocation(Revocation::new(set))
    };
    let t = online(&[]);
    let peer = t
        .verify_peer_deferring(&[&leaf], &dn_of(&leaf), NOW)
        .unwrap();
    let pc = peer.certificate.expect("the end entity and its issuer");
    assert_eq!(pc.der, leaf);
    assert_eq!(pc.issuer, root.der);
    assert!(matches!(
        t.verify_peer(&[&leaf], &dn_of(&leaf), NOW),
        Err(PeerCertificateError::RevocationUnknown { .. })
    ));
    // A listed end entity is refused without asking anyone.
    let (pem, _) = root.crl(&[0x8001], 2029, 2031);
    assert!(matches!(
        online(&[pem.as_bytes()]).verify_peer_deferring(&[&leaf], &dn_of(&leaf), NOW),
        Err(PeerCertificateError::Revoked { .. })
    ));
    // An intermediate with no CRL of the root's: refused under strict.
    let mid = root.intermediate("Mid", 0x8100);
    let below = mid.leaf("below", 0x8002);
    let (mid_crl, _) = mid.crl(&[], 2029, 2031);
    assert!(matches!(
        online(&[mid_crl.as_bytes()]).verify_peer_deferring(
            &[&below, &mid.der],
            &dn_of(&below),
            NOW
        ),
        Err(PeerCertificateError::RevocationUnknown { .. })
    ));
    // Off: nothing is deferred.
    let t = trust(&root, CrlPolicy::Strict, &[]);
    assert!(t
        .verify_peer_deferring(&[&leaf], &dn_of(&leaf), NOW)
        .is_err());
}
