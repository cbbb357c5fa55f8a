//! The server's session hooks for one connection that holds a lent
//! logical port (logical_ports.rs): the port becomes the session's when
//! the user is authenticated, which is when the session asks `network`.
//! A connection whose port was taken away before that is refused there,
//! without the pipeline hearing of it (no address, no accounting).
//! Every other hook is passed through: a method left to the trait's
//! default here would silently switch that feature off for SSTP and PPTP.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ppp::auth::AuthRequest;
use ppp::link::{LinkUp, NetworkSettings};
use tunnel::hooks_support::BoxFuture;
use tunnel::{AuthAnswer, EndReason, ServerHooks, SessionInfo, TunnelAuthMethod};

use crate::failure_log::ListenerFailures;
use crate::logical_ports::Port;

/// Runs one connection's session (`served`, asking its questions through
/// [`PortHooks`] on `port`) until it ends or, before its login, its port
/// is given to a newer connection; logs which at a bounded rate.
/// Dropping the session before its login is safe: the pipeline has not
/// heard of it (and PPTP's call ID lease unregisters on drop).
pub async fn serve_on_lent_port(
    served: impl std::future::Future<Output = tunnel::Outcome>,
    port: Arc<Port>,
    failures: &ListenerFailures,
    protocol: &str,
    id: u64,
    peer: std::net::SocketAddr,
) {
    let outcome = tokio::select! {
        outcome = served => Some(outcome),
        () = port.evicted() => None,
    };
    match outcome {
        Some(outcome) if !port.is_evicted() => failures.session_ended(id, peer, &outcome),
        _ => failures.report(
            "closed: not logged in while all ports were taken",
            peer,
            &format_args!(
                "closed: not logged in yet when all {} {protocol} ports were taken; its port went to a newer connection",
                port.limit()
            ),
        ),
    }
}

/// `inner`'s hooks, with the port made the session's at login.
pub struct PortHooks {
    inner: Arc<dyn ServerHooks>,
    port: Arc<Port>,
    /// Whether `inner.network` was asked (then `inner.down` is owed).
    asked: AtomicBool,
}

impl PortHooks {
    pub fn new(inner: Arc<dyn ServerHooks>, port: Arc<Port>) -> PortHooks {
        PortHooks {
            inner,
            port,
            asked: AtomicBool::new(false),
        }
    }
}

impl ServerHooks for PortHooks {
    fn authenticate(&self, info: &SessionInfo, request: AuthRequest) -> BoxFuture<AuthAnswer> {
        self.inner.authenticate(info, request)
    }

    fn authenticated_by_tunnel(&self, info: &SessionInfo, method: TunnelAuthMethod) {
        self.inner.authenticated_by_tunnel(info, method)
    }

    fn certificate_status(
        &self,
        info: &SessionInfo,
        certificate: &ipsec::ikev1::certificates::PeerCertificate,
    ) -> BoxFuture<Result<(), String>> {
        self.inner.certificate_status(info, certificate)
    }

    fn network(&self, info: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
        if !self.port.own() {
            return Box::pin(async {
                Err("its port was given to another connection before it logged in".to_owned())
            });
        }
        self.asked.store(true, Ordering::Release);
        self.inner.network(info)
    }

    fn up(
        &self,
        info: &SessionInfo,
        up: &LinkUp,
    ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
        self.inner.up(info, up)
    }

    fn down(&self, info: &SessionInfo, reason: &EndReason) {
        if self.asked.load(Ordering::Acquire) {
            self.inner.down(info, reason)
        }
    }

    fn live(&self, info: &SessionInfo) -> Option<Arc<tunnel::live::LiveSession>> {
        self.inner.live(info)
    }

    fn link_responder(&self, info: &SessionInfo, up: &LinkUp) -> Option<icmpv6::Responder> {
        self.inner.link_responder(info, up)
    }

    fn ipv6_prefix(&self, info: &SessionInfo) -> Option<std::net::Ipv6Addr> {
        self.inner.ipv6_prefix(info)
    }

