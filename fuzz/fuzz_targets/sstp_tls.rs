//! The SSTP listener's TLS stream (`server::sstp_tls`): whatever a client
//! sends, cut at any byte, the ClientHello read, the handshake and the
//! record reads end in a value or an error, never a panic, a hang or a
//! buffer beyond the protocol's limits.
//!
//! Input: byte 0 picks how the peer's bytes are cut (the pipe's size) and
//! whether a real TLS 1.2 or 1.3 ClientHello goes first (so the fuzzer
//! reaches the states after it: TLS 1.2's ClientKeyExchange is plaintext);
//! the rest is what the peer sends.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use server::sstp_tls::{read_client_hello, ServerTls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The server's configuration, and roots that trust its certificate (for
/// the client that writes the ClientHellos).
fn configs() -> &'static (Arc<rustls::ServerConfig>, rustls::RootCertStore) {
    static CONFIGS: OnceLock<(Arc<rustls::ServerConfig>, rustls::RootCertStore)> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("ras-fuzz-sstp-tls-{}", std::process::id()));
        let state = server::state::StateDir::open(&dir).unwrap();
        let cert =
            server::cert::ServerCertificate::load_or_create_self_signed(&state, "vpn.test", &[])
                .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.chain()[0].clone()).unwrap();
        (cert.rustls_config().unwrap(), roots)
    })
}

/// A real ClientHello of the given version.
fn client_hello(version: &'static rustls::SupportedProtocolVersion) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(configs().1.clone())
        .with_no_client_auth();
    let mut conn = rustls::ClientConnection::new(
        Arc::new(config),
        rustls::pki_types::ServerName::try_from("vpn.test").unwrap(),
    )
    .unwrap();
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    hello
}

fn hellos() -> &'static [Vec<u8>; 2] {
    static HELLOS: OnceLock<[Vec<u8>; 2]> = OnceLock::new();
    HELLOS.get_or_init(|| {
        [
            client_hello(&rustls::version::TLS12),
            client_hello(&rustls::version::TLS13),
        ]
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let pipe = 1 + (mode >> 2) as usize * 64;
    let mut sent = Vec::new();
    match mode & 3 {
        1 => sent.extend_from_slice(&hellos()[0]),
        2 => sent.extend_from_slice(&hellos()[1]),
        _ => {}
    }
    sent.extend_from_slice(rest);
    let config = configs().0.clone();
    runtime().block_on(async move {
        let (peer, mut server_side) = tokio::io::duplex(pipe);
        let client = tokio::spawn(async move {
            // The peer reads the server's answers while it sends, as a TCP
            // peer's buffers would let it: the pipe is as small as a byte.
            let (mut from_server, mut to_server) = tokio::io::split(peer);
            let send = async {
                let _ = to_server.write_all(&sent).await;
                let _ = to_server.shutdown().await;
            };
            let drain = async {
                let mut sink = [0u8; 4096];
                while matches!(from_server.read(&mut sink).await, Ok(n) if n > 0) {}
            };
            tokio::join!(send, drain);
        });
        let served = async {
            let (_, received) = read_client_hello(&mut server_side).await?;
            let mut tls = ServerTls::accept(server_side, config, received).await?;
            let mut buf = [0u8; 512];
            while tls.read(&mut buf).await? > 0 {}
            std::io::Result::Ok(())
        };
        let bounded = tokio::time::timeout(std::time::Duration::from_secs(5), served).await;
        assert!(bounded.is_ok(), "the server side did not end");
        client.abort();
    });
});
