//! Replies: verification and typed reading.
//!
//! [`verify_and_parse`] checks that a datagram answers a given request
//! (Identifier, Code, Response Authenticator and — required on every
//! Access-* reply — Message-Authenticator) and turns it into an
//! [`Outcome`].

use std::net::Ipv4Addr;

use thiserror::Error;
use zeroize::Zeroizing;

use crate::dict::attr;
use crate::microsoft::{
    decrypt_mppe_key, decrypt_mschap_mppe_keys, MsChap2Success, MsChapError, MsChapMppeKeys,
    MsError, MS_CHAP2_SUCCESS, MS_CHAP_ERROR, MS_CHAP_MPPE_KEYS, MS_MPPE_ENCRYPTION_POLICY,
    MS_MPPE_ENCRYPTION_TYPES, MS_MPPE_RECV_KEY, MS_MPPE_SEND_KEY, VENDOR_MICROSOFT,
};
use crate::packet::{Attribute, Code, Packet, AUTHENTICATOR_LEN};
use crate::security::{verify_response, Secret, VerifyError};

/// Why a reply was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResponseError {
    /// Verification failed: malformed, forged or from the wrong secret.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The Identifier does not match the request.
    #[error("Identifier {got} does not match the request's {expected}")]
    Identifier {
        /// The request's.
        expected: u8,
        /// The reply's.
        got: u8,
    },
    /// The Code is not a reply to the request's Code.
    #[error("{got:?} does not answer {request:?}")]
    UnexpectedCode {
        /// The request's Code.
        request: Code,
        /// The reply's Code.
        got: Code,
    },
    /// An authentic reply carries an attribute this client cannot read.
    #[error("attribute {typ} has a malformed value")]
    Attribute {
        /// Attribute type (26 for a vendor attribute).
        typ: u8,
    },
    /// A Microsoft attribute is malformed or its key does not decrypt.
    #[error(transparent)]
    Microsoft(#[from] MsError),
    /// Only one of MS-MPPE-Send-Key and MS-MPPE-Recv-Key is present.
    #[error("only one of MS-MPPE-Send-Key and MS-MPPE-Recv-Key is present")]
    IncompleteMppeKeys,
}

/// The MPPE master keys from MS-MPPE-Send-Key and MS-MPPE-Recv-Key (RFC
/// 2548 §2.4.2, §2.4.3), named from the NAS's point of view: the NAS
/// encrypts with `send` and decrypts with `recv`.
#[derive(Clone, PartialEq, Eq)]
pub struct MppeKeys {
    /// The NAS's send key.
    pub send: Zeroizing<Vec<u8>>,
    /// The NAS's receive key.
    pub recv: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for MppeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "MppeKeys {{ send: {} octets, recv: {} octets }}",
            self.send.len(),
            self.recv.len()
        )
    }
}

/// An Access-Accept, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// Every attribute, as received.
    pub attributes: Vec<Attribute>,
    /// MPPE keys, when the server sent both.
    pub mppe_keys: Option<MppeKeys>,
    /// MS-CHAP-MPPE-Keys (RFC 2548 §2.4.1), the keys of an MS-CHAPv1
    /// login.
    pub mschap_mppe_keys: Option<MsChapMppeKeys>,
    /// MS-CHAP2-Success, to relay to the peer.
    pub mschap2_success: Option<MsChap2Success>,
    /// MS-MPPE-Encryption-Policy (RFC 2548 §2.4.4).
    pub encryption_policy: Option<u32>,
    /// MS-MPPE-Encryption-Types (RFC 2548 §2.4.5).
    pub encryption_types: Option<u32>,
    /// Framed-IP-Address (RFC 2865 §5.8).
    pub framed_ip: Option<Ipv4Addr>,
    /// Framed-IP-Netmask (RFC 2865 §5.9).
    pub framed_netmask: Option<Ipv4Addr>,
    /// Framed-MTU (RFC 2865 §5.12).
    pub framed_mtu: Option<u32>,
    /// Session-Timeout in seconds (RFC 2865 §5.27).
    pub session_timeout: Option<u32>,
    /// Idle-Timeout in seconds (RFC 2865 §5.28).
    pub idle_timeout: Option<u32>,
    /// Termination-Action (RFC 2865 §5.29).
    pub termination_action: Option<u32>,
    /// Acct-Interim-Interval in seconds (RFC 2869 §5.16).
    pub acct_interim_interval: Option<u32>,
    /// Class values, to echo in accounting (RFC 2865 §5.25).
    pub class: Vec<Vec<u8>>,
    /// The reassembled EAP-Message (an EAP Success), RFC 3579 §3.1.
    pub eap_message: Option<Vec<u8>>,
    /// Reply-Message texts joined (RFC 2865 §5.18).
    pub reply_message: Option<Vec<u8>>,
}

