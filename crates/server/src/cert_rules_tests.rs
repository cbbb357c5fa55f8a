use super::*;
use crate::cert_issue::{issue, KeyType};
use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair, SanType, PKCS_ECDSA_P256_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn leaf_der(chain_pem: &str) -> Vec<u8> {
    let first = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM");
    first.to_vec()
}

fn refused(findings: &[Finding]) -> Vec<&str> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Refused)
        .map(|f| f.text.as_str())
        .collect()
}

#[test]
fn what_ras_cert_issue_makes_passes_every_rule() {
    for key in [KeyType::Rsa2048, KeyType::EcdsaP256] {
        let issued = issue(
            None,
            &["vpn.example.com".to_string()],
            &["203.0.113.5".parse().expect("ip")],
            key,
            825,
        )
        .expect("issued");
        assert!(issued.new_ca.is_some());
        let der = leaf_der(&issued.chain_pem);
        for name in ["vpn.example.com", "203.0.113.5", "VPN.Example.com."] {
            let findings = check_server_certificate(&der, Some(name), now()).expect("parses");
            assert!(
                refused(&findings).is_empty(),
                "{key:?} {name}: {findings:?}"
            );
            assert!(
                findings.iter().all(|f| f.severity == Severity::Ok),
                "{findings:?}"
            );
        }
        let findings =
            check_server_certificate(&der, Some("other.example.com"), now()).expect("parses");
        assert_eq!(refused(&findings).len(), 1);
        assert!(refused(&findings)[0].contains("other.example.com is not among"));
    }
}

#[test]
fn a_second_certificate_from_the_same_ca() {
    let first = issue(None, &["a.example".into()], &[], KeyType::EcdsaP256, 30).expect("first");
    let ca = first.new_ca.expect("new CA");
    let second = issue(
        Some(&ca),
        &["b.example".into()],
        &[],
        KeyType::EcdsaP256,
        20,
    )
    .expect("second");
    assert!(second.new_ca.is_none());
    assert!(
        second.chain_pem.ends_with(&ca.cert_pem),
        "the chain ends with the CA"
    );
    // a short validity is worth a warning, not a refusal
    let findings = check_server_certificate(&leaf_der(&second.chain_pem), Some("b.example"), now())
        .expect("parses");
    assert!(refused(&findings).is_empty());
    assert!(findings
        .iter()
        .any(|f| f.severity == Severity::Warning && f.text.contains("expires in")));
}

fn self_signed(edit: impl FnOnce(&mut CertificateParams)) -> Vec<u8> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).expect("key");
    let mut params = CertificateParams::new(vec!["vpn.example.com".to_string()]).expect("params");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    edit(&mut params);
    params.self_signed(&key).expect("cert").der().to_vec()
}

#[test]
fn what_windows_refuses_is_named() {
    let no_eku = self_signed(|p| p.extended_key_usages.clear());
    let f = check_server_certificate(&no_eku, None, now()).expect("parses");
    assert!(refused(&f)
        .iter()
        .any(|t| t.contains("no Extended Key Usage")));

    let client_only =
        self_signed(|p| p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth]);
    let f = check_server_certificate(&client_only, None, now()).expect("parses");
    assert!(refused(&f)
        .iter()
        .any(|t| t.contains("lacks Server Authentication")));
    assert!(f
        .iter()
        .any(|x| x.severity == Severity::Warning && x.text.contains("IKE intermediate")));

    let no_san = self_signed(|p| p.subject_alt_names.clear());
    let f = check_server_certificate(&no_san, Some("vpn.example.com"), now()).expect("parses");
    assert!(refused(&f)
        .iter()
        .any(|t| t.contains("no Subject Alternative Name")));

    let expired = self_signed(|p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let f = check_server_certificate(&expired, None, now()).expect("parses");
    assert!(refused(&f).iter().any(|t| t.starts_with("expired on")));

    let wildcard = self_signed(|p| {
        p.subject_alt_names = vec![SanType::DnsName("*.example.com".try_into().expect("name"))]
    });
    let f = check_server_certificate(&wildcard, Some("vpn.example.com"), now()).expect("parses");
    assert!(refused(&f).is_empty(), "a wildcard covers one label");
    let f = check_server_certificate(&wildcard, Some("a.b.example.com"), now()).expect("parses");
    assert_eq!(refused(&f).len(), 1, "but not two");

    assert!(check_server_certificate(b"not a certificate", None, now()).is_err());
}

#[test]
fn findings_print_one_line_each() {
    let line = Finding::refused("expired on x").to_string();
    assert_eq!(line, "refused: expired on x");
    assert!(!line.contains('\n'));
}
