//! A small HTTP/1.1 client for the two requests phone-book tools make
//! (the update query and download, the post), over TCP or TLS. One request
//! per connection (`Connection: close`); responses are bounded in size and
//! time, so a hostile service cannot make us hang or grow without bound.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::trust::{Trust, TrustError};

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad URL {0:?}: expected http://HOST[:PORT][/PATH] or https://…")]
    Url(String),
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error("{0}: timed out")]
    Timeout(String),
    #[error("{0}: malformed HTTP response")]
    Malformed(String),
    #[error("{0}: response larger than {1} bytes")]
    TooLarge(String, usize),
}

/// A parsed service URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path prefix without trailing slash ("" for the root).
    pub prefix: String,
}

impl std::fmt::Display for ServiceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}{}", self.authority(), self.prefix)
    }
}

/// The path of the service's query, as CMAK writes it into a profile's
/// `PBURL` (`http://server/pbserver/pbserver.dll`).
pub const QUERY_PATH: &str = "/pbserver/pbserver.dll";

impl ServiceUrl {
    /// The Phone Book Service named either by its base URL
    /// (`http://HOST:PORT`) or by a profile's full `PBURL`
    /// (`http://HOST:PORT/pbserver/pbserver.dll`, any case, any query):
    /// the `/pbserver/pbserver.dll` and the query are dropped, since the
    /// update adds its own ([`crate::update::query_target`]). The one
    /// function `ras dial` and `ras phonebook update` both use.
    pub fn parse_service(s: &str) -> Result<ServiceUrl, HttpError> {
        let s = s.trim();
        let s = s.split(['?', '#']).next().unwrap_or(s);
        let lower = s.to_ascii_lowercase();
        let base = match lower.find(QUERY_PATH) {
            Some(at)
                if lower[at + QUERY_PATH.len()..]
                    .trim_end_matches('/')
                    .is_empty() =>
            {
                &s[..at]
            }
            _ => s,
        };
        ServiceUrl::parse(base)
    }

    pub fn parse(s: &str) -> Result<ServiceUrl, HttpError> {
        let bad = || HttpError::Url(s.to_owned());
        let (tls, rest) = if let Some(r) = s.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = s.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => {
                (h, p.parse().map_err(|_| bad())?)
            }
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad());
        }
        let prefix = path.trim_end_matches('/');
        Ok(ServiceUrl {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            prefix: if prefix.is_empty() {
                String::new()
            } else {
                format!("/{prefix}")
            },
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One request.
pub struct Request<'a> {
    pub method: &'a str,
    /// Path and query, appended to the URL's prefix.
    pub target: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub max_response: usize,
    pub timeout: Duration,
    /// Upload at most this many bytes per second (None: as fast as TCP).
    pub upload_rate: Option<u64>,
}

/// Sends `req` to `url`.
pub async fn send(
    url: &ServiceUrl,
    trust: &Trust,
    req: &Request<'_>,
) -> Result<Response, HttpError> {
    let what = format!("{} {}{}", req.method, url.authority(), req.target);
    let fut = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|e| HttpError::Io(what.clone(), e))?;
        let _ = tcp.set_nodelay(true);
        if url.tls {
            let connector = tokio_rustls::TlsConnector::from(trust.client_config()?);
            let name = rustls::pki_types::ServerName::try_from(url.host.clone())
                .map_err(|_| HttpError::Url(url.host.clone()))?;
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| HttpError::Io(what.clone(), e))?;
            exchange(tls, url, req, &what).await
        } else {
            exchange(tcp, url, req, &what).await
        }
    };
    tokio::time::timeout(req.timeout, fut)
        .await
        .map_err(|_| HttpError::Timeout(what.clone()))?
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    url: &ServiceUrl,
    req: &Request<'_>,
    what: &str,
) -> Result<Response, HttpError> {
    let io = |e| HttpError::Io(what.to_owned(), e);
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nUser-Agent: ras-phonebook\r\nContent-Length: {}\r\n",
        req.method,
        url.prefix,
        req.target,
        url.authority(),
        req.body.len()
    );
    for (n, v) in req.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).await.map_err(io)?;
    match req.upload_rate {
        None => s.write_all(req.body).await.map_err(io)?,
        Some(rate) => {
            let chunk = (rate / 10).clamp(1, 64 * 1024) as usize;
            for part in req.body.chunks(chunk) {
                s.write_all(part).await.map_err(io)?;
                s.flush().await.map_err(io)?;
                tokio::time::sleep(Duration::from_secs_f64(part.len() as f64 / rate as f64)).await;
            }
        }
    }
    s.flush().await.map_err(io)?;
    let limit = req.max_response + 16 * 1024;
    let mut buf = Vec::with_capacity(8192);
    let mut tmp = [0u8; 16384];
    loop {
        let n = match s.read(&mut tmp).await {
            Ok(n) => n,
            // rustls reports a peer that closed without close_notify as an
            // error; after a complete Content-Length body that is harmless.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(io(e)),
        };
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf.len() > limit {
            return Err(HttpError::TooLarge(what.to_owned(), req.max_response));
        }
        if let Some(resp) = complete_response(&buf, what)? {
            return Ok(resp);
        }
    }
    complete_response(&buf, what)?.ok_or_else(|| HttpError::Malformed(what.to_owned()))
}

/// The response if `buf` holds all of it (head plus Content-Length body).
fn complete_response(buf: &[u8], what: &str) -> Result<Option<Response>, HttpError> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut parsed = httparse::Response::new(&mut headers);
    let head_len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(HttpError::Malformed(what.to_owned())),
    };
    let status = parsed
        .code
        .ok_or_else(|| HttpError::Malformed(what.to_owned()))?;
    let headers: Vec<(String, String)> = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_owned(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().parse::<usize>())
        .transpose()
        .map_err(|_| HttpError::Malformed(what.to_owned()))?
        .ok_or_else(|| HttpError::Malformed(format!("{what}: no Content-Length")))?;
    if buf.len() < head_len + length {
        return Ok(None);
    }
    Ok(Some(Response {
        status,
        headers,
        body: buf[head_len..head_len + length].to_vec(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        let u = ServiceUrl::parse("https://pb.example:8443/x/").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.prefix.as_str()),
            (true, "pb.example", 8443, "/x")
        );
        let u = ServiceUrl::parse("http://127.0.0.1").unwrap();
        assert_eq!((u.tls, u.port, u.prefix.as_str()), (false, 80, ""));
        let u = ServiceUrl::parse("https://[::1]:9/").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert!(ServiceUrl::parse("ftp://x").is_err());
        assert_eq!(u.to_string(), "https://[::1]:9");
        assert!(ServiceUrl::parse("http://:80").is_err());
    }
}
