//! Reading a cabinet: every offset and size checked, output bounded.

use super::checksum::block_checksum;
use super::{CabFile, BLOCK_SIZE};

/// Why a cabinet is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CabError {
    #[error("cabinet: {0}")]
    Malformed(&'static str),
    #[error("cabinet: data block {0} has a bad checksum")]
    Checksum(usize),
    #[error("cabinet: data block {0} does not decompress")]
    Inflate(usize),
    #[error("cabinet: compression type {0:#x} is not supported (only none and MSZIP)")]
    Compression(u16),
    #[error("cabinet: larger than the {0}-byte limit")]
    TooLarge(usize),
}

/// Bounds on what a cabinet may expand to.
#[derive(Debug, Clone, Copy)]
pub struct CabLimits {
    pub max_uncompressed: usize,
    pub max_files: usize,
}

impl Default for CabLimits {
    fn default() -> Self {
        CabLimits {
            max_uncompressed: 64 << 20,
            max_files: 64,
        }
    }
}

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CabError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(CabError::Malformed("truncated"))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16, CabError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, CabError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// MS-CAB §2.1 flags.
const FLAG_PREV_CABINET: u16 = 0x1;
const FLAG_NEXT_CABINET: u16 = 0x2;
const FLAG_RESERVE_PRESENT: u16 = 0x4;
/// The most folders we read.
const MAX_FOLDERS: usize = 16;

/// Reads every file of a single-cabinet set (no spanning). Supports
/// uncompressed and MSZIP folders, verifies non-zero checksums.
pub fn read_cab(buf: &[u8], limits: CabLimits) -> Result<Vec<CabFile>, CabError> {
    let mut c = Cursor { buf, pos: 0 };
    if c.take(4)? != b"MSCF" {
        return Err(CabError::Malformed("not a cabinet (no MSCF signature)"));
    }
    c.u32()?;
    let cb_cabinet = c.u32()? as usize;
    if cb_cabinet != buf.len() {
        return Err(CabError::Malformed("cbCabinet is not the file size"));
    }
    c.u32()?;
    let coff_files = c.u32()? as usize;
    c.u32()?;
    let _version = c.take(2)?;
    let c_folders = c.u16()? as usize;
    let c_files = c.u16()? as usize;
    let flags = c.u16()?;
    c.u16()?;
    c.u16()?;
    if flags & (FLAG_PREV_CABINET | FLAG_NEXT_CABINET) != 0 {
        return Err(CabError::Malformed("multi-cabinet sets are not supported"));
    }
    let (mut folder_reserve, mut data_reserve) = (0usize, 0usize);
    if flags & FLAG_RESERVE_PRESENT != 0 {
        let header_reserve = c.u16()? as usize;
        folder_reserve = c.take(1)?[0] as usize;
        data_reserve = c.take(1)?[0] as usize;
        c.take(header_reserve)?;
    }
    if c_files > limits.max_files {
        return Err(CabError::Malformed("too many files"));
    }
    // Ours have one folder; a few more are allowed. Bounding folders (which
    // may share their data) bounds the work below.
    if c_folders > MAX_FOLDERS {
        return Err(CabError::Malformed("too many folders"));
    }
    // CFFOLDERs.
    let mut folders = Vec::with_capacity(c_folders.min(16));
    for _ in 0..c_folders {
        let coff = c.u32()? as usize;
        let blocks = c.u16()? as usize;
        let kind = c.u16()?;
        c.take(folder_reserve)?;
        folders.push((coff, blocks, kind));
    }
    // Decompress each folder.
    let mut folder_bytes: Vec<Vec<u8>> = Vec::with_capacity(folders.len());
    let mut total = 0usize;
    let mut block_no = 0usize;
    for &(coff, blocks, kind) in &folders {
        let mut d = Cursor { buf, pos: coff };
        let mut out: Vec<u8> = Vec::new();
        for b in 0..blocks {
            let csum = d.u32()?;
            let cb_data = d.u16()?;
            let cb_uncomp = d.u16()?;
            d.take(data_reserve)?;
            let data = d.take(cb_data as usize)?;
            if csum != 0 && csum != block_checksum(data, cb_uncomp) {
                return Err(CabError::Checksum(block_no));
            }
            // MS-CAB: every block of a folder but the last holds 32768
            // uncompressed bytes, and none is empty. This also bounds the
            // number of blocks by the output limit.
            let last = b + 1 == blocks;
            if cb_uncomp == 0
                || cb_uncomp as usize > BLOCK_SIZE
                || (!last && cb_uncomp as usize != BLOCK_SIZE)
            {
                return Err(CabError::Malformed(
                    "a data block has a wrong uncompressed size",
                ));
            }
            total += cb_uncomp as usize;
            if total > limits.max_uncompressed {
                return Err(CabError::TooLarge(limits.max_uncompressed));
            }
            match kind & 0x000f {
                0 => {
                    if data.len() != cb_uncomp as usize {
                        return Err(CabError::Malformed("stored block sizes differ"));
                    }
                    out.extend_from_slice(data);
                }
                1 => {
                    let window_start = out.len().saturating_sub(BLOCK_SIZE);
                    let block = inflate_mszip(data, &out[window_start..], cb_uncomp as usize)
                        .ok_or(CabError::Inflate(block_no))?;
                    out.extend_from_slice(&block);
                }
                other => return Err(CabError::Compression(other)),
            }
            block_no += 1;
        }
        folder_bytes.push(out);
    }
    // CFFILEs.
    let mut f = Cursor {
        buf,
        pos: coff_files,
    };
    let mut files = Vec::with_capacity(c_files);
    for _ in 0..c_files {
        let size = f.u32()? as usize;
        let offset = f.u32()? as usize;
        let folder = f.u16()? as usize;
        f.take(6)?; // date, time, attribs
        let rest = &buf[f.pos..];
        let nul = rest.iter().take(257).position(|&b| b == 0);
        let nul = nul.ok_or(CabError::Malformed("file name not terminated"))?;
        let name = String::from_utf8(rest[..nul].to_vec())
            .map_err(|_| CabError::Malformed("file name is not UTF-8"))?;
        f.take(nul + 1)?;
        let bytes = folder_bytes
            .get(folder)
            .ok_or(CabError::Malformed("file in a folder that does not exist"))?;
        let end = offset.checked_add(size).filter(|&e| e <= bytes.len());
        let end = end.ok_or(CabError::Malformed("file beyond its folder's data"))?;
        files.push(CabFile {
            name,
            data: bytes[offset..end].to_vec(),
        });
    }
    Ok(files)
}

