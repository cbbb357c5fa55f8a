//! The tokio driver of one sans-IO [`radius::RadiusClient`]: a UDP socket,
//! the client's timers, and a queue of callers waiting for answers.
//!
//! One driver serves authentication (the servers' auth ports) and another
//! accounting (their accounting ports). Datagrams from any address that is
//! not one of the configured servers are dropped before parsing (RFC 2865
//! §3: a reply must come from the server the request went to).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use radius::{ClientConfig, Event, Outcome, RadiusClient, Request, ServerId, TxId};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// Why a request got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadiusError {
    #[error("no RADIUS server answered")]
    Timeout,
    #[error("the RADIUS reply could not be read: {0}")]
    Malformed(String),
    #[error("the request could not be sent: {0}")]
    Send(String),
    #[error("the RADIUS client has stopped")]
    Stopped,
}

/// An answer and which server gave it.
#[derive(Debug, Clone)]
pub struct Answer {
    pub outcome: Outcome,
    pub server: SocketAddr,
}

type Reply = oneshot::Sender<Result<Answer, RadiusError>>;

/// A handle to a running driver; cheap to clone.
#[derive(Clone)]
pub struct RadiusHandle {
    tx: mpsc::Sender<(Request, Reply)>,
    /// The servers, primary first, and whether each is down (the
    /// driver's ServerDown/ServerUp events), for the admin API.
    servers: Arc<[(SocketAddr, AtomicBool)]>,
    /// Where request results and latencies are counted, and as what
    /// role ("auth", "acct").
    observer: Option<(Arc<crate::metrics::Metrics>, &'static str)>,
}

/// Largest RADIUS packet (RFC 2865 §3).
const MAX_PACKET: usize = 4096;
/// Requests waiting for the driver; beyond this callers wait (back-pressure).
const QUEUE: usize = 1024;

impl RadiusHandle {
    /// Starts a driver for `servers` (primary first). `config` carries
    /// their secrets in the same order.
    pub async fn start(
        servers: Vec<SocketAddr>,
        config: ClientConfig,
    ) -> std::io::Result<RadiusHandle> {
        let bind: SocketAddr = if servers.first().is_some_and(|s| s.is_ipv6()) {
            "[::]:0".parse().expect("literal")
        } else {
            "0.0.0.0:0".parse().expect("literal")
        };
        let socket = UdpSocket::bind(bind).await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        let states: Arc<[(SocketAddr, AtomicBool)]> = servers
            .iter()
            .map(|s| (*s, AtomicBool::new(false)))
            .collect();
        let driver = Driver {
            socket,
            servers,
            client: RadiusClient::new(config),
            waiting: HashMap::new(),
            states: states.clone(),
        };
        tokio::spawn(driver.run(rx));
        Ok(RadiusHandle {
            tx,
            servers: states,
            observer: None,
        })
    }

    /// The same handle, counting each request's result and latency in
    /// `metrics` under `role`.
    pub fn observed(mut self, metrics: Arc<crate::metrics::Metrics>, role: &'static str) -> Self {
        self.observer = Some((metrics, role));
        self
    }

    /// The servers, primary first, each with whether it is up.
    pub fn server_states(&self) -> Vec<(SocketAddr, bool)> {
        self.servers
            .iter()
            .map(|(addr, down)| (*addr, !down.load(Ordering::Relaxed)))
            .collect()
    }

    /// A handle whose driver has stopped: every request fails with
    /// [`RadiusError::Stopped`].
    #[cfg(test)]
    pub(crate) fn stopped() -> RadiusHandle {
        let (tx, _) = mpsc::channel(1);
        RadiusHandle {
            tx,
            servers: Arc::from(Vec::new()),
            observer: None,
        }
    }

    /// Sends `request` and waits for the answer (retransmissions and
    /// failover happen inside).
    pub async fn request(&self, request: Request) -> Result<Answer, RadiusError> {
        let sent = Instant::now();
        let result = self.exchange(request).await;
        if let Some((metrics, role)) = &self.observer {
            let server = result.as_ref().ok().map(|a| a.server.to_string());
            metrics.radius_request(
                role,
                server.as_deref(),
                result_name(&result),
                sent.elapsed(),
            );
        }
        result
    }

