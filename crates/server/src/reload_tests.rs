//! Tests of reload.rs: a rig of the parts a reload swaps, over files
//! edited between reloads.

use super::*;
use tunnel::sstp_server::ServerSessionConfig;

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

/// The configuration the tests edit: `cert`, `pool`, `dns` and
/// `policy` (TOML) in the file.
fn text(dir: &Path, cert: &(PathBuf, PathBuf), pool: &str, dns: &str, policy: &str) -> String {
    format!(
        "state_dir = {:?}\nserver_name = \"vpn.example.com\"\n\n[sstp]\nlisten = [\"127.0.0.1:443\"]\n\n[ipsec]\nenabled = false\n\n[certificate]\nchain = {:?}\nkey = {:?}\n\n[addresses]\nipv4_pool = [{pool}]\ndns = [{dns}]\n\n[admin]\nsocket = {:?}\n{policy}",
        dir.join("state"),
        cert.0,
        cert.1,
        dir.join("admin.sock"),
    )
}

struct Rig {
    reloader: Reloader,
    sstp: Arc<ArcSwap<SstpCertified>>,
    settings: SharedSessionSettings,
    pool: Arc<StaticPool>,
    view: Arc<ArcSwapOption<CertificateView>>,
    admin_tls: crate::admin_https::SharedTls,
}

fn start(file: &Path) -> (Rig, ServerCertificate) {
    start_with(file, None)
}

fn start_with(file: &Path, radius: Option<RadiusTargets>) -> (Rig, ServerCertificate) {
    start_full(file, radius, None)
}

fn start_full(
    file: &Path,
    radius: Option<RadiusTargets>,
    ike: Option<IkeTargets>,
) -> (Rig, ServerCertificate) {
    let config = Config::load(Some(file)).unwrap();
    let state = StateDir::open(&config.state_dir).unwrap();
    let cert =
        ServerCertificate::for_config(&config.certificate, &state, "vpn.example.com", &[]).unwrap();
    let sstp = Arc::new(ArcSwap::from_pointee(SstpCertified {
        tls: tokio_rustls::TlsAcceptor::from(cert.rustls_config().unwrap()),
        session: Arc::new(ServerSessionConfig {
            certificate_der: Arc::new(cert.leaf_der().to_vec()),
            hash_protocols: sstp::CERT_HASH_PROTOCOL_SHA256,
            link: Arc::new(ppp::link::LinkConfig::server("vpn.example.com")),
            request_timeout: std::time::Duration::from_secs(10),
            server_name: "ras".into(),
            timers: sstp::Timers::default(),
        }),
    }));
    let settings = SessionSettings {
        policies: Arc::new(config.policy_set().unwrap()),
        dns: [config.addresses.dns.first().copied(), None],
        wins: [None, None],
    }
    .shared();
    let pool = Arc::new(StaticPool::new(&config.addresses.ipv4_pool));
    let view = Arc::new(ArcSwapOption::empty());
    let admin_tls: crate::admin_https::SharedTls = Arc::new(ArcSwap::new(
        crate::admin_https::tls_config(&cert.rustls_config().unwrap()),
    ));
    let reloader = Reloader::new(
        Some(file),
        &config,
        cert.fingerprint_sha256(),
        ReloadTargets {
            sstp: sstp.clone(),
            settings: settings.clone(),
            pool: pool.clone(),
            tun: None,
            certificate_view: view.clone(),
            state,
            radius,
            ike,
            admin_tls: Some(admin_tls.clone()),
            acme_check: None,
        },
    );
    let rig = Rig {
        reloader,
        sstp,
        settings,
        pool,
        view,
        admin_tls,
    };
    (rig, cert)
}

