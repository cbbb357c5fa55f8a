//! SSTP crypto binding (MS-SSTP §2.2.7, §3.2.5.2, §3.3.5.2.3).
//!
//! The client proves that the PPP authentication and the TLS session end at
//! the same two parties by sending, in the Call Connected message, the hash
//! of the server certificate it saw and a Compound MAC keyed from the
//! higher-layer (PPP) authentication keys:
//!
//! * HLAK (Higher-Layer Authentication Key, 32 bytes), MS-SSTP §3.2.5.2.2 /
//!   §3.2.5.2.4: for MS-CHAPv2 "SSTP Client HLAK = MasterSendKey |
//!   MasterReceiveKey" and "SSTP Server HLAK = MasterReceiveKey |
//!   MasterSendKey" (RFC 3079 §3 keys, each from the local side's view).
//!   Because the client's MasterSendKey is the server's MasterReceiveKey, both
//!   sides arrive at the same 32 bytes: (client→server key) ||
//!   (server→client key). "If the higher-layer PPP authentication method did
//!   not generate any keys", the HLAK is 32 zero bytes.
//! * CMK (Compound MAC Key): `CMK = T1 = HMAC(HLAK, S | LEN | 0x01)` with
//!   `S` = the 29 ASCII bytes "SSTP inner method derived CMK" (no NUL), `LEN`
//!   = the output length (20 for SHA-1, 32 for SHA-256) as a **2-byte
//!   little-endian** integer, then the single counter byte 0x01. The HMAC is
//!   HMAC-SHA1 or HMAC-SHA256 according to the negotiated hash protocol.
//!   The little-endian LEN is confirmed by the MS-SSTP §4.7 example (the
//!   big-endian reading does not reproduce the example's Compound MAC; see
//!   the tests).
//! * Compound MAC = HMAC(CMK, the entire 112-byte Call Connected message with
//!   the Compound MAC and Padding1 fields zeroed), MS-SSTP §3.2.5.2
//!   ("Input Data Used in the Crypto Binding" operation: "constructed from the entire 112 bytes of the Call Connected
//!   message (section 2.2.11). In this case, the Compound MAC field and
//!   Padding field MUST be zeroed out").
//! * Cert Hash = SHA-1 or SHA-256 of the server certificate (DER), in a
//!   32-byte field zero-padded for SHA-1 (MS-SSTP §2.2.7).

use hmac::{Hmac, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::attributes::{CryptoBindingAttr, ATTRIB_CRYPTO_BINDING, CRYPTO_BINDING_LEN, NONCE_LEN};
use crate::codec::{MessageType, CALL_CONNECTED_LEN, SSTP_VERSION};

/// MS-SSTP §2.2.6: CERT_HASH_PROTOCOL_SHA1 bit of the Hash Protocol Bitmask.
pub const CERT_HASH_PROTOCOL_SHA1: u8 = 0x01;
/// MS-SSTP §2.2.6: CERT_HASH_PROTOCOL_SHA256 bit of the Hash Protocol Bitmask.
pub const CERT_HASH_PROTOCOL_SHA256: u8 = 0x02;

/// MS-SSTP §3.2.5.2.2 / §3.2.5.2.4: the PRF seed for the CMK.
pub const CMK_SEED: &[u8; 29] = b"SSTP inner method derived CMK";

/// Length of the HLAK.
pub const HLAK_LEN: usize = 32;

/// Offset of the Compound MAC field in the Call Connected message.
pub const COMPOUND_MAC_OFFSET: usize = 80;
const NONCE_OFFSET: usize = 16;
const CERT_HASH_OFFSET: usize = 48;

/// A crypto-binding hash protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashProtocol {
    /// SHA-1 certificate hash, HMAC-SHA1-160 compound MAC.
    Sha1,
    /// SHA-256 certificate hash, HMAC-SHA256-256 compound MAC.
    Sha256,
}

impl HashProtocol {
    /// The value in the Hash Protocol field / bit in the bitmask.
    pub fn bit(self) -> u8 {
        match self {
            HashProtocol::Sha1 => CERT_HASH_PROTOCOL_SHA1,
            HashProtocol::Sha256 => CERT_HASH_PROTOCOL_SHA256,
        }
    }

