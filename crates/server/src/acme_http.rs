//! The ACME client's HTTPS: one HTTP/1.1 connection per request (an
//! issuance is a dozen requests, days apart), TLS by rustls with aws-lc-rs
//! against the configured roots (`certificate.acme.ca_file`) or the
//! built-in Mozilla roots. Each request has a deadline and each answer a
//! size limit, so a slow or hostile CA cannot hold the renewal task or
//! its memory.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use instant_acme::{BodyWrapper, BytesResponse, HttpClient};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

/// A request and its answer must finish within this time (RFC 8555 has
/// no bound; a CA answers in well under a second).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The largest answer read: a directory, an order or a certificate chain
/// is a few KiB.
const MAX_ANSWER: usize = 1 << 20;

/// Why the HTTPS client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum HttpsError {
    #[error("{}: {message}", path.display())]
    Roots {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

/// An [`HttpClient`] for instant-acme.
pub struct AcmeHttps {
    tls: tokio_rustls::TlsConnector,
}

impl AcmeHttps {
    /// Trusting the certificates of `ca_file` (PEM), or the Mozilla roots.
    pub fn new(ca_file: Option<&Path>) -> Result<AcmeHttps, HttpsError> {
        let mut roots = rustls::RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let bad = |message: String| HttpsError::Roots {
                    path: path.to_owned(),
                    message,
                };
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| bad(e.to_string()))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| bad(e.to_string()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(bad("no usable CERTIFICATE section".into()));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(AcmeHttps {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }
}

fn other(message: impl Into<String>) -> instant_acme::Error {
    instant_acme::Error::Other(message.into().into())
}

impl HttpClient for AcmeHttps {
    fn request(
        &self,
        req: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let tls = self.tls.clone();
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, send(tls, req)).await {
                Ok(answer) => answer,
                Err(_) => Err(other(format!(
                    "no answer within {} s",
                    REQUEST_TIMEOUT.as_secs()
                ))),
            }
        })
    }
}

async fn send(
    tls: tokio_rustls::TlsConnector,
    mut req: http::Request<BodyWrapper<Bytes>>,
) -> Result<BytesResponse, instant_acme::Error> {
    let uri = req.uri().clone();
    if uri.scheme_str() != Some("https") {
        return Err(other(format!("{uri}: not https")));
    }
    let host = uri
        .host()
        .ok_or_else(|| other(format!("{uri}: no host")))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| other(format!("{host}:{port}: {e}")))?;
    let name = ServerName::try_from(host.clone()).map_err(|e| other(format!("{host}: {e}")))?;
    let stream = tls
        .connect(name, tcp)
        .await
        .map_err(|e| other(format!("{host}:{port}: TLS: {e}")))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| other(format!("{host}:{port}: {e}")))?;
    tokio::spawn(connection);
    // HTTP/1.1 wants Host; the request carries an absolute URI, and the
    // origin form goes on the wire.
    let authority = uri
        .authority()
        .map(|a| a.as_str().to_owned())
        .unwrap_or_default();
    req.headers_mut().insert(
        http::header::HOST,
        http::HeaderValue::from_str(&authority).map_err(|e| other(e.to_string()))?,
    );
    *req.uri_mut() = uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e: http::uri::InvalidUri| other(e.to_string()))?;
    let answer = sender
        .send_request(req)
        .await
        .map_err(|e| other(format!("{host}:{port}: {e}")))?;
    let (parts, body) = answer.into_parts();
    let body = http_body_util::Limited::new(body, MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| other(format!("{host}:{port}: the answer: {e}")))?
        .to_bytes();
    Ok(BytesResponse::from(http::Response::from_parts(
        parts,
        http_body_util::Full::new(body),
    )))
}
