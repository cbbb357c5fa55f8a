//! The admin HTTPS listener and its web status page end to end
//! (docs/ADMIN.md): `ras server` with `[admin] listen` and a token file,
//! one live SSTP session from `ras connect` pinging the LAN host, in
//! network namespaces.
//!
//! - A plain HTTPS client (hyper over rustls, pinned to the server's
//!   certificate): every API route and `/metrics` answer 401 with
//!   `WWW-Authenticate: Bearer` without the token or with a wrong one;
//!   with it they answer, `/metrics` in Prometheus text.
//! - Headless Chromium (Debian's `chromium`, driven over the DevTools
//!   protocol): the page loads, refuses data before login, logs in with
//!   the token, shows the session's row with the user name and a byte
//!   counter that grows while the client pings, and its Disconnect button
//!   ends the session (the client exits, the API lists no session). A
//!   screenshot is kept in `target/artifacts/admin-web.png`.
//!
//! Needs root and chromium; skips with a message otherwise (fails under
//! RAS_INTEROP_REQUIRED=1, as in CI).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::{Browser, LaunchOptions, Tab};
use interop::netns::{Topology, LAN_HOST, SERVER_FOR_CLI1};
use server::admin_snapshot::SessionView;

mod support;
use support::*;

/// 64 hex digits, as `openssl rand -hex 32` makes.
const TOKEN: &str = "5f0c8d7e2b1a49366e0f4c3b2a190817d6e5f4c3b2a1908f7e6d5c4b3a291807";
/// Outside 8000-8999, where headless_chrome picks its debugging port.
const LISTEN: &str = "127.0.0.1:9443";
const USER: &str = "webuser";

/// Debian's chromium, if installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

fn can_run_web() -> Option<PathBuf> {
    if !can_run() {
        return None;
    }
    if let Some(path) = chromium() {
        return Some(path);
    }
    if std::env::var("RAS_INTEROP_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("RAS_INTEROP_REQUIRED=1 but chromium is not installed (apt-get install chromium)");
    }
    eprintln!("SKIPPED (admin web): chromium is not installed (apt-get install chromium)");
    None
}

/// SSTP on the first client network, the admin API on its socket and on
/// HTTPS at [`LISTEN`] with the token in the state directory.
fn write_config(dir: &Path) -> PathBuf {
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(state.join("admin-token"), format!("{TOKEN}\n")).unwrap();
    let path = dir.join("ras.toml");
    let socket = admin_socket_for(&path);
    std::fs::write(
        &path,
        format!(
            "state_dir = {state:?}\nserver_name = \"ras-web\"\n\n[sstp]\nlisten = [\"{SERVER_FOR_CLI1}:443\"]\n\n[ipsec]\nenabled = false\n\n[tun]\nname = \"ras-web0\"\n\n[admin]\nsocket = {socket:?}\nlisten = \"{LISTEN}\"\ntoken_file = \"admin-token\"\n"
        ),
    )
    .unwrap();
    path
}

/// Where the screenshot goes: `target/artifacts/` of the build.
fn artifacts() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One HTTPS answer: status, `WWW-Authenticate`, `Cache-Control`, body.
struct Answer {
    status: u16,
    challenge: Option<String>,
    cache_control: Option<String>,
    body: String,
}