/// An Access-Reject, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reject {
    /// Reply-Message texts joined (RFC 2865 §5.18).
    pub reply_message: Option<Vec<u8>>,
    /// The reassembled EAP-Message (an EAP Failure), RFC 3579 §3.1.
    pub eap_message: Option<Vec<u8>>,
    /// MS-CHAP-Error (RFC 2548 §2.1.5), to relay to the peer.
    pub ms_chap_error: Option<MsChapError>,
}

/// An Access-Challenge, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The reassembled EAP-Message to relay to the peer, RFC 3579 §3.1.
    pub eap_message: Option<Vec<u8>>,
    /// State to echo in the next Access-Request (RFC 2865 §5.24).
    pub state: Option<Vec<u8>>,
    /// Reply-Message texts joined (RFC 2865 §5.18).
    pub reply_message: Option<Vec<u8>>,
    /// Session-Timeout: how long to wait for the peer (RFC 2865 §5.27).
    pub session_timeout: Option<u32>,
}

/// The answer to an Access-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessOutcome {
    /// Access-Accept.
    Accept(Box<Accept>),
    /// Access-Reject.
    Reject(Reject),
    /// Access-Challenge.
    Challenge(Challenge),
}

/// The answer to any request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The answer to an Access-Request.
    Access(AccessOutcome),
    /// An Accounting-Response (RFC 2866 §4.2): the record was stored.
    AccountingAck,
}

fn opt_u32(p: &Packet, typ: u8) -> Result<Option<u32>, ResponseError> {
    match p.attr(typ) {
        None => Ok(None),
        Some(a) => a.as_u32().map(Some).ok_or(ResponseError::Attribute { typ }),
    }
}

fn opt_ipv4(p: &Packet, typ: u8) -> Result<Option<Ipv4Addr>, ResponseError> {
    match p.attr(typ) {
        None => Ok(None),
        Some(a) => {
            let b: [u8; 4] = a
                .value
                .as_slice()
                .try_into()
                .map_err(|_| ResponseError::Attribute { typ })?;
            Ok(Some(Ipv4Addr::from(b)))
        }
    }
}

fn opt_ms_u32(p: &Packet, typ: u8) -> Result<Option<u32>, ResponseError> {
    match p.vendor_attrs(VENDOR_MICROSOFT, typ).first() {
        None => Ok(None),
        Some(v) => {
            let b: [u8; 4] = v
                .as_slice()
                .try_into()
                .map_err(|_| MsError::Length { typ, len: v.len() })?;
            Ok(Some(u32::from_be_bytes(b)))
        }
    }
}

