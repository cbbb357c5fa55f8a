//! `ras server --check`: the configuration as the server would load it,
//! and the checks the server makes before it binds anything (the
//! certificate files readable and the key theirs, the pools, the
//! policies, the user store readable, secret and key files readable),
//! without binding a socket, creating a TUN device or writing anything:
//! a missing state directory or self-signed certificate is fine (the
//! server creates them), an unreadable one is not.
//!
//! Every error names the file, the line and the key, as the loader's own
//! errors do ([`ConfigError::Invalid`]).

use std::path::{Path, PathBuf};

use crate::cert::{ServerCertificate, SELF_SIGNED_CERT_FILE, SELF_SIGNED_KEY_FILE};
use crate::config::{error_at_key, AddressSourceKind, Config, ConfigError};

/// What stands for the file when there is none (embedded defaults).
const NO_FILE: &str = "(embedded defaults)";

/// Loads `path` (or the defaults) and checks it; the configuration if all
/// is well.
pub fn check(path: Option<&Path>) -> Result<Config, ConfigError> {
    let config = Config::load(path)?;
    let (text, shown) = match path {
        Some(p) => (
            std::fs::read_to_string(p).map_err(|source| ConfigError::Io {
                path: p.to_owned(),
                source,
            })?,
            p.to_owned(),
        ),
        None => (String::new(), PathBuf::from(NO_FILE)),
    };
    check_loaded(&config, &text, &shown)?;
    Ok(config)
}

