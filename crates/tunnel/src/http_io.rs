//! The HTTPS request/response that opens an SSTP stream (MS-SSTP §4.1),
//! read and written with bounds on size and time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sstp::http::{self, Parsed};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Why the HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connection closed before the HTTP {0} was complete")]
    Closed(&'static str),
    #[error("no complete HTTP request within {0:?}")]
    Timeout(Duration),
    #[error("bad SSTP request (answered HTTP {status}): {error}")]
    BadRequest {
        status: u16,
        error: http::RequestError,
    },
    #[error("server refused the SSTP request: {0}")]
    BadResponse(http::ResponseError),
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Server: read the client's `SSTP_DUPLEX_POST` within `limit`, answer
/// 200 (or the right error status, then fail). Returns any bytes that
/// followed the request (the first SSTP packets).
pub async fn accept_request<S>(
    stream: &mut S,
    limit: Duration,
    server_name: &str,
) -> Result<Vec<u8>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(512);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            match http::parse_request(&buf) {
                Ok(Parsed::Done { consumed, .. }) => return Ok(consumed),
                Ok(Parsed::NeedMore) => {}
                Err(error) => {
                    return Err(HttpError::BadRequest {
                        status: error.status(),
                        error,
                    })
                }
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(HttpError::Closed("request"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let outcome = match tokio::time::timeout(limit, read).await {
        Ok(result) => result,
        Err(_) => Err(HttpError::Timeout(limit)),
    };
    match outcome {
        Ok(consumed) => {
            let mut out = Vec::with_capacity(256);
            let date = http::format_http_date(
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            );
            http::encode_response(Some(server_name), Some(&date), &mut out);
            stream.write_all(&out).await?;
            stream.flush().await?;
            Ok(buf.split_off(consumed))
        }
        Err(HttpError::BadRequest { status, error }) => {
            let mut out = Vec::new();
            http::encode_error_response(status, &mut out);
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
            Err(HttpError::BadRequest { status, error })
        }
        Err(e) => Err(e),
    }
}

/// Client: send the request for `host` and read the server's answer within
/// `limit`. Returns any bytes that followed the response.
pub async fn send_request<S>(
    stream: &mut S,
    host: &str,
    limit: Duration,
) -> Result<Vec<u8>, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut out = Vec::with_capacity(256);
    http::encode_request(host, &http::Guid::random(), &mut out);
    stream.write_all(&out).await?;
    stream.flush().await?;
    let mut buf = Vec::with_capacity(512);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            match http::parse_response(&buf) {
                Ok(Parsed::Done { consumed, .. }) => return Ok(consumed),
                Ok(Parsed::NeedMore) => {}
                Err(e) => return Err(HttpError::BadResponse(e)),
            }
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(HttpError::Closed("response"));
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let consumed = tokio::time::timeout(limit, read)
        .await
        .map_err(|_| HttpError::Timeout(limit))??;
    Ok(buf.split_off(consumed))
}
