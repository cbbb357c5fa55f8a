//! The post bundle: what `ras phonebook post` uploads in one request, so
//! that the service installs a version whole or not at all.
//!
//! ```text
//! "RASPBPOST1\n"
//! repeated: name length (u8, 1..=64), name (ASCII), data length (u32 LE), data
//! end: a zero name length
//! ```
//!
//! Entries: `version` (the version file's text), `full.cab`, and for a
//! Delta version `delta.cab`.

const MAGIC: &[u8] = b"RASPBPOST1\n";

/// Why a bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("post bundle: {0}")]
    Malformed(&'static str),
}

/// Encodes entries. Panics on a name over 64 bytes or data over 4 GiB
/// (callers pass fixed names and bounded cabinets).
pub fn encode_bundle(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    for (name, data) in entries {
        assert!(!name.is_empty() && name.len() <= 64);
        out.push(name.len() as u8);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(
            &u32::try_from(data.len())
                .expect("entry too large")
                .to_le_bytes(),
        );
        out.extend_from_slice(data);
    }
    out.push(0);
    out
}

/// Decodes a bundle: (name, data) pairs, names unique.
pub fn decode_bundle(buf: &[u8]) -> Result<Vec<(String, &[u8])>, BundleError> {
    let mut rest = buf
        .strip_prefix(MAGIC)
        .ok_or(BundleError::Malformed("bad magic"))?;
    let mut out: Vec<(String, &[u8])> = Vec::new();
    loop {
        let (&len, r) = rest
            .split_first()
            .ok_or(BundleError::Malformed("truncated"))?;
        rest = r;
        if len == 0 {
            break;
        }
        if len > 64 || rest.len() < len as usize + 4 {
            return Err(BundleError::Malformed("bad entry header"));
        }
        let (name, r) = rest.split_at(len as usize);
        let name = std::str::from_utf8(name)
            .ok()
            .filter(|n| n.bytes().all(|b| b.is_ascii_graphic()))
            .ok_or(BundleError::Malformed("bad entry name"))?;
        let (size, r) = r.split_at(4);
        let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
        if r.len() < size {
            return Err(BundleError::Malformed("truncated entry"));
        }
        let (data, r) = r.split_at(size);
        if out.iter().any(|(n, _)| n == name) {
            return Err(BundleError::Malformed("duplicate entry"));
        }
        out.push((name.to_owned(), data));
        rest = r;
    }
    if !rest.is_empty() {
        return Err(BundleError::Malformed("bytes after the end marker"));
    }
    Ok(out)
}