/// The checks after loading, on `config` loaded from `text` (at `path`).
pub fn check_loaded(config: &Config, text: &str, path: &Path) -> Result<(), ConfigError> {
    // `lookup` finds the line; `key` is what the message names.
    let at = |lookup: &str, key: &str, message: String| {
        let mut e = error_at_key(text, path, lookup, message);
        if let ConfigError::Invalid { key: k, .. } = &mut e {
            *k = Some(key.to_owned());
        }
        e
    };
    let state = &config.state_dir;

    // The certificate: the configured pair, loaded and given to rustls
    // (which refuses a key that is not the certificate's), or the state
    // directory's self-signed pair if it exists already.
    let cert = &config.certificate;
    match (&cert.chain, &cert.key) {
        (Some(chain), Some(key)) => {
            ServerCertificate::load(chain, key)
                .and_then(|c| c.rustls_config().map(|_| ()))
                .map_err(|e| at("certificate.chain", "certificate.chain", e.to_string()))?;
        }
        (Some(_), None) => {
            return Err(at(
                "certificate.chain",
                "certificate.key",
                "certificate.chain needs certificate.key too".into(),
            ))
        }
        (None, Some(_)) => {
            return Err(at(
                "certificate.key",
                "certificate.chain",
                "certificate.key needs certificate.chain too".into(),
            ))
        }
        (None, None) => {
            let (c, k) = (
                state.join(SELF_SIGNED_CERT_FILE),
                state.join(SELF_SIGNED_KEY_FILE),
            );
            if c.exists() && k.exists() {
                ServerCertificate::load(&c, &k)
                    .and_then(|c| c.rustls_config().map(|_| ()))
                    .map_err(|e| {
                        at(
                            "state_dir",
                            "state_dir",
                            format!("the self-signed certificate: {e}"),
                        )
                    })?;
            }
        }
    }

    // The CRLs, parsed as the server loads them.
    crate::crl::load(cert).map_err(|e| {
        at(
            "certificate.crl_files",
            "certificate.crl_files",
            e.to_string(),
        )
    })?;

    // ACME: the roots for the CA's HTTPS, read as the ACME task reads
    // them.
    if let Some(ca_file) = cert.acme.as_ref().and_then(|a| a.ca_file.as_deref()) {
        crate::acme_http::AcmeHttps::new(Some(ca_file)).map_err(|e| {
            at(
                "certificate.acme.ca_file",
                "certificate.acme.ca_file",
                e.to_string(),
            )
        })?;
    }

    // The pools: the ranges were checked while parsing; the DHCP source
    // needs its interface to exist.
    if config.addresses.source == AddressSourceKind::Dhcp {
        if let Some(interface) = &config.addresses.dhcp_interface {
            if !Path::new("/sys/class/net").join(interface).exists() {
                return Err(at(
                    "addresses.dhcp_interface",
                    "addresses.dhcp_interface",
                    format!("no network interface {interface}"),
                ));
            }
        }
    }

    // The policies (checked while loading; built here as the server does).
    config.policy_set().map_err(|e| at("policy", "policy", e))?;

    // The user store: readable if it exists (the server creates it).
    let users = state.join(crate::users::DB_FILE);
    if users.exists() {
        std::fs::File::open(&users).map_err(|e| {
            at(
                "state_dir",
                "state_dir",
                format!("the user store {}: {e}", users.display()),
            )
        })?;
    } else if state.exists() && !state.is_dir() {
        return Err(at(
            "state_dir",
            "state_dir",
            format!("{} is not a directory", state.display()),
        ));
    }

    // Files holding secrets: readable (their contents are not shown).
    for (i, server) in config.radius.servers.iter().enumerate() {
        crate::radius_config::read_secret(state, &server.secret_file).map_err(|e| {
            at(
                "radius.servers",
                &format!("radius.servers[{i}].secret_file"),
                e.to_string(),
            )
        })?;
    }
    if let Some(d) = &config.radius.dynamic_authorization {
        for (i, client) in d.clients.iter().enumerate() {
            crate::radius_config::read_secret(state, &client.secret_file).map_err(|e| {
                at(
                    "radius.dynamic_authorization",
                    &format!("radius.dynamic_authorization.clients[{i}].secret_file"),
                    e.to_string(),
                )
            })?;
        }
    }
    if let (Some(_), Some(file)) = (config.admin.listen, &config.admin.token_file) {
        crate::admin_token::AdminToken::read(state, file)
            .map_err(|e| at("admin.token_file", "admin.token_file", e.to_string()))?;
    }
    if config.ipsec.enabled {
        let readable = |file: &Path, lookup: &str, key: &str| {
            std::fs::File::open(file)
                .map(drop)
                .map_err(|e| at(lookup, key, format!("{}: {e}", file.display())))
        };
        if let Some(psk) = &config.ipsec.psk_file {
            readable(psk, "ipsec.psk_file", "ipsec.psk_file")?;
        }
        if let Some(ca) = &config.ipsec.ca_file {
            readable(ca, "ipsec.ca_file", "ipsec.ca_file")?;
        }
        for (i, peer) in config.ipsec.peers.iter().enumerate() {
            readable(
                &peer.psk_file,
                "ipsec.peers",
                &format!("ipsec.peers[{i}].psk_file"),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate and key pair in `dir`, as PEM files.
    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["vpn.example.com".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn write(dir: &Path, text: &str) -> PathBuf {
        let p = dir.join("ras.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    fn invalid(e: ConfigError) -> (PathBuf, usize, Option<String>, String) {
        match e {
            ConfigError::Invalid {
                path,
                line,
                key,
                message,
                ..
            } => (path, line, key, message),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn a_good_file_passes_and_touches_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = pair(dir.path(), "good");
        let state = dir.path().join("state-not-created");
        let p = write(
            dir.path(),
            &format!(
                "state_dir = {state:?}\n[certificate]\nchain = {c:?}\nkey = {k:?}\n[admin]\nsocket = {:?}\n",
                dir.path().join("admin.sock")
            ),
        );
        check(Some(&p)).unwrap();
        assert!(!state.exists(), "the state directory is not created");
        assert!(!dir.path().join("admin.sock").exists(), "nothing is bound");
    }

    #[test]
    fn acme_roots_that_are_not_certificates_are_named_with_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = pair(dir.path(), "roots");
        let text = |ca: &Path| {
            format!(
                "state_dir = {:?}\n[sstp]\nlisten = [\"0.0.0.0:443\"]\n[certificate.acme]\ndirectory = \"https://ca.test/dir\"\nca_file = {ca:?}\n[admin]\nsocket = {:?}\n",
                dir.path().join("state"),
                dir.path().join("admin.sock")
            )
        };
        check(Some(&write(dir.path(), &text(&c)))).unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let p = write(dir.path(), &text(&junk));
        let (path, line, key, message) = invalid(check(Some(&p)).unwrap_err());
        assert_eq!((path, line), (p, 6));
        assert_eq!(key.as_deref(), Some("certificate.acme.ca_file"));
        assert!(message.contains("junk.pem"), "{message}");
    }

    #[test]
    fn a_key_of_another_certificate_is_named_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _) = pair(dir.path(), "one");
        let (_, other_key) = pair(dir.path(), "two");
        let p = write(
            dir.path(),
            &format!(
                "state_dir = {:?}\n\n[certificate]\nchain = {c:?}\nkey = {other_key:?}\n",
                dir.path()
            ),
        );
        let (path, line, key, message) = invalid(check(Some(&p)).unwrap_err());
        assert_eq!(path, p);
        assert_eq!(line, 4, "{message}");
        assert_eq!(key.as_deref(), Some("certificate.chain"));
        assert!(!message.is_empty());
    }

    #[test]
    fn an_unreadable_secret_file_and_a_parse_error_name_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(
            dir.path(),
            &format!(
                "state_dir = {:?}\n\n[[radius.servers]]\naddress = \"127.0.0.1\"\nsecret_file = \"missing.secret\"\n",
                dir.path()
            ),
        );
        let (_, line, key, message) = invalid(check(Some(&p)).unwrap_err());
        assert_eq!(line, 3);
        assert_eq!(key.as_deref(), Some("radius.servers[0].secret_file"));
        assert!(message.contains("missing.secret"), "{message}");

        let p = write(dir.path(), "[tun]\nmtu = 100\n");
        let (_, line, key, _) = invalid(check(Some(&p)).unwrap_err());
        assert_eq!((line, key.as_deref()), (2, Some("tun.mtu")));
    }

    #[test]
    fn a_short_admin_token_is_reported_without_showing_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin-token"), "short-secret\n").unwrap();
        let p = write(
            dir.path(),
            &format!(
                "state_dir = {:?}\n\n[admin]\nlisten = \"127.0.0.1:8443\"\ntoken_file = \"admin-token\"\n",
                dir.path()
            ),
        );
        let (_, line, key, message) = invalid(check(Some(&p)).unwrap_err());
        assert_eq!((line, key.as_deref()), (5, Some("admin.token_file")));
        assert!(message.contains("at least 32"), "{message}");
        assert!(!message.contains("short-secret"), "{message}");
    }
}
