//! Microsoft cabinet files (MS-CAB): the phone book's Full and Delta
//! cabinets.
//!
//! Our own writer and reader instead of the `cab` crate, whose MSZIP output
//! of very repetitive data has been seen to fail `cabextract -t`. One folder,
//! MSZIP (or stored) data blocks of 32 KiB, every block checksummed.

mod checksum;
mod read;
mod write;

pub use checksum::cab_checksum;
pub use read::{read_cab, CabError, CabLimits};
pub use write::{write_cab, Compression};

/// One file of a cabinet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CabFile {
    /// The file name (ASCII; no directories in ours).
    pub name: String,
    pub data: Vec<u8>,
}

/// MS-CAB: the uncompressed size of every CFDATA block but the last.
pub const BLOCK_SIZE: usize = 32_768;