/// `METHOD PATH` on the listener, with `Authorization: AUTH` if given,
/// checking the server's certificate against its fingerprint.
async fn https(fingerprint: &str, method: &str, path: &str, auth: Option<&str>) -> Answer {
    use http_body_util::{BodyExt, Empty};
    let trust =
        client::verify::Trust::Pin(client::verify::Fingerprint::parse(fingerprint).unwrap());
    let connector = tokio_rustls::TlsConnector::from(trust.client_config().unwrap());
    let tcp = tokio::net::TcpStream::connect(LISTEN).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let tls = connector
        .connect(name, tcp)
        .await
        .expect("TLS to the admin listener");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", LISTEN);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    let response = sender
        .send_request(request.body(Empty::<bytes::Bytes>::new()).unwrap())
        .await
        .unwrap();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (status, challenge, cache_control) = (
        response.status().as_u16(),
        header("www-authenticate"),
        header("cache-control"),
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        challenge,
        cache_control,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// Every route refuses without the token or with a wrong one; with it
/// the API and `/metrics` answer.
fn check_token(fingerprint: &str, session: u64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let wrong = format!("Bearer {}", TOKEN.replace('5', "6"));
        let good = format!("Bearer {TOKEN}");
        let one = format!("/v1/sessions/{session}");
        let routes = [
            ("GET", "/v1/status"),
            ("GET", "/v1/sessions"),
            ("GET", one.as_str()),
            ("POST", "/v1/disconnect?all=true"),
            ("GET", "/metrics"),
            ("GET", "/unknown"),
        ];
        for (method, path) in routes {
            for auth in [None, Some(wrong.as_str()), Some(TOKEN)] {
                let a = https(fingerprint, method, path, auth).await;
                assert_eq!(a.status, 401, "{method} {path} with {auth:?}: {}", a.body);
                let challenge = a.challenge.expect("WWW-Authenticate");
                assert!(challenge.starts_with("Bearer"), "{challenge}");
                assert!(!a.body.contains(USER), "{method} {path}: {}", a.body);
            }
        }
        let a = https(fingerprint, "GET", "/v1/sessions", Some(&good)).await;
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.cache_control.as_deref(), Some("no-store"));
        let sessions: Vec<SessionView> = serde_json::from_str(&a.body).unwrap();
        assert_eq!(sessions.len(), 1, "{}", a.body);
        assert_eq!(sessions[0].user.as_deref(), Some(USER));
        let a = https(fingerprint, "GET", "/metrics", Some(&good)).await;
        assert_eq!(a.status, 200);
        assert!(
            a.body
                .contains("ras_sessions{protocol=\"sstp\",state=\"up\"} 1"),
            "{}",
            a.body
        );
        assert!(a.body.ends_with("# EOF\n"));
        // The page itself holds no data and is served without the token.
        let a = https(fingerprint, "GET", "/", None).await;
        assert_eq!(a.status, 200);
        assert!(a.body.contains("<script src=\"/admin.js\"") && !a.body.contains(USER));
    });
}

/// The first session row as the page shows it: (user, bytes in, bytes
/// out), or None while there is none.
fn session_row(tab: &Tab) -> Option<(String, u64, u64)> {
    let value = tab
        .evaluate(
            "(() => { const r = document.querySelector('tr.session'); \
             return r ? JSON.stringify([r.querySelector('.user').textContent, \
             Number(r.dataset.bytesIn), Number(r.dataset.bytesOut)]) : null; })()",
            false,
        )
        .expect("evaluate")
        .value?;
    serde_json::from_str(value.as_str()?).ok()
}

