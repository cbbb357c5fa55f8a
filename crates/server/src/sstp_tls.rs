//! The server's TLS for SSTP sessions, over rustls's unbuffered API: the
//! connection owns its record buffers, so an idle session holds none.
//!
//! rustls's buffered `ServerConnection` (what tokio-rustls drives) keeps a
//! read buffer of at least 4 KiB for the connection's whole life
//! (`DeframerVecBuffer::prepare_read` never lets it below that): a fifth of
//! an idle SSTP session's memory, for thousands of sessions that send an
//! echo a minute (issue 18). Here the ciphertext in both directions lives
//! in buffers of ours, sized to what is in flight, and given back once a
//! small message (an echo, a PPP keepalive) follows a burst and the
//! socket has nothing more.
//!
//! One task drives a stream: `tokio::io::split` may share it between a
//! reader and a writer of that task, as the SSTP session loop does.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::{Accepted, Acceptor, UnbufferedServerConnection};
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Ciphertext is read from the socket this much at a time: one whole TLS
/// record of the largest size with its header and expansion.
const READ_STEP: usize = 16 * 1024 + 512;
/// RFC 8446 §5.2 and RFC 5246 §6.2.3: a record is at most 2^14 + 2,048
/// bytes after its 5-byte header, so no more is ever held waiting for the
/// rest of one.
const RECORD_LIMIT: usize = 5 + (1 << 14) + 2048;
/// A handshake message may span records; rustls's buffered connection
/// holds at most 64 KiB of one, and so does this (certificate chains).
const HANDSHAKE_LIMIT: usize = 0xffff + RECORD_LIMIT;
/// Plaintext taken per write: four full records, one socket write.
const WRITE_STEP: usize = 4 * (1 << 14);
/// A buffer is given back when it drains after a transfer this small (an
/// echo or a keepalive rather than traffic), so busy sessions keep theirs
/// and idle ones hold none.
const SMALL_TRANSFER: usize = 2048;
/// The ClientHello is read this much at a time.
const HELLO_STEP: usize = 2048;

/// What makes a TLS failure an `io::Error` the listener can classify
/// (`metrics::tls_failure_reason` looks for the rustls error inside).
fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Read the ClientHello (its bytes are kept to be handed to the
/// connection chosen for it), so the caller can pick a configuration from
/// it (ACME TLS-ALPN-01, RFC 8737). A ClientHello that does not parse is
/// answered with rustls's alert.
pub async fn read_client_hello<S>(io: &mut S) -> io::Result<(Accepted, Vec<u8>)>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut hello = Vec::new();
    let mut chunk = [0u8; HELLO_STEP];
    loop {
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        hello.extend_from_slice(&chunk[..n]);
        let mut rest = &chunk[..n];
        while !rest.is_empty() {
            // Fails once more than a handshake message's limit waits.
            if acceptor.read_tls(&mut rest)? == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => return Ok((accepted, hello)),
            Ok(None) => {}
            Err((e, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = io.write_all(&out).await;
                return Err(tls_error(e));
            }
        }
    }
}

/// A server TLS stream over `io`.
pub struct ServerTls<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// Ciphertext from the peer that rustls has not taken yet.
    incoming: Vec<u8>,
    incoming_used: usize,
    /// Ciphertext for the peer: `outgoing[out_start..out_end]`.
    outgoing: Vec<u8>,
    out_start: usize,
    out_end: usize,
    /// Plaintext from the peer the reader had no room for yet.
    plain: Vec<u8>,
    plain_pos: usize,
    /// The last socket read and the last plaintext written, to tell a
    /// burst from a keepalive (`SMALL_TRANSFER`).
    last_read: usize,
    last_write: usize,
    /// The peer sent close_notify or closed its side.
    read_closed: bool,
    close_notify_sent: bool,
}

/// Where `drive` stopped.
#[derive(Debug, PartialEq, Eq)]
enum Settled {
    /// Nothing more happens without bytes from the peer.
    NeedsInput,
    /// Both sides have sent close_notify.
    Closed,
}