    /// Parse a Hash Protocol field value (exactly one bit set).
    pub fn from_value(v: u8) -> Option<HashProtocol> {
        match v {
            CERT_HASH_PROTOCOL_SHA1 => Some(HashProtocol::Sha1),
            CERT_HASH_PROTOCOL_SHA256 => Some(HashProtocol::Sha256),
            _ => None,
        }
    }

    /// Digest / MAC length in bytes (20 or 32).
    pub fn digest_len(self) -> usize {
        match self {
            HashProtocol::Sha1 => 20,
            HashProtocol::Sha256 => 32,
        }
    }

    /// The strongest protocol in `bitmask` (MS-SSTP §3.2.5.3.2: "If more
    /// than one hash protocol is supported, a stronger one is chosen").
    pub fn strongest_in(bitmask: u8) -> Option<HashProtocol> {
        if bitmask & CERT_HASH_PROTOCOL_SHA256 != 0 {
            Some(HashProtocol::Sha256)
        } else if bitmask & CERT_HASH_PROTOCOL_SHA1 != 0 {
            Some(HashProtocol::Sha1)
        } else {
            None
        }
    }
}

/// Which end of the tunnel computes the HLAK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The SSTP client (PPP peer).
    Client,
    /// The SSTP server (PPP authenticator).
    Server,
}

/// Keys handed over by the PPP layer when authentication completes
/// (MS-SSTP "Inner Authentication Completed Event", §3.2.7.1 / §3.3.7).
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum HigherLayerKeys {
    /// PAP, CHAP-MD5, or authentication bypassed: HLAK is all zeros.
    None,
    /// MS-CHAPv2 or EAP-MSCHAPv2: the RFC 3079 §3 master keys, each **from
    /// the local endpoint's view** (on the client, `master_send` protects
    /// client→server traffic; on the server, `master_send` protects
    /// server→client traffic).
    MsChapV2 {
        /// RFC 3079 MasterSendKey of this endpoint.
        master_send: [u8; 16],
        /// RFC 3079 MasterReceiveKey of this endpoint.
        master_recv: [u8; 16],
    },
    /// Any other key material already in HLAK order for this side (for
    /// example the EAP MSK, MS-SSTP §3.2.5.2.2): the first 32 bytes are
    /// used, zero-padded when shorter.
    Raw(Vec<u8>),
}

impl std::fmt::Debug for HigherLayerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HigherLayerKeys::None => f.write_str("HigherLayerKeys::None"),
            HigherLayerKeys::MsChapV2 { .. } => f.write_str("HigherLayerKeys::MsChapV2 { .. }"),
            HigherLayerKeys::Raw(v) => write!(f, "HigherLayerKeys::Raw({} bytes)", v.len()),
        }
    }
}

/// The 32-byte Higher-Layer Authentication Key; zeroized on drop.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct Hlak([u8; HLAK_LEN]);

impl std::fmt::Debug for Hlak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hlak(..)")
    }
}

impl Hlak {
    /// The all-zero HLAK used when PPP authentication produced no keys.
    pub fn zero() -> Hlak {
        Hlak([0; HLAK_LEN])
    }

    /// The HLAK from raw material: first 32 bytes, zero-padded (MS-SSTP
    /// §3.2.5.2.2: "If the HLAK is more than 32 octets, then the first 32
    /// octets form the HLAK ... If the HLAK is less than 32 octets, then the
    /// string is padded with 0x00 at the end").
    pub fn from_material(material: &[u8]) -> Hlak {
        let mut h = [0u8; HLAK_LEN];
        let n = material.len().min(HLAK_LEN);
        h[..n].copy_from_slice(&material[..n]);
        Hlak(h)
    }

    /// Build the HLAK for `role` from the PPP keys.
    ///
    /// MS-SSTP §3.2.5.2.2: "SSTP Client HLAK = MasterSendKey |
    /// MasterReceiveKey, and: SSTP Server HLAK = MasterReceiveKey |
    /// MasterSendKey".
    pub fn new(keys: &HigherLayerKeys, role: Role) -> Hlak {
        match keys {
            HigherLayerKeys::None => Hlak::zero(),
            HigherLayerKeys::Raw(m) => Hlak::from_material(m),
            HigherLayerKeys::MsChapV2 {
                master_send,
                master_recv,
            } => {
                let (first, second) = match role {
                    Role::Client => (master_send, master_recv),
                    Role::Server => (master_recv, master_send),
                };
                let mut h = [0u8; HLAK_LEN];
                h[..16].copy_from_slice(first);
                h[16..].copy_from_slice(second);
                Hlak(h)
            }
        }
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; HLAK_LEN] {
        &self.0
    }
}