fn eval_string(tab: &Tab, expression: &str) -> String {
    let value = tab.evaluate(expression, true).expect("evaluate").value;
    match value {
        Some(serde_json::Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn wait_until<T>(within: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "the page never showed {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Drives the page in headless Chromium (on this thread's namespace):
/// login, the live row, a screenshot, Disconnect. Returns the
/// screenshot's path.
fn browse(chromium: PathBuf) -> PathBuf {
    let options = LaunchOptions {
        path: Some(chromium),
        headless: true,
        // Root in a test namespace: Chromium's sandbox needs user
        // namespaces it cannot have here.
        sandbox: false,
        // The server's certificate is self-signed.
        ignore_certificate_errors: true,
        window_size: Some((1280, 1000)),
        idle_browser_timeout: Duration::from_secs(120),
        ..LaunchOptions::default()
    };
    let browser = Browser::new(options).expect("start headless chromium");
    let tab: Arc<Tab> = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(20));
    let url = format!("https://{LISTEN}/");
    tab.navigate_to(&url)
        .and_then(|t| t.wait_until_navigated())
        .expect("load the page");

    // Before login: the form, and no data for a script without the token.
    tab.wait_until_visible("#login-form")
        .expect("the login form");
    assert_eq!(
        eval_string(&tab, "fetch('/v1/sessions').then(r => String(r.status))"),
        "401"
    );
    assert!(session_row(&tab).is_none());

    // A wrong token is refused and the form comes back with a message.
    tab.wait_for_element("#token").unwrap().click().unwrap();
    tab.type_str("not-the-token-not-the-token-not-the-token")
        .unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();
    wait_until(Duration::from_secs(10), "the refused token", || {
        let message = eval_string(&tab, "document.getElementById('login-error').textContent");
        (!message.is_empty()).then_some(())
    });
    assert!(session_row(&tab).is_none());

    tab.wait_for_element("#token").unwrap().click().unwrap();
    tab.type_str(TOKEN).unwrap();
    tab.wait_for_element("#login").unwrap().click().unwrap();

    let (user, first_in, first_out) =
        wait_until(Duration::from_secs(15), "the session", || session_row(&tab));
    assert_eq!(user, USER);
    // The client pings all along: the counters the page shows grow.
    wait_until(Duration::from_secs(20), "the byte counters growing", || {
        session_row(&tab).filter(|(_, i, o)| *i > first_in && *o > first_out)
    });
    // A few more polls for the traffic graph.
    std::thread::sleep(Duration::from_secs(5));
    let points = eval_string(
        &tab,
        "document.getElementById('traffic-line').getAttribute('points')",
    );
    assert!(points.split(' ').count() >= 2, "graph points: {points}");
    let subject = eval_string(&tab, "document.getElementById('cert-subject').textContent");
    assert!(
        subject.contains("ras-web"),
        "certificate subject: {subject}"
    );
    let pools = eval_string(
        &tab,
        "String(document.querySelectorAll('#pool-rows tr').length)",
    );
    assert_eq!(pools, "1");

    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"));
    let shot = artifacts().join("admin-web.png");
    std::fs::write(&shot, png).unwrap();
    println!("admin web page screenshot: {}", shot.display());

    tab.wait_for_element("tr.session button.disconnect")
        .expect("the Disconnect button")
        .click()
        .expect("click Disconnect");
    wait_until(Duration::from_secs(20), "no session left", || {
        let gone = session_row(&tab).is_none()
            && eval_string(
                &tab,
                "String(document.getElementById('no-sessions').hidden)",
            ) == "false";
        gone.then_some(())
    });
    shot
}

/// A ping from the client's namespace to the LAN host, five a second,
/// killed when dropped (also when the test fails: a leftover would hold
/// the test lock and the namespace).
struct Pinger(Child);

impl Pinger {
    fn start(topo: &Topology) -> Pinger {
        let child = topo
            .command("cli1", "ping")
            .args(["-i", "0.2", "-W", "1", LAN_HOST])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Pinger(child)
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_web_page_shows_a_live_session_and_disconnects_it() {
    let Some(chromium) = can_run_web() else {
        return;
    };
    let topo = Topology::create("rasweb").expect("namespaces");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let socket = admin_socket_for(&config);
    let pw = password_file(dir.path(), USER, "web page password");
    add_user(&config, USER, &pw, &[]);
    let server = Server::start(&topo, &config);

    let mut client = connect_sstp(
        &topo,
        "cli1",
        SERVER_FOR_CLI1,
        USER,
        &pw,
        &server.fingerprint,
        "ras-web1",
    );
    wait_address(&topo, &mut client, Duration::from_secs(20)).expect("the SSTP client is up");
    assert!(ping(&topo, "cli1", LAN_HOST), "the tunnel carries traffic");
    let id = {
        let answer = server::admin_client::request(&socket, "GET", "/v1/sessions").unwrap();
        let sessions: Vec<SessionView> = serde_json::from_slice(&answer.body).unwrap();
        assert_eq!(sessions.len(), 1);
        sessions[0].id
    };
    let ping = Pinger::start(&topo);

    let fingerprint = server.fingerprint.clone();
    topo.in_ns("srv", || check_token(&fingerprint, id)).unwrap();

    let shot = topo.in_ns("srv", || browse(chromium)).unwrap();
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a real screenshot"
    );
    drop(ping);

    // The session ended: the client saw the server close it, and the API
    // lists nothing.
    let (_, output) = finish(client, Duration::from_secs(20));
    assert!(
        output.contains("the peer hung up (SSTP Call Disconnect)"),
        "{output}"
    );
    let answer = server::admin_client::request(&socket, "GET", "/v1/sessions").unwrap();
    let sessions: Vec<SessionView> = serde_json::from_slice(&answer.body).unwrap();
    assert!(sessions.is_empty(), "{sessions:?}");
}
