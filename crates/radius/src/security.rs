//! Shared-secret cryptography: User-Password hiding (RFC 2865 §5.2),
//! Request/Response Authenticators (RFC 2865 §3, RFC 2866 §3) and the
//! Message-Authenticator (RFC 3579 §3.2, RFC 2869 §5.14).
//!
//! Every comparison of an authenticator is constant-time (`subtle`).

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::dict::attr;
use crate::packet::{packet_bytes, AttrIter, Code, DecodeError, AUTHENTICATOR_LEN, HEADER_LEN};

type HmacMd5 = Hmac<Md5>;

/// Longest User-Password RFC 2865 §5.2 allows (128 octets).
pub const MAX_PASSWORD_LEN: usize = 128;

/// A RADIUS shared secret. Zeroed on drop; `Debug` does not print it.
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// A secret from its octets.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Secret {
        Secret(Zeroizing::new(bytes.into()))
    }

    /// The octets.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Why a User-Password could not be hidden or recovered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PasswordError {
    /// Longer than 128 octets (RFC 2865 §5.2).
    #[error("password of {0} octets exceeds 128")]
    TooLong(usize),
    /// A hidden value must be 16..=128 octets, a multiple of 16.
    #[error("hidden User-Password of {0} octets is not a multiple of 16 in 16..=128")]
    BadHiddenLength(usize),
}

/// Why a reply failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VerifyError {
    /// The datagram is not a well-formed packet.
    #[error("malformed packet: {0}")]
    Decode(#[from] DecodeError),
    /// The Response Authenticator does not match (RFC 2865 §3).
    #[error("Response Authenticator does not match")]
    ResponseAuthenticator,
    /// The reply has no Message-Authenticator, which this client requires on
    /// every Access-Accept, Access-Reject and Access-Challenge.
    #[error("Message-Authenticator missing")]
    MissingMessageAuthenticator,
    /// The Message-Authenticator does not match (RFC 3579 §3.2).
    #[error("Message-Authenticator does not match")]
    MessageAuthenticator,
    /// More than one Message-Authenticator (RFC 3579 §3.3 allows 0-1).
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// A Message-Authenticator whose value is not 16 octets.
    #[error("Message-Authenticator of {0} octets, not 16")]
    MessageAuthenticatorLength(usize),
}

fn md5_parts(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// The MD5 chain shared by User-Password (RFC 2865 §5.2) and the MPPE key
/// attributes (RFC 2548 §2.4.2): `b1 = MD5(S + first)`, `c1 = p1 ⊕ b1`,
/// `bi = MD5(S + c(i-1))`. `data` is a multiple of 16 and is transformed in
/// place; `encrypt` says whether `data` holds the p's (true) or the c's.
pub(crate) fn md5_chain(secret: &[u8], first: &[&[u8]], data: &mut [u8], encrypt: bool) {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(1 + first.len());
    parts.push(secret);
    parts.extend_from_slice(first);
    let mut b = Zeroizing::new(md5_parts(&parts));
    for block in data.chunks_mut(16) {
        let mut cipher = [0u8; 16];
        for (i, x) in block.iter_mut().enumerate() {
            if encrypt {
                *x ^= b[i];
                cipher[i] = *x;
            } else {
                cipher[i] = *x;
                *x ^= b[i];
            }
        }
        *b = md5_parts(&[secret, &cipher]);
    }
}

/// Hides a User-Password (RFC 2865 §5.2): pads with NULs to a multiple of 16
/// (an empty password becomes one block) and runs the MD5 chain keyed by the
/// shared secret and the Request Authenticator.
pub fn hide_user_password(
    password: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Vec<u8>, PasswordError> {
    if password.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong(password.len()));
    }
    let padded = password.len().div_ceil(16).max(1) * 16;
    let mut out = vec![0u8; padded];
    out[..password.len()].copy_from_slice(password);
    md5_chain(secret.as_bytes(), &[request_authenticator], &mut out, true);
    Ok(out)
}

/// Recovers a hidden User-Password (RFC 2865 §5.2), stripping the NUL
/// padding.
pub fn unhide_user_password(
    hidden: &[u8],
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<Zeroizing<Vec<u8>>, PasswordError> {
    if hidden.is_empty() || !hidden.len().is_multiple_of(16) || hidden.len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::BadHiddenLength(hidden.len()));
    }
    let mut out = Zeroizing::new(hidden.to_vec());
    md5_chain(secret.as_bytes(), &[request_authenticator], &mut out, false);
    let end = out.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    out.truncate(end);
    Ok(out)
}

/// Response Authenticator (RFC 2865 §3; RFC 2866 §3 for
/// Accounting-Response):
/// `MD5(Code + ID + Length + RequestAuth + Attributes + Secret)`.
/// `packet` is the encoded reply; its own Authenticator field is ignored.
pub fn response_authenticator(
    packet: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &Secret,
) -> Result<[u8; 16], DecodeError> {
    let p = packet_bytes(packet)?;
    Ok(md5_parts(&[
        &p[..4],
        request_authenticator,
        &p[HEADER_LEN..],
        secret.as_bytes(),
    ]))
}