/// Both hashes of a certificate, computed once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateHashes {
    /// SHA-1 of the DER certificate.
    pub sha1: [u8; 20],
    /// SHA-256 of the DER certificate.
    pub sha256: [u8; 32],
}

impl CertificateHashes {
    /// Hash a DER-encoded X.509 certificate.
    pub fn new(der: &[u8]) -> CertificateHashes {
        let mut sha1 = [0u8; 20];
        sha1.copy_from_slice(&Sha1::digest(der));
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&Sha256::digest(der));
        CertificateHashes { sha1, sha256 }
    }

    /// The Cert Hash field for `proto` (32 bytes, zero-padded for SHA-1).
    pub fn padded(&self, proto: HashProtocol) -> [u8; 32] {
        match proto {
            HashProtocol::Sha256 => self.sha256,
            HashProtocol::Sha1 => {
                let mut f = [0u8; 32];
                f[..20].copy_from_slice(&self.sha1);
                f
            }
        }
    }
}

/// Certificate hash of a DER certificate, as the 32-byte Cert Hash field.
pub fn certificate_hash(proto: HashProtocol, der: &[u8]) -> [u8; 32] {
    CertificateHashes::new(der).padded(proto)
}

fn hmac_into(proto: HashProtocol, key: &[u8], parts: &[&[u8]], out: &mut [u8; 32]) {
    match proto {
        HashProtocol::Sha1 => {
            let mut m =
                <Hmac<Sha1> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            out[..20].copy_from_slice(&m.finalize().into_bytes());
        }
        HashProtocol::Sha256 => {
            let mut m =
                <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
            for p in parts {
                m.update(p);
            }
            out.copy_from_slice(&m.finalize().into_bytes());
        }
    }
}

/// Derive the Compound MAC Key (MS-SSTP §3.2.5.2.2 / §3.2.5.2.4):
/// `CMK = T1 = HMAC(HLAK, "SSTP inner method derived CMK" | LEN | 0x01)`
/// with LEN the output length as 2 little-endian bytes. Only the first
/// `proto.digest_len()` bytes of the result are the key.
pub fn derive_cmk(proto: HashProtocol, hlak: &Hlak) -> Zeroizing<[u8; 32]> {
    let len = (proto.digest_len() as u16).to_le_bytes();
    let mut cmk = Zeroizing::new([0u8; 32]);
    hmac_into(proto, hlak.as_bytes(), &[CMK_SEED, &len, &[0x01]], &mut cmk);
    cmk
}

/// Compute the Compound MAC over a 112-byte Call Connected message whose
/// Compound MAC field (bytes 80..112) the caller has zeroed. Returns the
/// 32-byte field (MAC plus zero padding for SHA-1).
pub fn compound_mac(
    proto: HashProtocol,
    hlak: &Hlak,
    zeroed_call_connected: &[u8; CALL_CONNECTED_LEN],
) -> [u8; 32] {
    let cmk = derive_cmk(proto, hlak);
    let mut mac = [0u8; 32];
    hmac_into(
        proto,
        &cmk[..proto.digest_len()],
        &[zeroed_call_connected],
        &mut mac,
    );
    mac
}

/// Encode the Call Connected message (MS-SSTP §2.2.11) with the given
/// binding fields and a zero Compound MAC.
fn call_connected_template(
    proto: HashProtocol,
    nonce: &[u8; NONCE_LEN],
    cert_hash_field: &[u8; 32],
) -> [u8; CALL_CONNECTED_LEN] {
    let mut m = [0u8; CALL_CONNECTED_LEN];
    m[0] = SSTP_VERSION;
    m[1] = 0x01; // C = 1
    m[2..4].copy_from_slice(&(CALL_CONNECTED_LEN as u16).to_be_bytes());
    m[4..6].copy_from_slice(&(MessageType::CallConnected as u16).to_be_bytes());
    m[6..8].copy_from_slice(&1u16.to_be_bytes());
    m[8] = 0;
    m[9] = ATTRIB_CRYPTO_BINDING;
    m[10..12].copy_from_slice(&(CRYPTO_BINDING_LEN as u16).to_be_bytes());
    m[15] = proto.bit();
    m[NONCE_OFFSET..NONCE_OFFSET + 32].copy_from_slice(nonce);
    m[CERT_HASH_OFFSET..CERT_HASH_OFFSET + 32].copy_from_slice(cert_hash_field);
    m
}

