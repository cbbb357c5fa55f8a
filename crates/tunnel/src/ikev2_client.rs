//! The client side of IKEv2 remote access (`ras connect ikev2://`): the
//! sans-IO `Ikev2Initiator` negotiates an IKE SA (pre-shared key, a client
//! certificate, or EAP-MSCHAPv2 after the server's certificate checked
//! out) and a
//! tunnel-mode ESP SA pair; whole IP packets then travel in ESP (next
//! header 4, RFC 4303 §2.6), as IP protocol 50 or in UDP on port 4500
//! behind a NAT (RFC 3948). The caller sees an IP packet pipe:
//! [`Ikev2Client::send`], [`Ikev2Client::recv`] and [`Ikev2Client::close`].
//! One tokio task owns the initiator, the sockets and the ESP SAs
//! (`ikev2_client_task.rs`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ipsec::esp::CipherSuite;
use ipsec::ikev2::traffic_selectors::TrafficSelector;
use ipsec::ikev2::{ClientAuth, Ikev2InitiatorConfig, ServerTrust};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use zeroize::Zeroizing;

use crate::direct_path::DirectPath;
use crate::ikev2_client_task::{run, TaskChannels};
use crate::l2tp_ipsec_client_task::Sockets;

/// IP packets queued each way; more are dropped (TCP retransmits).
const QUEUE: usize = 1024;
/// How long `close` waits for the Delete to go out.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How we authenticate.
#[derive(Clone)]
pub enum Ikev2Login {
    /// RFC 7296 §2.15: a pre-shared key both ways.
    SharedKey(Zeroizing<Vec<u8>>),
    /// RFC 7296 §2.16: EAP-MSCHAPv2 with a user name and password; the
    /// server proves itself with a certificate (`Ikev2ClientOptions::trust`).
    EapMsChapV2 {
        user: String,
        password: Zeroizing<String>,
    },
    /// RFC 7296 §2.15: AUTH signed with our certificate's key; the server
    /// must sign too (`Ikev2ClientOptions::trust`).
    Certificate(Arc<ipsec::ikev2::signature_auth::ServerCredential>),
}

/// Everything one connection needs.
#[derive(Clone)]
pub struct Ikev2ClientOptions {
    pub login: Ikev2Login,
    /// Our IKE identity (IDi): an address becomes ID_IPV4_ADDR, a name
    /// with '@' ID_RFC822_ADDR, anything else ID_FQDN (§3.5).
    pub identity: String,
    /// The CAs of the server's certificate and the name it must carry;
    /// required for EAP.
    pub trust: Option<ServerTrust>,
    /// The ESP suites to offer, in order (empty: the defaults).
    pub esp_suites: Vec<CipherSuite>,
    /// Bind ephemeral local ports rather than trying 500 and 4500 first.
    pub ephemeral_ports: bool,
    /// ESP in UDP 4500 even without a NAT (RFC 7296 §2.23).
    pub force_udp_encapsulation: bool,
}

/// Why the tunnel could not be set up.
#[derive(Debug, Error)]
pub enum Ikev2ClientError {
    #[error("cannot open the IKE sockets: {0}")]
    Io(#[from] std::io::Error),
    #[error("EAP needs the server's CA (--ca): the password must not go to a server that was not authenticated")]
    EapWithoutTrust,
    #[error("a client certificate needs the server's CA (--ca): the server must prove itself with its certificate too")]
    CertificateWithoutTrust,
    /// IKE failed; the reason is one line for the user.
    #[error("{0}")]
    Refused(String),
}

/// What was negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ikev2Connected {
    /// Our address towards the server.
    pub local: IpAddr,
    /// The address the server assigned (configuration payload, §3.15).
    pub virtual_ipv4: Option<Ipv4Addr>,
    pub dns: Vec<IpAddr>,
    /// What the server lets us reach (its narrowed TSr, §2.9).
    pub server_selectors: Vec<TrafficSelector>,
    pub esp_suite: String,
    pub nat: String,
    pub udp_encapsulated: bool,
    /// The subject of the server's certificate (empty with a PSK).
    pub server_subject: String,
}

/// A connected IKEv2 tunnel.
pub struct Ikev2Client {
    to_server: mpsc::Sender<Vec<u8>>,
    from_server: mpsc::Receiver<Vec<u8>>,
    close: Option<oneshot::Sender<()>>,
    /// Hands the host side to the task ([`Ikev2Client::go_direct`]).
    direct: Option<oneshot::Sender<DirectPath>>,
    ended: Arc<Mutex<Option<String>>>,
    task: JoinHandle<()>,
    connected: Ikev2Connected,
}

/// The IDi type of an identity text (§3.5).
fn identity_type(identity: &str) -> (u8, Vec<u8>) {
    use ipsec::ikev2::payloads::id_type;
    match identity.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => (id_type::IPV4_ADDR, a.octets().to_vec()),
        Ok(IpAddr::V6(a)) => (id_type::IPV6_ADDR, a.octets().to_vec()),
        Err(_) if identity.contains('@') => (id_type::RFC822_ADDR, identity.as_bytes().to_vec()),
        Err(_) => (id_type::FQDN, identity.as_bytes().to_vec()),
    }
}