fn ranges(pool: &StaticPool) -> Vec<String> {
    pool.client_ranges()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn a_good_edit_is_swapped_in_and_a_bad_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (pair(dir.path(), "one"), pair(dir.path(), "two"));
    let file = dir.path().join("ras.toml");
    let pool = "\"10.0.10.20-10.0.10.29\"";
    std::fs::write(&file, text(dir.path(), &one, pool, "\"10.0.0.53\"", "")).unwrap();
    let (rig, first) = start(&file);
    // A connection accepted before the reload holds this pair.
    let in_progress = rig.sstp.load_full();

    let outcome = rig.reloader.reload();
    assert_eq!(
        outcome,
        ReloadOutcome {
            ok: true,
            changed: vec![],
            error: None
        }
    );
    assert_eq!(outcome.log_line(), "reload: nothing changed");

    let policy = "\n[[policy]]\nname = \"Staff only\"\naccess = \"grant\"\n[policy.conditions]\ngroups = [\"staff\"]\n";
    let wider = "\"10.0.10.20-10.0.10.29\", \"10.0.20.1-10.0.20.50\"";
    std::fs::write(
        &file,
        text(
            dir.path(),
            &two,
            wider,
            "\"10.0.0.54\", \"10.0.0.55\"",
            policy,
        ),
    )
    .unwrap();
    let second = ServerCertificate::load(&two.0, &two.1).unwrap();
    let admin_tls_before = rig.admin_tls.load_full();
    let outcome = rig.reloader.reload();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(
        outcome.changed,
        vec![
            format!(
                "certificate changed (sha256 {}) for new SSTP connections",
                second.fingerprint_sha256()
            ),
            "policies: 1 (Staff only)".to_owned(),
            "pool +10.0.20.1-10.0.20.50".to_owned(),
            "DNS 10.0.0.54, 10.0.0.55".to_owned(),
        ]
    );
    assert_eq!(
        *rig.sstp.load().session.certificate_der,
        second.leaf_der().to_vec()
    );
    assert_eq!(
        *in_progress.session.certificate_der,
        first.leaf_der().to_vec(),
        "a connection keeps the certificate it was served"
    );
    // The admin HTTPS listener serves the new certificate too (still
    // offering HTTP/1.1).
    let admin_tls = rig.admin_tls.load_full();
    assert!(!Arc::ptr_eq(&admin_tls, &admin_tls_before));
    assert_eq!(admin_tls.alpn_protocols, vec![b"http/1.1".to_vec()]);
    assert_eq!(
        rig.view.load().as_ref().unwrap().sha256_fingerprint,
        second.fingerprint_sha256()
    );
    assert_eq!(
        ranges(&rig.pool),
        vec!["10.0.10.21-10.0.10.29", "10.0.20.1-10.0.20.50"]
    );
    let settings = rig.settings.load();
    assert_eq!(
        settings.dns,
        [
            Some("10.0.0.54".parse().unwrap()),
            Some("10.0.0.55".parse().unwrap())
        ]
    );
    assert_eq!(
        settings.policies.names().collect::<Vec<_>>(),
        vec!["Staff only"]
    );

    // A bad value: refused with file, line and key; nothing swapped.
    let good = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{good}\n[tun]\nmtu = 100\n")).unwrap();
    let outcome = rig.reloader.reload();
    assert!(!outcome.ok);
    let line = good.lines().count() + 3;
    assert_eq!(
        outcome.error.as_deref(),
        Some(
            format!(
                "{}:{line}: tun.mtu: MTU 100 is below the IPv4 minimum of 576",
                file.display()
            )
            .as_str()
        )
    );
    assert!(outcome
        .log_line()
        .ends_with("; still running the previous configuration"));

    // A key that needs a restart, next to reloadable edits: refused
    // whole.
    std::fs::write(
        &file,
        text(dir.path(), &one, wider, "\"10.0.0.99\"", "")
            .replace("127.0.0.1:443", "127.0.0.1:8443"),
    )
    .unwrap();
    let outcome = rig.reloader.reload();
    let error = outcome.error.unwrap();
    assert!(
        error.ends_with(": sstp.listen: sstp.listen changed: needs a restart"),
        "{error}"
    );
    assert_eq!(
        *rig.sstp.load().session.certificate_der,
        second.leaf_der().to_vec()
    );
    assert_eq!(
        rig.settings.load().dns[0],
        Some("10.0.0.54".parse().unwrap())
    );
    assert_eq!(ranges(&rig.pool).len(), 2);

    // Back to the last good file: nothing to do.
    std::fs::write(&file, good).unwrap();
    assert_eq!(rig.reloader.reload().changed, Vec::<String>::new());
}

