//! Writing a cabinet (MS-CAB §2): CFHEADER, one CFFOLDER, the CFFILEs, then
//! the CFDATA blocks.

use std::io::Write;

use super::checksum::block_checksum;
use super::{CabFile, BLOCK_SIZE};

/// How the data blocks are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    MsZip,
}

/// MS-CAB §2.1: the header without reserve fields is 36 bytes.
const HEADER_LEN: usize = 36;
/// MS-CAB §2.2: a CFFOLDER without reserve is 8 bytes.
const FOLDER_LEN: usize = 8;
/// MS-CAB §2.3: CFFILE is 16 bytes plus the NUL-terminated name.
const FILE_FIXED_LEN: usize = 16;
/// MS-CAB §2.4: CFDATA header is 8 bytes.
const DATA_HEADER_LEN: usize = 8;
/// MS-CAB §2.3: attribute "archive" (0x20): what Windows tools set.
const ATTRIB_ARCH: u16 = 0x20;

/// Compresses one block as MSZIP: "CK" then a complete raw DEFLATE stream
/// of the block. Each block gets a fresh compressor, so no back-reference
/// crosses blocks (valid: a decoder's kept window is then simply unused).
/// Incompressible data falls back to stored DEFLATE blocks, which keeps
/// every block within MS-CAB's 32768 + 12 byte bound.
fn mszip_block(block: &[u8]) -> Vec<u8> {
    let compress = |level: flate2::Compression| {
        let mut out = b"CK".to_vec();
        let mut enc = flate2::write::DeflateEncoder::new(&mut out, level);
        enc.write_all(block).expect("writing to a Vec cannot fail");
        enc.finish().expect("writing to a Vec cannot fail");
        out
    };
    let out = compress(flate2::Compression::default());
    if out.len() <= block.len() + 12 {
        out
    } else {
        compress(flate2::Compression::none())
    }
}

/// DOS date and time of `unix_secs` (UTC).
fn dos_date_time(unix_secs: i64) -> (u16, u16) {
    let days = unix_secs.div_euclid(86_400);
    let secs = unix_secs.rem_euclid(86_400);
    // Hinnant's civil_from_days, as in history.rs.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let y = (y - 1980).clamp(0, 127);
    let date = ((y as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = (((secs / 3600) as u16) << 11)
        | ((((secs % 3600) / 60) as u16) << 5)
        | ((secs % 60) / 2) as u16;
    (date, time)
}

/// Writes a cabinet of `files` (one folder). `unix_secs` stamps every file
/// (pass a fixed time for reproducible output). Panics only if the input
/// exceeds the format (more than 65,535 files, or a folder over 2 GiB),
/// which callers bound far below.
pub fn write_cab(files: &[CabFile], compression: Compression, unix_secs: i64) -> Vec<u8> {
    let total: usize = files.iter().map(|f| f.data.len()).sum();
    assert!(
        files.len() <= usize::from(u16::MAX) && total <= 0x7FFF_0000,
        "cabinet too large"
    );
    let mut folder_data = Vec::with_capacity(total);
    for f in files {
        folder_data.extend_from_slice(&f.data);
    }
    let blocks: Vec<(Vec<u8>, u16)> = folder_data
        .chunks(BLOCK_SIZE)
        .map(|b| {
            let data = match compression {
                Compression::None => b.to_vec(),
                Compression::MsZip => mszip_block(b),
            };
            (data, b.len() as u16)
        })
        .collect();
    let files_len: usize = files
        .iter()
        .map(|f| FILE_FIXED_LEN + f.name.len() + 1)
        .sum();
    let coff_files = HEADER_LEN + FOLDER_LEN;
    let coff_data = coff_files + files_len;
    let data_len: usize = blocks.iter().map(|(d, _)| DATA_HEADER_LEN + d.len()).sum();
    let cab_len = coff_data + data_len;
    let mut out = Vec::with_capacity(cab_len);
    // CFHEADER (MS-CAB §2.1).
    out.extend_from_slice(b"MSCF");
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved1
    out.extend_from_slice(&(cab_len as u32).to_le_bytes()); // cbCabinet
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved2
    out.extend_from_slice(&(coff_files as u32).to_le_bytes()); // coffFiles
    out.extend_from_slice(&0u32.to_le_bytes()); // reserved3
    out.extend_from_slice(&[3, 1]); // versionMinor, versionMajor
    out.extend_from_slice(&1u16.to_le_bytes()); // cFolders
    out.extend_from_slice(&(files.len() as u16).to_le_bytes()); // cFiles
    out.extend_from_slice(&0u16.to_le_bytes()); // flags: no reserve, no chain
    out.extend_from_slice(&0u16.to_le_bytes()); // setID
    out.extend_from_slice(&0u16.to_le_bytes()); // iCabinet
                                                // CFFOLDER (§2.2).
    out.extend_from_slice(&(coff_data as u32).to_le_bytes());
    out.extend_from_slice(&(blocks.len() as u16).to_le_bytes());
    out.extend_from_slice(&(compression as u16).to_le_bytes());
    // CFFILE (§2.3).
    let (date, time) = dos_date_time(unix_secs);
    let mut offset = 0u32;
    for f in files {
        out.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        out.extend_from_slice(&offset.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes()); // iFolder
        out.extend_from_slice(&date.to_le_bytes());
        out.extend_from_slice(&time.to_le_bytes());
        out.extend_from_slice(&ATTRIB_ARCH.to_le_bytes());
        out.extend_from_slice(f.name.as_bytes());
        out.push(0);
        offset += f.data.len() as u32;
    }
    // CFDATA (§2.4).
    for (data, uncompressed) in &blocks {
        out.extend_from_slice(&block_checksum(data, *uncompressed).to_le_bytes());
        out.extend_from_slice(&(data.len() as u16).to_le_bytes());
        out.extend_from_slice(&uncompressed.to_le_bytes());
        out.extend_from_slice(data);
    }
    debug_assert_eq!(out.len(), cab_len);
    out
}
