//! The client side of L2TP/IPsec (RFC 3193): an IKEv1 initiator negotiates
//! transport-mode ESP with the server, then L2TP datagrams (UDP 1701 both
//! ways) travel in ESP, as IP protocol 50 or in UDP on port 4500 behind a
//! NAT (RFC 3948). The L2TP LAC driver sees a datagram pipe:
//! [`IpsecL2tpClient::send`], [`IpsecL2tpClient::recv`], and
//! [`IpsecL2tpClient::close`]. One tokio task owns the sans-IO initiator,
//! the sockets and the ESP SAs (`l2tp_ipsec_client_task.rs`).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipsec::ike_crypto::DhGroup;
use ipsec::ikev1::InitiatorConfig;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::l2tp_ipsec_client_task::{run, Sockets, TaskChannels, SETTLE};

/// L2TP datagrams queued each way; more are dropped (L2TP retransmits its
/// control messages, and PPP tolerates loss).
const QUEUE: usize = 1024;
/// How long `close` waits for the Deletes to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Choices beyond the pre-shared key.
#[derive(Clone, Debug, Default)]
pub struct IpsecClientOptions {
    /// UDP-encapsulate ESP even without a NAT (RFC 3948), e.g. where
    /// raw ESP is filtered or we lack CAP_NET_RAW.
    pub force_udp_encapsulation: bool,
    /// Quick Mode with perfect forward secrecy in this group.
    pub pfs_group: Option<DhGroup>,
    /// The ESP SA lifetime we propose (default 1 hour).
    pub esp_lifetime: Option<Duration>,
    /// The server's NAT-T port (default 4500).
    pub nat_t_port: Option<u16>,
    /// Bind ephemeral local ports rather than trying 500 and 4500 first.
    pub ephemeral_ports: bool,
    /// Authenticate with this certificate and key (and check the server's
    /// against its CAs) instead of the pre-shared key.
    pub certificates: Option<ipsec::ikev1::certificates::CertificateAuth>,
    /// The ESP suites to offer, in order (empty: the defaults).
    pub esp_suites: Vec<ipsec::esp::CipherSuite>,
}

/// Why the IPsec side could not be set up.
#[derive(Debug, Error)]
pub enum IpsecClientError {
    #[error("cannot open the IKE sockets: {0}")]
    Io(#[from] std::io::Error),
    /// IKE failed; the reason is one line for the user.
    #[error("{0}")]
    Refused(String),
}

/// What was negotiated, for the caller's log and the L2TP side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpsecConnected {
    /// Our address towards the server (the L2TP tunnel's local address).
    pub local: IpAddr,
    pub ike_suite: String,
    pub esp_suite: String,
    pub nat: String,
    pub udp_encapsulated: bool,
}

/// A connected L2TP/IPsec transport.
pub struct IpsecL2tpClient {
    to_server: mpsc::Sender<Vec<u8>>,
    from_server: mpsc::Receiver<Vec<u8>>,
    close: Option<oneshot::Sender<()>>,
    ended: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
    connected: IpsecConnected,
}

impl IpsecL2tpClient {
    /// Negotiates IPsec with the server at `server` (its UDP port 500) and
    /// returns once the first ESP SA pair is up.
    pub async fn connect(
        server: SocketAddr,
        psk: &[u8],
        options: IpsecClientOptions,
    ) -> Result<IpsecL2tpClient, IpsecClientError> {
        let mut config = match options.certificates.clone() {
            Some(c) => InitiatorConfig::with_certificates(c),
            None => InitiatorConfig::new(psk),
        };
        config.force_udp_encapsulation = options.force_udp_encapsulation;
        config.pfs_group = options.pfs_group;
        if !options.esp_suites.is_empty() {
            config.esp_suites = options.esp_suites.clone();
        }
        if let Some(life) = options.esp_lifetime {
            config.esp_lifetime = life;
        }
        if let Some(port) = options.nat_t_port {
            config.nat_t_port = port;
        }
        Self::connect_inner(server, config, options.ephemeral_ports).await
    }

    /// As [`connect`](Self::connect), with every initiator setting.
    pub async fn connect_with(
        server: SocketAddr,
        config: InitiatorConfig,
        ephemeral_ports: bool,
    ) -> Result<IpsecL2tpClient, IpsecClientError> {
        Self::connect_inner(server, config, ephemeral_ports).await
    }

    async fn connect_inner(
        server: SocketAddr,
        mut config: InitiatorConfig,
        ephemeral_ports: bool,
    ) -> Result<IpsecL2tpClient, IpsecClientError> {
        let sockets = Sockets::open(server, ephemeral_ports).await?;
        if !sockets.has_raw_esp() && !config.force_udp_encapsulation {
            // Without CAP_NET_RAW raw ESP is impossible: make the server
            // see a NAT so both sides use UDP encapsulation.
            tracing::info!("IPsec: no raw ESP socket (needs CAP_NET_RAW); using UDP encapsulation");
            config.force_udp_encapsulation = true;
        }
        let (to_server, out_rx) = mpsc::channel(QUEUE);
        let (in_tx, from_server) = mpsc::channel(QUEUE);
        let (close_tx, close_rx) = oneshot::channel();
        let (up_tx, up_rx) = oneshot::channel();
        let ended = Arc::new(Mutex::new(None));
        let task = tokio::spawn(run(
            server,
            config,
            sockets,
            TaskChannels {
                out_rx,
                in_tx,
                close_rx,
                up_tx: Some(up_tx),
                ended: ended.clone(),
            },
        ));
        match up_rx.await {
            Ok(Ok(connected)) => {
                // Give the server time to install its inbound SA, so the
                // caller's first packet is not lost.
                tokio::time::sleep(SETTLE).await;
                Ok(IpsecL2tpClient {
                    to_server,
                    from_server,
                    close: Some(close_tx),
                    ended,
                    task,
                    connected,
                })
            }
            Ok(Err(reason)) => Err(IpsecClientError::Refused(reason)),
            Err(_) => Err(IpsecClientError::Refused(
                ended
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "the IPsec task ended".to_string()),
            )),
        }
    }

    pub fn connected(&self) -> &IpsecConnected {
        &self.connected
    }

    /// Queues one L2TP datagram (UDP payload) for the server; false when
    /// it was dropped (queue full or IPsec ended).
    pub fn send(&self, datagram: Vec<u8>) -> bool {
        self.to_server.try_send(datagram).is_ok()
    }

    /// The next L2TP datagram from the server; None once IPsec has ended
    /// (then [`end_reason`](Self::end_reason) says why).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.from_server.recv().await
    }

    /// The next L2TP datagram from the server if one is waiting now.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.from_server.try_recv().ok()
    }

    /// Why IPsec ended, once it has.
    pub fn end_reason(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    /// Deletes the ESP SAs and the IKE SA (the server is told), then returns.
    pub async fn close(mut self) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        if tokio::time::timeout(CLOSE_WAIT, &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for IpsecL2tpClient {
    fn drop(&mut self) {
        // Dropped without close: still tell the server, without waiting.
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}