#[test]
fn the_socket_is_found_in_a_file_that_does_not_load() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ras.toml");
    std::fs::write(
        &file,
        "[admin]\nsocket = \"/tmp/x.sock\"\n[tun]\nmtu = 100\n",
    )
    .unwrap();
    if std::env::var_os(crate::config::ADMIN_SOCKET_ENV).is_none() {
        assert_eq!(
            admin_socket_of(Some(&file)).unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
    }
    std::fs::write(&file, "[admin\n").unwrap();
    if std::env::var_os(crate::config::ADMIN_SOCKET_ENV).is_none() {
        assert!(admin_socket_of(Some(&file)).is_err());
    }
}

/// RADIUS servers swapped: the admin API shows the new ones, and
/// turning RADIUS off is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_radius_servers_are_swapped_in() {
    let dir = tempfile::tempdir().unwrap();
    let one = pair(dir.path(), "one");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("r.secret"), "s3cret\n").unwrap();
    let file = dir.path().join("ras.toml");
    let radius = |address: &str| {
        format!("\n[radius]\naccounting = false\n\n[[radius.servers]]\naddress = \"{address}\"\nsecret_file = \"r.secret\"\n")
    };
    let pool = "\"10.0.10.20-10.0.10.29\"";
    let dns = "\"10.0.0.53\"";
    std::fs::write(
        &file,
        text(dir.path(), &one, pool, dns, &radius("127.0.0.1")),
    )
    .unwrap();
    let handle = RadiusHandle::start(
        vec!["127.0.0.1:1812".parse().unwrap()],
        crate::radius_setup::client_config(
            &Config::load(Some(&file)).unwrap().radius,
            vec![radius::Secret::new(b"s3cret".to_vec())],
        ),
    )
    .await
    .unwrap();
    let view = Arc::new(ArcSwap::from_pointee(vec![(
        "authentication",
        handle.clone(),
    )]));
    let targets = RadiusTargets {
        auth: Arc::new(crate::radius_auth::RadiusAuth::new(
            handle,
            crate::radius_auth::NasIdentity {
                identifier: "ras".into(),
                address: None,
            },
        )),
        accounting: None,
        view: view.clone(),
        metrics: Arc::new(crate::metrics::Metrics::new()),
    };
    let (rig, _) = start_with(&file, Some(targets));
    let rig = Arc::new(rig);

    std::fs::write(
        &file,
        text(dir.path(), &one, pool, dns, &radius("127.0.0.2")),
    )
    .unwrap();
    let r = rig.clone();
    let outcome = tokio::task::spawn_blocking(move || r.reloader.reload())
        .await
        .unwrap();
    assert_eq!(outcome.changed, vec!["RADIUS servers 127.0.0.2:1812"]);
    let shown: Vec<SocketAddr> = view
        .load()
        .iter()
        .flat_map(|(_, h)| h.server_states())
        .map(|(a, _)| a)
        .collect();
    assert_eq!(shown, vec!["127.0.0.2:1812".parse::<SocketAddr>().unwrap()]);

    std::fs::write(&file, text(dir.path(), &one, pool, dns, "")).unwrap();
    let r = rig.clone();
    let outcome = tokio::task::spawn_blocking(move || r.reloader.reload())
        .await
        .unwrap();
    let error = outcome.error.unwrap();
    assert!(
        error.ends_with(": radius.servers: radius.servers changed: needs a restart"),
        "{error}"
    );
}

/// With IKE on, the IKE front end is handed responder settings with
/// the new certificate (IKEv2 EAP signs with it).
#[test]
fn a_new_certificate_reaches_the_ike_responders() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (pair(dir.path(), "one"), pair(dir.path(), "two"));
    let file = dir.path().join("ras.toml");
    let pool = "\"10.0.10.20-10.0.10.29\"";
    let with_ike = |cert| {
        text(dir.path(), cert, pool, "\"10.0.0.53\"", "")
            .replace("[ipsec]\nenabled = false\n", "[ipsec]\nenabled = true\n")
    };
    std::fs::write(&file, with_ike(&one)).unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let ike = IkeTargets {
        psk: zeroize::Zeroizing::new(b"a pre-shared key".to_vec()),
        reconfigure: tx,
    };
    let (rig, _) = start_full(&file, None, Some(ike));
    std::fs::write(&file, with_ike(&two)).unwrap();
    let outcome = rig.reloader.reload();
    let second = ServerCertificate::load(&two.0, &two.1).unwrap();
    assert_eq!(
        outcome.changed,
        vec![format!(
            "certificate changed (sha256 {}) for new SSTP connections and IKE negotiations",
            second.fingerprint_sha256()
        )]
    );
    let configs = rx.try_recv().expect("new IKE settings");
    let ikev2 = configs.ikev2.expect("IKEv2 is on by default");
    assert_eq!(
        ikev2.certificate.expect("EAP: the server signs").chain()[0],
        second.leaf_der().to_vec()
    );
    assert!(rx.try_recv().is_err(), "one hand-off per reload");
}

