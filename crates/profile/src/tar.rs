//! The minimal POSIX ustar subset a profile package uses: regular files with short flat
//! names, nothing else. Written so `tar tf`/`tar xf` read our packages; read strictly,
//! since a package comes from elsewhere (bounded sizes, no links, no paths, checksums
//! checked). POSIX.1-1988 ustar header: name[100] mode[8] uid[8] gid[8] size[12]
//! mtime[12] chksum[8] typeflag[1] linkname[100] magic[6] version[2] uname[32] gname[32]
//! devmajor[8] devminor[8] prefix[155], padded to 512 bytes.

const BLOCK: usize = 512;
/// Most entries a package may have.
pub const MAX_ENTRIES: usize = 1024;
/// Largest package (and so largest sum of entries) we read.
pub const MAX_ARCHIVE_BYTES: usize = 64 * 1024 * 1024;

/// Why an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TarError {
    /// Ends inside a header or a file's data.
    #[error("the archive is truncated")]
    Truncated,
    /// Larger than [`MAX_ARCHIVE_BYTES`] or more than [`MAX_ENTRIES`] entries.
    #[error("the archive is too large")]
    TooLarge,
    /// A header's checksum does not match its bytes.
    #[error("entry {0}: header checksum mismatch")]
    Checksum(usize),
    /// A header field is not what a ustar header holds.
    #[error("entry {0}: malformed header ({1})")]
    Header(usize, &'static str),
    /// Not a regular file (links, directories, devices are refused).
    #[error("entry {0} ({1:?}): only regular files are allowed")]
    NotAFile(usize, String),
    /// A name that could escape the extraction directory or is not a plain file name.
    #[error("entry {0}: unsafe name {1:?}")]
    Name(usize, String),
    /// The same name twice.
    #[error("entry {0}: {1:?} appears twice")]
    Duplicate(usize, String),
}

/// Whether `name` is acceptable as an entry name: `[dir/]file`, each part a plain name of
/// 1–64 characters from `A–Z a–z 0–9 . _ -` not starting with `.`, at most one directory.
pub fn is_safe_name(name: &str) -> bool {
    let parts: Vec<&str> = name.split('/').collect();
    if parts.is_empty() || parts.len() > 2 || name.len() > 99 {
        return false;
    }
    parts.iter().all(|p| {
        !p.is_empty()
            && p.len() <= 64
            && !p.starts_with('.')
            && p.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    })
}

fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// Writes an archive of `(name, bytes)` entries, in order, each with mode 0644. Names
/// must pass [`is_safe_name`] (the caller checks; a bad name is a programming error here).
pub fn write(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<(String, Vec<u8>, u32)> = entries
        .iter()
        .map(|(n, d)| (n.clone(), d.clone(), 0o644))
        .collect();
    write_with_modes(&entries)
}

/// [`write`] with each entry's permission bits (`0o644`, `0o755`), so `tar xf` gives a
/// program back runnable. The reader ignores modes: a package's manifest says which
/// files are programs.
pub fn write_with_modes(entries: &[(String, Vec<u8>, u32)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data, mode) in entries {
        assert!(is_safe_name(name), "unsafe tar entry name {name:?}");
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        octal(&mut h[100..108], u64::from(mode & 0o777));
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], data.len() as u64);
        // A fixed mtime keeps packages reproducible: the same inputs, the same bytes.
        octal(&mut h[136..148], 0);
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].fill(b' ');
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        octal(&mut h[148..155], u64::from(sum));
        h[155] = b' ';
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    // End of archive: two zero blocks.
    out.resize(out.len() + 2 * BLOCK, 0);
    out
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = field
        .iter()
        .take_while(|&&b| b != 0)
        .copied()
        .collect::<Vec<u8>>();
    let text = std::str::from_utf8(&text).ok()?.trim_matches(' ');
    if text.is_empty() || text.len() > 11 {
        return None;
    }
    u64::from_str_radix(text, 8).ok()
}

fn c_string(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    std::str::from_utf8(&field[..end]).ok()
}

