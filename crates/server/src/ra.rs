//! ICMPv6 Router Advertisements into a PPP link: the builder lives in the
//! `icmpv6` crate with the rest of the server's answers on each link.

pub use icmpv6::{checksum, link_local, router_advertisement};