/// `POST /v1/reload` answers the outcome, refused or not, as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_route_answers_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let one = pair(dir.path(), "one");
    let file = dir.path().join("ras.toml");
    let pool = "\"10.0.10.20-10.0.10.29\"";
    std::fs::write(&file, text(dir.path(), &one, pool, "\"10.0.0.53\"", "")).unwrap();
    let (rig, _) = start(&file);
    let mut view = crate::admin_view::AdminView::new(
        "s",
        Arc::new(crate::sessions::Sessions::new()),
        rig.pool.clone(),
    );
    let socket = dir.path().join("api.sock");
    let bare = dir.path().join("bare.sock");
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(crate::admin_api::serve(
        tokio::net::UnixListener::bind(&bare).unwrap(),
        Arc::new(crate::admin_view::AdminView::new(
            "s",
            Arc::new(crate::sessions::Sessions::new()),
            rig.pool.clone(),
        )),
        stop_rx.clone(),
    ));
    view.reloader = Some(Arc::new(rig.reloader));
    tokio::spawn(crate::admin_api::serve(
        tokio::net::UnixListener::bind(&socket).unwrap(),
        Arc::new(view),
        stop_rx,
    ));
    let edited = text(dir.path(), &one, pool, "\"10.0.0.54\"", "");
    let (f, s, b) = (file.clone(), socket.clone(), bare.clone());
    tokio::task::spawn_blocking(move || {
        let post = |socket: &Path| crate::admin_client::request(socket, "POST", "/v1/reload");
        match post(&b) {
            Err(crate::admin_client::AdminClientError::Status { status, message }) => {
                assert_eq!(
                    (status, message.as_str()),
                    (404, "this server cannot reload")
                )
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&f, edited).unwrap();
        let outcome: ReloadOutcome = serde_json::from_slice(&post(&s).unwrap().body).unwrap();
        assert_eq!(outcome.changed, vec!["DNS 10.0.0.54"]);
        std::fs::write(&f, "[tun]\nmtu = 100\n").unwrap();
        let outcome: ReloadOutcome = serde_json::from_slice(&post(&s).unwrap().body).unwrap();
        assert!(!outcome.ok);
        assert_eq!(
            outcome.error,
            Some(format!(
                "{}:2: tun.mtu: MTU 100 is below the IPv4 minimum of 576",
                f.display()
            ))
        );
    })
    .await
    .unwrap();
    stop.send(true).unwrap();
}