/// Build the complete Call Connected message the client sends (MS-SSTP
/// §3.2.5.2): nonce from the Call Connect Acknowledge, the hash of the
/// server certificate, and the Compound MAC.
pub fn build_call_connected(
    proto: HashProtocol,
    nonce: &[u8; NONCE_LEN],
    cert_hashes: &CertificateHashes,
    hlak: &Hlak,
) -> [u8; CALL_CONNECTED_LEN] {
    let mut m = call_connected_template(proto, nonce, &cert_hashes.padded(proto));
    let mac = compound_mac(proto, hlak, &m);
    m[COMPOUND_MAC_OFFSET..].copy_from_slice(&mac);
    m
}

/// Why a crypto binding was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    /// The Call Connected message is not the 112-byte single-attribute form.
    #[error("malformed Call Connected message")]
    Malformed,
    /// Hash Protocol is not one the server offered.
    #[error("hash protocol 0x{0:02x} was not offered")]
    HashProtocolNotOffered(u8),
    /// Nonce differs from the one in the Call Connect Acknowledge.
    #[error("nonce mismatch")]
    NonceMismatch,
    /// Cert Hash is not the hash of our certificate.
    #[error("certificate hash mismatch")]
    CertHashMismatch,
    /// Compound MAC did not verify.
    #[error("compound MAC mismatch")]
    CompoundMacMismatch,
}

/// Parse the crypto-binding attribute out of a raw Call Connected message.
pub fn parse_call_connected(raw: &[u8]) -> Result<CryptoBindingAttr, BindingError> {
    match crate::codec::decode_packet(raw) {
        Ok(crate::codec::Packet::Control(m))
            if m.msg_type == MessageType::CallConnected
                && raw.len() == CALL_CONNECTED_LEN
                && m.attributes.len() == 1 =>
        {
            match m.attributes.into_iter().next() {
                Some(crate::attributes::Attribute::CryptoBinding(b)) => Ok(b),
                _ => Err(BindingError::Malformed),
            }
        }
        _ => Err(BindingError::Malformed),
    }
}

/// Verify a received Call Connected message as the server must (MS-SSTP
/// §3.3.5.2.3): the nonce is ours, the hash protocol is one we offered, the
/// Cert Hash is the hash of our certificate, and the Compound MAC verifies
/// under our HLAK. All comparisons are constant-time. The MAC is computed
/// over the received bytes with the Compound MAC field zeroed.
pub fn verify_call_connected(
    raw: &[u8],
    nonce: &[u8; NONCE_LEN],
    offered_bitmask: u8,
    our_cert: &CertificateHashes,
    hlak: &Hlak,
) -> Result<HashProtocol, BindingError> {
    let attr = parse_call_connected(raw)?;
    let proto = HashProtocol::from_value(attr.hash_protocol)
        .filter(|p| offered_bitmask & p.bit() != 0)
        .ok_or(BindingError::HashProtocolNotOffered(attr.hash_protocol))?;
    if !bool::from(attr.nonce.ct_eq(nonce)) {
        return Err(BindingError::NonceMismatch);
    }
    let n = proto.digest_len();
    let expected_hash = our_cert.padded(proto);
    if !bool::from(attr.cert_hash[..n].ct_eq(&expected_hash[..n])) {
        return Err(BindingError::CertHashMismatch);
    }
    let mut zeroed = [0u8; CALL_CONNECTED_LEN];
    zeroed.copy_from_slice(raw);
    zeroed[COMPOUND_MAC_OFFSET..].fill(0);
    let mac = compound_mac(proto, hlak, &zeroed);
    if !bool::from(attr.compound_mac[..n].ct_eq(&mac[..n])) {
        return Err(BindingError::CompoundMacMismatch);
    }
    Ok(proto)
}