/// Accounting-Request Request Authenticator (RFC 2866 §3): `MD5(Code + ID +
/// Length + 16 zero octets + Attributes + Secret)`. The same construction
/// signs CoA- and Disconnect-Requests (RFC 5176 §2.3).
pub fn accounting_request_authenticator(
    packet: &[u8],
    secret: &Secret,
) -> Result<[u8; 16], DecodeError> {
    let p = packet_bytes(packet)?;
    Ok(md5_parts(&[
        &p[..4],
        &[0u8; 16],
        &p[HEADER_LEN..],
        secret.as_bytes(),
    ]))
}

/// Offset of the value of the single Message-Authenticator in an encoded
/// packet, or `None` without one.
pub fn find_message_authenticator(packet: &[u8]) -> Result<Option<usize>, VerifyError> {
    let p = packet_bytes(packet)?;
    let mut found = None;
    for item in AttrIter::new(p) {
        let (offset, typ, value) = item?;
        if typ != attr::MESSAGE_AUTHENTICATOR {
            continue;
        }
        if value.len() != 16 {
            return Err(VerifyError::MessageAuthenticatorLength(value.len()));
        }
        if found.is_some() {
            return Err(VerifyError::DuplicateMessageAuthenticator);
        }
        found = Some(offset + 2);
    }
    Ok(found)
}

/// Message-Authenticator (RFC 3579 §3.2, RFC 2869 §5.14):
/// `HMAC-MD5(Secret, Type + Identifier + Length + Authenticator +
/// Attributes)` with the Message-Authenticator value taken as 16 zero
/// octets and the Authenticator field replaced by `authenticator` — the
/// Request Authenticator for Access-Request and for replies to it, 16 zero
/// octets for Accounting-, CoA- and Disconnect-Requests.
///
/// `ma_offset` is the offset of the Message-Authenticator value, from
/// [`find_message_authenticator`].
pub fn message_authenticator(
    packet: &[u8],
    ma_offset: usize,
    authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &Secret,
) -> Result<[u8; 16], DecodeError> {
    let p = packet_bytes(packet)?;
    if ma_offset < HEADER_LEN + 2 || ma_offset + 16 > p.len() {
        return Err(DecodeError::BadAttribute {
            offset: ma_offset.saturating_sub(2),
        });
    }
    let Ok(mut mac) = <HmacMd5 as Mac>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; this branch cannot be taken.
        return Err(DecodeError::BadAttribute { offset: 0 });
    };
    mac.update(&p[..4]);
    mac.update(authenticator);
    mac.update(&p[HEADER_LEN..ma_offset]);
    mac.update(&[0u8; 16]);
    mac.update(&p[ma_offset + 16..]);
    Ok(mac.finalize().into_bytes().into())
}

/// The Authenticator field value used inside the Message-Authenticator of a
/// request of this code (RFC 3579 §3.2, RFC 5176 §3.3).
fn request_ma_base(code: Code, packet: &[u8]) -> [u8; 16] {
    match code {
        Code::AccessRequest | Code::StatusServer => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&packet[4..HEADER_LEN]);
            a
        }
        _ => [0u8; 16],
    }
}

/// Completes an encoded request in place: fills its Message-Authenticator
/// (if the packet has one) and, for Accounting-, CoA- and
/// Disconnect-Requests, computes the Request Authenticator over the result
/// (RFC 2866 §3). An Access-Request keeps its random Request Authenticator.
pub fn sign_request(packet: &mut [u8], secret: &Secret) -> Result<(), VerifyError> {
    let len = packet_bytes(packet)?.len();
    let packet = &mut packet[..len];
    let code = Code::from_u8(packet[0]);
    let computed_auth = !matches!(code, Code::AccessRequest | Code::StatusServer);
    if computed_auth {
        packet[4..HEADER_LEN].fill(0);
    }
    if let Some(off) = find_message_authenticator(packet)? {
        let base = request_ma_base(code, packet);
        let ma = message_authenticator(packet, off, &base, secret)?;
        packet[off..off + 16].copy_from_slice(&ma);
    }
    if computed_auth {
        let ra = accounting_request_authenticator(packet, secret)?;
        packet[4..HEADER_LEN].copy_from_slice(&ra);
    }
    Ok(())
}