impl Ikev2Client {
    /// Negotiates with the server at `server` (its UDP port 500) and
    /// returns once the first ESP SA pair is up.
    pub async fn connect(
        server: SocketAddr,
        options: Ikev2ClientOptions,
    ) -> Result<Ikev2Client, Ikev2ClientError> {
        let auth = match &options.login {
            Ikev2Login::SharedKey(k) => ClientAuth::SharedKey(k.clone()),
            Ikev2Login::EapMsChapV2 { .. } => {
                if options.trust.is_none() {
                    return Err(Ikev2ClientError::EapWithoutTrust);
                }
                // Unused: with `server_trust` the server's first AUTH must
                // be a certificate signature; the final one is keyed by
                // the MSK (§2.16).
                ClientAuth::Eap {
                    server_key: Zeroizing::new(Vec::new()),
                }
            }
            Ikev2Login::Certificate(credential) => {
                if options.trust.is_none() {
                    return Err(Ikev2ClientError::CertificateWithoutTrust);
                }
                ClientAuth::Certificate(credential.clone())
            }
        };
        let mut config = Ikev2InitiatorConfig::new(auth, &options.identity);
        (config.identity_type, config.identity) = match &options.login {
            // Without an identity, a certificate's subject DN (§3.5
            // ID_DER_ASN1_DN; what Windows' machine certificates send).
            Ikev2Login::Certificate(credential) if options.identity.is_empty() => (
                ipsec::ikev2::payloads::id_type::DER_ASN1_DN,
                credential.subject_dn().unwrap_or_default(),
            ),
            _ => identity_type(&options.identity),
        };
        config.server_trust = options.trust.clone();
        if !options.esp_suites.is_empty() {
            config.esp_suites = options.esp_suites.clone();
        }
        config.force_udp_encapsulation = options.force_udp_encapsulation;
        let sockets = Sockets::open(server, options.ephemeral_ports).await?;
        if let Some(plan) = crate::ikev2_client_nat::plan() {
            config.nat_probe = Some(plan.settings);
            config.known_nat_timeout = (plan.remembered)(sockets.local);
        }
        let (to_server, out_rx) = mpsc::channel(QUEUE);
        let (in_tx, from_server) = mpsc::channel(QUEUE);
        let (close_tx, close_rx) = oneshot::channel();
        let (direct_tx, direct_rx) = oneshot::channel();
        let (up_tx, up_rx) = oneshot::channel();
        let ended = Arc::new(Mutex::new(None));
        let eap = match &options.login {
            Ikev2Login::EapMsChapV2 { user, password } => Some((user.clone(), password.clone())),
            Ikev2Login::SharedKey(_) | Ikev2Login::Certificate(_) => None,
        };
        let task = tokio::spawn(run(
            server,
            config,
            eap,
            sockets,
            TaskChannels {
                out_rx,
                in_tx,
                close_rx,
                direct_rx: Some(direct_rx),
                up_tx: Some(up_tx),
                ended: ended.clone(),
            },
        ));
        match up_rx.await {
            Ok(Ok(connected)) => Ok(Ikev2Client {
                to_server,
                from_server,
                close: Some(close_tx),
                direct: Some(direct_tx),
                ended,
                task,
                connected,
            }),
            Ok(Err(reason)) => Err(Ikev2ClientError::Refused(reason)),
            Err(_) => Err(Ikev2ClientError::Refused(
                ended
                    .lock()
                    .ok()
                    .and_then(|e| e.clone())
                    .unwrap_or_else(|| "the IKE task ended".to_string()),
            )),
        }
    }

    pub fn connected(&self) -> &Ikev2Connected {
        &self.connected
    }

    /// Hands the host side to the tunnel's task, which then reads and
    /// writes the device itself ([`DirectPath`]): [`send`](Self::send)
    /// and [`recv`](Self::recv) carry nothing more, and `recv` returns
    /// None when the tunnel ends. Once only; false if the task has ended.
    pub fn go_direct(&mut self, path: DirectPath) -> bool {
        self.direct.take().is_some_and(|tx| tx.send(path).is_ok())
    }

    /// Queues one IP packet for the tunnel; false when it was dropped.
    pub fn send(&self, packet: Vec<u8>) -> bool {
        self.to_server.try_send(packet).is_ok()
    }

    /// The next IP packet from the tunnel; None once the tunnel has ended
    /// (then [`end_reason`](Self::end_reason) says why).
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.from_server.recv().await
    }

    /// The next IP packet from the tunnel if one is waiting already (to
    /// take a burst before one TUN write).
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        self.from_server.try_recv().ok()
    }

    /// Why the tunnel ended, once it has.
    pub fn end_reason(&self) -> Option<String> {
        self.ended.lock().ok().and_then(|e| e.clone())
    }

    /// Deletes the IKE SA (and with it the ESP SAs, §1.4.1): the server is
    /// told. Then returns.
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

impl Drop for Ikev2Client {
    fn drop(&mut self) {
        // Dropped without close: still tell the server, without waiting.
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ipsec::ikev2::payloads::id_type;

    #[test]
    fn identities_get_their_id_types() {
        assert_eq!(
            identity_type("10.0.0.2"),
            (id_type::IPV4_ADDR, vec![10, 0, 0, 2])
        );
        assert_eq!(
            identity_type("psk@raslab"),
            (id_type::RFC822_ADDR, b"psk@raslab".to_vec())
        );
        assert_eq!(
            identity_type("client.example"),
            (id_type::FQDN, b"client.example".to_vec())
        );
    }

    #[tokio::test]
    async fn eap_without_a_ca_is_refused_before_anything_is_sent() {
        let options = Ikev2ClientOptions {
            login: Ikev2Login::EapMsChapV2 {
                user: "alice".into(),
                password: Zeroizing::new("pw".into()),
            },
            identity: "alice".into(),
            trust: None,
            esp_suites: Vec::new(),
            ephemeral_ports: true,
            force_udp_encapsulation: false,
        };
        let e = Ikev2Client::connect("127.0.0.1:500".parse().unwrap(), options)
            .await
            .err()
            .expect("refused");
        assert!(matches!(e, Ikev2ClientError::EapWithoutTrust), "{e}");
    }
}
