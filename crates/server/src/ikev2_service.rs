//! The IKEv2 part of `ras server`: its responder settings from `[ikev2]`,
//! `[ipsec]` (the pre-shared key, the NAT-T port) and `[certificate]` (the
//! signature EAP clients check), run by the IPsec front end
//! ([`tunnel::ikev2_server`]).

use std::sync::Arc;

use ipsec::ikev1::certificates::TrustAnchors;
use ipsec::ikev2::signature_auth::ServerCredential;
use ipsec::ikev2::{ClientTrust, Ikev2Config, Ikev2PskTable, LocalIdentity};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::cert::ServerCertificate;
use crate::ikev2_config::Ikev2ServerConfig;
use crate::ipsec_config::IpsecConfig;

/// Why IKEv2 could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum Ikev2SetupError {
    #[error("ikev2.auth accepts nothing: list \"eap\", \"certificate\", \"psk\" or several")]
    NoAuth,
    #[error("ikev2.client_ca {}: {message}", path.display())]
    ClientCa {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("ikev2.auth lists \"certificate\" but ikev2.client_ca is not set")]
    NoClientCa,
    #[error("[certificate] cannot sign IKEv2 messages: {0}")]
    Certificate(String),
}

/// The responder's settings.
pub fn responder_config(
    config: &Ikev2ServerConfig,
    ipsec: &IpsecConfig,
    psk: &[u8],
    cert: &ServerCertificate,
    server_name: &str,
) -> Result<Ikev2Config, Ikev2SetupError> {
    if !config.eap() && !config.psk() && !config.certificate() {
        return Err(Ikev2SetupError::NoAuth);
    }
    let mut psks = Ikev2PskTable::new();
    if config.psk() {
        psks = psks.with_wildcard(psk);
    }
    // EAP clients need the server's signature (RFC 7296 §2.16: EAP is
    // only for the initiator), certificate clients get one (§2.15); with
    // PSK only, the key proves the server.
    let certificate = if config.eap() || config.certificate() {
        let chain = cert.chain().iter().map(|c| c.to_vec()).collect();
        let credential = ServerCredential::from_pkcs8(chain, cert.key_der())
            .map_err(|e| Ikev2SetupError::Certificate(e.to_string()))?;
        Some(Arc::new(credential))
    } else {
        None
    };
    let client_trust = if config.certificate() {
        Some(Arc::new(client_trust(config)?))
    } else {
        None
    };
    let local_id = config
        .local_id
        .clone()
        .or_else(|| first_dns_name(cert.leaf_der()))
        .unwrap_or_else(|| server_name.to_string());
    let local_identity = match local_id.parse() {
        Ok(address) => LocalIdentity::Address(address),
        Err(_) => LocalIdentity::Fqdn(local_id),
    };
    Ok(Ikev2Config {
        psks,
        local_identity,
        nat_t_port: ipsec.nat_t_port,
        liveness_interval: config.liveness_interval(),
        liveness_timeout: config.liveness_timeout(),
        mobike: config.mobike,
        nat_probe: config.nat_probe,
        cookie_threshold: config.cookie_threshold,
        certificate,
        client_trust,
        eap: config.eap(),
        policy: config.proposals().policy(),
        ..Ikev2Config::default()
    })
}

/// The CAs of `client_ca`, which client certificates must chain to.
fn client_trust(config: &Ikev2ServerConfig) -> Result<ClientTrust, Ikev2SetupError> {
    let path = config
        .client_ca
        .as_ref()
        .ok_or(Ikev2SetupError::NoClientCa)?;
    let ca_err = |message: String| Ikev2SetupError::ClientCa {
        path: path.clone(),
        message,
    };
    let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
    let anchors = TrustAnchors::from_pem(&pem)
        .map_err(|e| ca_err(e.to_string()))?
        .with_revocation(crate::crl::shared().clone());
    Ok(ClientTrust::new(anchors))
}