/// Signs an encoded reply in place as a server would: Message-Authenticator
/// first (computed with the Request Authenticator in the Authenticator
/// field, RFC 3579 §3.2), then the Response Authenticator over the result
/// (RFC 2865 §3). Used by tests and test servers.
pub fn sign_response(
    packet: &mut [u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &Secret,
) -> Result<(), VerifyError> {
    let len = packet_bytes(packet)?.len();
    let packet = &mut packet[..len];
    if let Some(off) = find_message_authenticator(packet)? {
        let ma = message_authenticator(packet, off, request_authenticator, secret)?;
        packet[off..off + 16].copy_from_slice(&ma);
    }
    let ra = response_authenticator(packet, request_authenticator, secret)?;
    packet[4..HEADER_LEN].copy_from_slice(&ra);
    Ok(())
}

/// Verifies a reply to a request whose Request Authenticator was
/// `request_authenticator`: the Response Authenticator (RFC 2865 §3,
/// RFC 2866 §3) always, and the Message-Authenticator (RFC 3579 §3.2) when
/// present. With `require_message_authenticator`, a reply without one is
/// refused: this client sets it for every Access-* reply (BlastRADIUS).
pub fn verify_response(
    packet: &[u8],
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &Secret,
    require_message_authenticator: bool,
) -> Result<(), VerifyError> {
    let p = packet_bytes(packet)?;
    let expected = response_authenticator(p, request_authenticator, secret)?;
    let ok_ra = expected.ct_eq(&p[4..HEADER_LEN]);
    let ma = find_message_authenticator(p)?;
    let ok_ma = match ma {
        Some(off) => {
            let want = message_authenticator(p, off, request_authenticator, secret)?;
            want.ct_eq(&p[off..off + 16])
        }
        None => subtle::Choice::from(1),
    };
    if !bool::from(ok_ra) {
        return Err(VerifyError::ResponseAuthenticator);
    }
    if ma.is_none() && require_message_authenticator {
        return Err(VerifyError::MissingMessageAuthenticator);
    }
    if !bool::from(ok_ma) {
        return Err(VerifyError::MessageAuthenticator);
    }
    Ok(())
}

/// Verifies an Accounting-Request's Request Authenticator (RFC 2866 §3) and
/// its Message-Authenticator if present. For test servers.
pub fn verify_accounting_request(packet: &[u8], secret: &Secret) -> Result<(), VerifyError> {
    let p = packet_bytes(packet)?;
    let expected = accounting_request_authenticator(p, secret)?;
    if !bool::from(expected.ct_eq(&p[4..HEADER_LEN])) {
        return Err(VerifyError::ResponseAuthenticator);
    }
    if let Some(off) = find_message_authenticator(p)? {
        let want = message_authenticator(p, off, &[0u8; 16], secret)?;
        if !bool::from(want.ct_eq(&p[off..off + 16])) {
            return Err(VerifyError::MessageAuthenticator);
        }
    }
    Ok(())
}

/// Verifies the Message-Authenticator of an Access-Request (RFC 3579 §3.2).
/// For test servers.
pub fn verify_access_request(packet: &[u8], secret: &Secret) -> Result<(), VerifyError> {
    let p = packet_bytes(packet)?;
    let Some(off) = find_message_authenticator(p)? else {
        return Err(VerifyError::MissingMessageAuthenticator);
    };
    let mut auth = [0u8; 16];
    auth.copy_from_slice(&p[4..HEADER_LEN]);
    let want = message_authenticator(p, off, &auth, secret)?;
    if !bool::from(want.ct_eq(&p[off..off + 16])) {
        return Err(VerifyError::MessageAuthenticator);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn password_lengths() {
        let s = Secret::new("s3cret");
        let ra = [7u8; 16];
        for len in [0usize, 1, 15, 16, 17, 31, 32, 100, 127, 128] {
            let pw: Vec<u8> = (1..=len).map(|i| i as u8).collect();
            let h = hide_user_password(&pw, &s, &ra).unwrap();
            assert_eq!(h.len(), len.div_ceil(16).max(1) * 16);
            assert_eq!(&unhide_user_password(&h, &s, &ra).unwrap()[..], &pw[..]);
        }
        assert_eq!(
            hide_user_password(&[1; 129], &s, &ra),
            Err(PasswordError::TooLong(129))
        );
        for bad in [0usize, 15, 17, 144] {
            assert_eq!(
                unhide_user_password(&vec![0; bad], &s, &ra),
                Err(PasswordError::BadHiddenLength(bad))
            );
        }
    }

    proptest! {
        #[test]
        fn password_round_trip(
            pw in proptest::collection::vec(1u8..=255, 0..=128),
            secret in proptest::collection::vec(any::<u8>(), 1..40),
            ra in any::<[u8; 16]>(),
        ) {
            let s = Secret::new(secret);
            let h = hide_user_password(&pw, &s, &ra).unwrap();
            prop_assert_eq!(&unhide_user_password(&h, &s, &ra).unwrap()[..], &pw[..]);
        }

        #[test]
        fn verify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let s = Secret::new("x");
            let _ = verify_response(&bytes, &[0; 16], &s, true);
            let _ = verify_accounting_request(&bytes, &s);
            let _ = verify_access_request(&bytes, &s);
            let mut b = bytes.clone();
            let _ = sign_request(&mut b, &s);
            let mut b = bytes;
            let _ = sign_response(&mut b, &[0; 16], &s);
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        assert_eq!(format!("{:?}", Secret::new("xyzzy5461")), "Secret(..)");
    }
}
