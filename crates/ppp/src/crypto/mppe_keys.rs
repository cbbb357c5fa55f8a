//! MPPE key derivation from MS-CHAPv2, RFC 3079 §3.

use sha1::{Digest, Sha1};

/// RFC 3079 §3.4: "This is the MPPE Master Key".
const MAGIC1: &[u8; 27] = b"This is the MPPE Master Key";
/// RFC 3079 §3.4: the client-send / server-receive constant.
const MAGIC2: &[u8; 84] =
    b"On the client side, this is the send key; on the server side, it is the receive key.";
/// RFC 3079 §3.4: the client-receive / server-send constant.
const MAGIC3: &[u8; 84] =
    b"On the client side, this is the receive key; on the server side, it is the send key.";
const SHS_PAD1: [u8; 40] = [0x00; 40];
const SHS_PAD2: [u8; 40] = [0xf2; 40];

/// RFC 3079 §3.4: GetMasterKey.
pub fn get_master_key(password_hash_hash: &[u8; 16], nt_response: &[u8; 24]) -> [u8; 16] {
    let mut sha = Sha1::new();
    sha.update(password_hash_hash);
    sha.update(nt_response);
    sha.update(MAGIC1);
    let digest = sha.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// RFC 3079 §3.4: GetAsymmetricStartKey. Returns 16 bytes; callers use the
/// first `SessionKeyLength` bytes (8 for 40/56-bit, 16 for 128-bit).
pub fn get_asymmetric_start_key(master_key: &[u8; 16], is_send: bool, is_server: bool) -> [u8; 16] {
    let magic: &[u8] = if is_send == is_server { MAGIC3 } else { MAGIC2 };
    let mut sha = Sha1::new();
    sha.update(master_key);
    sha.update(SHS_PAD1);
    sha.update(magic);
    sha.update(SHS_PAD2);
    let digest = sha.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// RFC 3079 §3.3 / RFC 3078 §7.3: GetNewKeyFromSHA over the first
/// `len` bytes (8 or 16) of both keys.
pub fn get_new_key_from_sha(start_key: &[u8], session_key: &[u8], len: usize) -> [u8; 16] {
    let mut sha = Sha1::new();
    sha.update(&start_key[..len]);
    sha.update(SHS_PAD1);
    sha.update(&session_key[..len]);
    sha.update(SHS_PAD2);
    let digest = sha.finalize();
    let mut out = [0u8; 16];
    out[..len].copy_from_slice(&digest[..len]);
    out
}

/// The two asymmetric master keys of one side of an MS-CHAPv2 login, as
/// RFC 3079 §3.4 derives them and RFC 2548 MS-MPPE-Send-Key/Recv-Key carry
/// them. These are also the keys SSTP crypto binding uses (MS-SSTP §3.2.5.2).
#[derive(Clone, PartialEq, Eq, zeroize::Zeroize, zeroize::ZeroizeOnDrop)]
pub struct MasterKeys {
    /// Key for what this side sends.
    pub send: [u8; 16],
    /// Key for what this side receives.
    pub recv: [u8; 16],
}

impl std::fmt::Debug for MasterKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("MasterKeys(..)")
    }
}

impl MasterKeys {
    /// Derive both keys for this side from the MS-CHAPv2 exchange.
    pub fn from_mschapv2(password_hash: &[u8; 16], nt_response: &[u8; 24], is_server: bool) -> Self {
        let hash_hash = super::mschap::hash_nt_password_hash(password_hash);
        let master = get_master_key(&hash_hash, nt_response);
        MasterKeys {
            send: get_asymmetric_start_key(&master, true, is_server),
            recv: get_asymmetric_start_key(&master, false, is_server),
        }
    }
}