/// Reads a verified Access-Accept, -Reject or -Challenge. The MPPE keys are
/// decrypted with the secret and the Request Authenticator of the request.
pub fn parse_access_outcome(
    p: &Packet,
    secret: &Secret,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
) -> Result<AccessOutcome, ResponseError> {
    let eap_message = p.concat(attr::EAP_MESSAGE);
    let reply_message = p.concat(attr::REPLY_MESSAGE);
    match p.code {
        Code::AccessAccept => {
            let send = p.vendor_attrs(VENDOR_MICROSOFT, MS_MPPE_SEND_KEY);
            let recv = p.vendor_attrs(VENDOR_MICROSOFT, MS_MPPE_RECV_KEY);
            let mppe_keys = match (send.first(), recv.first()) {
                (None, None) => None,
                (Some(s), Some(r)) => Some(MppeKeys {
                    send: decrypt_mppe_key(s, secret, request_authenticator)?,
                    recv: decrypt_mppe_key(r, secret, request_authenticator)?,
                }),
                _ => return Err(ResponseError::IncompleteMppeKeys),
            };
            let mschap_mppe_keys = match p.vendor_attrs(VENDOR_MICROSOFT, MS_CHAP_MPPE_KEYS).first()
            {
                None => None,
                Some(v) => Some(decrypt_mschap_mppe_keys(v, secret, request_authenticator)?),
            };
            let mschap2_success = match p.vendor_attrs(VENDOR_MICROSOFT, MS_CHAP2_SUCCESS).first() {
                None => None,
                Some(v) => Some(MsChap2Success::decode(v)?),
            };
            Ok(AccessOutcome::Accept(Box::new(Accept {
                attributes: p.attributes.clone(),
                mppe_keys,
                mschap_mppe_keys,
                mschap2_success,
                encryption_policy: opt_ms_u32(p, MS_MPPE_ENCRYPTION_POLICY)?,
                encryption_types: opt_ms_u32(p, MS_MPPE_ENCRYPTION_TYPES)?,
                framed_ip: opt_ipv4(p, attr::FRAMED_IP_ADDRESS)?,
                framed_netmask: opt_ipv4(p, attr::FRAMED_IP_NETMASK)?,
                framed_mtu: opt_u32(p, attr::FRAMED_MTU)?,
                session_timeout: opt_u32(p, attr::SESSION_TIMEOUT)?,
                idle_timeout: opt_u32(p, attr::IDLE_TIMEOUT)?,
                termination_action: opt_u32(p, attr::TERMINATION_ACTION)?,
                acct_interim_interval: opt_u32(p, attr::ACCT_INTERIM_INTERVAL)?,
                class: p.attrs(attr::CLASS).map(|a| a.value.clone()).collect(),
                eap_message,
                reply_message,
            })))
        }
        Code::AccessReject => {
            let ms_chap_error = match p.vendor_attrs(VENDOR_MICROSOFT, MS_CHAP_ERROR).first() {
                None => None,
                Some(v) => Some(MsChapError::decode(v)?),
            };
            Ok(AccessOutcome::Reject(Reject {
                reply_message,
                eap_message,
                ms_chap_error,
            }))
        }
        Code::AccessChallenge => Ok(AccessOutcome::Challenge(Challenge {
            eap_message,
            state: p.attr(attr::STATE).map(|a| a.value.clone()),
            reply_message,
            session_timeout: opt_u32(p, attr::SESSION_TIMEOUT)?,
        })),
        got => Err(ResponseError::UnexpectedCode {
            request: Code::AccessRequest,
            got,
        }),
    }
}

/// Verifies that `datagram` answers the request sent with `request_code`,
/// `identifier` and `request_authenticator`, then reads it.
///
/// Access-* replies must carry a valid Message-Authenticator (RFC 3579
/// §3.2, required here for every Access-* reply against BlastRADIUS); an
/// Accounting-Response's is checked when present. Every comparison is
/// constant-time.
pub fn verify_and_parse(
    datagram: &[u8],
    request_code: Code,
    identifier: u8,
    request_authenticator: &[u8; AUTHENTICATOR_LEN],
    secret: &Secret,
) -> Result<Outcome, ResponseError> {
    let p = Packet::decode(datagram).map_err(VerifyError::from)?;
    if p.identifier != identifier {
        return Err(ResponseError::Identifier {
            expected: identifier,
            got: p.identifier,
        });
    }
    let access = match (request_code, p.code) {
        (Code::AccessRequest, Code::AccessAccept | Code::AccessReject | Code::AccessChallenge) => {
            true
        }
        (Code::AccountingRequest, Code::AccountingResponse) => false,
        (request, got) => return Err(ResponseError::UnexpectedCode { request, got }),
    };
    verify_response(datagram, request_authenticator, secret, access)?;
    if access {
        Ok(Outcome::Access(parse_access_outcome(
            &p,
            secret,
            request_authenticator,
        )?))
    } else {
        Ok(Outcome::AccountingAck)
    }
}