    async fn exchange(&self, request: Request) -> Result<Answer, RadiusError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((request, reply))
            .await
            .map_err(|_| RadiusError::Stopped)?;
        answer.await.map_err(|_| RadiusError::Stopped)?
    }
}

/// The `result` label of a request's end.
fn result_name(result: &Result<Answer, RadiusError>) -> &'static str {
    use radius::AccessOutcome;
    match result {
        Ok(a) => match &a.outcome {
            Outcome::Access(AccessOutcome::Accept(_)) => "accept",
            Outcome::Access(AccessOutcome::Reject(_)) => "reject",
            Outcome::Access(AccessOutcome::Challenge(_)) => "challenge",
            Outcome::AccountingAck => "accounting_response",
        },
        Err(RadiusError::Timeout) => "timeout",
        Err(RadiusError::Malformed(_)) => "malformed",
        Err(RadiusError::Send(_) | RadiusError::Stopped) => "error",
    }
}

struct Driver {
    socket: UdpSocket,
    servers: Vec<SocketAddr>,
    client: RadiusClient,
    waiting: HashMap<TxId, Reply>,
    states: Arc<[(SocketAddr, AtomicBool)]>,
}

impl Driver {
    async fn run(mut self, mut requests: mpsc::Receiver<(Request, Reply)>) {
        let mut buf = vec![0u8; MAX_PACKET];
        let mut open = true;
        let mut held_back = false;
        // One warning per minute at most, with how often it happened.
        let mut last_warning: Option<Instant> = None;
        let mut episodes = 0u64;
        loop {
            self.flush().await;
            if !open && self.waiting.is_empty() {
                return;
            }
            // 256 requests outstanding to the server (a slow or overloaded
            // RADIUS server): take no new request until a reply or a
            // timeout frees an Identifier. Callers wait in the bounded
            // queue, then in `request` itself: a login waits, it is not
            // refused (found by `ras-bench soak` against FreeRADIUS).
            let now = Instant::now();
            let can_send = self.client.can_send(now);
            if !can_send && !held_back {
                episodes += 1;
                if last_warning.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "RADIUS: 256 requests outstanding to one server; new requests wait for answers ({episodes} times since the last such line)"
                    );
                    last_warning = Some(now);
                    episodes = 0;
                }
            }
            held_back = !can_send;
            let deadline = self.client.poll_timeout();
            let sleep = async {
                match deadline {
                    Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = requests.recv(), if open && can_send => match r {
                    Some((request, reply)) => match self.client.send(request, Instant::now()) {
                        Ok(tx) => { self.waiting.insert(tx, reply); }
                        Err(e) => { let _ = reply.send(Err(RadiusError::Send(e.to_string()))); }
                    },
                    None => open = false,
                },
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => self.datagram(&buf[..n], from),
                    Err(e) => {
                        // ICMP port unreachable surfaces here on Linux;
                        // the retransmission timer deals with it.
                        tracing::debug!("RADIUS socket: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                _ = sleep => self.client.handle_timeout(Instant::now()),
            }
            self.events();
        }
    }

    fn datagram(&mut self, data: &[u8], from: SocketAddr) {
        let Some(index) = self.servers.iter().position(|s| *s == from) else {
            tracing::warn!(%from, "dropped a RADIUS datagram from an unknown address");
            return;
        };
        if let Err(e) = self
            .client
            .handle_datagram(ServerId(index), data, Instant::now())
        {
            // Forged, stale or for a request already answered: only this
            // datagram is lost, the request stays pending.
            tracing::warn!(server = %from, "dropped a RADIUS reply: {e}");
        }
    }

    fn events(&mut self) {
        while let Some(event) = self.client.poll_event() {
            match event {
                Event::Response {
                    tx,
                    server,
                    outcome,
                } => {
                    if let Some(reply) = self.waiting.remove(&tx) {
                        let _ = reply.send(Ok(Answer {
                            outcome,
                            server: self.servers[server.0],
                        }));
                    }
                }
                Event::Malformed { tx, server, error } => {
                    tracing::warn!(server = %self.servers[server.0], "unreadable RADIUS reply: {error}");
                    if let Some(reply) = self.waiting.remove(&tx) {
                        let _ = reply.send(Err(RadiusError::Malformed(error.to_string())));
                    }
                }
                Event::Timeout { tx } => {
                    if let Some(reply) = self.waiting.remove(&tx) {
                        let _ = reply.send(Err(RadiusError::Timeout));
                    }
                }
                Event::ServerDown { server } => {
                    if let Some((_, down)) = self.states.get(server.0) {
                        down.store(true, Ordering::Relaxed);
                    }
                    tracing::warn!(server = %self.servers[server.0], "RADIUS server stopped answering; using the other one")
                }
                Event::ServerUp { server } => {
                    if let Some((_, down)) = self.states.get(server.0) {
                        down.store(false, Ordering::Relaxed);
                    }
                    tracing::info!(server = %self.servers[server.0], "RADIUS server answers again")
                }
            }
        }
    }

    async fn flush(&mut self) {
        while let Some((server, bytes)) = self.client.poll_transmit() {
            let to = self.servers[server.0];
            if let Err(e) = self.socket.send_to(&bytes, to).await {
                tracing::debug!(%to, "RADIUS send: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use radius::dict::attr;
    use radius::security::sign_response;
    use radius::{AccessOutcome, Attribute, Code, Packet, Secret};

    /// A fake RADIUS server that answers each Access-Request first with a
    /// forged reply (wrong secret), then with one without
    /// Message-Authenticator, then with a correct Access-Accept.
    #[tokio::test]
    async fn forged_replies_are_dropped_and_the_real_one_is_taken() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let secret = Secret::new(b"s3cret".to_vec());
        let fake = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            let request = Packet::decode(&buf[..n]).unwrap();
            let reply = |with_ma: bool, key: &[u8]| {
                let mut p = Packet::new(
                    Code::AccessAccept,
                    request.identifier,
                    request.authenticator,
                );
                if with_ma {
                    p.attributes
                        .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
                }
                p.attributes
                    .push(Attribute::new(attr::REPLY_MESSAGE, b"hello".to_vec()));
                let mut bytes = p.to_bytes().unwrap();
                sign_response(
                    &mut bytes,
                    &request.authenticator,
                    &Secret::new(key.to_vec()),
                )
                .unwrap();
                bytes
            };
            // Wrong secret: bad Response Authenticator.
            server.send_to(&reply(true, b"wrong"), from).await.unwrap();
            // Right secret but no Message-Authenticator (BlastRADIUS).
            server
                .send_to(&reply(false, b"s3cret"), from)
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            server.send_to(&reply(true, b"s3cret"), from).await.unwrap();
        });
        let handle = RadiusHandle::start(vec![addr], ClientConfig::new(secret, None))
            .await
            .unwrap();
        let answer = handle
            .request(Request::pap(b"alice", b"pw"))
            .await
            .expect("the genuine reply");
        match answer.outcome {
            Outcome::Access(AccessOutcome::Accept(a)) => {
                assert_eq!(a.reply_message.as_deref(), Some(&b"hello"[..]))
            }
            other => panic!("{other:?}"),
        }
        fake.await.unwrap();
    }

    /// A signed Access-Accept for `request`.
    fn accept_for(request: &Packet, secret: &[u8]) -> Vec<u8> {
        let mut p = Packet::new(
            Code::AccessAccept,
            request.identifier,
            request.authenticator,
        );
        p.attributes
            .push(Attribute::new(attr::MESSAGE_AUTHENTICATOR, vec![0; 16]));
        let mut bytes = p.to_bytes().unwrap();
        sign_response(
            &mut bytes,
            &request.authenticator,
            &Secret::new(secret.to_vec()),
        )
        .unwrap();
        bytes
    }

    /// RFC 2865 §3 allows 256 outstanding requests per server: the 257th
    /// waits for a free Identifier instead of failing, and every request
    /// is answered in the end.
    #[tokio::test]
    async fn requests_beyond_256_outstanding_wait_instead_of_failing() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let handle = RadiusHandle::start(
            vec![addr],
            ClientConfig::new(Secret::new(b"k".to_vec()), None),
        )
        .await
        .unwrap();
        let requests: Vec<_> = (0..300)
            .map(|i| {
                let handle = handle.clone();
                tokio::spawn(async move {
                    handle
                        .request(Request::pap(format!("u{i}").as_bytes(), b"pw"))
                        .await
                })
            })
            .collect();
        let mut buf = vec![0u8; 4096];
        let mut held = Vec::new();
        while held.len() < 256 {
            let (n, from) = server.recv_from(&mut buf).await.unwrap();
            held.push((Packet::decode(&buf[..n]).unwrap(), from));
        }
        // Nothing more arrives while all 256 are outstanding.
        let more =
            tokio::time::timeout(Duration::from_millis(300), server.recv_from(&mut buf)).await;
        assert!(more.is_err(), "a 257th request was sent");
        // Answer the held ones, paced (a burst of 256 can overflow the
        // client's socket buffer; a lost reply would only mean a
        // retransmission), then everything that comes, retransmissions too.
        let server = Arc::new(server);
        for (k, (request, from)) in held.iter().enumerate() {
            server
                .send_to(&accept_for(request, b"k"), from)
                .await
                .unwrap();
            if k % 16 == 15 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        let responder = tokio::spawn({
            let server = server.clone();
            async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let (n, from) = server.recv_from(&mut buf).await.unwrap();
                    let request = Packet::decode(&buf[..n]).unwrap();
                    server
                        .send_to(&accept_for(&request, b"k"), from)
                        .await
                        .unwrap();
                }
            }
        });
        let mut accepted = 0;
        let mut failed = Vec::new();
        for (i, r) in requests.into_iter().enumerate() {
            match r.await.unwrap() {
                Ok(answer)
                    if matches!(answer.outcome, Outcome::Access(AccessOutcome::Accept(_))) =>
                {
                    accepted += 1
                }
                other => failed.push((i, format!("{other:?}"))),
            }
        }
        responder.abort();
        assert_eq!(accepted, 300, "{failed:?}");
    }