impl<S: AsyncRead + AsyncWrite + Unpin> ServerTls<S> {
    /// Run the handshake with `config`; `received` holds what was already
    /// read from `io` (the ClientHello, `read_client_hello`).
    pub async fn accept(
        io: S,
        config: Arc<rustls::ServerConfig>,
        received: Vec<u8>,
    ) -> io::Result<Self> {
        let conn = UnbufferedServerConnection::new(config).map_err(tls_error)?;
        let incoming_used = received.len();
        let mut tls = ServerTls {
            io,
            conn,
            incoming: received,
            incoming_used,
            outgoing: Vec::new(),
            out_start: 0,
            out_end: 0,
            plain: Vec::new(),
            plain_pos: 0,
            last_read: 0,
            last_write: 0,
            read_closed: false,
            close_notify_sent: false,
        };
        loop {
            let settled = match tls.drive(&mut ReadBuf::new(&mut []), &[], false) {
                Ok(settled) => settled,
                Err(e) => {
                    tls.send_alert().await;
                    return Err(e);
                }
            };
            std::future::poll_fn(|cx| tls.poll_send_all(cx)).await?;
            if !tls.conn.is_handshaking() {
                return Ok(tls);
            }
            if settled == Settled::Closed || tls.read_closed {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            if std::future::poll_fn(|cx| tls.poll_fill(cx)).await? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// After a failed handshake: the alert rustls queued, if the socket
    /// takes it at once (the peer learns why; nothing waits on it).
    async fn send_alert(&mut self) {
        let _ = self.drive(&mut ReadBuf::new(&mut []), &[], false);
        if self.out_start < self.out_end {
            let _ = tokio::time::timeout(
                std::time::Duration::from_millis(100),
                self.io
                    .write_all(&self.outgoing[self.out_start..self.out_end]),
            )
            .await;
        }
    }

    /// Feed rustls what `incoming` holds until it needs more from the
    /// peer: plaintext goes to `read_into` and what does not fit to
    /// `plain`; handshake messages and alerts to `outgoing`. With
    /// `write_from`, its plaintext is encrypted into `outgoing` (all of
    /// it, or nothing); with `close`, a close_notify follows.
    fn drive(
        &mut self,
        read_into: &mut ReadBuf<'_>,
        write_from: &[u8],
        close: bool,
    ) -> io::Result<Settled> {
        let mut encrypted = write_from.is_empty();
        let mut close_pending = close && !self.close_notify_sent;
        loop {
            let UnbufferedStatus { mut discard, state } = self
                .conn
                .process_tls_records(&mut self.incoming[..self.incoming_used]);
            let settled = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut records) => {
                    while let Some(record) = records.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        let fits = record.payload.len().min(read_into.remaining());
                        read_into.put_slice(&record.payload[..fits]);
                        self.plain.extend_from_slice(&record.payload[fits..]);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut message) => {
                    let outgoing = &mut self.outgoing;
                    let end = &mut self.out_end;
                    grow_and_retry(outgoing, end, |out| match message.encode(out) {
                        Ok(n) => Ok(Ok(n)),
                        Err(EncodeError::InsufficientSize(short)) => Ok(Err(short.required_size)),
                        Err(e) => Err(io::Error::other(e)),
                    })?;
                    None
                }
                // Encoded records sit in `outgoing` and go out in order
                // before anything encoded after them.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Settled::NeedsInput),
                ConnectionState::PeerClosed => {
                    self.read_closed = true;
                    None
                }
                ConnectionState::Closed => {
                    self.read_closed = true;
                    Some(Settled::Closed)
                }
                ConnectionState::WriteTraffic(mut traffic) => {
                    let outgoing = &mut self.outgoing;
                    let end = &mut self.out_end;
                    if !encrypted {
                        grow_and_retry(outgoing, end, |out| {
                            encrypt_result(traffic.encrypt(write_from, out))
                        })?;
                        encrypted = true;
                    }
                    if close_pending {
                        grow_and_retry(outgoing, end, |out| {
                            encrypt_result(traffic.queue_close_notify(out))
                        })?;
                        close_pending = false;
                        self.close_notify_sent = true;
                    }
                    Some(Settled::NeedsInput)
                }
                // Early data is never enabled (`max_early_data_size` 0).
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "unexpected TLS early data",
                    ))
                }
            };
            if discard > 0 {
                self.incoming.copy_within(discard..self.incoming_used, 0);
                self.incoming_used -= discard;
            }
            if let Some(settled) = settled {
                if !encrypted {
                    // Still handshaking or closed: nothing may be sent.
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "TLS connection not open for data",
                    ));
                }
                return Ok(settled);
            }
        }
    }

    /// Read more ciphertext from the socket into `incoming`.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let limit = if self.conn.is_handshaking() {
            HANDSHAKE_LIMIT
        } else {
            RECORD_LIMIT
        };
        if self.incoming_used >= limit {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "TLS record larger than the protocol allows",
            )));
        }
        if self.incoming.len() - self.incoming_used < READ_STEP / 2 {
            let size = (self.incoming_used + READ_STEP).min(limit);
            self.incoming.resize(size, 0);
        }
        let mut buf = ReadBuf::new(&mut self.incoming[self.incoming_used..]);
        match Pin::new(&mut self.io).poll_read(cx, &mut buf) {
            Poll::Ready(Ok(())) => {
                let n = buf.filled().len();
                self.incoming_used += n;
                self.last_read = n;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                if self.incoming_used == 0 && self.last_read <= SMALL_TRANSFER {
                    self.incoming = Vec::new();
                }
                Poll::Pending
            }
        }
    }

    /// Write all of `outgoing` to the socket.
    fn poll_send_all(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_start < self.out_end {
            let pending = &self.outgoing[self.out_start..self.out_end];
            match ready!(Pin::new(&mut self.io).poll_write(cx, pending)) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => self.out_start += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.out_start = 0;
        self.out_end = 0;
        if self.last_write <= SMALL_TRANSFER {
            self.outgoing = Vec::new();
        }
        Poll::Ready(Ok(()))
    }

    /// The bytes this stream holds in its buffers now (for tests and
    /// figures: none while idle).
    pub fn buffered_capacity(&self) -> usize {
        self.incoming.capacity() + self.outgoing.capacity() + self.plain.capacity()
    }
}