/// Reads every entry of an archive, refusing anything but safe regular files.
pub fn read(bytes: &[u8]) -> Result<Vec<(String, Vec<u8>)>, TarError> {
    if bytes.len() > MAX_ARCHIVE_BYTES {
        return Err(TarError::TooLarge);
    }
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    let mut at = 0;
    loop {
        let header = bytes.get(at..at + BLOCK).ok_or(TarError::Truncated)?;
        if header.iter().all(|&b| b == 0) {
            return Ok(entries);
        }
        let index = entries.len();
        if index >= MAX_ENTRIES {
            return Err(TarError::TooLarge);
        }
        let stored = parse_octal(&header[148..156]).ok_or(TarError::Header(index, "checksum"))?;
        let sum: u64 = header
            .iter()
            .enumerate()
            .map(|(i, &b)| u64::from(if (148..156).contains(&i) { b' ' } else { b }))
            .sum();
        if sum != stored {
            return Err(TarError::Checksum(index));
        }
        if &header[257..262] != b"ustar" {
            return Err(TarError::Header(index, "not ustar"));
        }
        let name = c_string(&header[..100]).ok_or(TarError::Header(index, "name"))?;
        let prefix = c_string(&header[345..500]).ok_or(TarError::Header(index, "prefix"))?;
        if !prefix.is_empty() {
            return Err(TarError::Name(index, format!("{prefix}/{name}")));
        }
        let name = name.to_owned();
        if !matches!(header[156], b'0' | 0) {
            return Err(TarError::NotAFile(index, name));
        }
        if !is_safe_name(&name) {
            return Err(TarError::Name(index, name));
        }
        if entries.iter().any(|(n, _)| *n == name) {
            return Err(TarError::Duplicate(index, name));
        }
        let size = parse_octal(&header[124..136]).ok_or(TarError::Header(index, "size"))?;
        let size = usize::try_from(size).map_err(|_| TarError::TooLarge)?;
        let start = at + BLOCK;
        let end = start.checked_add(size).ok_or(TarError::TooLarge)?;
        let data = bytes.get(start..end).ok_or(TarError::Truncated)?;
        entries.push((name, data.to_vec()));
        at = start + size.next_multiple_of(BLOCK);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let entries = vec![
            ("manifest.toml".to_owned(), b"x = 1\n".to_vec()),
            ("files/a.cms".to_owned(), vec![7u8; 1000]),
            ("files/empty".to_owned(), Vec::new()),
        ];
        let bytes = write(&entries);
        assert_eq!(bytes.len() % BLOCK, 0);
        assert_eq!(read(&bytes).unwrap(), entries);
    }

    #[test]
    fn corrupted_header_is_refused() {
        let mut bytes = write(&[("a.txt".to_owned(), b"hi".to_vec())]);
        bytes[0] = b'b';
        assert_eq!(read(&bytes), Err(TarError::Checksum(0)));
    }

    #[test]
    fn truncated_is_refused() {
        let bytes = write(&[("a.txt".to_owned(), vec![1u8; 600])]);
        assert_eq!(read(&bytes[..700]), Err(TarError::Truncated));
        assert_eq!(read(&bytes[..100]), Err(TarError::Truncated));
    }

    #[test]
    fn unsafe_names() {
        for bad in [
            "../x",
            "/etc/passwd",
            "a/b/c",
            ".hidden",
            "a b",
            "",
            "files/",
        ] {
            assert!(!is_safe_name(bad), "{bad}");
        }
        assert!(is_safe_name("files/contoso.cms"));
    }

    #[test]
    fn links_are_refused() {
        let mut bytes = write(&[("a.txt".to_owned(), Vec::new())]);
        bytes[156] = b'2';
        // Recompute the checksum so only the type is wrong.
        bytes[148..156].fill(b' ');
        let sum: u32 = bytes[..BLOCK].iter().map(|&b| u32::from(b)).sum();
        octal(&mut bytes[148..155], u64::from(sum));
        assert_eq!(read(&bytes), Err(TarError::NotAFile(0, "a.txt".into())));
    }
}