    #[tokio::test]
    async fn datagrams_from_strangers_are_ignored_and_silence_times_out() {
        let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = server.local_addr().unwrap();
        let stranger = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut config = ClientConfig::new(Secret::new(b"k".to_vec()), None);
        config.retransmit.irt = Duration::from_millis(100);
        config.retransmit.mrd = Duration::from_millis(600);
        config.retransmit.tries_per_server = 2;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let handle = RadiusHandle::start(vec![addr], config)
            .await
            .unwrap()
            .observed(metrics.clone(), "auth");
        let pending = tokio::spawn({
            let handle = handle.clone();
            async move { handle.request(Request::pap(b"a", b"b")).await }
        });
        let mut buf = vec![0u8; 4096];
        let (n, from) = server.recv_from(&mut buf).await.unwrap();
        // A stranger echoes the request back at the client: dropped.
        stranger.send_to(&buf[..n], from).await.unwrap();
        let result = pending.await.unwrap();
        assert_eq!(result.unwrap_err(), RadiusError::Timeout);
        // Counted as a timeout that no server answered; the server is
        // marked down (RFC 2865 §2.6 failover).
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, metrics.registry()).unwrap();
        assert!(
            text.contains(
                "ras_radius_requests_total{role=\"auth\",server=\"none\",result=\"timeout\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("ras_radius_request_duration_seconds_count{role=\"auth\"} 1"));
        assert_eq!(handle.server_states(), vec![(addr, false)]);
    }
}