/// Inflates one MSZIP block ("CK" + raw DEFLATE) whose back-references may
/// reach into `window` (the previous 32 KiB of the folder: MSZIP keeps the
/// history across blocks). The window is supplied by prefixing the stream
/// with stored DEFLATE blocks holding it (RFC 1951 §3.2.4): after a stored
/// block the bit stream is byte-aligned, so the block's own bytes follow
/// unchanged; the window's bytes are then dropped from the output.
fn inflate_mszip(data: &[u8], window: &[u8], expect: usize) -> Option<Vec<u8>> {
    let body = data.strip_prefix(b"CK")?;
    let mut stream = Vec::with_capacity(window.len() + 10 + body.len());
    for chunk in window.chunks(0xffff) {
        let len = chunk.len() as u16;
        stream.push(0); // BFINAL = 0, BTYPE = 00 (stored), padding
        stream.extend_from_slice(&len.to_le_bytes());
        stream.extend_from_slice(&(!len).to_le_bytes());
        stream.extend_from_slice(chunk);
    }
    stream.extend_from_slice(body);
    let mut inflater = flate2::Decompress::new(false);
    let mut out = Vec::with_capacity(window.len() + expect + 1);
    // One call suffices for a complete stream when the output has room; the
    // +1 lets us notice a block that expands beyond its stated size.
    let status = inflater
        .decompress_vec(&stream, &mut out, flate2::FlushDecompress::Finish)
        .ok()?;
    if status != flate2::Status::StreamEnd || out.len() != window.len() + expect {
        return None;
    }
    Some(out.split_off(window.len()))
}
