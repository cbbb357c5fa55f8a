//! The admin API over HTTPS (`[admin] listen`, off by default;
//! docs/ADMIN.md): the Unix socket's routes (`admin_api.rs`) and the web
//! status page (`admin_page.rs`), behind a bearer token.
//!
//! - Every route needs `Authorization: Bearer <token>` (RFC 6750 §2.1),
//!   answered 401 with `WWW-Authenticate: Bearer` otherwise (§3), except
//!   the page's three static files, which carry no data: the page asks
//!   for the token and sends it with each API call itself.
//! - Every answer carries the security headers ([`SECURITY_HEADERS`]):
//!   scripts and styles from this origin only, never framed, never
//!   cached.
//! - TLS with the server's own certificate (the SSTP one).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::admin_token::AdminToken;
use crate::admin_view::AdminView;

/// Headers on every answer of the HTTPS listener.
pub const SECURITY_HEADERS: [(&str, &str); 6] = [
    // No inline script or style, nothing from elsewhere; the API is
    // reached with fetch() on this origin.
    (
        "content-security-policy",
        "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    // Session lists and counters must not linger in caches.
    ("cache-control", "no-store"),
    ("cross-origin-resource-policy", "same-origin"),
];

/// Why the HTTPS listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AdminHttpsError {
    #[error(transparent)]
    Token(#[from] crate::admin_token::AdminTokenError),
    #[error("admin HTTPS listener {addr} ([admin] listen): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The listener's socket and token, when `[admin] listen` is set: the
/// token is read (relative to `state_dir`) and the port bound at start,
/// so that a bad file or a taken port stops the server with a clear
/// error instead of a page that never answers.
pub async fn bind(
    config: &crate::config::AdminConfig,
    state_dir: &std::path::Path,
) -> Result<Option<(TcpListener, Arc<AdminToken>)>, AdminHttpsError> {
    let Some(addr) = config.listen else {
        return Ok(None);
    };
    // Config::validate refuses `listen` without `token_file`.
    let file = config
        .token_file
        .as_deref()
        .unwrap_or(std::path::Path::new(""));
    let token = AdminToken::read(state_dir, file)?;
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| AdminHttpsError::Bind { addr, source })?;
    Ok(Some((tcp, Arc::new(token))))
}

/// How long a client may take to finish its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// TLS handshakes in progress at once; connections beyond are closed, so
/// that a flood of half-open handshakes costs bounded memory.
const MAX_HANDSHAKES: usize = 64;

/// The HTTPS listener's routes: the admin API and the page, the token
/// layer and the security headers.
pub fn router(view: Arc<AdminView>, token: Arc<AdminToken>) -> Router {
    crate::admin_api::router(view)
        .merge(crate::admin_page::routes())
        .layer(middleware::from_fn_with_state(token, require_token))
        .layer(middleware::from_fn(security_headers))
}

/// Lets a request through if it is for one of the page's static files or
/// carries the token; otherwise 401 (RFC 6750 §3). Unknown paths are
/// refused the same way, so that nothing is learnt without the token.
async fn require_token(
    State(token): State<Arc<AdminToken>>,
    request: Request,
    next: Next,
) -> Response {
    let public = request.method() == axum::http::Method::GET
        && crate::admin_page::PUBLIC_PATHS.contains(&request.uri().path());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    if public || presented.is_some_and(|t| token.matches(t)) {
        return next.run(request).await;
    }
    // RFC 6750 §3.1: an error code only for a token that was presented;
    // a request without one just gets the challenge.
    let (challenge, message) = if presented.is_some() {
        (
            "Bearer realm=\"ras\", error=\"invalid_token\"",
            "the bearer token is not valid",
        )
    } else {
        ("Bearer realm=\"ras\"", "a bearer token is needed")
    };
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )],
        Json(serde_json::json!({ "error": message })),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer TOKEN` value (RFC 6750 §2.1;
/// the scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// The TLS configuration of the listener: the server's certificate,
/// HTTP/1.1 offered by ALPN (RFC 7301).
pub fn tls_config(cert: &Arc<rustls::ServerConfig>) -> Arc<rustls::ServerConfig> {
    let mut config = (**cert).clone();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// The listener's TLS configuration, swapped whole by a reload when the
/// certificate changes (reload.rs): each handshake takes the current one.
pub type SharedTls = Arc<arc_swap::ArcSwap<rustls::ServerConfig>>;

/// Serves [`router`] on `tcp` over TLS until `stop` turns true.
pub async fn serve(
    tcp: TcpListener,
    tls: SharedTls,
    view: Arc<AdminView>,
    token: Arc<AdminToken>,
    mut stop: watch::Receiver<bool>,
) {
    let listener = match TlsListener::new(tcp, tls) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("admin HTTPS: {e}");
            return;
        }
    };
    let shutdown = async move {
        while !*stop.borrow() {
            if stop.changed().await.is_err() {
                break;
            }
        }
    };
    if let Err(e) = axum::serve(listener, router(view, token))
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!("admin HTTPS: {e}");
    }
}

/// Accepts TCP connections and hands `axum::serve` the finished TLS
/// streams; each handshake runs in its own task, so one slow client holds
/// up no other.
struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    fn new(tcp: TcpListener, config: SharedTls) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                // Ends (closing the port) as soon as axum stops serving.
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    () = tx.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of descriptors and the like: back off, go on.
                        tracing::warn!("admin HTTPS: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                    tracing::debug!("admin HTTPS: {peer}: too many TLS handshakes at once, closed");
                    continue;
                };
                let (acceptor, conn_tx) = (TlsAcceptor::from(config.load_full()), tx.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = conn_tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("admin HTTPS: {peer}: TLS: {e}"),
                        Err(_) => tracing::debug!("admin HTTPS: {peer}: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task only ends when we are dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ipv4Pool;
    use crate::pool::StaticPool;
    use crate::radius_auth::TunnelKind;
    use crate::sessions::Sessions;
    use crate::SessionId;
    use axum::body::Body;
    use tower::ServiceExt;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    fn app() -> (Router, Arc<Sessions>) {
        let sessions = Arc::new(Sessions::new());
        sessions.open(SessionId::from_raw(7), "192.0.2.1:4000", TunnelKind::Sstp);
        sessions.with(SessionId::from_raw(7), |r| r.claim("alice", None, None));
        let pool = Arc::new(StaticPool::new(&Ipv4Pool::default()));
        let view = Arc::new(AdminView::new("s", sessions.clone(), pool));
        let token = Arc::new(AdminToken::new(TOKEN.as_bytes()).unwrap());
        (router(view, token), sessions)
    }

    async fn call(app: &Router, method: &str, path: &str, auth: Option<&str>) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(auth) = auth {
            request = request.header(header::AUTHORIZATION, auth);
        }
        app.clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    fn assert_security_headers(response: &Response) {
        for (name, value) in SECURITY_HEADERS {
            assert_eq!(response.headers()[name], value, "{name}");
        }
    }

    #[tokio::test]
    async fn every_data_route_needs_the_token() {
        let (app, sessions) = app();
        let routes = [
            ("GET", "/v1/status"),
            ("GET", "/v1/sessions"),
            ("GET", "/v1/sessions/7"),
            ("POST", "/v1/sessions/7/disconnect"),
            ("POST", "/v1/disconnect?all=true"),
            ("GET", "/metrics"),
            ("GET", "/no/such/route"),
            // The page's files only by GET; anything else needs the token.
            ("POST", "/"),
        ];
        let wrong = format!("Bearer {}", TOKEN.replace('0', "1"));
        for (method, path) in routes {
            for auth in [
                None,
                Some(wrong.as_str()),
                Some("Basic YTpi"),
                Some("Bearer "),
            ] {
                let r = call(&app, method, path, auth).await;
                assert_eq!(
                    r.status(),
                    StatusCode::UNAUTHORIZED,
                    "{method} {path} {auth:?}"
                );
                let challenge = r.headers()[header::WWW_AUTHENTICATE].to_str().unwrap();
                assert!(challenge.starts_with("Bearer"), "{challenge}");
                assert_eq!(
                    challenge.contains("invalid_token"),
                    auth == Some(wrong.as_str())
                );
                assert_security_headers(&r);
                assert!(!body(r).await.contains("alice"));
            }
        }
        // Nothing was ended by the refused disconnects.
        assert!(!sessions
            .with(SessionId::from_raw(7), |r| r.live.stop_requested())
            .unwrap());
    }

    #[tokio::test]
    async fn with_the_token_the_api_answers_as_on_the_socket() {
        let (app, sessions) = app();
        let auth = format!("Bearer {TOKEN}");
        let r = call(&app, "GET", "/v1/sessions", Some(&auth)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert_security_headers(&r);
        assert!(body(r).await.contains("\"user\":\"alice\""));
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let r = call(&app, "GET", "/metrics", Some(&format!("bearer {TOKEN}"))).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(body(r).await.ends_with("# EOF\n"));
        let r = call(&app, "POST", "/v1/sessions/7/disconnect", Some(&auth)).await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(sessions
            .with(SessionId::from_raw(7), |r| r.live.stop_requested())
            .unwrap());
        let r = call(&app, "GET", "/no/such/route", Some(&auth)).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn the_page_files_are_public_and_carry_no_data() {
        let (app, _) = app();
        for (path, kind) in [
            ("/", "text/html"),
            ("/admin.js", "text/javascript"),
            ("/admin.css", "text/css"),
        ] {
            let r = call(&app, "GET", path, None).await;
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            assert_security_headers(&r);
            let content_type = r.headers()[header::CONTENT_TYPE].to_str().unwrap();
            assert!(content_type.starts_with(kind), "{path}: {content_type}");
            let text = body(r).await;
            assert!(!text.contains("alice"), "{path}");
        }
        // No inline script or style in the HTML: the CSP forbids them.
        let html = body(call(&app, "GET", "/", None).await).await;
        assert!(html.contains("<script src=\"/admin.js\""));
        assert!(!html.contains("<script>") && !html.contains("style="));
        // The script writes API strings as text, never as HTML.
        let js = body(call(&app, "GET", "/admin.js", None).await).await;
        assert!(!js.contains("innerHTML") && !js.contains("insertAdjacentHTML"));
    }

    /// `GET path` over TLS to `addr` (HTTP/1.1, one request); the answer.
    async fn get_over_tls(
        connector: &tokio_rustls::TlsConnector,
        addr: SocketAddr,
        path: &str,
        auth: Option<&str>,
    ) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let auth = auth
            .map(|a| format!("Authorization: {a}\r\n"))
            .unwrap_or_default();
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: ras\r\nConnection: close\r\n{auth}\r\n");
        tls.write_all(request.as_bytes()).await.unwrap();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_over_tls_with_the_server_certificate_and_frees_the_port_when_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::state::StateDir::open(dir.path()).unwrap();
        let cert =
            crate::cert::ServerCertificate::from_config(None, None, &state, "127.0.0.1", &[])
                .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls::pki_types::CertificateDer::from(
                cert.leaf_der().to_vec(),
            ))
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));

        let sessions = Arc::new(Sessions::new());
        sessions.open(SessionId::from_raw(7), "192.0.2.1:4000", TunnelKind::Sstp);
        sessions.with(SessionId::from_raw(7), |r| r.claim("alice", None, None));
        let pool = Arc::new(StaticPool::new(&Ipv4Pool::default()));
        let view = Arc::new(AdminView::new("s", sessions, pool));
        let token = Arc::new(AdminToken::new(TOKEN.as_bytes()).unwrap());
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let (stop, stop_rx) = watch::channel(false);
        let tls = Arc::new(arc_swap::ArcSwap::new(tls_config(
            &cert.rustls_config().unwrap(),
        )));
        let server = tokio::spawn(serve(tcp, tls, view, token, stop_rx));

        let refused = get_over_tls(&connector, addr, "/v1/sessions", None).await;
        assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
        assert!(!refused.contains("alice"));
        let bearer = format!("Bearer {TOKEN}");
        let ok = get_over_tls(&connector, addr, "/v1/sessions", Some(&bearer)).await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.contains("\"user\":\"alice\""), "{ok}");

        stop.send(true).unwrap();
        server.await.unwrap();
        // The accept task ends with the server: the port is free again.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).await.is_ok() {
            assert!(std::time::Instant::now() < deadline, "still listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[test]
    fn bearer_values_are_parsed_by_the_rfc() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"BEARER  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bear"), None);
    }
}