/// The certificate's first subjectAltName DNS name (what clients match
/// IDr against, RFC 4945 §5.1.3).
fn first_dns_name(der: &[u8]) -> Option<String> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let san = cert.subject_alternative_name().ok()??;
    san.value.general_names.iter().find_map(|g| match g {
        GeneralName::DNSName(name) => Some(name.to_string()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &std::path::Path) -> ServerCertificate {
        let state = crate::state::StateDir::open(dir).unwrap();
        ServerCertificate::load_or_create_self_signed(&state, "vpn.example.com", &[]).unwrap()
    }

    #[test]
    fn eap_signs_with_the_certificate_named_by_its_dns_name() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        let c = responder_config(
            &Ikev2ServerConfig::default(),
            &IpsecConfig::default(),
            b"key",
            &cert,
            "other-name",
        )
        .unwrap();
        assert!(c.certificate.is_some());
        assert!(c.psks.is_empty(), "no pre-shared key unless allowed");
        assert_eq!(
            c.local_identity,
            LocalIdentity::Fqdn("vpn.example.com".into())
        );
        // An explicit identity wins; an address is an address.
        let config = Ikev2ServerConfig {
            local_id: Some("192.0.2.1".into()),
            auth: vec![crate::ikev2_config::Ikev2AuthName::Psk],
            ..Default::default()
        };
        let c = responder_config(&config, &IpsecConfig::default(), b"key", &cert, "x").unwrap();
        assert_eq!(
            c.local_identity,
            LocalIdentity::Address("192.0.2.1".parse().unwrap())
        );
        assert!(c.certificate.is_none());
        assert_eq!(c.psks.lookup(b"anyone"), Some(&b"key"[..]));
    }

    #[test]
    fn cookie_threshold_comes_from_the_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        let build = |c: &Ikev2ServerConfig| {
            responder_config(c, &IpsecConfig::default(), b"k", &cert, "x").unwrap()
        };
        // The default is the responder core's own (RFC 7296 §2.6 leaves it
        // to the implementation).
        assert_eq!(
            build(&Ikev2ServerConfig::default()).cookie_threshold,
            Ikev2Config::default().cookie_threshold
        );
        let parsed = crate::config::Config::from_toml(
            "[ikev2]\ncookie_threshold = 100000\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(build(&parsed.ikev2).cookie_threshold, 100_000);
        let parsed = crate::config::Config::from_toml(
            "[ikev2]\ncookie_threshold = 0\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        assert_eq!(
            build(&parsed.ikev2).cookie_threshold,
            0,
            "a cookie from everyone"
        );
    }

    #[test]
    fn no_method_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        let config = Ikev2ServerConfig {
            auth: vec![],
            ..Default::default()
        };
        let e = responder_config(&config, &IpsecConfig::default(), b"k", &cert, "x")
            .err()
            .expect("refused");
        assert_eq!(
            e.to_string(),
            "ikev2.auth accepts nothing: list \"eap\", \"certificate\", \"psk\" or several"
        );
    }

    #[test]
    fn certificate_clients_need_client_ca_and_get_its_cas() {
        let dir = tempfile::tempdir().unwrap();
        let cert = self_signed(dir.path());
        // Without client_ca the file is refused at the key, with its line.
        let e = crate::config::Config::from_toml(
            "[ikev2]\nenabled = true\nauth = [\"certificate\"]\n",
            std::path::Path::new("/etc/ras/ras.toml"),
        )
        .expect_err("refused")
        .to_string();
        assert_eq!(
            e,
            "/etc/ras/ras.toml:3:8: key `ikev2.auth`: \"certificate\" needs ikev2.client_ca, the CA file client certificates must chain to"
        );
        // With it: the CAs trust clients, the server signs, EAP is off
        // unless listed.
        // The self-signed certificate stands in for a CA file.
        let ca = dir.path().join(crate::cert::SELF_SIGNED_CERT_FILE);
        let text = format!(
            "[ikev2]\nauth = [\"certificate\"]\nclient_ca = \"{}\"\n",
            ca.display()
        );
        let parsed =
            crate::config::Config::from_toml(&text, std::path::Path::new("t.toml")).unwrap();
        let c = responder_config(&parsed.ikev2, &IpsecConfig::default(), b"k", &cert, "x").unwrap();
        let trust = c.client_trust.as_ref().expect("client CAs");
        assert_eq!(trust.anchors.subjects().len(), 1);
        assert!(
            c.certificate.is_some(),
            "certificate clients get our signature"
        );
        assert!(!c.eap);
        assert!(c.psks.is_empty());
        // An unreadable file names itself.
        let config = Ikev2ServerConfig {
            auth: vec![crate::ikev2_config::Ikev2AuthName::Certificate],
            client_ca: Some(dir.path().join("missing.pem")),
            ..Default::default()
        };
        let e = responder_config(&config, &IpsecConfig::default(), b"k", &cert, "x")
            .err()
            .expect("refused")
            .to_string();
        assert!(e.starts_with("ikev2.client_ca /"), "{e}");
        assert!(e.contains("missing.pem: "), "{e}");
    }
}
