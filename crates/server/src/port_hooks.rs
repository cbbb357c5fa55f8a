//! The server's session hooks for one connection that holds a lent
//! logical port (logical_ports.rs): the port becomes the session's when
//! the user is authenticated, which is when the session asks `network`.
//! A connection whose port was taken away before that is refused there,
//! without the pipeline hearing of it (no address, no accounting).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use ppp::auth::AuthRequest;
use ppp::link::{LinkUp, NetworkSettings};
use tokio::sync::mpsc;
use tunnel::hooks_support::BoxFuture;
use tunnel::{AuthAnswer, EndReason, ServerHooks, SessionInfo, TunnelAuthMethod};

use crate::logical_ports::Port;

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
    ) -> BoxFuture<Result<mpsc::Receiver<Bytes>, String>> {
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
}
