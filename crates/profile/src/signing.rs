//! Ed25519 keys that sign profile packages (RFC 8032), on aws-lc-rs.
//!
//! Key files are text: the private key file holds the PKCS#8 v2 document in hex under a
//! header line (mode 0600); the public key file is one line `ras-ed25519 <64 hex digits>`.

use std::path::Path;

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use zeroize::Zeroizing;

const PRIVATE_HEADER: &str = "ras profile signing key (ed25519, PKCS#8, hex)";
const PUBLIC_PREFIX: &str = "ras-ed25519";

/// Key errors.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not a key of ours.
    #[error("{path}: not a ras ed25519 {what} key file")]
    Format {
        /// The key file.
        path: String,
        /// "private" or "public".
        what: &'static str,
    },
    /// The crypto library refused.
    #[error("key generation failed")]
    Crypto,
}

/// A public key, 32 bytes (RFC 8032 §5.1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key as 64 hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The key file line `ras-ed25519 <hex>`.
    pub fn to_line(&self) -> String {
        format!("{PUBLIC_PREFIX} {}\n", self.to_hex())
    }

    /// Parses `ras-ed25519 <hex>` or bare hex.
    pub fn parse(text: &str) -> Option<PublicKey> {
        let text = text.trim();
        let hex_part = text.strip_prefix(PUBLIC_PREFIX).unwrap_or(text).trim();
        let bytes = hex::decode(hex_part).ok()?;
        Some(PublicKey(bytes.try_into().ok()?))
    }

    /// Reads a public key file.
    pub fn read(path: &Path) -> Result<PublicKey, KeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
            path: path.display().to_string(),
            source,
        })?;
        PublicKey::parse(&text).ok_or(KeyError::Format {
            path: path.display().to_string(),
            what: "public",
        })
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&signature::ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }
}

/// A private signing key.
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().to_hex())
    }
}

impl SigningKey {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<(SigningKey, Zeroizing<String>), KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Crypto)?;
        let der = pair.to_pkcs8().map_err(|_| KeyError::Crypto)?;
        let text = Zeroizing::new(format!("{PRIVATE_HEADER}\n{}\n", hex::encode(der.as_ref())));
        Ok((SigningKey { pair }, text))
    }

    /// Reads a private key file written by [`SigningKey::write_new`].
    pub fn read(path: &Path) -> Result<SigningKey, KeyError> {
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| KeyError::Io {
                    path: path.display().to_string(),
                    source,
                })?,
            );
        let bad = || KeyError::Format {
            path: path.display().to_string(),
            what: "private",
        };
        let mut lines = text.lines();
        if lines.next() != Some(PRIVATE_HEADER) {
            return Err(bad());
        }
        let der =
            Zeroizing::new(hex::decode(lines.next().ok_or_else(bad)?.trim()).map_err(|_| bad())?);
        let pair = Ed25519KeyPair::from_pkcs8(&der).map_err(|_| bad())?;
        Ok(SigningKey { pair })
    }

    /// Generates a key and writes `<base>.key` (0600) and `<base>.pub`; refuses to
    /// overwrite an existing key.
    pub fn write_new(
        base: &Path,
    ) -> Result<(SigningKey, std::path::PathBuf, std::path::PathBuf), KeyError> {
        let private = base.with_extension("key");
        let public = base.with_extension("pub");
        let (key, text) = SigningKey::generate()?;
        let io = |path: &Path, source| KeyError::Io {
            path: path.display().to_string(),
            source,
        };
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&private)
                .map_err(|e| io(&private, e))?;
            f.write_all(text.as_bytes()).map_err(|e| io(&private, e))?;
        }
        std::fs::write(&public, key.public_key().to_line()).map_err(|e| io(&public, e))?;
        Ok((key, private, public))
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        let bytes = self.pair.public_key().as_ref();
        PublicKey(bytes.try_into().expect("ed25519 public keys are 32 bytes"))
    }

    /// Signs `message` (RFC 8032 §5.1.6), 64 bytes.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair.sign(message).as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 8032 §7.1 TEST 1: the empty message signed by the given secret key.
    #[test]
    fn rfc8032_test_1_verifies_and_a_flipped_bit_does_not() {
        let public =
            PublicKey::parse("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
                .unwrap();
        let mut sig = hex::decode(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
        )
        .unwrap();
        assert!(public.verify(b"", &sig));
        sig[0] ^= 1;
        assert!(!public.verify(b"", &sig));
        assert!(!public.verify(b"x", &sig));
    }

    #[test]
    fn rfc8032_test_1_signing_from_seed_gives_the_published_signature() {
        let seed = hex::decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
            .unwrap();
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let key = SigningKey { pair };
        assert_eq!(
            key.public_key().to_hex(),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(
            hex::encode(key.sign(b"")),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn key_files_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (key, private, public) = SigningKey::write_new(&dir.path().join("admin")).unwrap();
        let again = SigningKey::read(&private).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(PublicKey::read(&public).unwrap(), key.public_key());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&private).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(SigningKey::write_new(&dir.path().join("admin")).is_err());
        assert!(SigningKey::read(&public).is_err());
    }
}
