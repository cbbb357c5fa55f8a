//! `ras connect ikev2://` refuses option combinations that cannot work
//! before it asks for a password or touches the network: above all EAP
//! without `--ca`, which would send the password to a server nobody
//! checked.

use std::process::{Command, Stdio};

const RAS: &str = env!("CARGO_BIN_EXE_ras");

/// Runs `ras connect ARGS` with no terminal and no password in the
/// environment; returns the exit success and stderr.
fn connect(args: &[&str]) -> (bool, String) {
    let out = Command::new(RAS)
        .arg("connect")
        .args(args)
        .env_remove("RAS_PASSWORD")
        .stdin(Stdio::null())
        .output()
        .expect("run ras");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn eap_without_a_ca_is_refused_before_the_password() {
    let (ok, err) = connect(&["ikev2://192.0.2.1", "--user", "alice"]);
    assert!(!ok);
    assert!(err.contains("ikev2:// with EAP needs --ca FILE"), "{err}");
    assert!(!err.contains("Password"), "{err}");
}

#[test]
fn options_of_other_protocols_are_refused() {
    let (ok, err) = connect(&[
        "ikev2://192.0.2.1",
        "--user",
        "alice",
        "--ca",
        "/nonexistent",
        "--fingerprint",
        "00",
    ]);
    assert!(!ok);
    assert!(
        err.contains("cannot be used with") || err.contains("does not apply"),
        "{err}"
    );
    let (ok, err) = connect(&["pptp://192.0.2.1", "--user", "alice", "--id", "x"]);
    assert!(!ok);
    assert!(err.contains("--id applies to ikev2:// only"), "{err}");
    let (ok, err) = connect(&["ikev2://192.0.2.1", "--user", "alice", "--no-ipsec"]);
    assert!(!ok);
    assert!(err.contains("--no-ipsec do not apply"), "{err}");
}

#[test]
fn a_missing_ca_file_is_named() {
    let (ok, err) = connect(&[
        "ikev2://192.0.2.1",
        "--user",
        "alice",
        "--ca",
        "/nonexistent/ca.pem",
        "--password-file",
        "/dev/null",
    ]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn a_client_certificate_needs_the_servers_ca_and_no_password() {
    let (ok, err) = connect(&[
        "ikev2://192.0.2.1",
        "--user",
        "alice",
        "--cert",
        "/nonexistent/client.pem",
        "--key",
        "/nonexistent/client-key.pem",
    ]);
    assert!(!ok);
    assert!(
        err.contains("ikev2:// with --cert needs --ca FILE"),
        "{err}"
    );
    assert!(!err.contains("Password"), "{err}");
}

#[test]
fn a_key_that_is_not_the_certificates_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let ca = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["client.example".to_string()])
        .unwrap()
        .self_signed(&ca)
        .unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let cert_path = write("client.pem", &cert.pem());
    let key_path = write("other-key.pem", &other.serialize_pem());
    let ca_path = write("ca.pem", &cert.pem());
    let (ok, err) = connect(&[
        "ikev2://192.0.2.1",
        "--user",
        "alice",
        "--cert",
        &cert_path,
        "--key",
        &key_path,
        "--ca",
        &ca_path,
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!("--cert {cert_path} / --key {key_path}: "))
            && err.contains("does not belong to the first certificate"),
        "{err}"
    );
    assert!(!err.contains("Password"), "{err}");
}

/// `--crl` (revocation of the server's IKE certificate): only with `--ca`,
/// only for IKE certificates, and a file that holds no CRL is named before
/// any packet is sent.
#[test]
fn crl_options_are_checked_before_the_network() {
    let (ok, err) = connect(&["ikev2://192.0.2.1", "--user", "a", "--crl", "/x.crl"]);
    assert!(!ok);
    assert!(err.contains("--ca"), "{err}");
    let (ok, err) = connect(&[
        "sstp://192.0.2.1",
        "--user",
        "a",
        "--ca",
        "/nonexistent",
        "--crl",
        "/x.crl",
    ]);
    assert!(!ok);
    assert!(err.contains("--crl applies to IKE certificates"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    std::fs::write(&ca, params.self_signed(&key).unwrap().pem()).unwrap();
    let bad = dir.path().join("bad.crl");
    std::fs::write(&bad, "not a CRL").unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "secret\n").unwrap();
    let (ok, err) = connect(&[
        "ikev2://192.0.2.1",
        "--user",
        "a",
        "--ca",
        ca.to_str().unwrap(),
        "--crl",
        bad.to_str().unwrap(),
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "--crl {}: CRL 0 is not a valid DER X.509 CRL",
            bad.display()
        )),
        "{err}"
    );
    assert!(!err.contains("connecting to"), "{err}");
}
