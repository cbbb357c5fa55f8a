//! The HTTP exchange that opens an SSTP tunnel inside TLS (MS-SSTP §4.1,
//! "HTTPS Layer Establishment").
//!
//! The client sends, with no entity body:
//!
//! ```text
//! SSTP_DUPLEX_POST /sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/ HTTP/1.1
//! Host: <server name>
//! Content-Length: 18446744073709551615
//! SSTPCORRELATIONID: {<GUID>}
//! ```
//!
//! The server "validates the method to be SSTP_DUPLEX_POST and the HTTP
//! version to be 1.1" and answers `HTTP/1.1 200 OK` with
//! `Content-Length: 18446744073709551615` (MS-SSTP §4.1); from then on both
//! directions carry SSTP packets. Parsers are incremental: they return
//! [`Parsed::NeedMore`] until the header block is complete and report how
//! many bytes the header used, so that bytes after it are handed to the SSTP
//! deframer.

use std::fmt::Write as _;

/// MS-SSTP §4.1: the HTTP method.
pub const SSTP_METHOD: &str = "SSTP_DUPLEX_POST";
/// MS-SSTP §4.1: the well-known URI.
pub const SSTP_URI: &str = "/sra_{BA195980-CD49-458b-9E23-C84EE0ADCD75}/";
/// MS-SSTP §4.1: Content-Length is ULONGLONG_MAX in both directions.
pub const SSTP_CONTENT_LENGTH: u64 = u64::MAX;
/// Bound on the header block the parsers accept.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// Result of an incremental parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed<T> {
    /// The header block is not complete yet; call again with more bytes.
    NeedMore,
    /// Complete: the value and the number of bytes the header block used.
    Done {
        /// The parsed value.
        value: T,
        /// Bytes consumed; the rest of the buffer is SSTP stream.
        consumed: usize,
    },
}

/// A 128-bit GUID, printed as `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// A random (version 4) GUID.
    pub fn random() -> Guid {
        use rand::RngCore;
        let mut b = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut b);
        b[6] = (b[6] & 0x0F) | 0x40;
        b[8] = (b[8] & 0x3F) | 0x80;
        Guid(b)
    }
}

impl std::fmt::Display for Guid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{{{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
            b[14], b[15]
        )
    }
}

/// Append the client request (MS-SSTP §4.1).
pub fn encode_request(host: &str, correlation_id: &Guid, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(200);
    let _ = write!(
        s,
        "{SSTP_METHOD} {SSTP_URI} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {SSTP_CONTENT_LENGTH}\r\nSSTPCORRELATIONID: {correlation_id}\r\n\r\n"
    );
    out.extend_from_slice(s.as_bytes());
}

/// What the server learned from a valid request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SstpRequest {
    /// The Host header, if present.
    pub host: Option<String>,
    /// The SSTPCORRELATIONID header, if present.
    pub correlation_id: Option<String>,
}

/// A request the server must refuse, with the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not parseable as HTTP/1.x (400).
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    /// Header block larger than [`MAX_HEADER_BYTES`] or too many headers (431).
    #[error("HTTP request header too large")]
    HeaderTooLarge,
    /// Method other than SSTP_DUPLEX_POST (405).
    #[error("method {0} not allowed")]
    MethodNotAllowed(String),
    /// URI other than the SSTP URI (404).
    #[error("URI {0} not found")]
    NotFound(String),
    /// HTTP version other than 1.1 (505).
    #[error("HTTP version 1.{0} not supported")]
    VersionNotSupported(u8),
    /// No Content-Length header (411).
    #[error("Content-Length missing")]
    LengthRequired,
    /// Content-Length present but not 18446744073709551615 (400).
    #[error("bad Content-Length {0:?}")]
    BadContentLength(String),
}

impl RequestError {
    /// The HTTP status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::Malformed(_) | RequestError::BadContentLength(_) => 400,
            RequestError::HeaderTooLarge => 431,
            RequestError::MethodNotAllowed(_) => 405,
            RequestError::NotFound(_) => 404,
            RequestError::VersionNotSupported(_) => 505,
            RequestError::LengthRequired => 411,
        }
    }
}

fn header_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v).trim().to_string()
}

