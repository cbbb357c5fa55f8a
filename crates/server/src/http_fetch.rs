//! Plain-HTTP fetches for certificate status: an OCSP POST (RFC 6960
//! Appendix A.1) and a CRL GET (RFC 5280 §4.2.1.13: distribution points
//! are http://; the objects are signed, so no TLS is needed or expected).
//! Each has a size limit and a deadline, so a slow or hostile server cannot
//! hold a login or the memory.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use thiserror::Error;

/// Why a fetch gave nothing.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("not an http:// URL")]
    NotHttp,
    #[error("no answer within {0} s")]
    Timeout(u64),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("HTTP: {0}")]
    Http(String),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// Whether `url` is one we fetch: http://host[:port][/path].
pub fn is_http_url(url: &str) -> bool {
    url.parse::<http::Uri>()
        .is_ok_and(|u| u.scheme_str() == Some("http") && u.host().is_some_and(|h| !h.is_empty()))
}

/// POSTs `body` as `content_type` (or GETs, `body` none) to `url`, and
/// returns the answer's body (status 200 only, at most `limit` bytes),
/// all within `deadline`.
pub async fn fetch(
    url: &str,
    body: Option<(&'static str, Vec<u8>)>,
    limit: usize,
    deadline: Duration,
) -> Result<Vec<u8>, FetchError> {
    tokio::time::timeout(deadline, send(url, body, limit))
        .await
        .map_err(|_| FetchError::Timeout(deadline.as_secs()))?
}

async fn send(
    url: &str,
    body: Option<(&'static str, Vec<u8>)>,
    limit: usize,
) -> Result<Vec<u8>, FetchError> {
    let uri: http::Uri = url.parse().map_err(|_| FetchError::NotHttp)?;
    if uri.scheme_str() != Some("http") {
        return Err(FetchError::NotHttp);
    }
    let host = uri
        .host()
        .ok_or(FetchError::NotHttp)?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(80);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(FetchError::Connect)?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    tokio::spawn(connection);
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(&host);
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let builder = http::Request::builder()
        .uri(path)
        .header(http::header::HOST, authority);
    let request = match body {
        Some((content_type, bytes)) => builder
            .method(http::Method::POST)
            .header(http::header::CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(bytes))),
        None => builder
            .method(http::Method::GET)
            .body(Full::new(Bytes::new())),
    }
    .map_err(|e| FetchError::Http(e.to_string()))?;
    let answer = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Http(e.to_string()))?;
    if answer.status() != http::StatusCode::OK {
        return Err(FetchError::Status(answer.status().as_u16()));
    }
    let collected = http_body_util::Limited::new(answer.into_body(), limit)
        .collect()
        .await
        .map_err(|_| FetchError::TooLarge(limit))?;
    Ok(collected.to_bytes().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn only_http_urls() {
        assert!(is_http_url("http://127.0.0.1:8888/"));
        assert!(is_http_url("http://ocsp.example"));
        assert!(!is_http_url("https://ocsp.example/"));
        assert!(!is_http_url("ldap://ldap.example/cn=ca"));
        assert!(!is_http_url("ocsp.example"));
    }

    /// A server that answers `answer` to one request.
    async fn serve_once(answer: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(&answer).await;
        });
        format!("http://{addr}/x")
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let body = vec![b'a'; 2000];
        let mut answer =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        answer.extend_from_slice(&body);
        let url = serve_once(answer.clone()).await;
        let got = fetch(&url, None, 4000, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(got, body);
        let url = serve_once(answer).await;
        let e = fetch(&url, None, 1000, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::TooLarge(1000)), "{e}");
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_an_error_status_is_named() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        // Accepted by the kernel, never answered.
        let e = fetch(&url, None, 100, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(e, FetchError::Timeout(_)), "{e}");
        let url = serve_once(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec()).await;
        let e = fetch(&url, None, 100, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert_eq!(e.to_string(), "HTTP status 404");
    }
}
