//! OCSP against answers OpenSSL's responder made (ocsp_vectors/), made
//! once with (a P-256 CA "OCSP Test CA", leaves "good" serial 1000 and
//! "revoked" serial 1001, revoked keyCompromise; "resp" serial 1002 with
//! id-kp-OCSPSigning; "rogue": the same key and name issued by another CA
//! of the same name):
//!
//! ```text
//! openssl ocsp -issuer ca.pem -cert good.pem -no_nonce -reqout req-good.der
//! openssl ocsp -index index.txt -CA ca.pem -rsigner resp.pem -rkey resp.key \
//!     -reqin req-good.der -respout resp-good-delegated.der -ndays 36500
//! openssl ocsp -index index.txt -CA ca.pem -rsigner ca.pem -rkey ca.key \
//!     -reqin req-good.der -respout resp-good-ca.der -ndays 36500 -resp_no_certs
//! (the same for revoked.pem; and -rsigner rogue.pem -rkey resp.key for
//!  resp-revoked-rogue.der)
//! ```

use super::*;

const CA: &[u8] = include_bytes!("ocsp_vectors/ca.pem");
const GOOD: &[u8] = include_bytes!("ocsp_vectors/good.pem");
const REVOKED: &[u8] = include_bytes!("ocsp_vectors/revoked.pem");
const REQ_GOOD: &[u8] = include_bytes!("ocsp_vectors/req-good.der");
const REQ_REVOKED: &[u8] = include_bytes!("ocsp_vectors/req-revoked.der");
const GOOD_BY_CA: &[u8] = include_bytes!("ocsp_vectors/resp-good-ca.der");
const GOOD_DELEGATED: &[u8] = include_bytes!("ocsp_vectors/resp-good-delegated.der");
const REVOKED_BY_CA: &[u8] = include_bytes!("ocsp_vectors/resp-revoked-ca.der");
const REVOKED_DELEGATED: &[u8] = include_bytes!("ocsp_vectors/resp-revoked-delegated.der");
const REVOKED_ROGUE: &[u8] = include_bytes!("ocsp_vectors/resp-revoked-rogue.der");

/// When the vectors were made (2026-12-06 07:38 UTC).
const MADE: i64 = 1_796_542_717;

fn der(pem: &[u8]) -> Vec<u8> {
    x509_parser::pem::parse_x509_pem(pem).unwrap().1.contents
}

fn query(cert: &[u8]) -> Query {
    request(&der(cert), &der(CA), None).unwrap()
}

#[test]
fn the_request_is_the_one_openssl_makes() {
    assert_eq!(query(GOOD).der, REQ_GOOD);
    assert_eq!(query(REVOKED).der, REQ_REVOKED);
}

#[test]
fn good_and_revoked_signed_by_the_ca_or_its_delegated_responder() {
    for answer in [GOOD_BY_CA, GOOD_DELEGATED] {
        let a = check(&query(GOOD), answer, MADE + 60).unwrap();
        assert_eq!(a.status, CertificateStatus::Good);
        assert!(a.this_update <= MADE + 60 && a.this_update > MADE - 60);
        // -ndays 36500
        assert!(a.next_update.unwrap() > MADE + 36_000 * 86_400);
    }
    for answer in [REVOKED_BY_CA, REVOKED_DELEGATED] {
        let a = check(&query(REVOKED), answer, MADE + 60).unwrap();
        let CertificateStatus::Revoked { time, reason } = a.status else {
            panic!("not revoked: {a:?}");
        };
        assert_eq!(reason, Some("keyCompromise"));
        assert!(time.starts_with("Sun, 06 Dec 2026 07:38:"), "{time}");
    }
}

#[test]
fn an_answer_for_another_certificate_says_nothing() {
    assert_eq!(
        check(&query(GOOD), REVOKED_BY_CA, MADE),
        Err(OcspError::NotAnswered)
    );
}

#[test]
fn a_responder_the_issuer_did_not_delegate_to_is_refused() {
    assert_eq!(
        check(&query(REVOKED), REVOKED_ROGUE, MADE),
        Err(OcspError::Signature)
    );
}

#[test]
fn a_changed_octet_breaks_the_signature() {
    let mut tampered = GOOD_BY_CA.to_vec();
    // The last octet of the serial (0x1000 -> 0x1001) inside tbsResponseData.
    let at = tampered
        .windows(3)
        .position(|w| w == [0x02, 0x02, 0x10])
        .unwrap();
    tampered[at + 3] ^= 1;
    assert_eq!(
        check(&query(REVOKED), &tampered, MADE),
        Err(OcspError::Signature)
    );
}

#[test]
fn the_time_window_counts() {
    assert_eq!(
        check(&query(GOOD), GOOD_BY_CA, MADE - 3600),
        Err(OcspError::NotYetValid)
    );
    assert_eq!(
        check(&query(GOOD), GOOD_BY_CA, MADE + 101 * 365 * 86_400),
        Err(OcspError::Expired)
    );
}

#[test]
fn a_wrong_nonce_is_refused_and_garbage_is_malformed() {
    // OpenSSL's answers carry no nonce: ours is not checked against one.
    let q = request(&der(GOOD), &der(CA), Some(&[7; 16])).unwrap();
    assert_eq!(
        check(&q, GOOD_BY_CA, MADE).map(|a| a.status),
        Ok(CertificateStatus::Good)
    );
    assert_eq!(
        check(&q, b"\x30\x03\x0a\x01\x00", MADE),
        Err(OcspError::Malformed)
    );
    // tryLater (RFC 6960 §4.2.1), no responseBytes.
    assert_eq!(
        check(&q, b"\x30\x03\x0a\x01\x03", MADE),
        Err(OcspError::Status("tryLater"))
    );
    for n in 0..GOOD_BY_CA.len() {
        assert!(check(&q, &GOOD_BY_CA[..n], MADE).is_err());
    }
}

#[test]
fn the_urls_of_the_certificate() {
    assert_eq!(ocsp_urls(&der(GOOD)), ["http://127.0.0.1:8888/"]);
    assert_eq!(crl_urls(&der(GOOD)), ["http://127.0.0.1:8889/ca.crl"]);
    assert!(ocsp_urls(&der(CA)).is_empty());
    assert_eq!(serial_of(&der(REVOKED)), "10:01");
}