/// An ACME renewal (acme.rs) goes through the reload's swap: the issued
/// chain and key appear in the state directory, and
/// `refresh_certificate` serves them to new SSTP connections (with the
/// crypto-binding certificate), the admin listener and the admin view,
/// while a connection accepted before keeps its certificate.
#[test]
fn an_acme_certificate_is_swapped_in_through_the_reload_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ras.toml");
    let acme = "state_dir = STATE\nserver_name = \"vpn.example.com\"\n[sstp]\nlisten = [\"127.0.0.1:443\"]\n[ipsec]\nenabled = false\n[certificate.acme]\ndirectory = \"https://ca.test/dir\"\n[admin]\nsocket = SOCKET\n"
        .replace("STATE", &format!("{:?}", dir.path().join("state")))
        .replace("SOCKET", &format!("{:?}", dir.path().join("admin.sock")));
    std::fs::write(&file, &acme).unwrap();
    let (rig, first) = start(&file);
    assert!(first.is_self_signed(), "until one is issued");
    assert!(!rig.reloader.refresh_certificate().unwrap(), "nothing new");

    // The ACME task stores the chain and its key in one file.
    let key = rcgen::KeyPair::generate().unwrap();
    let issued = rcgen::CertificateParams::new(vec!["vpn.example.com".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    state
        .write_private(
            crate::acme::CERT_FILE,
            format!("{}{}", issued.pem(), key.serialize_pem()).as_bytes(),
        )
        .unwrap();
    let in_progress = rig.sstp.load_full();
    let admin_before = rig.admin_tls.load_full();
    assert!(rig.reloader.refresh_certificate().unwrap());
    let now = rig.sstp.load_full();
    assert_eq!(
        now.session.certificate_der.as_slice(),
        issued.der().as_ref()
    );
    assert_eq!(
        in_progress.session.certificate_der.as_slice(),
        first.leaf_der(),
        "a connection accepted before keeps the certificate it was served"
    );
    assert!(!Arc::ptr_eq(&rig.admin_tls.load_full(), &admin_before));
    let view = rig.view.load_full().expect("the admin view");
    assert!(!view.self_signed);
    let renewed = ServerCertificate::load(
        &state.file(crate::acme::CERT_FILE),
        &state.file(crate::acme::CERT_FILE),
    )
    .unwrap();
    assert_eq!(view.sha256_fingerprint, renewed.fingerprint_sha256());
    // Once is enough; and a reload after it changes nothing.
    assert!(!rig.reloader.refresh_certificate().unwrap());
    assert_eq!(rig.reloader.reload().changed, Vec::<String>::new());
}

/// A CRL signed by a fresh CA listing `serials`, as PEM.
fn crl_pem(serials: &[u64]) -> String {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let issuer = rcgen::Issuer::new(params, key);
    rcgen::CertificateRevocationListParams {
        this_update: rcgen::date_time_ymd(2025, 1, 1),
        next_update: rcgen::date_time_ymd(2035, 1, 1),
        crl_number: rcgen::SerialNumber::from(1u64),
        issuing_distribution_point: None,
        revoked_certs: serials
            .iter()
            .map(|&s| rcgen::RevokedCertParams {
                serial_number: rcgen::SerialNumber::from(s),
                revocation_time: rcgen::date_time_ymd(2025, 6, 1),
                reason_code: None,
                invalidity_date: None,
            })
            .collect(),
        key_identifier_method: rcgen::KeyIdMethod::Sha256,
    }
    .signed_by(&issuer)
    .unwrap()
    .pem()
    .unwrap()
}

#[test]
fn crls_are_read_again_at_each_reload_and_a_bad_one_keeps_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let one = pair(dir.path(), "one");
    let crl = dir.path().join("clients.crl");
    std::fs::write(&crl, crl_pem(&[])).unwrap();
    let file = dir.path().join("ras.toml");
    let pool = "\"10.0.10.20-10.0.10.29\"";
    let with_crl = text(dir.path(), &one, pool, "\"10.0.0.53\"", "").replace(
        "\n\n[addresses]",
        &format!(
            "\ncrl_files = [{}]\n\n[addresses]",
            toml::Value::String(crl.display().to_string())
        ),
    );
    std::fs::write(&file, &with_crl).unwrap();
    let (rig, _) = start(&file);
    assert_eq!(rig.reloader.reload().changed, Vec::<String>::new());

    // The same path holds the CA's next CRL: taken, nothing else changed.
    std::fs::write(&crl, crl_pem(&[0x1001])).unwrap();
    let outcome = rig.reloader.reload();
    assert!(outcome.ok, "{outcome:?}");
    assert_eq!(outcome.changed, vec!["CRLs 1 (if-available)".to_owned()]);

    // A file that holds no CRL: refused at the key, naming the file.
    std::fs::write(&crl, "not a CRL").unwrap();
    let outcome = rig.reloader.reload();
    assert!(!outcome.ok);
    let error = outcome.error.unwrap();
    assert!(error.contains(":13: certificate.crl_files: "), "{error}");
    assert!(
        error.contains(&format!(
            "{}: CRL 0 is not a valid DER X.509 CRL",
            crl.display()
        )),
        "{error}"
    );

    // The policy is reloadable too.
    std::fs::write(&crl, crl_pem(&[0x1001])).unwrap();
    std::fs::write(
        &file,
        with_crl.replace("crl_files", "crl_policy = \"strict\"\ncrl_files"),
    )
    .unwrap();
    let outcome = rig.reloader.reload();
    assert_eq!(outcome.changed, vec!["CRLs 1 (strict)".to_owned()]);
}