    fn source_filter(&self, info: &SessionInfo, up: &LinkUp) -> Option<tunnel::SourceFilter> {
        self.inner.source_filter(info, up)
    }

    fn routed_networks(&self, info: &SessionInfo) -> Vec<(std::net::IpAddr, u8)> {
        self.inner.routed_networks(info)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use crate::logical_ports::LogicalPorts;

    /// Records what it was asked.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<&'static str>>);

    impl Recorder {
        fn asked(&self) -> Vec<&'static str> {
            self.0.lock().unwrap().clone()
        }
        fn note(&self, what: &'static str) {
            self.0.lock().unwrap().push(what)
        }
    }

    impl ServerHooks for Recorder {
        fn authenticate(&self, _: &SessionInfo, _: AuthRequest) -> BoxFuture<AuthAnswer> {
            unreachable!()
        }
        fn authenticated_by_tunnel(&self, _: &SessionInfo, _: TunnelAuthMethod) {
            self.note("authenticated_by_tunnel")
        }
        fn network(&self, _: &SessionInfo) -> BoxFuture<Result<NetworkSettings, String>> {
            self.note("network");
            Box::pin(async { Err("recorded".to_owned()) })
        }
        fn up(
            &self,
            _: &SessionInfo,
            _: &LinkUp,
        ) -> BoxFuture<Result<tunnel::PacketReceiver, String>> {
            unreachable!()
        }
        fn down(&self, _: &SessionInfo, _: &EndReason) {
            self.note("down")
        }
        fn ipv6_prefix(&self, _: &SessionInfo) -> Option<std::net::Ipv6Addr> {
            self.note("ipv6_prefix");
            Some(std::net::Ipv6Addr::LOCALHOST)
        }
        fn routed_networks(&self, _: &SessionInfo) -> Vec<(std::net::IpAddr, u8)> {
            self.note("routed_networks");
            vec![(std::net::Ipv4Addr::new(10, 77, 0, 0).into(), 24)]
        }
    }

    fn info() -> SessionInfo {
        SessionInfo {
            id: 7,
            peer: "192.0.2.1:1".into(),
            user: None,
        }
    }

    #[tokio::test]
    async fn a_logged_in_session_reaches_the_pipeline_and_is_told_down() {
        let ports = LogicalPorts::new(1);
        let inner = Arc::new(Recorder::default());
        let hooks = PortHooks::new(inner.clone(), Arc::new(ports.take().unwrap()));
        hooks.authenticated_by_tunnel(&info(), TunnelAuthMethod::Certificate);
        assert!(
            hooks.network(&info()).await.is_err(),
            "the recorder's answer"
        );
        assert_eq!(
            hooks.ipv6_prefix(&info()),
            Some(std::net::Ipv6Addr::LOCALHOST)
        );
        assert_eq!(hooks.routed_networks(&info()).len(), 1);
        hooks.down(&info(), &EndReason::LocalRequest);
        assert_eq!(
            inner.asked(),
            [
                "authenticated_by_tunnel",
                "network",
                "ipv6_prefix",
                "routed_networks",
                "down"
            ]
        );
        // The port is the session's now: a newcomer cannot take it.
        assert!(ports.take().is_err());
    }

    #[tokio::test]
    async fn an_evicted_connection_is_refused_without_the_pipeline_hearing_of_it() {
        let ports = LogicalPorts::new(1);
        let inner = Arc::new(Recorder::default());
        let hooks = PortHooks::new(inner.clone(), Arc::new(ports.take().unwrap()));
        let _newer = ports.take().expect("the lent port is taken over");
        let refused = hooks.network(&info()).await.unwrap_err();
        assert!(refused.contains("given to another connection"), "{refused}");
        hooks.down(&info(), &EndReason::LocalRequest);
        assert!(inner.asked().is_empty(), "{:?}", inner.asked());
    }
}
