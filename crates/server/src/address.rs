//! A session's IPv4 address, by one path whatever the source: a static
//! address (a remote access policy's, or RADIUS Framed-IP-Address, RFC 2865
//! §5.8) is decided once, by [`address_request`], and then the
//! [`AddressSource`] (the static pool or DHCP) is asked, by [`assign`].

use std::fmt;
use std::net::Ipv4Addr;

use crate::pool::{AddressError, AddressSource, StaticPlacement};
use crate::SessionId;

/// Who set a static address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaticOrigin {
    /// The remote access policy's `static_address`.
    Policy,
    /// RADIUS Framed-IP-Address (RFC 2865 §5.8).
    RadiusFramedIp,
}

impl fmt::Display for StaticOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StaticOrigin::Policy => "remote access policy's static address",
            StaticOrigin::RadiusFramedIp => "RADIUS Framed-IP-Address",
        })
    }
}

/// What the session asks the address source for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressRequest {
    /// Whichever address the source hands out next.
    Any,
    /// This address.
    Static {
        addr: Ipv4Addr,
        origin: StaticOrigin,
    },
}

/// The one place where a static address is decided: the policy's
/// `static_address` (this server's own word about one named user,
/// docs/POLICIES.md) wins over a RADIUS Framed-IP-Address; with neither,
/// the source chooses. (RADIUS's
/// "NAS chooses" and "user chooses" values, 255.255.255.254 and
/// 255.255.255.255, never reach here: `radius_auth` keeps real addresses
/// only.)
pub fn address_request(
    radius_framed_ip: Option<Ipv4Addr>,
    policy_static: Option<Ipv4Addr>,
) -> AddressRequest {
    match (policy_static, radius_framed_ip) {
        (Some(addr), _) => AddressRequest::Static {
            addr,
            origin: StaticOrigin::Policy,
        },
        (None, Some(addr)) => AddressRequest::Static {
            addr,
            origin: StaticOrigin::RadiusFramedIp,
        },
        (None, None) => AddressRequest::Any,
    }
}

/// An address the source gave a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assigned {
    pub addr: Ipv4Addr,
    /// Set for a static address.
    pub origin: Option<StaticOrigin>,
    /// The source does not route it: the session routes it to the TUN as
    /// a /32 itself (a static address outside a DHCP scope).
    pub host_route: bool,
}

impl Assigned {
    /// The log line's suffix: where a static address came from.
    pub fn origin_note(&self) -> String {
        match self.origin {
            Some(origin) => format!(" ({origin})"),
            None => String::new(),
        }
    }
}

/// Asks `source` for `request`'s address for `session`.
pub async fn assign(
    source: &dyn AddressSource,
    session: SessionId,
    request: AddressRequest,
) -> Result<Assigned, AddressError> {
    match request {
        AddressRequest::Any => Ok(Assigned {
            addr: source.allocate(session).await?,
            origin: None,
            host_route: false,
        }),
        AddressRequest::Static { addr, origin } => {
            let placement = source.allocate_static(session, addr)?;
            Ok(Assigned {
                addr,
                origin: Some(origin),
                host_route: placement == StaticPlacement::HostRoute,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Ipv4Pool;
    use crate::pool::StaticPool;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_policy_wins_over_radius_and_either_over_the_source() {
        assert_eq!(address_request(None, None), AddressRequest::Any);
        assert_eq!(
            address_request(Some(ip("10.0.10.25")), None),
            AddressRequest::Static {
                addr: ip("10.0.10.25"),
                origin: StaticOrigin::RadiusFramedIp
            }
        );
        assert_eq!(
            address_request(Some(ip("10.0.10.25")), Some(ip("10.0.10.27"))),
            AddressRequest::Static {
                addr: ip("10.0.10.27"),
                origin: StaticOrigin::Policy
            }
        );
    }

    /// A source that is not the pool: static addresses live outside it.
    struct Outside;

    impl AddressSource for Outside {
        fn server_address(&self) -> Option<Ipv4Addr> {
            None
        }
        fn allocate(
            &self,
            _: SessionId,
        ) -> crate::pool::BoxFuture<'_, Result<Ipv4Addr, AddressError>> {
            Box::pin(std::future::ready(Err(AddressError::Unavailable(
                "none".into(),
            ))))
        }
        fn allocate_static(
            &self,
            _: SessionId,
            _: Ipv4Addr,
        ) -> Result<StaticPlacement, AddressError> {
            Ok(StaticPlacement::HostRoute)
        }
        fn release(&self, _: SessionId) {}
    }

    #[test]
    fn static_addresses_are_placed_by_the_source() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let pool = StaticPool::new(&Ipv4Pool::default());
        let s = |n| SessionId::from_raw(n);
        let framed = address_request(Some(ip("10.0.10.25")), None);
        rt.block_on(async {
            // The pool reserves its own addresses ...
            let a = assign(&pool, s(1), framed).await.unwrap();
            assert_eq!(a.addr, ip("10.0.10.25"));
            assert!(!a.host_route);
            assert_eq!(a.origin_note(), " (RADIUS Framed-IP-Address)");
            assert_eq!(pool.holder_of(ip("10.0.10.25")), Some(s(1)));
            assert_eq!(
                assign(&pool, s(2), framed).await,
                Err(AddressError::InUse(ip("10.0.10.25")))
            );
            // ... and refuses others.
            let outside = address_request(Some(ip("192.0.2.9")), None);
            assert_eq!(
                assign(&pool, s(3), outside).await,
                Err(AddressError::NotInPool(ip("192.0.2.9")))
            );
            let any = assign(&pool, s(3), AddressRequest::Any).await.unwrap();
            assert_eq!(any.addr, ip("10.0.10.21"));
            assert_eq!(any.origin_note(), "");
            // Another source routes a static address itself.
            let a = assign(&Outside, s(4), outside).await.unwrap();
            assert!(a.host_route);
        });
    }
}
