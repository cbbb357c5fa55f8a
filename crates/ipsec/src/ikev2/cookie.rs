//! Stateless cookies (RFC 7296 §2.6): under a flood of IKE_SA_INIT from
//! spoofed addresses, the responder answers with a COOKIE notify computed
//! from the request and a secret, keeps no state, and only goes on when
//! the initiator repeats its request with that cookie — which proves it
//! receives at its source address.
//!
//! `Cookie = <VersionIDofSecret> | Hash(Ni | IPi | SPIi | <secret>)`; the
//! secret changes periodically and the previous one stays valid for one
//! period, so a client caught by a change still gets in.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use zeroize::Zeroizing;

/// How long one secret is used (§2.6 leaves it to the implementation).
pub const SECRET_PERIOD: Duration = Duration::from_secs(300);

pub struct CookieJar {
    version: u32,
    secret: Zeroizing<[u8; 32]>,
    previous: Option<(u32, Zeroizing<[u8; 32]>)>,
    changed_at: Instant,
}

fn random_secret() -> Zeroizing<[u8; 32]> {
    let mut secret = Zeroizing::new([0u8; 32]);
    // A failing system RNG leaves a zero secret; cookies then still prove
    // reachability, which is all §2.6 needs from them.
    let _ = aws_lc_rs::rand::fill(&mut secret[..]);
    secret
}

impl CookieJar {
    pub fn new(now: Instant) -> Self {
        CookieJar {
            version: 1,
            secret: random_secret(),
            previous: None,
            changed_at: now,
        }
    }

    /// Changes the secret once per [`SECRET_PERIOD`].
    pub fn rotate_if_due(&mut self, now: Instant) {
        if now.duration_since(self.changed_at) >= SECRET_PERIOD {
            let old = std::mem::replace(&mut self.secret, random_secret());
            self.previous = Some((self.version, old));
            self.version = self.version.wrapping_add(1);
            self.changed_at = now;
        }
    }

    fn compute(version: u32, secret: &[u8], ni: &[u8], ip: IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
        let ip_bytes: Vec<u8> = match ip {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        };
        let mut context = digest::Context::new(&digest::SHA256);
        for part in [ni, &ip_bytes, spi_i, secret] {
            context.update(part);
        }
        let mut out = version.to_be_bytes().to_vec();
        out.extend_from_slice(context.finish().as_ref());
        out
    }

    /// The cookie for this request.
    pub fn make(&self, ni: &[u8], ip: IpAddr, spi_i: &[u8; 8]) -> Vec<u8> {
        Self::compute(self.version, &self.secret[..], ni, ip, spi_i)
    }

    /// Whether `cookie` is one we made for this request, with the current
    /// or the previous secret. Compared in constant time.
    pub fn check(&self, cookie: &[u8], ni: &[u8], ip: IpAddr, spi_i: &[u8; 8]) -> bool {
        if cookie.len() != 36 {
            return false;
        }
        let version = u32::from_be_bytes([cookie[0], cookie[1], cookie[2], cookie[3]]);
        let secret: &[u8] = if version == self.version {
            &self.secret[..]
        } else {
            match &self.previous {
                Some((v, s)) if *v == version => &s[..],
                _ => return false,
            }
        };
        let expected = Self::compute(version, secret, ni, ip, spi_i);
        verify_slices_are_equal(&expected, cookie).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cookie_is_bound_to_the_request_and_survives_one_rotation() {
        let t0 = Instant::now();
        let mut jar = CookieJar::new(t0);
        let ip: IpAddr = "192.0.2.7".parse().expect("ip");
        let other: IpAddr = "192.0.2.8".parse().expect("ip");
        let ni = [5u8; 32];
        let spi = [9u8; 8];
        let cookie = jar.make(&ni, ip, &spi);
        assert!(jar.check(&cookie, &ni, ip, &spi));
        assert!(!jar.check(&cookie, &ni, other, &spi), "another address");
        assert!(!jar.check(&cookie, &[6u8; 32], ip, &spi), "another nonce");
        assert!(!jar.check(&cookie, &ni, ip, &[1u8; 8]), "another SPI");
        assert!(!jar.check(&cookie[..35], &ni, ip, &spi), "truncated");
        let mut forged = cookie.clone();
        forged[20] ^= 1;
        assert!(!jar.check(&forged, &ni, ip, &spi));
        jar.rotate_if_due(t0 + SECRET_PERIOD);
        assert!(
            jar.check(&cookie, &ni, ip, &spi),
            "previous secret still valid"
        );
        assert_ne!(jar.make(&ni, ip, &spi), cookie);
        jar.rotate_if_due(t0 + SECRET_PERIOD * 2);
        assert!(!jar.check(&cookie, &ni, ip, &spi), "two rotations later");
    }
}