/// Run `encode` into the free end of `buf`, growing it by what it says it
/// is short of.
fn grow_and_retry(
    buf: &mut Vec<u8>,
    end: &mut usize,
    mut encode: impl FnMut(&mut [u8]) -> io::Result<Result<usize, usize>>,
) -> io::Result<()> {
    let n = match encode(&mut buf[*end..])? {
        Ok(n) => n,
        Err(required) => {
            buf.resize(*end + required, 0);
            match encode(&mut buf[*end..])? {
                Ok(n) => n,
                Err(_) => return Err(io::Error::other("TLS output buffer sizing")),
            }
        }
    };
    *end += n;
    Ok(())
}

fn encrypt_result(r: Result<usize, EncryptError>) -> io::Result<Result<usize, usize>> {
    match r {
        Ok(n) => Ok(Ok(n)),
        Err(EncryptError::InsufficientSize(short)) => Ok(Err(short.required_size)),
        Err(e) => Err(io::Error::other(e)),
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for ServerTls<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.plain_pos < this.plain.len() {
                let fits = (this.plain.len() - this.plain_pos).min(buf.remaining());
                buf.put_slice(&this.plain[this.plain_pos..this.plain_pos + fits]);
                this.plain_pos += fits;
                if this.plain_pos == this.plain.len() {
                    this.plain = Vec::new();
                    this.plain_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            let settled = this.drive(buf, &[], false)?;
            // Alerts and key updates rustls queued go out without waiting
            // on them; the rest is sent with the next write or flush.
            if let Poll::Ready(Err(e)) = this.poll_send_all(cx) {
                return Poll::Ready(Err(e));
            }
            if buf.filled().len() > before || buf.remaining() == 0 {
                return Poll::Ready(Ok(()));
            }
            if settled == Settled::Closed || this.read_closed {
                return Poll::Ready(Ok(()));
            }
            match ready!(this.poll_fill(cx))? {
                0 => {
                    this.read_closed = true;
                    return Poll::Ready(Ok(()));
                }
                _ => continue,
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for ServerTls<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // What an earlier write encrypted goes first, so no more than one
        // step of ciphertext is ever held.
        ready!(this.poll_send_all(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.close_notify_sent {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let take = &buf[..buf.len().min(WRITE_STEP)];
        this.drive(&mut ReadBuf::new(&mut []), take, false)?;
        this.last_write = take.len();
        // Sent now as far as the socket takes it; the rest goes first with
        // the next write or flush.
        if let Poll::Ready(Err(e)) = this.poll_send_all(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(take.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_all(cx))?;
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.close_notify_sent {
            ready!(this.poll_send_all(cx))?;
            this.last_write = 0;
            this.drive(&mut ReadBuf::new(&mut []), &[], true)?;
        }
        ready!(this.poll_send_all(cx))?;
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::DuplexStream;
    use tokio_rustls::client::TlsStream as ClientTls;

    use super::*;
    use crate::cert::ServerCertificate;
    use crate::state::StateDir;

    struct Fixture {
        _dir: tempfile::TempDir,
        server: Arc<rustls::ServerConfig>,
        roots: rustls::RootCertStore,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let state = StateDir::open(dir.path()).unwrap();
        let cert = ServerCertificate::load_or_create_self_signed(&state, "vpn.test", &[]).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.chain()[0].clone()).unwrap();
        Fixture {
            _dir: dir,
            server: cert.rustls_config().unwrap(),
            roots,
        }
    }

    fn client_config(
        f: &Fixture,
        version: &'static rustls::SupportedProtocolVersion,
    ) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_protocol_versions(&[version])
                .unwrap()
                .with_root_certificates(f.roots.clone())
                .with_no_client_auth(),
        )
    }

    /// A connected pair over an in-memory pipe of `pipe` bytes: small
    /// pipes cut records and handshake flights at every byte count.
    async fn connect(
        f: &Fixture,
        version: &'static rustls::SupportedProtocolVersion,
        pipe: usize,
    ) -> (ServerTls<DuplexStream>, ClientTls<DuplexStream>) {
        let (c, mut s) = tokio::io::duplex(pipe);
        let config = f.server.clone();
        let server = tokio::spawn(async move {
            let (_, received) = read_client_hello(&mut s).await?;
            ServerTls::accept(s, config, received).await
        });
        let connector = tokio_rustls::TlsConnector::from(client_config(f, version));
        let name = rustls::pki_types::ServerName::try_from("vpn.test").unwrap();
        let client = connector.connect(name, c).await.unwrap();
        (server.await.unwrap().unwrap(), client)
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    /// Data both ways through small pipes and odd read sizes arrives whole
    /// and in order, in TLS 1.2 and 1.3.
    #[tokio::test]
    async fn carries_data_both_ways_in_both_versions() {
        let f = fixture();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            for pipe in [1 << 20, 4096, 333] {
                let (mut server, mut client) = connect(&f, version, pipe).await;
                let up = pattern(200_000);
                let down: Vec<u8> = pattern(150_000).into_iter().rev().collect();
                let (up2, down2) = (up.clone(), down.clone());
                let writer = tokio::spawn(async move {
                    client.write_all(&up2).await.unwrap();
                    client.flush().await.unwrap();
                    let mut got = vec![0u8; down2.len()];
                    client.read_exact(&mut got).await.unwrap();
                    assert!(got == down2, "server to client, {version:?} pipe {pipe}");
                    client
                });
                let mut got = Vec::new();
                let mut chunk = vec![0u8; 777];
                while got.len() < up.len() {
                    let n = server.read(&mut chunk).await.unwrap();
                    assert!(n > 0, "early end");
                    got.extend_from_slice(&chunk[..n]);
                }
                assert!(got == up, "client to server, {version:?} pipe {pipe}");
                server.write_all(&down).await.unwrap();
                server.flush().await.unwrap();
                writer.await.unwrap();
            }
        }
    }

    /// Reading nothing more than whether the peer sent anything
    /// (`poll_read` once, pending).
    async fn read_pends(server: &mut ServerTls<DuplexStream>) -> bool {
        let mut buf = [0u8; 64];
        std::future::poll_fn(|cx| {
            let mut rb = ReadBuf::new(&mut buf);
            Poll::Ready(Pin::new(&mut *server).poll_read(cx, &mut rb).is_pending())
        })
        .await
    }

    /// An idle session holds no TLS buffer: after a burst, the first small
    /// message each way gives them back (issue 18: rustls's buffered
    /// connection keeps 4 KiB for good).
    #[tokio::test]
    async fn an_idle_connection_holds_no_buffers() {
        let f = fixture();
        for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
            let (mut server, mut client) = connect(&f, version, 1 << 20).await;
            // A burst each way: the buffers grow to whole records.
            client.write_all(&pattern(100_000)).await.unwrap();
            client.flush().await.unwrap();
            let mut got = vec![0u8; 100_000];
            server.read_exact(&mut got).await.unwrap();
            server.write_all(&pattern(100_000)).await.unwrap();
            server.flush().await.unwrap();
            client.read_exact(&mut got).await.unwrap();
            // Then a keepalive each way, and nothing.
            client.write_all(b"echo").await.unwrap();
            client.flush().await.unwrap();
            let mut small = [0u8; 4];
            server.read_exact(&mut small).await.unwrap();
            server.write_all(b"echo").await.unwrap();
            server.flush().await.unwrap();
            client.read_exact(&mut small).await.unwrap();
            assert!(read_pends(&mut server).await);
            assert_eq!(server.buffered_capacity(), 0, "{version:?}");
        }
    }

    /// The peer's close_notify ends the stream; ours reaches the peer.
    #[tokio::test]
    async fn close_notify_both_ways() {
        let f = fixture();
        let (mut server, mut client) = connect(&f, &rustls::version::TLS13, 1 << 16).await;
        client.write_all(b"last words").await.unwrap();
        client.shutdown().await.unwrap();
        let mut got = Vec::new();
        server.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"last words");
        server.shutdown().await.unwrap();
        let mut rest = Vec::new();
        // A clean end: rustls's client reports a close without
        // close_notify as an error.
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(server.write_all(b"more").await.is_err());
    }

    /// Bytes that are not a ClientHello fail with rustls's error inside,
    /// so the listener counts them as malformed, and an alert goes back.
    #[tokio::test]
    async fn garbage_instead_of_a_client_hello() {
        let (mut c, mut s) = tokio::io::duplex(1 << 16);
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let e = read_client_hello(&mut s).await.unwrap_err();
        assert_eq!(crate::metrics::tls_failure_reason(&e), "malformed");
        let mut alert = [0u8; 7];
        c.read_exact(&mut alert).await.unwrap();
        assert_eq!(alert[0], 21, "an alert record");
    }

    /// A peer that stops in the middle of its handshake fails the accept
    /// as closed, whatever byte it stops at.
    #[tokio::test]
    async fn a_handshake_cut_short_is_closed() {
        let f = fixture();
        // Nothing at all.
        let (c, mut s) = tokio::io::duplex(1 << 16);
        drop(c);
        assert_eq!(
            read_client_hello(&mut s).await.unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        // A real ClientHello and then nothing: the accept waits for the
        // client's Finished and ends when the client goes.
        let (c, mut s) = tokio::io::duplex(1 << 16);
        let config = f.server.clone();
        let server = tokio::spawn(async move {
            let (_, received) = read_client_hello(&mut s).await?;
            ServerTls::accept(s, config, received).await.map(|_| ())
        });
        let mut conn = rustls::ClientConnection::new(
            client_config(&f, &rustls::version::TLS13),
            rustls::pki_types::ServerName::try_from("vpn.test").unwrap(),
        )
        .unwrap();
        let mut hello = Vec::new();
        conn.write_tls(&mut hello).unwrap();
        let mut c = c;
        c.write_all(&hello).await.unwrap();
        let mut answer = [0u8; 256];
        let n = c.read(&mut answer).await.unwrap();
        assert!(n > 0, "the server answered the ClientHello");
        drop(c);
        let e = server.await.unwrap().unwrap_err();
        assert_eq!(crate::metrics::tls_failure_reason(&e), "closed");
    }

    /// A record header that claims more than a TLS record may hold ends
    /// the connection instead of buffering what follows.
    #[tokio::test]
    async fn an_oversized_record_is_refused() {
        let f = fixture();
        let (server, client) = connect(&f, &rustls::version::TLS12, 1 << 20).await;
        let (mut raw, _) = client.into_inner();
        let mut server = server;
        // Application data, TLS 1.2, length 0xffff.
        let mut bogus = vec![23u8, 3, 3, 0xff, 0xff];
        bogus.extend(std::iter::repeat_n(0u8, 40_000));
        raw.write_all(&bogus).await.unwrap();
        let mut buf = [0u8; 64];
        let e = server.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert!(server.buffered_capacity() <= HANDSHAKE_LIMIT);
    }
}
