//! A throwaway PKI for the IPsec interop tests: a CA, a server certificate
//! for `[certificate]` and a client certificate for strongSwan, all PEM.

/// A CA, a server certificate for `[certificate]` and a client certificate
/// for strongSwan, all PEM.
pub struct TestPki {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
    /// A CRL of the CA that revokes the client certificate (RFC 5280 §5).
    pub client_revoked_crl: String,
}

/// The client certificate's serial number, as the CRL names it.
pub const CLIENT_SERIAL: u64 = 0x00c1_1e47;

impl TestPki {
    /// `alg`: the keys' algorithm; RSA keys are 3072 bits, so Main Mode
    /// messages 5 and 6 (certificate and signature) are over strongSwan's
    /// 1280-byte fragment size and travel in fragments both ways.
    pub fn new(alg: &'static rcgen::SignatureAlgorithm) -> TestPki {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let key = || {
            if alg == &rcgen::PKCS_RSA_SHA256 {
                KeyPair::generate_rsa_for(alg, rcgen::RsaKeySize::_3072).unwrap()
            } else {
                KeyPair::generate_for(alg).unwrap()
            }
        };
        let ca_key = key();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "ras interop test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |cn: &str, serial: u64| {
            let k = key();
            let mut p = CertificateParams::new(vec![cn.to_string()]).unwrap();
            p.distinguished_name.push(DnType::CommonName, cn);
            p.serial_number = Some(rcgen::SerialNumber::from(serial));
            let c = p.signed_by(&k, &issuer).unwrap();
            (c.pem(), k.serialize_pem())
        };
        let (server_cert, server_key) = leaf("ras-interop-server", 0x5e7e);
        let (client_cert, client_key) = leaf("ras-interop-client", CLIENT_SERIAL);
        let client_revoked_crl = rcgen::CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2025, 1, 1),
            next_update: rcgen::date_time_ymd(2035, 1, 1),
            crl_number: rcgen::SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(CLIENT_SERIAL),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: Some(rcgen::RevocationReason::KeyCompromise),
                invalidity_date: None,
            }],
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&issuer)
        .unwrap()
        .pem()
        .unwrap();
        TestPki {
            ca: ca.pem(),
            server_cert,
            server_key,
            client_cert,
            client_key,
            client_revoked_crl,
        }
    }

    /// Guest shell lines that install the CA, the client certificate and
    /// key where swanctl --load-all finds them.
    pub fn guest_files(&self) -> String {
        format!(
            "cat > /etc/swanctl/x509ca/ras-test-ca.pem <<'PEM'\n{}PEM\n\
             cat > /etc/swanctl/x509/ras-test-client.pem <<'PEM'\n{}PEM\n\
             cat > /etc/swanctl/private/ras-test-client.pem <<'PEM'\n{}PEM\n\
             chmod 600 /etc/swanctl/private/ras-test-client.pem\n",
            self.ca, self.client_cert, self.client_key
        )
    }
}