/// Parse the client's request on the server.
pub fn parse_request(buf: &[u8]) -> Result<Parsed<SstpRequest>, RequestError> {
    let window = &buf[..buf.len().min(MAX_HEADER_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let consumed = match req.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEADER_BYTES {
                return Err(RequestError::HeaderTooLarge);
            }
            return Ok(Parsed::NeedMore);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeaderTooLarge),
        Err(e) => return Err(RequestError::Malformed(e.to_string())),
    };
    let method = req.method.unwrap_or_default();
    if method != SSTP_METHOD {
        return Err(RequestError::MethodNotAllowed(method.to_string()));
    }
    let path = req.path.unwrap_or_default();
    if !path.eq_ignore_ascii_case(SSTP_URI) {
        return Err(RequestError::NotFound(path.to_string()));
    }
    let version = req.version.unwrap_or(0);
    if version != 1 {
        return Err(RequestError::VersionNotSupported(version));
    }
    let mut out = SstpRequest::default();
    let mut content_length = None;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("Content-Length") {
            content_length = Some(header_str(h.value));
        } else if h.name.eq_ignore_ascii_case("Host") {
            out.host = Some(header_str(h.value));
        } else if h.name.eq_ignore_ascii_case("SSTPCORRELATIONID") {
            out.correlation_id = Some(header_str(h.value));
        }
    }
    match content_length {
        None => return Err(RequestError::LengthRequired),
        Some(v) if v.parse::<u64>() == Ok(SSTP_CONTENT_LENGTH) => {}
        Some(v) => return Err(RequestError::BadContentLength(v)),
    }
    Ok(Parsed::Done {
        value: out,
        consumed,
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Append the server's success response (MS-SSTP §4.1). `date` is an
/// IMF-fixdate string (see [`format_http_date`]); the crate has no clock, so
/// the caller supplies it, or `None` to omit the header.
pub fn encode_response(server: Option<&str>, date: Option<&str>, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "HTTP/1.1 200 OK\r\nContent-Length: {SSTP_CONTENT_LENGTH}\r\n"
    );
    if let Some(server) = server {
        let _ = write!(s, "Server: {server}\r\n");
    }
    if let Some(date) = date {
        let _ = write!(s, "Date: {date}\r\n");
    }
    s.push_str("\r\n");
    out.extend_from_slice(s.as_bytes());
}

/// Append a refusal: "the server fails the request by sending an HTTP error
/// code containing indication this is to be the last data being sent over
/// the connection" (MS-SSTP §4.1), i.e. `Connection: close`.
pub fn encode_error_response(status: u16, out: &mut Vec<u8>) {
    let mut s = String::with_capacity(100);
    let _ = write!(
        s,
        "HTTP/1.1 {status} {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        reason_phrase(status)
    );
    out.extend_from_slice(s.as_bytes());
}

/// Format seconds since the Unix epoch as an IMF-fixdate
/// (`Thu, 09 Nov 2006 00:51:09 GMT`).
pub fn format_http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let rem = unix_secs % 86_400;
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (proleptic Gregorian), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        d,
        MONTHS[(month - 1) as usize],
        year,
        h,
        m,
        s
    )
}

/// What the client learned from a 200 response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SstpResponse {
    /// The Server header, if present.
    pub server: Option<String>,
}

/// A response the client must treat as failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    /// Not parseable as an HTTP/1.x response.
    #[error("malformed HTTP response: {0}")]
    Malformed(String),
    /// Header block larger than [`MAX_HEADER_BYTES`].
    #[error("HTTP response header too large")]
    HeaderTooLarge,
    /// The server refused with this status.
    #[error("server answered HTTP {0}")]
    Status(u16),
}

/// Parse the server's response on the client.
pub fn parse_response(buf: &[u8]) -> Result<Parsed<SstpResponse>, ResponseError> {
    let window = &buf[..buf.len().min(MAX_HEADER_BYTES)];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let consumed = match resp.parse(window) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            if buf.len() >= MAX_HEADER_BYTES {
                return Err(ResponseError::HeaderTooLarge);
            }
            return Ok(Parsed::NeedMore);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(ResponseError::HeaderTooLarge),
        Err(e) => return Err(ResponseError::Malformed(e.to_string())),
    };
    let code = resp.code.unwrap_or(0);
    if code != 200 {
        return Err(ResponseError::Status(code));
    }
    let server = resp
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("Server"))
        .map(|h| header_str(h.value));
    Ok(Parsed::Done {
        value: SstpResponse { server },
        consumed,
    })
}
