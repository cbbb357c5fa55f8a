//! The client end of the admin API: one HTTP/1.1 request per connection
//! over the Unix socket, blocking (the CLI has no runtime). Small on
//! purpose: the server is ours, so only what it sends is read
//! (`Content-Length` or chunked bodies, or up to the end of the stream).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most a response may hold (a status with many sessions is far less).
const MAX_BODY: usize = 64 << 20;

/// Why a request to the admin API failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminClientError {
    #[error("cannot reach the server's admin socket {}: {source} (is `ras server` running with this configuration? root or the `ras` group needed)", path.display())]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("admin socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("admin socket {}: not an HTTP answer: {what}", path.display())]
    Malformed { what: String, path: PathBuf },
    /// The server answered with an error (its `error` text).
    #[error("{message}")]
    Status { status: u16, message: String },
}

/// An answer: status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends `method path` to the socket at `socket` and reads the answer; a
/// status other than 2xx is an error carrying the server's message.
pub fn request(socket: &Path, method: &str, path: &str) -> Result<Answer, AdminClientError> {
    let io_err = |source| AdminClientError::Io {
        path: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|source| AdminClientError::Connect {
        path: socket.to_owned(),
        source,
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(io_err)?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: ras\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .map_err(io_err)?;
    let answer = read_answer(BufReader::new(stream)).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => AdminClientError::Malformed {
            what: e.to_string(),
            path: socket.to_owned(),
        },
        _ => io_err(e),
    })?;
    if !(200..300).contains(&answer.status) {
        let message = serde_json::from_slice::<serde_json::Value>(&answer.body)
            .ok()
            .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
            .unwrap_or_else(|| format!("the server answered {}", answer.status));
        return Err(AdminClientError::Status {
            status: answer.status,
            message,
        });
    }
    Ok(answer)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads a status line, headers and body from `r`.
pub fn read_answer(mut r: impl BufRead) -> io::Result<Answer> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = None;
    let mut chunked = false;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(bad("the headers do not end"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(bad("a header without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<usize>().map_err(|_| bad("Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.read_line(&mut line)?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| bad("chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(bad("the answer is too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            line.clear();
            r.read_line(&mut line)?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(bad("the answer is too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.take(MAX_BODY as u64).read_to_end(&mut body)?;
    }
    Ok(Answer { status, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_length_chunked_and_until_the_end() {
        let a =
            read_answer(&b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello extra"[..]).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (200, &b"hello"[..]));
        let a = read_answer(
            &b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n"[..],
        )
        .unwrap();
        assert_eq!((a.status, a.body.as_slice()), (404, &b"abcde"[..]));
        let a = read_answer(&b"HTTP/1.0 200 OK\r\n\r\nall of it"[..]).unwrap();
        assert_eq!(a.body, b"all of it");
        assert!(read_answer(&b"SSH-2.0-OpenSSH\r\n"[..]).is_err());
        assert!(read_answer(&b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"[..]).is_err());
    }
}
